"""What was there before Create, carried in the physical id so it survives function redeploys.

Format: ``alblogs:v1:<gen>:<base64url(zlib(json))>``. The JSON holds only values fixed at Create (never
the prefix, endpoint or other properties an in-place update may change), so the id stays the same across
in-place updates. CloudFormation stores the id and hands it back on Update and Delete.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass, replace
from typing import Any

from provisioner.errors import PhysicalIdError
from provisioner.naming import is_gen

ID_PREFIX = "alblogs:v1:"
MAX_PHYSICAL_ID_BYTES = 1024

SOURCE_NAMED = "named"  # BucketName was given
SOURCE_ALB = "alb"  # reused the bucket the load balancer already logged to
SOURCE_DEFAULT = "default"  # the default bucket name


@dataclass(frozen=True, slots=True)
class AccessLogSettings:
    """The load balancer's access_logs.s3.* attributes (a missing attribute reads as false / "")."""

    enabled: bool
    bucket: str
    prefix: str

    @classmethod
    def off(cls) -> AccessLogSettings:
        """What a load balancer that never logged reports."""
        return cls(enabled=False, bucket="", prefix="")


@dataclass(frozen=True, slots=True)
class Record:
    """Everything Delete needs that cannot be recomputed from the current properties."""

    gen: str
    load_balancer_arn: str = ""
    bucket: str = ""
    bucket_source: str = SOURCE_DEFAULT
    bucket_created: bool = False
    policy_existed: bool = False
    previous_logging: AccessLogSettings = AccessLogSettings(False, "", "")
    predecessor: Record | None = None

    @property
    def prepared(self) -> bool:
        """False for the placeholder id set before validation finished: nothing was changed under it."""
        return bool(self.load_balancer_arn and self.bucket)


def _to_json(record: Record, *, nested: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"g": record.gen}
    if record.prepared:
        prev = record.previous_logging
        data.update(
            lb=record.load_balancer_arn,
            b=record.bucket,
            s=record.bucket_source,
            c=int(record.bucket_created),
            p=int(record.policy_existed),
            l=[int(prev.enabled), prev.bucket, prev.prefix],
        )
    if record.predecessor is not None and not nested:
        data["r"] = _to_json(record.predecessor, nested=True)
    return data


def _from_json(data: Any, *, nested: bool = False) -> Record:
    if not isinstance(data, dict):
        raise ValueError("record is not an object")
    gen = data.get("g")
    if not isinstance(gen, str) or not is_gen(gen):
        raise ValueError("bad generation")
    predecessor = None
    if "r" in data:
        if nested:
            raise ValueError("nested predecessor")
        predecessor = _from_json(data["r"], nested=True)
    if "lb" not in data:
        return Record(gen=gen, predecessor=predecessor)
    enabled, bucket, prefix = data["l"]
    source = data["s"]
    if source not in (SOURCE_NAMED, SOURCE_ALB, SOURCE_DEFAULT):
        raise ValueError("bad bucket source")
    fields = (data["lb"], data["b"], bucket, prefix)
    if not all(isinstance(v, str) for v in fields) or not data["lb"] or not data["b"]:
        raise ValueError("bad field")
    return Record(
        gen=gen,
        load_balancer_arn=data["lb"],
        bucket=data["b"],
        bucket_source=source,
        bucket_created=bool(data["c"]),
        policy_existed=bool(data["p"]),
        previous_logging=AccessLogSettings(bool(enabled), bucket, prefix),
        predecessor=predecessor,
    )


def encode(record: Record) -> str:
    """The physical id for a record; PhysicalIdError if CloudFormation's 1 KB limit would be exceeded."""
    raw = json.dumps(_to_json(record), separators=(",", ":"), sort_keys=True).encode()
    packed = base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")
    physical_id = f"{ID_PREFIX}{record.gen}:{packed}"
    if len(physical_id.encode()) > MAX_PHYSICAL_ID_BYTES:
        if record.predecessor is not None:
            return encode(replace(record, predecessor=None))
        raise PhysicalIdError(
            f"the state record for this resource needs {len(physical_id)} bytes but a physical id may hold "
            f"{MAX_PHYSICAL_ID_BYTES}; use a shorter BucketName or load balancer prefix"
        )
    return physical_id


def decode(physical_id: str) -> Record | None:
    """The record in one of our physical ids, None for any id we did not write."""
    if not isinstance(physical_id, str) or not physical_id.startswith(ID_PREFIX):
        return None
    rest = physical_id[len(ID_PREFIX) :]
    gen, sep, packed = rest.partition(":")
    if not sep or not is_gen(gen):
        return None
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)))
        record = _from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError, zlib.error, binascii.Error):
        return None
    if record.gen != gen:
        return None
    return record

"""Work items: the messages of the stack's work queue, each naming one S3 object version and where to start.

Two producers write them, one consumer reads them:
- the forwarder itself, when an invocation runs out of time part-way through an object: it hands the
  rest of the object on as a work item (a *continuation*) whose ``start_line`` is the first line not yet
  delivered, and whose ``invocation`` counts the invocations the object has taken so far;
- ``python -m forwarder replay --via-lambda``, which enqueues one work item per listed object (a
  *backfill*, starting at line 1) instead of sending from the machine it runs on.
The forwarder, through the queue's event source mapping, forwards each item from ``start_line``, after
checking that the object still has the ``etag`` the item names (a changed object is never resumed: its
line numbers, and so its event_ids, would no longer mean the same lines).

The body is JSON with one top-level key, ``forwarder_work``, so it can never be mistaken for an S3, SNS or
EventBridge notification (and such a notification never for a work item).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ORIGIN_BACKFILL",
    "ORIGIN_CONTINUATION",
    "WORK_ITEM_KEY",
    "WORK_ITEM_VERSION",
    "WorkItem",
    "WorkItemError",
    "is_work_item",
]

WORK_ITEM_KEY = "forwarder_work"
WORK_ITEM_VERSION = 1

ORIGIN_CONTINUATION = "continuation"
ORIGIN_BACKFILL = "backfill"
_ORIGINS = frozenset({ORIGIN_CONTINUATION, ORIGIN_BACKFILL})


class WorkItemError(ValueError):
    """A work-queue message that is not a valid work item; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class WorkItem:
    """Forward s3://bucket/key (the version with this ETag) from line ``start_line`` (1-based) on.

    ``invocation`` is the number of the invocation that will process the item: 1 for a backfill item,
    n + 1 for the continuation written by invocation n. ``rejected`` counts the records earlier
    invocations of the chain had refused for good by the intake: the last one fails the object for them.
    """

    bucket: str
    key: str
    etag: str
    start_line: int = 1
    version_id: str | None = None
    invocation: int = 1
    origin: str = ORIGIN_BACKFILL
    rejected: int = 0

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def describe(self) -> str:
        """'s3://b/k from line 40001 (invocation 2)': the object and where it resumes."""
        return f"{self.uri} from line {self.start_line} (invocation {self.invocation})"

    def to_body(self) -> str:
        """The SQS message body (compact JSON, a few hundred bytes at most)."""
        item: dict[str, Any] = {
            "v": WORK_ITEM_VERSION,
            "origin": self.origin,
            "bucket": self.bucket,
            "key": self.key,
            "etag": self.etag,
            "start_line": self.start_line,
            "invocation": self.invocation,
        }
        if self.version_id:
            item["version_id"] = self.version_id
        if self.rejected:
            item["rejected"] = self.rejected
        return json.dumps({WORK_ITEM_KEY: item}, separators=(",", ":"), ensure_ascii=False)

    def continued(self, start_line: int, *, rejected: int = 0) -> WorkItem:
        """The item the next invocation gets when this one stops before ``start_line`` (having had
        ``rejected`` records refused)."""
        return WorkItem(
            bucket=self.bucket,
            key=self.key,
            etag=self.etag,
            start_line=start_line,
            version_id=self.version_id,
            invocation=self.invocation + 1,
            origin=ORIGIN_CONTINUATION,
            rejected=self.rejected + rejected,
        )

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> WorkItem:
        """The work item of a decoded message body ``{"forwarder_work": {...}}``; WorkItemError if invalid."""
        item = payload.get(WORK_ITEM_KEY)
        if not isinstance(item, Mapping):
            raise WorkItemError(f"a work item is a JSON object under {WORK_ITEM_KEY!r}")
        version = item.get("v")
        if version != WORK_ITEM_VERSION:
            raise WorkItemError(
                f"work item version {version!r} is not supported (this forwarder reads version "
                f"{WORK_ITEM_VERSION}); was it written by a newer release?"
            )
        bucket = _text(item, "bucket")
        key = _text(item, "key")
        etag = _text(item, "etag").strip('"')
        start_line = _count(item, "start_line")
        invocation = _count(item, "invocation")
        origin = item.get("origin", ORIGIN_BACKFILL)
        if origin not in _ORIGINS:
            raise WorkItemError(f"work item origin {origin!r} is not one of {sorted(_ORIGINS)}")
        rejected = item.get("rejected", 0)
        if not isinstance(rejected, int) or isinstance(rejected, bool) or rejected < 0:
            raise WorkItemError(f"work item rejected must be a whole number, not {rejected!r}")
        version_id = item.get("version_id")
        if version_id is not None and (not isinstance(version_id, str) or not version_id):
            raise WorkItemError("work item version_id must be a non-empty string when given")
        return cls(
            bucket=bucket,
            key=key,
            etag=etag,
            start_line=start_line,
            version_id=version_id,
            invocation=invocation,
            origin=origin,
            rejected=rejected,
        )

    @classmethod
    def from_body(cls, body: str) -> WorkItem:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise WorkItemError(f"a work item body is JSON: {exc}") from exc
        if not isinstance(payload, Mapping):
            raise WorkItemError(f"a work item is a JSON object under {WORK_ITEM_KEY!r}")
        return cls.from_payload(payload)


def is_work_item(payload: Any) -> bool:
    """Whether a decoded message body is a work item (valid or not): it has the ``forwarder_work`` key."""
    return isinstance(payload, Mapping) and WORK_ITEM_KEY in payload


def _text(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise WorkItemError(f"work item {name} must be a non-empty string, not {value!r}")
    return value


def _count(item: Mapping[str, Any], name: str) -> int:
    value = item.get(name)
    # bool is an int in Python; a JSON true is not a line number.
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise WorkItemError(f"work item {name} must be a whole number of at least 1, not {value!r}")
    return value

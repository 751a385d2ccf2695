"""The bucket policy: our statements (by Sid) merged into whatever policy the bucket has.

Statements we did not write are never changed, reordered or dropped; the policy's Version and Id are
kept as they are. Every change is read back and merged again if a concurrent writer replaced it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from provisioner.arns import bucket_arn
from provisioner.elb_accounts import LOG_DELIVERY_SERVICE_PRINCIPAL, elb_account_id
from provisioner.errors import PreconditionError, error_code, show
from provisioner.merge_write import merge_write
from provisioner.naming import (
    delivery_account_sid,
    delivery_sid,
    log_key_prefix,
    read_list_sid,
    read_objects_sid,
    tls_sid,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_POLICY_BYTES = 20 * 1024  # S3's limit for a bucket policy
VERSION = "2012-10-17"

Policy = dict[str, Any]
Statement = dict[str, Any]


def log_objects_arn(partition: str, bucket: str, prefix: str, account: str) -> str:
    """`arn:<partition>:s3:::<bucket>/<prefix>/AWSLogs/<account>/*` (or without `<prefix>/`)."""
    return f"{bucket_arn(partition, bucket)}/{log_key_prefix(prefix, account)}*"


def log_delivery_statements(
    *, partition: str, region: str, bucket: str, prefix: str, account: str, gen: str
) -> list[Statement]:
    """Let Elastic Load Balancing write this account's log files under the prefix, nothing else.

    No aws:SourceAccount / aws:SourceArn conditions: the AWS guide for ALB access logs ("Enable access
    logs for your Application Load Balancer", step 2) documents the policy for both principals without
    them and does not say that ELB's log delivery sends those keys; a condition the writer does not
    satisfy would silently stop delivery. The Resource already limits writes to this account's path.
    """
    resource = log_objects_arn(partition, bucket, prefix, account)
    statements: list[Statement] = [
        {
            "Sid": delivery_sid(gen),
            "Effect": "Allow",
            "Principal": {"Service": LOG_DELIVERY_SERVICE_PRINCIPAL},
            "Action": "s3:PutObject",
            "Resource": resource,
        }
    ]
    elb_account = elb_account_id(region)
    if elb_account:
        statements.append(
            {
                "Sid": delivery_account_sid(gen),
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{elb_account}:root"},
                "Action": "s3:PutObject",
                "Resource": resource,
            }
        )
    return statements


def reader_statements(
    *, partition: str, bucket: str, prefix: str, account: str, reader_arn: str, gen: str
) -> list[Statement]:
    """Let ReaderPrincipalArn list and read the log files (and only them)."""
    key_prefix = log_key_prefix(prefix, account)
    return [
        {
            "Sid": read_objects_sid(gen),
            "Effect": "Allow",
            "Principal": {"AWS": reader_arn},
            "Action": "s3:GetObject",
            "Resource": log_objects_arn(partition, bucket, prefix, account),
        },
        {
            "Sid": read_list_sid(gen),
            "Effect": "Allow",
            "Principal": {"AWS": reader_arn},
            "Action": "s3:ListBucket",
            "Resource": bucket_arn(partition, bucket),
            "Condition": {"StringLike": {"s3:prefix": [f"{key_prefix}*"]}},
        },
    ]


def tls_only_statement(partition: str, bucket: str, gen: str) -> Statement:
    """Deny any request to the bucket that does not use TLS (on buckets we create)."""
    arn = bucket_arn(partition, bucket)
    return {
        "Sid": tls_sid(gen),
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _statements(policy: Policy) -> list[Statement]:
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        return [statements]
    if not isinstance(statements, list):
        raise PreconditionError(
            "the bucket's current policy has a Statement that is neither a list nor an object"
        )
    return list(statements)


def merge(policy: Policy | None, ours: Iterable[Statement], replace_sids: Iterable[str]) -> Policy:
    """The policy with statements whose Sid is in `replace_sids` removed and `ours` appended."""
    replace = set(replace_sids)
    result: Policy = dict(policy) if policy else {"Version": VERSION}
    kept = [s for s in _statements(result) if not (isinstance(s, dict) and s.get("Sid") in replace)]
    result["Statement"] = kept + list(ours)
    result.setdefault("Version", VERSION)
    return result


def remove(policy: Policy | None, sids: Iterable[str]) -> Policy | None:
    """The policy without our Sids; None when no statement is left (then the policy is deleted)."""
    if not policy:
        return None
    drop = set(sids)
    kept = [s for s in _statements(policy) if not (isinstance(s, dict) and s.get("Sid") in drop)]
    if not kept:
        return None
    result = dict(policy)
    result["Statement"] = kept
    return result


def sids_in(policy: Policy | None) -> set[str]:
    """Every Sid present in a policy."""
    if not policy:
        return set()
    return {str(s["Sid"]) for s in _statements(policy) if isinstance(s, dict) and "Sid" in s}


def serialise(policy: Policy) -> str:
    """Compact JSON, checked against S3's 20 KB limit."""
    text = json.dumps(policy, separators=(",", ":"))
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise PreconditionError(
            f"the bucket policy would be {len(text.encode())} bytes with this stack's statements, over S3's "
            f"limit of {MAX_POLICY_BYTES}; shorten the existing policy or use another bucket"
        )
    return text


def read(s3: S3Client, bucket: str) -> Policy | None:
    """The bucket's policy, parsed; None when it has none."""
    try:
        text = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucketPolicy":
            return None
        raise
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise PreconditionError(f"the policy of bucket {show(bucket)} is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise PreconditionError(f"the policy of bucket {show(bucket)} is not a JSON object")
    return parsed


def write(s3: S3Client, bucket: str, policy: Policy | None) -> None:
    """Put the policy, or delete it when None."""
    if policy is None:
        s3.delete_bucket_policy(Bucket=bucket)
    else:
        s3.put_bucket_policy(Bucket=bucket, Policy=serialise(policy))


def add_statements(
    s3: S3Client,
    bucket: str,
    statements: Iterable[Statement],
    own_sids: Iterable[str],
    *,
    only_if_missing: bool = False,
    before_first_write: Callable[[], object] | None = None,
) -> bool:
    """Merge our statements into the bucket's policy, replacing any of `own_sids`; False if already there.

    With `only_if_missing`, a policy that has exactly our Sids is left as it is (S3 may have reformatted
    our statements: a rewrite would change nothing).
    """
    ours = list(statements)
    replace = set(own_sids)
    wanted = {str(s["Sid"]) for s in ours}

    def holds(current: Policy | None) -> bool:
        return wanted <= sids_in(current) and not sids_in(current) & (replace - wanted)

    def merged(current: Policy | None) -> Policy | None:
        return current if only_if_missing and holds(current) else merge(current, ours, replace)

    return merge_write(
        read=lambda: read(s3, bucket),
        merge=merged,
        holds=holds,
        write=lambda policy: write(s3, bucket, policy),
        document=f"the policy of bucket {show(bucket)}",
        operation="PutBucketPolicy",
        before_first_write=before_first_write,
    )


def remove_statements(s3: S3Client, bucket: str, sids: Iterable[str]) -> bool:
    """Remove our Sids from the bucket policy (deleted when nothing else is left); False if none was there."""
    drop = set(sids)

    def without(current: Policy | None) -> Policy | None:
        return remove(current, drop) if sids_in(current) & drop else current

    return merge_write(
        read=lambda: read(s3, bucket),
        merge=without,
        holds=lambda current: not sids_in(current) & drop,
        write=lambda policy: write(s3, bucket, policy),
        document=f"the policy of bucket {show(bucket)}",
        operation="PutBucketPolicy",
    )

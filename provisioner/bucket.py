"""The log bucket: where it is, whether ALB can write to it, create it, empty and delete it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from provisioner.deadline import Deadline
from provisioner.errors import PreconditionError, error_code, show
from provisioner.logs import log_event
from provisioner.naming import EXPIRY_RULE_ID, STACK_TAG_KEY

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

_MISSING = frozenset({"NoSuchBucket", "404", "NotFound"})
_KMS = frozenset({"aws:kms", "aws:kms:dsse"})
_DELETE_BATCH = 1000


def is_missing(exc: BaseException) -> bool:
    """True for 'this bucket does not exist'."""
    return error_code(exc) in _MISSING


def bucket_region(s3: S3Client, bucket: str, account: str) -> str | None:
    """The bucket's region, or None when no bucket has this name.

    GetBucketLocation answers None for us-east-1 and the legacy "EU" for eu-west-1.
    """
    try:
        answer = s3.get_bucket_location(Bucket=bucket, ExpectedBucketOwner=account)
    except ClientError as exc:
        if is_missing(exc):
            return None
        if error_code(exc) in ("AccessDenied", "403", "AllAccessDisabled"):
            raise PreconditionError(
                f"bucket {show(bucket)} exists but this account ({account}) cannot use it (it belongs to "
                f"another account or denies access); choose another BucketName or leave it empty"
            ) from exc
        raise
    location = answer.get("LocationConstraint")
    if not location:
        return "us-east-1"
    if location == "EU":
        return "eu-west-1"
    return str(location)


def check_encryption(s3: S3Client, bucket: str) -> None:
    """ALB delivers access logs only to SSE-S3 buckets; refuse SSE-KMS and DSSE-KMS defaults."""
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as exc:
        # Buckets made before 2023 may have no default encryption at all: ALB can write to them.
        if error_code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
            return
        raise
    for rule in rules:
        algorithm = rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "")
        if algorithm in _KMS:
            raise PreconditionError(
                f"bucket {show(bucket)} encrypts new objects with {algorithm} by default, but Application "
                f"Load Balancers deliver access logs only to buckets using SSE-S3 (AES256); switch the "
                f"bucket's default encryption to SSE-S3, or leave BucketName empty so the stack creates a "
                f"suitable bucket"
            )


def create(s3: S3Client, bucket: str, region: str) -> None:
    """Create the bucket with ACLs disabled (object ownership enforced)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    log_event(logger, "bucket_created", bucket=bucket, region=region)


def tag(s3: S3Client, bucket: str, stack_id: str) -> None:
    """Mark a bucket we created, so Delete only ever removes buckets that carry our stack's tag."""
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": STACK_TAG_KEY, "Value": stack_id}]})


def block_public_access(s3: S3Client, bucket: str) -> None:
    """All four public access block settings on."""
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def encrypt_sse_s3(s3: S3Client, bucket: str) -> None:
    """Default encryption SSE-S3, the only kind ALB log delivery supports."""
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


def _read_lifecycle_rules(s3: S3Client, bucket: str) -> list[Any]:
    try:
        return list(s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", []))
    except ClientError as exc:
        if error_code(exc) == "NoSuchLifecycleConfiguration":
            return []
        raise


def set_expiry(s3: S3Client, bucket: str, days: int | None) -> None:
    """Our expiry rule (by Id) on a bucket we created; other rules someone added are kept."""
    our_id = EXPIRY_RULE_ID
    current = _read_lifecycle_rules(s3, bucket)
    rules = [r for r in current if r.get("ID") != our_id]
    if days is not None:
        rules.append(
            {
                "ID": our_id,
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "Expiration": {"Days": days},
                "NoncurrentVersionExpiration": {"NoncurrentDays": days},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            }
        )
    if rules == current:
        return
    if rules:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    else:
        s3.delete_bucket_lifecycle(Bucket=bucket)


def exists(s3: S3Client, bucket: str) -> bool:
    """Whether a bucket with this name exists and is reachable."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if is_missing(exc):
            return False
        raise
    return True


def carries_stack_tag(s3: S3Client, bucket: str, stack_id: str) -> bool:
    """True only if the bucket is tagged as created by this stack."""
    try:
        tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError as exc:
        if error_code(exc) in ("NoSuchTagSet", "NoSuchTagSetError"):
            return False
        raise
    return any(t.get("Key") == STACK_TAG_KEY and t.get("Value") == stack_id for t in tags)


def empty_and_delete(s3: S3Client, bucket: str, deadline: Deadline) -> int:
    """Delete every object version and delete marker, then the bucket. Returns how many were deleted."""
    deleted = 0
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        batch = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        for start in range(0, len(batch), _DELETE_BATCH):
            deadline.check(f"emptying bucket {bucket} ({deleted} objects deleted so far)")
            chunk = batch[start : start + _DELETE_BATCH]
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})  # type: ignore[typeddict-item]
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                raise PreconditionError(
                    f"could not delete {len(errors)} objects from bucket {show(bucket)} "
                    f"(first: {show(first.get('Key', ''))}: {show(first.get('Code', ''))})"
                )
            deleted += len(chunk)
    s3.delete_bucket(Bucket=bucket)
    log_event(logger, "bucket_deleted", bucket=bucket, objects_deleted=deleted)
    return deleted

"""Bucket checks that moto cannot show: legacy location answers, every KMS flavour, foreign buckets."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from provisioner import bucket
from provisioner.errors import PreconditionError


class FakeS3:
    """Answers like S3 for the two read calls the checks make."""

    def __init__(
        self, location: Any = None, algorithm: str | None = "AES256", error: str | None = None
    ) -> None:
        self.location = location
        self.algorithm = algorithm
        self.error = error

    def get_bucket_location(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["ExpectedBucketOwner"] == "123456789012", "never inspect a bucket of another account"
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "x"}}, "GetBucketLocation")
        return {"LocationConstraint": self.location}

    def get_bucket_encryption(self, **_: Any) -> dict[str, Any]:
        if self.algorithm is None:
            raise ClientError(
                {"Error": {"Code": "ServerSideEncryptionConfigurationNotFoundError", "Message": "x"}},
                "GetBucketEncryption",
            )
        rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": self.algorithm}}
        return {"ServerSideEncryptionConfiguration": {"Rules": [rule]}}


@pytest.mark.parametrize(
    ("location", "region"),
    [(None, "us-east-1"), ("", "us-east-1"), ("EU", "eu-west-1"), ("ap-southeast-4", "ap-southeast-4")],
)
def test_location_constraint_answers_map_to_regions(location: Any, region: str) -> None:
    assert bucket.bucket_region(FakeS3(location=location), "b", "123456789012") == region  # type: ignore[arg-type]


def test_a_missing_bucket_has_no_region() -> None:
    assert bucket.bucket_region(FakeS3(error="NoSuchBucket"), "b", "123456789012") is None  # type: ignore[arg-type]


def test_a_bucket_of_another_account_is_refused_with_a_reason() -> None:
    with pytest.raises(PreconditionError, match="cannot use it"):
        bucket.bucket_region(FakeS3(error="AccessDenied"), "b", "123456789012")  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["aws:kms", "aws:kms:dsse"])
def test_kms_default_encryption_is_refused(algorithm: str) -> None:
    with pytest.raises(PreconditionError, match="SSE-S3"):
        bucket.check_encryption(FakeS3(algorithm=algorithm), "b")  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["AES256", None])
def test_sse_s3_or_no_default_encryption_is_fine(algorithm: str | None) -> None:
    bucket.check_encryption(FakeS3(algorithm=algorithm), "b")  # type: ignore[arg-type]

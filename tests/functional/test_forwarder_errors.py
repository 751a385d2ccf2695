"""Failures a user can act on: missing object, access denied, corrupt gzip, bad configuration."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from alb_log_factory import ACCOUNT, gzip_lines, log_key, make_alb_lines
from aws_events import BUCKET, s3_notification, sns_event, sqs_event
from ingest_server import IngestServer
from moto.core.authorization import enable_iam_authentication

from forwarder.config import ConfigError
from forwarder.source import ObjectAccessError, ObjectCorruptError, ObjectNotFoundError

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")


def test_missing_object(invoke: Any, put_log: Any, s3: Any, ingest: IngestServer) -> None:
    obj = put_log(KEY, count=3)
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    with pytest.raises(ObjectNotFoundError) as caught:
        invoke(sns_event(s3_notification(obj)))
    message = str(caught.value)
    assert f"s3://{BUCKET}/{KEY} does not exist (NoSuchKey)" in message
    assert "lifecycle" in message
    assert ingest.requests == []


def test_access_denied_names_the_object_and_what_to_check(
    invoke: Any, put_log: Any, ingest: IngestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = put_log(KEY, count=3)
    outside = put_log("elsewhere/" + KEY, count=3)
    # A role like the forwarder's: GetObject on the log prefix only.
    iam = boto3.client("iam")
    iam.create_user(UserName="forwarder")
    iam.put_user_policy(
        UserName="forwarder",
        PolicyName="read-log-prefix",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetObject"],
                        "Resource": f"arn:aws:s3:::{BUCKET}/prod/AWSLogs/{ACCOUNT}/*",
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="forwarder")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    monkeypatch.delenv("AWS_SECURITY_TOKEN")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # botocore caches the credentials it resolved
    with enable_iam_authentication():
        invoke(sns_event(s3_notification(allowed)))
        with pytest.raises(ObjectAccessError) as caught:
            invoke(sns_event(s3_notification(outside)))
    message = str(caught.value)
    assert f"access denied reading s3://{BUCKET}/elsewhere/{KEY} (AccessDenied" in message
    assert "may read only the log prefix" in message
    assert "SSE-KMS" in message
    assert len(ingest.records()) == 3


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_corrupt_gzip(invoke: Any, put_log: Any, ingest: IngestServer, damage: str) -> None:
    data = bytearray(gzip_lines(make_alb_lines(400)))
    if damage == "corrupt":
        middle = len(data) // 2
        data[middle : middle + 64] = bytes(64)
    else:
        del data[len(data) * 2 // 3 :]
    obj = put_log(KEY, body=bytes(data), lines=[])
    with pytest.raises(ObjectCorruptError) as caught:
        invoke(sns_event(s3_notification(obj)))
    message = str(caught.value)
    assert f"s3://{BUCKET}/{KEY} is not valid gzip" in message
    assert "complete ELB log file" in message


def test_corrupt_object_via_sqs_fails_only_its_message(
    invoke: Any, put_log: Any, ingest: IngestServer
) -> None:
    bad = put_log(log_key(suffix="bad00001"), body=b"\x1f\x8b\x08\x00" + bytes(100), lines=[])
    good = put_log(log_key(suffix="good0002"), count=5)
    event = sqs_event(s3_notification(bad), s3_notification(good))
    answer = invoke(event)
    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert len(ingest.records()) == 5


def test_config_errors_list_every_bad_variable(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    secret = "do-not-show-this-token"
    forwarder_env(
        HTTP_ALLOW_INSECURE="false",
        HTTP_AUTH_TYPE="bearer",
        HTTP_AUTH_CREDENTIALS=secret,
        HTTP_AUTH_SECRET_ARN=f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ingest-AbCdEf",
        BATCH_MAX_BYTES="0",
        HTTP_TEST_MODE="maybe",
    )
    obj = put_log(KEY, count=2)
    for event in (sns_event(s3_notification(obj)), sqs_event(s3_notification(obj))):
        with pytest.raises(ConfigError) as caught:
            invoke(event)
        message = str(caught.value)
        for name in (
            "HTTP_ENDPOINT",
            "HTTP_AUTH_CREDENTIALS",
            "HTTP_AUTH_SECRET_ARN",
            "BATCH_MAX_BYTES",
            "HTTP_TEST_MODE",
        ):
            assert name in message
        assert secret not in message
    assert ingest.requests == []

"""Authentication as the endpoint sees it, credentials by reference, rotation, and no leaks."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import boto3
import pytest
from alb_log_factory import ACCOUNT, log_key
from aws_events import s3_notification, sns_event
from ingest_server import IngestServer, Reply

from forwarder.auth import CredentialError
from forwarder.sender import PermanentDeliveryError

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")


def create_secret(value: str) -> str:
    return str(
        boto3.client("secretsmanager").create_secret(Name="alb-ingest-token", SecretString=value)["ARN"]
    )


def authorizations(server: IngestServer) -> list[str | None]:
    return [request.header("Authorization") for request in server.requests]


def test_bearer_token_from_secrets_manager(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(HTTP_AUTH_TYPE="bearer", HTTP_AUTH_SECRET_ARN=create_secret("tok-3f9a1c"))
    invoke(sns_event(s3_notification(put_log(KEY, count=3))))
    assert authorizations(ingest) == ["Bearer tok-3f9a1c"]


def test_secret_holding_json(invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer) -> None:
    secret = json.dumps({"token": "json-tok-77", "note": "rotated monthly"})
    forwarder_env(HTTP_AUTH_TYPE="bearer", HTTP_AUTH_SECRET_ARN=create_secret(secret))
    invoke(sns_event(s3_notification(put_log(KEY, count=3))))
    assert authorizations(ingest) == ["Bearer json-tok-77"]


def test_basic_auth_from_ssm_securestring(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    boto3.client("ssm").put_parameter(Name="/alb/ingest/password", Value="pa:ss word", Type="SecureString")
    forwarder_env(
        HTTP_AUTH_TYPE="basic",
        HTTP_AUTH_USERNAME="alb-forwarder",
        HTTP_AUTH_PARAMETER_NAME="/alb/ingest/password",
    )
    invoke(sns_event(s3_notification(put_log(KEY, count=3))))
    expected = base64.b64encode(b"alb-forwarder:pa:ss word").decode()
    assert authorizations(ingest) == [f"Basic {expected}"]


def test_apikey_from_plain_environment(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    forwarder_env(
        HTTP_AUTH_TYPE="apikey", HTTP_AUTH_HEADER_NAME="DD-API-KEY", HTTP_AUTH_CREDENTIALS="k-123456"
    )
    with caplog.at_level(logging.INFO):
        invoke(sns_event(s3_notification(put_log(KEY, count=3))))
    request = ingest.requests[0]
    assert request.header("DD-API-KEY") == "k-123456"
    assert request.header("Authorization") is None
    assert any("discouraged" in r.getMessage() or "plain text" in r.getMessage() for r in caplog.records)
    assert "k-123456" not in caplog.text


def test_401_fails_naming_endpoint_and_status_without_the_credential(  # noqa: PLR0917 -- pytest fixtures
    invoke: Any,
    put_log: Any,
    forwarder_env: Any,
    ingest: IngestServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = "tok-SECRET-4471"
    forwarder_env(HTTP_AUTH_TYPE="bearer", HTTP_AUTH_SECRET_ARN=create_secret(token))
    # A careless endpoint that echoes what it was given.
    ingest.set_default(Reply(401, body=f'{{"error":"invalid token Bearer {token}"}}'.encode()))
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentDeliveryError) as caught:
        invoke(sns_event(s3_notification(put_log(KEY, count=3))))
    message = str(caught.value)
    assert f"http://127.0.0.1:{ingest.port}/ingest answered HTTP 401 Unauthorized" in message
    assert "invalid token Bearer [REDACTED]" in message
    assert token not in message
    assert token not in caplog.text
    assert token not in capsys.readouterr().out
    # Fetched again once (rotation) and retried once, then gave up.
    assert len(ingest.requests) == 2


def test_rotated_secret_is_picked_up_after_a_401(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    arn = create_secret("old-token")
    forwarder_env(HTTP_AUTH_TYPE="bearer", HTTP_AUTH_SECRET_ARN=arn)
    invoke(sns_event(s3_notification(put_log(log_key(suffix="first001"), count=2))))
    boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString="new-token")
    ingest.script(Reply(401, body=b'{"error":"token revoked"}'))
    invoke(sns_event(s3_notification(put_log(log_key(suffix="second02"), count=2))))
    assert authorizations(ingest) == ["Bearer old-token", "Bearer old-token", "Bearer new-token"]
    assert [r.status for r in ingest.requests] == [200, 401, 200]
    assert len(ingest.records()) == 4


@pytest.mark.parametrize(
    ("cache_seconds", "expected"),
    [("300", ["Bearer v1", "Bearer v1"]), ("0", ["Bearer v1", "Bearer v2"])],
    ids=["cached-between-invocations", "zero-reads-the-secret-every-time"],
)
def test_credential_cache_seconds(  # noqa: PLR0917 -- pytest fixtures
    invoke: Any,
    put_log: Any,
    forwarder_env: Any,
    ingest: IngestServer,
    cache_seconds: str,
    expected: list[str],
) -> None:
    arn = create_secret("v1")
    forwarder_env(HTTP_AUTH_TYPE="bearer", HTTP_AUTH_SECRET_ARN=arn, HTTP_AUTH_CACHE_SECONDS=cache_seconds)
    invoke(sns_event(s3_notification(put_log(log_key(suffix="first001"), count=2))))
    boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString="v2")
    invoke(sns_event(s3_notification(put_log(log_key(suffix="second02"), count=2))))
    assert authorizations(ingest) == expected


def test_missing_secret_is_a_clear_error(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:does-not-exist-AbCdEf"
    forwarder_env(HTTP_AUTH_TYPE="bearer", HTTP_AUTH_SECRET_ARN=arn)
    with pytest.raises(CredentialError, match=f"cannot read secret {arn}: ResourceNotFoundException"):
        invoke(sns_event(s3_notification(put_log(KEY, count=2))))
    assert ingest.requests == []


def test_test_mode_never_fetches_the_credential(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:not-created-yet-AbCdEf"
    forwarder_env(HTTP_AUTH_TYPE="bearer", HTTP_AUTH_SECRET_ARN=arn, HTTP_TEST_MODE="true")
    invoke(sns_event(s3_notification(put_log(KEY, count=2))))
    assert ingest.requests == []

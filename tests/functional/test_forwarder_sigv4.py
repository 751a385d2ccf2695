"""HTTP_AUTH_TYPE=aws_sigv4 through the Lambda handler into a ``_bulk`` receiver that checks every request's
signature with botocore's own signer and the function's (moto's fake) credentials, answering 403 as
OpenSearch does when it does not match."""

from __future__ import annotations

import gzip
import hashlib
import logging
from dataclasses import replace
from typing import Any

import pytest
from alb_log_factory import REGION, log_key
from aws_events import s3_notification, sns_event, sqs_event
from botocore.credentials import Credentials
from ingest_server import SIGNATURE_MISMATCH, IngestServer, Reflect, Reply, SigV4Check, signature_error

from forwarder.auth import RequestSigner
from forwarder.pipeline import RejectedRecordsError
from forwarder.records import record_event_id

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")
# The credentials the function finds in its environment, as Lambda puts the role's there: moto's fake key
# pair (mock_aws sets it) and the session token conftest's aws_env sets.
FUNCTION_CREDENTIALS = SigV4Check("FOOBARKEY", "FOOBARSECRET", "testing", "es", REGION)
# The forwarder's settings for an OpenSearch _bulk endpoint that takes SigV4-signed requests.
SIGNED = {
    "ES_INDEX": "alb-logs",
    "HTTP_AUTH_TYPE": "aws_sigv4",
    "AWS_SIGV4_SERVICE": "es",
    "AWS_REGION": REGION,
}


@pytest.fixture
def opensearch(intake_server: Any) -> IngestServer:
    return intake_server(
        "elasticsearch", env={**SIGNED, "BATCH_MAX_RECORDS": "20"}, sigv4=FUNCTION_CREDENTIALS
    )


def ids_of(obj: Any) -> list[str]:
    return [record_event_id(obj.bucket, obj.key, obj.etag, n) for n in range(1, len(obj.lines) + 1)]


def test_signed_requests_deliver_every_line_once_resent_and_cut_bodies_signed_for_themselves(
    invoke: Any, put_log: Any, opensearch: IngestServer
) -> None:
    obj = put_log(KEY, count=45)
    ids = ids_of(obj)
    # The first request answers 503 and is sent again whole; two items of the second batch fail, and
    # their retry is a body cut from the batch: each of these is signed for what it carries.
    opensearch.script(Reply(503))
    opensearch.fail_items({ids[25]: [429], ids[30]: [503]})
    assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    requests = opensearch.requests
    assert [r.status for r in requests] == [503, 200, 200, 200, 200]
    assert all(r.error is None for r in requests)  # every signature verified
    assert requests[0].raw_body == requests[1].raw_body
    assert [a["create"]["_id"] for a in requests[3].actions] == [ids[25], ids[30]]
    assert sorted(doc_id for _, doc_id in opensearch.documents()) == sorted(ids)
    for request in requests:
        assert request.header("Authorization").startswith("AWS4-HMAC-SHA256 Credential=FOOBARKEY/")
        assert f"/{REGION}/es/aws4_request" in request.header("Authorization")
        assert request.header("X-Amz-Security-Token") == "testing"
        assert request.header("Content-Encoding") == "gzip"


def test_a_signature_the_receiver_cannot_reproduce_fails_with_403_and_no_secret_in_the_logs(
    invoke: Any,
    put_log: Any,
    intake_server: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The receiver knows another secret key than the one the function signs with.
    other = replace(FUNCTION_CREDENTIALS, secret_key="another-secret-key")
    env = {**SIGNED, "AWS_SECRET_ACCESS_KEY": "the-function-secret-key"}
    with intake_server("elasticsearch", env=env, sigv4=other) as server:
        obj = put_log(KEY, count=5)
        with caplog.at_level(logging.DEBUG):
            answer = invoke(sqs_event(s3_notification(obj)))
    assert len(answer["batchItemFailures"]) == 1  # the message stays in the queue, then dead-letters
    assert [r.status for r in server.requests] == [403]
    assert server.requests[0].error == SIGNATURE_MISMATCH
    assert server.documents() == {}
    summary = next(r.summary for r in caplog.records if r.name == "forwarder.summary")
    assert summary["error_type"] == "PermanentDeliveryError"
    assert "HTTP 403" in summary["error"]
    assert "OpenSearchResourceArn" in summary["error"]
    out = capsys.readouterr()
    for text in (caplog.text, out.out, out.err):
        assert "the-function-secret-key" not in text
        assert "function-secret" not in text


class _Session:
    """What boto3's session offers the signer: the credentials of the default chain."""

    def get_credentials(self) -> Credentials:
        return Credentials(EXAMPLE.access_key, EXAMPLE.secret_key, EXAMPLE.token)


EXAMPLE = SigV4Check("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token", "aoss", REGION)
BODY = gzip.compress(b'{"create":{}}\n{"a":1}\n')


def test_the_receiver_refuses_a_changed_signature_body_path_scope_or_unsigned_encoding() -> None:
    signer = RequestSigner("aoss", REGION, _Session)
    signed = signer.signed_headers("http://127.0.0.1:9200/_bulk", BODY, {"Content-Encoding": "gzip"})
    headers = {"Host": "127.0.0.1:9200", **signed}
    assert signature_error(EXAMPLE, "/_bulk", headers, BODY) is None

    last = headers["Authorization"][-1]
    tampered = dict(headers, Authorization=headers["Authorization"][:-1] + ("0" if last != "0" else "1"))
    assert signature_error(EXAMPLE, "/_bulk", tampered, BODY) == SIGNATURE_MISMATCH
    other = gzip.compress(b'{"create":{}}\n{"a":2}\n')
    rehashed = dict(headers, **{"X-Amz-Content-SHA256": hashlib.sha256(other).hexdigest()})
    assert signature_error(EXAMPLE, "/_bulk", rehashed, other) == SIGNATURE_MISMATCH
    assert "x-amz-content-sha256" in (signature_error(EXAMPLE, "/_bulk", headers, other) or "")
    assert signature_error(EXAMPLE, "/other/_bulk", headers, BODY) == SIGNATURE_MISMATCH
    assert "scope" in (signature_error(replace(EXAMPLE, service="es"), "/_bulk", headers, BODY) or "")
    unsigned = signer.signed_headers("http://127.0.0.1:9200/_bulk", BODY, {})
    assert "content-encoding" in (
        signature_error(EXAMPLE, "/_bulk", {"Host": "127.0.0.1:9200", **unsigned}, BODY) or ""
    )


def test_the_session_token_an_endpoint_quotes_back_is_masked(  # noqa: PLR0917
    invoke: Any,
    put_log: Any,
    forwarder_env: Any,
    opensearch: IngestServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKEN+/wJalr=="
    forwarder_env(AWS_SESSION_TOKEN=token, AWS_SECURITY_TOKEN=token)  # botocore reads the second first
    opensearch.script(Reflect(400, header="X-Amz-Security-Token"))
    obj = put_log(KEY, count=3)
    with caplog.at_level(logging.DEBUG):
        answer = invoke(sqs_event(s3_notification(obj)))
    assert len(answer["batchItemFailures"]) == 1
    assert opensearch.requests[0].header("X-Amz-Security-Token") == token
    out = capsys.readouterr()
    everything = caplog.text + out.out + out.err
    assert "[REDACTED]" in everything  # the token the endpoint quoted back
    assert token[:12] not in everything
    assert token[-12:] not in everything


# An OpenSearch Serverless time series (or vector search) collection: it signs for aoss and takes no
# document ids ("you can't index by custom document ID", Amazon OpenSearch Service Developer Guide,
# "Choosing a collection type").
SERVERLESS = {**SIGNED, "AWS_SIGV4_SERVICE": "aoss"}


def serverless_collection(intake_server: Any, **env: str) -> IngestServer:
    """A time series collection's _bulk receiver, the forwarder's requests signed for aoss."""
    return intake_server(
        "elasticsearch",
        env={**SERVERLESS, **env},
        sigv4=replace(FUNCTION_CREDENTIALS, service="aoss"),
        takes_ids=False,
    )


def test_an_opensearch_serverless_collection_gets_every_line_once_without_document_ids(
    invoke: Any, put_log: Any, intake_server: Any
) -> None:
    collection = serverless_collection(intake_server, BATCH_MAX_RECORDS="20")
    obj = put_log(KEY, count=45)
    ids = ids_of(obj)
    collection.fail_items({ids[7]: [429]})  # resent alone, still without an id
    assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    requests = collection.requests
    assert all(r.error is None and r.status == 200 for r in requests)
    assert all("_id" not in action["create"] for r in requests for action in r.actions)
    assert [action["create"]["_index"] for action in requests[1].actions] == ["alb-logs"]  # the retry
    assert sorted(document["event_id"] for document in collection.documents().values()) == sorted(ids)


def test_document_ids_a_collection_refuses_fail_the_file_naming_the_setting_to_change(
    invoke: Any, put_log: Any, intake_server: Any
) -> None:
    collection = serverless_collection(intake_server, DESTINATION_SETTINGS="ES_DOCUMENT_ID=event_id")
    obj = put_log(KEY, count=3)
    with pytest.raises(RejectedRecordsError) as caught:
        invoke(sns_event(s3_notification(obj)))
    message = str(caught.value)
    assert "rejected 3 of the 3 records" in message
    assert "Document ID is not supported" in message and "ES_DOCUMENT_ID=none" in message
    assert collection.documents() == {}

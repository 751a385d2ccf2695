"""Each way an S3 object can be announced reaches the ingest server, parsed, exactly once."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from alb_log_factory import MALFORMED_LINE, log_key, make_alb_lines
from aws_events import (
    BUCKET,
    S3_TEST_EVENT,
    destination_record,
    eventbridge_event,
    s3_notification,
    s3_record,
    sns_envelope,
    sns_event,
    sqs_event,
)
from ingest_server import IngestServer, Reply

from forwarder.records import record_event_id
from forwarder.sender import TransientDeliveryError
from forwarder.source import ObjectNotFoundError

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")


def expected_ids(obj: Any) -> list[str]:
    return [record_event_id(obj.bucket, obj.key, obj.etag, n) for n in range(1, len(obj.lines) + 1)]


def test_sns_wrapped_s3_notification(invoke: Any, put_log: Any, ingest: IngestServer) -> None:
    obj = put_log(KEY, count=40)
    assert invoke(sns_event(s3_notification(obj))) is None
    records = ingest.records()
    assert [r["line_number"] for r in records] == list(range(1, 41))
    assert ingest.event_ids() == expected_ids(obj)
    first = records[0]
    assert first["log_type"] == "alb_access"
    assert first["s3_bucket"] == BUCKET
    assert first["s3_key"] == KEY
    assert first["elb"] == "app/my-loadbalancer/50dc6c495c0c9188"
    assert isinstance(first["elb_status_code"], int)
    request = ingest.accepted()[0]
    assert request.header("Content-Encoding") == "gzip"
    assert request.header("Content-Type") == "application/json"
    assert request.header("User-Agent") == "alb-log-onboarding-forwarder/0.1.0"
    assert request.header("Authorization") is None


def test_plain_s3_notification_with_several_records(invoke: Any, put_log: Any, ingest: IngestServer) -> None:
    first = put_log(log_key(suffix="aaaa1111"), count=10, seed=1)
    second = put_log(log_key(suffix="bbbb2222"), count=15, seed=2)
    invoke(s3_notification(first, second))
    assert ingest.event_ids() == expected_ids(first) + expected_ids(second)


def test_sns_event_with_several_messages(invoke: Any, put_log: Any, ingest: IngestServer) -> None:
    first = put_log(log_key(suffix="aaaa1111"), count=5, seed=1)
    second = put_log(log_key(suffix="bbbb2222"), count=6, seed=2)
    invoke(sns_event(s3_notification(first), s3_notification(second)))
    assert sorted(ingest.event_ids()) == sorted(expected_ids(first) + expected_ids(second))


def test_sqs_with_s3_body_and_with_sns_envelope(invoke: Any, put_log: Any, ingest: IngestServer) -> None:
    raw = put_log(log_key(suffix="raw00001"), count=7, seed=3)
    wrapped = put_log(log_key(suffix="sns00002"), count=9, seed=4)
    answer = invoke(sqs_event(s3_notification(raw), sns_envelope(s3_notification(wrapped), for_lambda=False)))
    assert answer == {"batchItemFailures": []}
    assert ingest.event_ids() == expected_ids(raw) + expected_ids(wrapped)


def test_eventbridge_object_created(invoke: Any, put_log: Any, ingest: IngestServer) -> None:
    # EventBridge keys are not URL-encoded: a '+' in the key is a plus sign.
    obj = put_log("prod/AWSLogs/123456789012/special/a+b c.log.gz", count=12)
    assert invoke(eventbridge_event(obj)) is None
    assert ingest.event_ids() == expected_ids(obj)
    assert ingest.records()[0]["s3_key"] == "prod/AWSLogs/123456789012/special/a+b c.log.gz"


def test_url_encoded_key_with_spaces_and_plus(invoke: Any, put_log: Any, ingest: IngestServer) -> None:
    key = "prod/AWSLogs/123456789012/odd dir/file+name=1 (copy).log.gz"
    obj = put_log(key, count=3)
    event = s3_notification(obj)
    assert event["Records"][0]["s3"]["object"]["key"] == (
        "prod/AWSLogs/123456789012/odd+dir/file%2Bname%3D1+%28copy%29.log.gz"
    )
    invoke(event)
    assert [r["s3_key"] for r in ingest.records()] == [key] * 3


def test_test_event_and_elb_test_file_are_ignored_quietly(
    invoke: Any, put_log: Any, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    test_file = put_log("prod/AWSLogs/123456789012/ELBAccessLogTestFile", lines=["Enable AccessLog for ELB"])
    assert invoke(S3_TEST_EVENT) is None
    assert invoke(sns_event(S3_TEST_EVENT)) is None
    assert invoke(sns_event(s3_notification(test_file))) is None
    assert invoke(sqs_event(S3_TEST_EVENT)) == {"batchItemFailures": []}
    assert ingest.requests == []
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name != "forwarder.config"]
    assert noisy == []
    assert not [r for r in caplog.records if r.name == "forwarder.summary"]


def test_only_object_created_events_are_processed(invoke: Any, put_log: Any, ingest: IngestServer) -> None:
    obj = put_log(KEY, count=3)
    event = {"Records": [s3_record(obj, event_name="ObjectRemoved:Delete")]}
    assert invoke(event) is None
    assert ingest.requests == []


def test_unparseable_line_is_sent_with_raw_and_parse_error(
    invoke: Any, put_log: Any, ingest: IngestServer
) -> None:
    lines = make_alb_lines(5)
    lines[2] = MALFORMED_LINE
    obj = put_log(KEY, lines=lines)
    invoke(sns_event(s3_notification(obj)))
    records = ingest.records()
    assert len(records) == 5
    assert records[2]["raw"] == MALFORMED_LINE
    assert records[2]["parse_error"]
    assert records[2]["event_id"] == record_event_id(BUCKET, KEY, obj.etag, 3)


def test_sqs_partial_batch_failure(invoke: Any, put_log: Any, s3: Any, ingest: IngestServer) -> None:
    good = put_log(log_key(suffix="good0001"), count=4, seed=1)
    missing = put_log(log_key(suffix="gone0002"), count=4, seed=2)
    s3.delete_object(Bucket=BUCKET, Key=missing.key)  # the notification outlived the object
    event = sqs_event(s3_notification(good), "this body is not JSON", s3_notification(missing), S3_TEST_EVENT)
    answer = invoke(event)
    ids = [record["messageId"] for record in event["Records"]]
    assert answer == {"batchItemFailures": [{"itemIdentifier": ids[1]}, {"itemIdentifier": ids[2]}]}
    assert ingest.event_ids() == expected_ids(good)


def test_async_event_with_a_failed_object_fails_after_delivering_the_others(
    invoke: Any, put_log: Any, s3: Any, ingest: IngestServer
) -> None:
    good = put_log(log_key(suffix="good0001"), count=4)
    gone = put_log(log_key(suffix="gone0002"), count=4)
    s3.delete_object(Bucket=BUCKET, Key=gone.key)
    with pytest.raises(ObjectNotFoundError, match=f"s3://{BUCKET}/{gone.key} does not exist"):
        invoke(sns_event(s3_notification(gone, good)))
    # The good object was still delivered; Lambda's retry resends it with the same event_ids.
    assert ingest.event_ids() == expected_ids(good)


def test_dead_letter_queue_messages_can_be_redriven(
    invoke: Any, put_log: Any, ingest: IngestServer, forwarder_env: Any
) -> None:
    """A failed event lands in the DLQ as a destination record; handing it back to the function works,
    invoked directly (one message) or with the queue as an SQS event source (partial batch response)."""
    obj = put_log(KEY, count=6)
    failed_event = sns_event(s3_notification(obj))
    forwarder_env(HTTP_MAX_RETRIES="0")
    ingest.script(Reply(503))
    with pytest.raises(TransientDeliveryError) as caught:
        invoke(failed_event)
    record = destination_record(
        failed_event, error_type=type(caught.value).__name__, error_message=str(caught.value)
    )
    assert invoke(record) is None
    assert invoke(sqs_event(record)) == {"batchItemFailures": []}
    assert ingest.event_ids() == expected_ids(obj) * 2

"""Event shapes as AWS delivers them (S3 notification 2.1, SNS, SQS, EventBridge), per the AWS docs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_events import (
    BUCKET,
    S3_TEST_EVENT,
    Stored,
    destination_record,
    eventbridge_event,
    s3_event,
    sns_envelope,
    sns_event,
    sqs_event,
)
from aws_events import s3_record as _s3_record

from forwarder.events import EventError, ObjectRef, parse_event
from forwarder.work import ORIGIN_CONTINUATION, WorkItem

KEY = (
    "prod/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2025/03/14/"
    "123456789012_elasticloadbalancing_us-east-1_app.my-lb.50dc6c495c0c9188_20250314T0930Z_10.0.1.25_2r6sxvm9.log.gz"
)
ETAG = "0123456789abcdef"
# What EventBridge's documented example carries for the object.
EB_ETAG = "b1946ac92492d2347c6235b4d2611184"
EB_VERSION = "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"


def s3_record(key: str = KEY, *, event_name: str = "ObjectCreated:Put", etag: str = ETAG) -> dict:
    """A record whose key is put exactly as given (the tests give it URL-encoded, as S3 sends it)."""
    return _s3_record(Stored(BUCKET, key, etag), event_name=event_name, encoded_key=key)


def eb_event(key: str = KEY, detail_type: str = "Object Created") -> dict:
    return eventbridge_event(Stored(BUCKET, key, EB_ETAG, 5), detail_type=detail_type, version_id=EB_VERSION)


def test_plain_s3_notification() -> None:
    parsed = parse_event(s3_event(s3_record()))
    assert parsed.source == "s3"
    assert parsed.objects == (ObjectRef(BUCKET, KEY, etag=ETAG, size=1024),)


def test_sns_wrapped_s3_notification_with_several_records() -> None:
    other = KEY.replace("2r6sxvm9", "7hq2ka0z")
    parsed = parse_event(sns_event(s3_event(s3_record(), s3_record(other)), s3_event(s3_record(KEY + "x"))))
    assert parsed.source == "sns"
    assert [o.key for o in parsed.objects] == [KEY, other, KEY + "x"]
    assert len(parsed.messages) == 1  # async invocation: the event succeeds or fails as a whole


def test_sqs_with_s3_body_and_with_sns_envelope() -> None:
    raw = json.dumps(s3_event(s3_record()))
    enveloped = json.dumps(sns_envelope(s3_event(s3_record(KEY + ".2")), for_lambda=False))
    event = sqs_event(raw, enveloped)
    parsed = parse_event(event)
    assert parsed.source == "sqs"
    assert [m.message_id for m in parsed.messages] == [r["messageId"] for r in event["Records"]]
    assert [m.objects[0].key for m in parsed.messages] == [KEY, KEY + ".2"]


def test_sqs_message_that_is_not_a_notification_fails_alone() -> None:
    parsed = parse_event(sqs_event("not json", json.dumps({"hello": 1}), json.dumps(s3_event(s3_record()))))
    first, second, third = parsed.messages
    assert first.error is not None and "not JSON" in first.error
    assert second.error is not None and "unrecognised event" in second.error
    assert third.error is None and third.objects[0].key == KEY


def test_eventbridge_object_created_key_is_not_url_decoded() -> None:
    key = "logs/a+b%20c.log.gz"
    parsed = parse_event(eb_event(key))
    assert parsed.source == "eventbridge"
    assert parsed.objects == (
        ObjectRef(
            BUCKET,
            key,
            etag=EB_ETAG,
            version_id=EB_VERSION,
            size=5,
        ),
    )


def test_eventbridge_through_sqs() -> None:
    parsed = parse_event(sqs_event(json.dumps(eb_event())))
    assert parsed.messages[0].objects[0].key == KEY


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("logs/my+file+name.log.gz", "logs/my file name.log.gz"),
        ("logs/a%2Bb.log.gz", "logs/a+b.log.gz"),
        ("logs/caf%C3%A9%3Dx.log.gz", "logs/café=x.log.gz"),
        ("logs/plain.log.gz", "logs/plain.log.gz"),
    ],
)
def test_s3_keys_are_url_decoded(encoded: str, decoded: str) -> None:
    assert parse_event(s3_event(s3_record(encoded))).objects[0].key == decoded


@pytest.mark.parametrize(
    "event",
    [
        S3_TEST_EVENT,
        sns_event(S3_TEST_EVENT),
        s3_event(s3_record("prod/AWSLogs/123456789012/ELBAccessLogTestFile")),
        sns_event(s3_event(s3_record("AWSLogs/123456789012/ELBAccessLogTestFile"))),
        s3_event(s3_record(event_name="ObjectRemoved:Delete")),
        eb_event(detail_type="Object Deleted"),
        eb_event("AWSLogs/123456789012/ELBAccessLogTestFile"),
    ],
    ids=[
        "test-event",
        "sns-test-event",
        "elb-test-file",
        "sns-elb-test-file",
        "removed",
        "eb-deleted",
        "eb-test-file",
    ],
)
def test_ignored_quietly(event: dict[str, Any]) -> None:
    parsed = parse_event(event)
    assert parsed.objects == ()
    assert len(parsed.messages[0].skipped) == 1


def test_sqs_test_event_is_a_success_with_nothing_to_do() -> None:
    parsed = parse_event(sqs_event(json.dumps(S3_TEST_EVENT)))
    assert parsed.messages[0].error is None
    assert parsed.messages[0].objects == ()


def test_etag_quotes_are_stripped() -> None:
    assert parse_event(s3_event(s3_record(etag='"abc"'))).objects[0].etag == "abc"


@pytest.mark.parametrize(
    "event",
    [
        [],
        "Records",
        {},
        {"Records": [{"eventSource": "aws:dynamodb"}]},
        {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {}}}]},
        {"detail-type": "Object Created", "source": "aws.ec2", "detail": {}},
        sns_event({"unexpected": True}),
    ],
)
def test_unknown_shapes_raise(event: Any) -> None:
    with pytest.raises(EventError):
        parse_event(event)


def test_sns_message_that_is_not_json_raises() -> None:
    event = sns_event({})
    event["Records"][0]["Sns"]["Message"] = "Hello from SNS!"
    with pytest.raises(EventError, match=r"Sns\.Message is not JSON"):
        parse_event(event)


def test_dead_letter_record_invoked_directly_is_redriven() -> None:
    parsed = parse_event(destination_record(sns_event(s3_event(s3_record()))))
    assert parsed.source == "redrive"
    assert [o.key for o in parsed.objects] == [KEY]


def test_dead_letter_queue_as_an_sqs_source() -> None:
    record = destination_record(sns_event(s3_event(s3_record()), s3_event(s3_record(KEY + ".b"))))
    parsed = parse_event(sqs_event(json.dumps(record)))
    assert parsed.source == "sqs"
    assert [o.key for o in parsed.messages[0].objects] == [KEY, KEY + ".b"]


# -- work items (the stack's work queue: continuations and backfill) --------------------------------------
WORK_ITEM = WorkItem(
    bucket=BUCKET,
    key=KEY,
    etag=ETAG,
    start_line=40_001,
    version_id=EB_VERSION,
    invocation=2,
    origin=ORIGIN_CONTINUATION,
)


def test_work_queue_message_announces_its_work_item() -> None:
    event = sqs_event(WORK_ITEM.to_body(), json.dumps(s3_event(s3_record())))
    parsed = parse_event(event)
    assert parsed.source == "sqs"
    first, second = parsed.messages
    assert first.objects == (WORK_ITEM,)
    assert first.message_id == event["Records"][0]["messageId"]
    assert second.objects == (ObjectRef(BUCKET, KEY, etag=ETAG, size=1024),)


def test_work_item_invoked_directly_is_resumed_where_it_stopped() -> None:
    """What `redrive` sends for a work item the queue gave up on."""
    parsed = parse_event(json.loads(WORK_ITEM.to_body()))
    assert parsed.source == "work_item"
    assert parsed.objects == (WORK_ITEM,)


def test_work_item_inside_a_dead_letter_record_is_resumed_too() -> None:
    """A redriven work item that failed again reaches the dead-letter queue as an on-failure record."""
    parsed = parse_event(destination_record(json.loads(WORK_ITEM.to_body())))
    assert parsed.source == "redrive"
    assert parsed.objects == (WORK_ITEM,)


def test_invalid_work_item_fails_its_message_alone_and_says_why() -> None:
    broken = json.loads(WORK_ITEM.to_body())
    broken["forwarder_work"]["start_line"] = 0
    parsed = parse_event(sqs_event(json.dumps(broken), WORK_ITEM.to_body()))
    first, second = parsed.messages
    assert first.error is not None and "work item" in first.error and "start_line" in first.error
    assert second.objects == (WORK_ITEM,)
    with pytest.raises(EventError, match="start_line"):
        parse_event(broken)

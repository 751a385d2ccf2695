"""Subscription events: decoded once into a batch with its identity; control messages skipped."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from aws_events import (
    ACCOUNT,
    CLOUDWATCH_CONTROL_DATA,
    LOG_GROUP,
    LOG_STREAM,
    cloudwatch_logs_data,
    cloudwatch_logs_event,
    destination_record,
    log_events,
)

from forwarder.cloudwatch import LogEvent, LogsBatch
from forwarder.events import SOURCE_CLOUDWATCH_LOGS, SOURCE_REDRIVE, EventError, parse_event


def test_a_data_message_is_one_batch_with_its_log_group_stream_and_events() -> None:
    events = log_events("first\n", "second\n")
    parsed = parse_event(cloudwatch_logs_event(cloudwatch_logs_data(events)))
    assert parsed.source == SOURCE_CLOUDWATCH_LOGS
    (message,) = parsed.messages
    (batch,) = message.objects
    assert isinstance(batch, LogsBatch)
    assert (batch.owner, batch.log_group, batch.log_stream) == (ACCOUNT, LOG_GROUP, LOG_STREAM)
    assert batch.subscription_filters == ("onboarding-forwarder",)
    assert batch.events == tuple(LogEvent(e["id"], e["timestamp"], e["message"]) for e in events)


def test_a_control_message_is_skipped_with_a_reason() -> None:
    parsed = parse_event(cloudwatch_logs_event(CLOUDWATCH_CONTROL_DATA))
    assert parsed.objects == ()
    assert parsed.messages[0].skipped == ("CloudWatch Logs CONTROL_MESSAGE for ?",)


def test_a_dead_letter_record_of_a_subscription_event_gives_the_batch_back() -> None:
    original = cloudwatch_logs_event(cloudwatch_logs_data(log_events("again")))
    parsed = parse_event(destination_record(original))
    assert parsed.source == SOURCE_REDRIVE
    assert [batch.events[0].message for batch in parsed.objects if isinstance(batch, LogsBatch)] == ["again"]


def _data(raw: bytes) -> dict[str, object]:
    return {"awslogs": {"data": base64.b64encode(raw).decode()}}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"awslogs": {}}, "awslogs.data is missing"),
        ({"awslogs": {"data": "not base64!"}}, "not base64"),
        (_data(b"plain text"), "not gzip"),
        (_data(gzip.compress(b"{")), "does not hold JSON"),
        (_data(gzip.compress(b"[]")), "does not hold a JSON object"),
        (_data(gzip.compress(gzip.compress(b"x")[:-4])), "does not hold JSON"),
        (_data(gzip.compress(b"x" * 100)[:-8]), "cut short"),
        (
            _data(gzip.compress(json.dumps({"logEvents": [{"timestamp": 1}]}).encode())),
            r"logEvents\[0\] has no id",
        ),
        (_data(gzip.compress(json.dumps({"logEvents": [{"id": "1"}]}).encode())), "no timestamp"),
    ],
)
def test_damaged_payloads_are_event_errors_that_say_why(event: dict[str, object], reason: str) -> None:
    with pytest.raises(EventError, match=reason):
        parse_event(event)

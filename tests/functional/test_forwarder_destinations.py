"""One suite every output format passes, through the Lambda handler into a 127.0.0.1 receiver of that format:
each line arrives once, whole-request failures retry or fail as for any intake, test mode sends nothing."""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any

import pytest
from alb_log_factory import log_key
from aws_events import (
    cloudwatch_logs_data,
    cloudwatch_logs_event,
    log_events,
    s3_notification,
    sns_event,
    sqs_event,
)
from ingest_server import IngestServer, Reply

from forwarder.destinations import OUTPUT_FORMATS
from forwarder.records import record_event_id
from forwarder.sender import PermanentDeliveryError

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")
CONTENT_TYPES = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "splunk_hec": "application/json",
    "loki": "application/json",
    "datadog": "application/json",
    "otlp": "application/json",
}
SUCCESS = {"loki": 204, "datadog": 202}


@pytest.fixture(params=OUTPUT_FORMATS)
def receiver(request: pytest.FixtureRequest, intake_server: Any) -> IngestServer:
    return intake_server(request.param, env={"ES_INDEX": "alb-logs", "BATCH_MAX_RECORDS": "20"})


def summary_of(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    summary: dict[str, Any] = next(r for r in caplog.records if r.name == "forwarder.summary").summary
    return summary


def test_each_line_arrives_once_after_a_whole_request_retry(
    invoke: Any, put_log: Any, receiver: IngestServer, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script(Reply(503))
    obj = put_log(KEY, count=45)
    with caplog.at_level(logging.INFO):
        assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    ok = SUCCESS.get(receiver.intake, 200)
    assert [r.status for r in receiver.requests] == [503, ok, ok, ok]
    assert len(sleeps) == 1
    assert receiver.event_ids() == [record_event_id(obj.bucket, obj.key, obj.etag, n) for n in range(1, 46)]
    expected_type = CONTENT_TYPES.get(receiver.intake, "application/x-ndjson")
    assert all(r.header("Content-Type") == expected_type for r in receiver.requests)
    assert all(r.header("Content-Encoding") == "gzip" for r in receiver.requests)
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["batches"], summary["rejected"], summary["duplicates"]) == (
        45,
        3,
        0,
        0,
    )


def test_a_refused_request_fails_the_object_with_a_hint_for_the_format(
    invoke: Any, put_log: Any, receiver: IngestServer
) -> None:
    receiver.script(Reply(400, body=b'{"error":"bad body"}'))
    obj = put_log(KEY, count=5)
    with pytest.raises(PermanentDeliveryError, match=r"HTTP 400 Bad Request.*OUTPUT_FORMAT") as caught:
        invoke(sns_event(s3_notification(obj)))
    assert "bad body" in str(caught.value)
    assert len(receiver.requests) == 1


def test_test_mode_sends_nothing_and_logs_a_sample_of_the_format(
    invoke: Any, put_log: Any, forwarder_env: Any, receiver: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    forwarder_env(HTTP_TEST_MODE="true")
    obj = put_log(KEY, count=5)
    with caplog.at_level(logging.INFO):
        invoke(sns_event(s3_notification(obj)))
    assert receiver.requests == []
    (line,) = [r for r in caplog.records if r.getMessage().startswith("test mode: would POST 5 records")]
    sample = json.loads(line.sample_record.splitlines()[-1])  # the record, after its _bulk action if any
    record = sample["event"] if receiver.intake == "splunk_hec" else sample
    if receiver.intake == "loki":
        record = json.loads(sample["values"][0][1])
    if receiver.intake == "otlp":  # one ResourceLogs, its record's fields as attributes
        (log_record,) = sample["scopeLogs"][0]["logRecords"]
        record = {a["key"]: a["value"].get("intValue") for a in log_record["attributes"]}
        record["line_number"] = int(record["line_number"])
    assert record["line_number"] == 1


def test_bodies_hold_whole_records_in_the_format(invoke: Any, put_log: Any, receiver: IngestServer) -> None:
    obj = put_log(KEY, count=3)
    invoke(sns_event(s3_notification(obj)))
    (request,) = receiver.requests
    body = gzip.decompress(request.raw_body)
    if receiver.intake == "json":
        assert body.startswith(b'{"logs":[') and body.endswith(b"]}")
    elif receiver.intake == "datadog":
        assert [entry["line_number"] for entry in json.loads(body)] == [1, 2, 3]
    elif receiver.intake == "loki":
        (stream,) = json.loads(body)["streams"]  # the lines of one file share their labels
        assert [json.loads(line)["line_number"] for _, line in stream["values"]] == [1, 2, 3]
    elif receiver.intake == "splunk_hec":
        assert [json.loads(line)["event"]["line_number"] for line in body.split(b"\n")] == [1, 2, 3]
    elif receiver.intake == "otlp":
        assert len(json.loads(body)["resourceLogs"]) == 3
    else:
        lines_per_record = 2 if receiver.intake == "elasticsearch" else 1
        assert body.endswith(b"\n") and body.count(b"\n") == 3 * lines_per_record


# JSON messages as applications write them and Python's json reads them: an escaped lone surrogate (what
# json.dumps writes for a file name decoded with surrogateescape), an integer beyond 64 bits, a number
# beyond a double (read as infinity) and NaN (json.dumps writes it; it is not JSON).
HOSTILE_MESSAGES = (
    '{"level": "INFO", "msg": "opened /tmp/\\udcff.txt"}',
    '{"level": "WARN", "count": 123456789012345678901234567890, "ratio": 1e400, "score": NaN}',
    '{"level": "INFO", "msg": "after them"}',
)


def test_json_messages_with_values_json_cannot_hold_arrive_as_valid_json(
    invoke: Any, receiver: IngestServer
) -> None:
    """The receiver reads JSON as the intakes do (RFC 8259, UTF-8 only): a lone surrogate arrives as
    U+FFFD, a non-finite number as null (in OTLP, the "NaN" and "Infinity" its JSON mapping has), the
    integer exactly, and no line keeps the others from arriving."""
    events = log_events(*HOSTILE_MESSAGES)
    assert invoke(cloudwatch_logs_event(cloudwatch_logs_data(events))) is None
    records = receiver.records()
    assert [r["log_event_id"] for r in records] == [event["id"] for event in events]
    opened, counted, after = records
    assert opened["msg"] == "opened /tmp/\ufffd.txt"
    assert after["msg"] == "after them"
    assert int(counted["count"]) == 123456789012345678901234567890
    if receiver.intake == "otlp":
        assert (counted["ratio"], counted["score"]) == ("Infinity", "NaN")
    else:
        assert (counted["ratio"], counted["score"]) == (None, None)

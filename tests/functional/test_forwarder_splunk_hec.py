"""OUTPUT_FORMAT=splunk_hec through the Lambda handler into a receiver answering as HEC documents it.

Each test checks, per line of the file, that it arrived exactly once in HEC's terms (one event per
event_id in accepted requests, or with acknowledgement on, in acknowledged ones), that only failed requests
were resent, and the counts of the summary line.
"""

from __future__ import annotations

import gzip
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from alb_log_factory import log_key
from aws_events import (
    LOG_GROUP,
    LOG_STREAM,
    cloudwatch_logs_data,
    cloudwatch_logs_event,
    log_events,
    s3_notification,
    sns_event,
    sqs_event,
)
from ingest_server import HEC_ACK_PATH, HEC_EVENT_PATH, IngestServer, Reply, hec_busy, hec_invalid

from forwarder import handler
from forwarder.records import record_event_id
from forwarder.sender import PermanentDeliveryError

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")
TOKEN = "11111111-2222-3333-4444-555555555555"


HEC_ENV = {"HTTP_AUTH_TYPE": "splunk", "HTTP_AUTH_CREDENTIALS": TOKEN, "BATCH_MAX_RECORDS": "20"}


@pytest.fixture
def hec(intake_server: Any) -> IngestServer:
    return intake_server("splunk_hec", env=HEC_ENV)


@pytest.fixture
def hec_ack(intake_server: Any) -> IngestServer:
    return intake_server("splunk_hec", env={**HEC_ENV, "SPLUNK_ACK": "true"}, hec_ack=True, ack_after=2)


def ids_of(obj: Any) -> list[str]:
    return [record_event_id(obj.bucket, obj.key, obj.etag, n) for n in range(1, len(obj.lines) + 1)]


def event_posts(server: IngestServer) -> list[Any]:
    return [r for r in server.requests if r.path == HEC_EVENT_PATH]


def summary_of(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    summaries = [r.summary for r in caplog.records if r.name == "forwarder.summary"]
    return summaries[-1]


def epoch(when: str) -> float:
    return datetime.fromisoformat(when).replace(tzinfo=UTC).timestamp()


def test_each_line_is_one_event_in_hec_envelope(
    invoke: Any, put_log: Any, hec: IngestServer, forwarder_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    forwarder_env(SPLUNK_INDEX="alb", SPLUNK_SOURCETYPE="aws:elb:accesslogs")
    obj = put_log(KEY, count=45)
    with caplog.at_level(logging.INFO):
        assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    assert [r.status for r in hec.requests] == [200, 200, 200]
    assert all(r.header("Authorization") == f"Splunk {TOKEN}" for r in hec.requests)
    assert all(r.header("X-Splunk-Request-Channel") is None for r in hec.requests)  # only with acks
    assert hec.event_ids() == ids_of(obj)
    for request in hec.requests:
        for envelope in request.actions:
            event = envelope["event"]
            assert envelope["time"] == pytest.approx(epoch(event["time"]), abs=1e-6)
            assert envelope["host"] == event["elb"]
            assert envelope["source"] == f"s3://{obj.bucket}/{obj.key}"
            assert (envelope["sourcetype"], envelope["index"]) == ("aws:elb:accesslogs", "alb")
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["batches"], summary["retries"]) == (45, 3, 0)


def test_server_busy_code_9_is_retried_and_only_that_request_resent(
    invoke: Any, put_log: Any, hec: IngestServer, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    hec.script(Reply(200), hec_busy())  # the second batch meets a busy server once
    obj = put_log(KEY, count=45)
    with caplog.at_level(logging.INFO):
        invoke(sns_event(s3_notification(obj)))
    requests = hec.requests
    assert [r.status for r in requests] == [200, 503, 200, 200]
    sent = [[e["event_id"] for e in r.logs] for r in requests]
    ids = ids_of(obj)
    assert sent == [ids[:20], ids[20:40], ids[20:40], ids[40:]]
    assert hec.event_ids() == ids  # once each among accepted requests
    assert len(sleeps) == 1
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["retries"], summary["outcome"]) == (45, 1, "ok")


def test_invalid_data_code_6_fails_the_object_with_hec_text(
    invoke: Any, put_log: Any, hec: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    hec.script(hec_invalid(3))
    obj = put_log(KEY, count=5)
    with caplog.at_level(logging.INFO), pytest.raises(PermanentDeliveryError) as caught:
        invoke(sns_event(s3_notification(obj)))
    summary = summary_of(caplog)
    assert (summary["outcome"], summary["records_sent"], summary["retries"]) == ("failed", 0, 0)
    assert hec.event_ids() == []
    message = str(caught.value)
    assert "Invalid data format (code 6, HTTP 400)" in message
    assert "event 4 of the batch" in message
    assert TOKEN not in message
    assert len(hec.requests) == 1  # not retried


def test_acknowledgements_that_arrive_late_are_awaited_before_the_next_batch(
    invoke: Any, put_log: Any, hec_ack: IngestServer, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    obj = put_log(KEY, count=45)
    with caplog.at_level(logging.INFO):
        assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    paths = [r.path for r in hec_ack.requests]
    # Each batch: its events, then three polls (ack_after=2: false, false, true) before the next batch.
    assert paths == [HEC_EVENT_PATH, HEC_ACK_PATH, HEC_ACK_PATH, HEC_ACK_PATH] * 3
    channels = {r.header("X-Splunk-Request-Channel") for r in hec_ack.requests}
    assert len(channels) == 1 and None not in channels
    polls = [json.loads(r.raw_body) for r in hec_ack.requests if r.path == HEC_ACK_PATH]
    assert polls == [{"acks": [n]} for n in (0, 0, 0, 1, 1, 1, 2, 2, 2)]
    assert all(r.header("Content-Encoding") is None for r in hec_ack.requests if r.path == HEC_ACK_PATH)
    assert sleeps == [1.0, 2.0, 4.0] * 3  # waits between polls, doubling
    assert hec_ack.event_ids() == ids_of(obj)  # every line acknowledged once, none resent
    assert len(event_posts(hec_ack)) == 3
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["batches"], summary["retries"]) == (45, 3, 0)


def test_an_ack_still_pending_at_the_deadline_fails_transiently_and_the_retry_delivers(
    invoke: Any, put_log: Any, hec_ack: IngestServer, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    hec_ack.ack_after = 100  # HEC is slow to index
    obj = put_log(KEY, count=5)
    event = sqs_event(s3_notification(obj))
    # 5 s margin + 2 s timeout: about one poll fits, then the time is up.
    with caplog.at_level(logging.INFO):
        answer = invoke(event, remaining_ms=8_800)
    assert len(answer["batchItemFailures"]) == 1  # transient: the message comes back
    summary = summary_of(caplog)
    assert (summary["outcome"], summary["error_type"]) == ("failed", "DeadlineError")
    assert "had not confirmed it (ackId 0)" in summary["error"]
    assert hec_ack.event_ids() == []  # nothing counts as delivered without its ack

    hec_ack.ack_after = 0  # indexed promptly now; the platform retries the message
    handler.reset(sleep=sleeps.append)
    assert invoke(event) == {"batchItemFailures": []}
    assert hec_ack.event_ids() == ids_of(obj)
    assert len(event_posts(hec_ack)) == 2  # the unconfirmed batch was sent again, once


def test_ack_required_but_not_enabled_on_the_token_fails_with_a_hint(
    invoke: Any, put_log: Any, hec: IngestServer, forwarder_env: Any
) -> None:
    forwarder_env(SPLUNK_ACK="true")
    obj = put_log(KEY, count=3)
    with pytest.raises(PermanentDeliveryError, match="without an ackId although SPLUNK_ACK=true"):
        invoke(sns_event(s3_notification(obj)))


def test_a_record_larger_than_hec_takes_is_truncated_and_flagged_not_dropped(
    invoke: Any, put_log: Any, hec: IngestServer, forwarder_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    forwarder_env(MAX_LINE_BYTES="3000000")
    huge = "x" * 1_500_000  # one line, over HEC's 1 MB request limit on its own
    obj = put_log(KEY, ["ok line", huge, "another"])
    with caplog.at_level(logging.INFO):
        invoke(sns_event(s3_notification(obj)))
    assert hec.event_ids() == ids_of(obj)
    for request in hec.requests:
        assert len(gzip.decompress(request.raw_body)) <= 1_000_000
    cut = hec.records()[1]
    assert cut["truncated"] is True and cut["line_number"] == 2 and cut["event_id"] == ids_of(obj)[1]
    assert cut["raw"].startswith('{"raw":"xxx')
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["truncated"]) == (3, 1)


def test_a_cloudwatch_logs_delivery_is_dated_by_its_events_and_sourced_by_its_stream(
    invoke: Any, hec: IngestServer
) -> None:
    events = log_events("START RequestId: 1 Version: $LATEST\n", "plain text\n")
    invoke(cloudwatch_logs_event(cloudwatch_logs_data(events)))
    envelopes = [envelope for request in hec.requests for envelope in request.actions]
    assert [e["event"]["log_event_id"] for e in envelopes] == [event["id"] for event in events]
    for envelope, event in zip(envelopes, events, strict=True):
        assert envelope["time"] == pytest.approx(event["timestamp"] / 1000, abs=1e-6)
        assert envelope["source"] == f"{LOG_GROUP}:{LOG_STREAM}"
        assert "host" not in envelope

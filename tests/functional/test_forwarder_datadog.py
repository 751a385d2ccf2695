"""OUTPUT_FORMAT=datadog through the Lambda handler into a receiver answering as Datadog's logs intake does.

Each test checks, per line of the file, that it is exactly one log entry among the requests Datadog
accepted (202), that only failed requests were resent, and the counts of the summary line.
"""

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

from forwarder.destinations import line_time_ns
from forwarder.records import record_event_id
from forwarder.sender import PermanentDeliveryError

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")
API_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def datadog(intake_server: Any) -> IngestServer:
    # As the stack sets it: apikey with the generic header name, which datadog turns into DD-API-KEY.
    auth = {
        "HTTP_AUTH_TYPE": "apikey",
        "HTTP_AUTH_HEADER_NAME": "X-API-Key",
        "HTTP_AUTH_CREDENTIALS": API_KEY,
    }
    return intake_server("datadog", env=auth, api_key=API_KEY)


def ids_of(obj: Any) -> list[str]:
    return [record_event_id(obj.bucket, obj.key, obj.etag, n) for n in range(1, len(obj.lines) + 1)]


def summary_of(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    summaries = [r.summary for r in caplog.records if r.name == "forwarder.summary"]
    return summaries[-1]


def test_each_line_is_one_entry_within_the_intakes_limits(
    invoke: Any, put_log: Any, datadog: IngestServer, forwarder_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    forwarder_env(DD_SERVICE="web-alb", DD_TAGS="env:prod,team:web")
    obj = put_log(KEY, count=2500)
    with caplog.at_level(logging.INFO):
        assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    assert [(r.status, len(r.logs)) for r in datadog.requests] == [(202, 1000), (202, 1000), (202, 500)]
    assert all(r.header("DD-API-KEY") == API_KEY for r in datadog.requests)
    assert datadog.event_ids() == ids_of(obj)
    for entry in datadog.records():
        assert (entry["ddsource"], entry["service"], entry["ddtags"]) == (
            "elb",
            "web-alb",
            "env:prod,team:web",
        )
        assert entry["hostname"] == entry["elb"]
        assert entry["timestamp"] == line_time_ns(entry["time"]) // 1_000_000
        assert entry["s3_key"] == obj.key  # the record's fields are attributes
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["batches"], summary["retries"]) == (2500, 3, 0)


def test_a_batch_above_the_intakes_limits_is_refused_413_with_a_hint(
    invoke: Any, put_log: Any, datadog: IngestServer, forwarder_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    forwarder_env(BATCH_MAX_RECORDS="1500")  # overridden above Datadog's 1000 entries
    obj = put_log(KEY, count=1200)
    with (
        caplog.at_level(logging.INFO),
        pytest.raises(PermanentDeliveryError, match=r"HTTP 413.*lower BATCH_MAX_BYTES or BATCH_MAX_RECORDS"),
    ):
        invoke(sns_event(s3_notification(obj)))
    assert [r.status for r in datadog.requests] == [413]
    assert datadog.event_ids() == []
    summary = summary_of(caplog)
    assert (summary["outcome"], summary["records_sent"], summary["lines"]) == ("failed", 0, 1200)


def test_429_and_5xx_are_retried_and_only_that_request_resent(
    invoke: Any, put_log: Any, datadog: IngestServer, forwarder_env: Any, sleeps: list[float]
) -> None:
    forwarder_env(BATCH_MAX_RECORDS="20")
    datadog.script(Reply(200), Reply(429), Reply(503))  # 200: answered as the intake does (202)
    obj = put_log(KEY, count=45)
    invoke(sns_event(s3_notification(obj)))
    ids = ids_of(obj)
    assert [r.status for r in datadog.requests] == [202, 429, 503, 202, 202]
    sent = [[entry["event_id"] for entry in r.logs] for r in datadog.requests]
    assert sent == [ids[:20], ids[20:40], ids[20:40], ids[20:40], ids[40:]]
    assert datadog.event_ids() == ids
    assert len(sleeps) == 2


def test_a_wrong_key_fails_without_showing_it(
    invoke: Any, put_log: Any, datadog: IngestServer, forwarder_env: Any
) -> None:
    forwarder_env(HTTP_AUTH_CREDENTIALS="not-the-key-0000")
    obj = put_log(KEY, count=3)
    with pytest.raises(PermanentDeliveryError, match="HTTP 403") as caught:
        invoke(sns_event(s3_notification(obj)))
    assert "not-the-key-0000" not in str(caught.value)


def test_an_entry_over_1_mb_is_truncated_and_flagged(
    invoke: Any, put_log: Any, datadog: IngestServer, forwarder_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    forwarder_env(MAX_LINE_BYTES="2000000")
    obj = put_log(KEY, ["a", "z" * 1_200_000, "c"])
    with caplog.at_level(logging.INFO):
        invoke(sns_event(s3_notification(obj)))
    assert datadog.event_ids() == ids_of(obj)
    (request,) = datadog.requests
    entries = json.loads(gzip.decompress(request.raw_body))
    assert [len(json.dumps(e, separators=(",", ":")).encode()) <= 1_000_000 for e in entries] == [True] * 3
    assert (entries[1]["truncated"], entries[1]["line_number"]) == (True, 2)
    assert summary_of(caplog)["truncated"] == 1


def test_a_cloudwatch_logs_delivery_is_dated_by_its_events(invoke: Any, datadog: IngestServer) -> None:
    events = log_events("START RequestId: 1 Version: $LATEST\n", "plain text\n")
    invoke(cloudwatch_logs_event(cloudwatch_logs_data(events)))
    entries = datadog.records()
    assert [e["timestamp"] for e in entries] == [event["timestamp"] for event in events]
    assert {e["ddsource"] for e in entries} == {"cloudwatch"}
    assert all("hostname" not in e for e in entries)

"""OUTPUT_FORMAT=loki through the Lambda handler into a receiver answering as Loki's push API documents it.

Each test checks, per line of the file, that it is exactly one entry in Loki's terms (one per labels,
timestamp and line, Loki dropping exact duplicates), that only failed requests were resent, and the
counts of the summary line.
"""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any

import pytest
from alb_log_factory import log_key
from aws_events import (
    LOG_GROUP,
    cloudwatch_logs_data,
    cloudwatch_logs_event,
    log_events,
    s3_notification,
    sns_event,
    sqs_event,
)
from ingest_server import IngestServer, Reply

from forwarder import handler
from forwarder.destinations import line_time_ns
from forwarder.records import record_event_id
from forwarder.sender import PermanentDeliveryError

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")
LB = "app/my-loadbalancer/50dc6c495c0c9188"


def loki_server(intake_server: Any, **options: Any) -> IngestServer:
    return intake_server("loki", env={"BATCH_MAX_RECORDS": "20"}, **options)


@pytest.fixture
def loki(intake_server: Any) -> IngestServer:
    return loki_server(intake_server)


def ids_of(obj: Any) -> list[str]:
    return [record_event_id(obj.bucket, obj.key, obj.etag, n) for n in range(1, len(obj.lines) + 1)]


def summary_of(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    summaries = [r.summary for r in caplog.records if r.name == "forwarder.summary"]
    return summaries[-1]


def sent_ids(request: Any) -> list[str]:
    return [record["event_id"] for record in request.logs]


def test_each_line_is_one_entry_of_a_low_cardinality_stream(
    invoke: Any, put_log: Any, loki: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    obj = put_log(KEY, count=45)
    with caplog.at_level(logging.INFO):
        assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    assert [r.status for r in loki.requests] == [204, 204, 204]
    entries = loki.loki_entries()
    assert [json.loads(e["line"])["event_id"] for e in entries] == ids_of(obj)  # once each, in order
    assert {json.dumps(e["stream"], sort_keys=True) for e in entries} == {
        json.dumps({"load_balancer": LB, "log_type": "alb_access"}, sort_keys=True)
    }
    # One stream per push: the lines of the file share their labels.
    assert [len(json.loads(gzip.decompress(r.raw_body))["streams"]) for r in loki.requests] == [1, 1, 1]
    for entry in entries:
        assert entry["ts"] == str(line_time_ns(json.loads(entry["line"])["time"]))
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["batches"], summary["retries"]) == (45, 3, 0)


def test_labels_are_configurable_with_constants(
    invoke: Any, put_log: Any, loki: IngestServer, forwarder_env: Any
) -> None:
    forwarder_env(LOKI_LABELS="log_type, s3_bucket, env=prod")
    obj = put_log(KEY, count=3)
    invoke(sns_event(s3_notification(obj)))
    assert [e["stream"] for e in loki.loki_entries()] == [
        {"log_type": "alb_access", "s3_bucket": obj.bucket, "env": "prod"}
    ] * 3


def test_429_is_retried_and_only_that_request_resent(
    invoke: Any, put_log: Any, loki: IngestServer, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    loki.script(Reply(200), Reply(429, body=b"Ingestion rate limit exceeded for user fake"))  # 200: as usual
    obj = put_log(KEY, count=45)
    with caplog.at_level(logging.INFO):
        invoke(sns_event(s3_notification(obj)))
    ids = ids_of(obj)
    assert [r.status for r in loki.requests] == [204, 429, 204, 204]
    assert [sent_ids(r) for r in loki.requests] == [ids[:20], ids[20:40], ids[20:40], ids[40:]]
    assert loki.event_ids() == ids
    assert len(sleeps) == 1
    summary = summary_of(caplog)
    assert (summary["records_sent"], summary["retries"], summary["outcome"]) == (45, 1, "ok")


def test_too_old_fails_with_lokis_text_and_a_redrive_stores_each_line_once(
    invoke: Any, put_log: Any, intake_server: Any, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    obj = put_log(KEY, count=45)
    ids = ids_of(obj)
    with loki_server(intake_server) as loki:
        invoke(sns_event(s3_notification(obj)))  # learn the lines' times from a clean delivery
        times = [int(e["ts"]) for e in loki.loki_entries()]
    # Loki's reject_old_samples: lines 1-10 are older than it accepts; the rest of a push is stored.
    with loki_server(intake_server, loki_oldest_ns=times[10]) as loki:
        handler.reset(sleep=sleeps.append)
        with caplog.at_level(logging.INFO), pytest.raises(PermanentDeliveryError) as caught:
            invoke(sns_event(s3_notification(obj)))
        message = str(caught.value)
        assert "HTTP 400 Bad Request" in message and "has timestamp too old" in message
        assert len(loki.requests) == 1  # refused: not retried, the file fails
        assert loki.event_ids() == ids[10:20]  # Loki kept the valid entries of that push
        assert summary_of(caplog)["outcome"] == "failed"

        loki.loki_oldest_ns = None  # the limit is raised; the event is redriven
        handler.reset(sleep=sleeps.append)
        invoke(sns_event(s3_notification(obj)))
        assert sorted(loki.event_ids()) == sorted(ids)  # each line once: resent entries were duplicates
        assert len(loki.requests) == 4


def test_a_record_over_lokis_line_limit_is_truncated_and_flagged(
    invoke: Any, put_log: Any, forwarder_env: Any, intake_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    forwarder_env(MAX_LINE_BYTES="1000000")
    obj = put_log(KEY, ["first", "y" * 400_000, "third"])
    with loki_server(intake_server, loki_max_line=256 * 1024) as loki, caplog.at_level(logging.INFO):
        invoke(sns_event(s3_notification(obj)))
        assert loki.event_ids() == ids_of(obj)
        cut = loki.records()[1]
    assert (cut["truncated"], cut["line_number"]) == (True, 2)
    assert summary_of(caplog)["truncated"] == 1


def test_a_line_loki_finds_too_long_fails_with_lokis_text(
    invoke: Any, put_log: Any, intake_server: Any
) -> None:
    obj = put_log(KEY, count=3)
    with loki_server(intake_server, loki_max_line=100) as loki:
        with pytest.raises(
            PermanentDeliveryError, match=r"HTTP 400 Bad Request: .*Max entry size .*exceeded for"
        ):
            invoke(sns_event(s3_notification(obj)))
        assert len(loki.requests) == 1


def test_a_cloudwatch_logs_delivery_is_dated_by_its_events_and_may_be_labelled_by_its_group(
    invoke: Any, loki: IngestServer, forwarder_env: Any
) -> None:
    forwarder_env(LOKI_LABELS="log_group,source=cloudwatch")
    events = log_events("START RequestId: 1 Version: $LATEST\n", "plain text\n")
    invoke(cloudwatch_logs_event(cloudwatch_logs_data(events)))
    entries = loki.loki_entries()
    assert [e["ts"] for e in entries] == [str(event["timestamp"] * 1_000_000) for event in events]
    assert [e["stream"] for e in entries] == [{"log_group": LOG_GROUP, "source": "cloudwatch"}] * 2


def test_a_multi_tenant_loki_takes_every_push_for_the_tenant_named(
    invoke: Any, put_log: Any, intake_server: Any
) -> None:
    """With auth_enabled, Loki answers 401 "no org id" to a push without X-Scope-OrgID; LOKI_TENANT
    names the tenant on every push (alone, or with the gateway's own authentication)."""
    loki = intake_server(
        "loki",
        env={"DESTINATION_SETTINGS": "LOKI_TENANT=team-a", "BATCH_MAX_RECORDS": "20"},
        loki_tenant="team-a",
    )
    obj = put_log(KEY, count=25)
    assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    assert [r.status for r in loki.requests] == [204, 204]
    assert all(r.header("X-Scope-OrgID") == "team-a" for r in loki.requests)
    assert [json.loads(e["line"])["event_id"] for e in loki.loki_entries()] == ids_of(obj)


def test_a_push_without_the_tenant_fails_with_lokis_answer_and_the_setting_to_set(
    invoke: Any, put_log: Any, intake_server: Any
) -> None:
    intake_server("loki", loki_tenant="team-a")
    obj = put_log(KEY, count=3)
    with pytest.raises(PermanentDeliveryError, match=r"HTTP 401.*no org id.*LOKI_TENANT"):
        invoke(sns_event(s3_notification(obj)))

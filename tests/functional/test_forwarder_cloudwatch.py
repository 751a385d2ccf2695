"""CloudWatch Logs subscription deliveries, built as CloudWatch sends them, through the handler into the
ingest server: every log event arrives once, parsed, with an event_id that survives redelivery."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from alb_log_factory import gzip_lines
from aws_events import (
    ACCOUNT,
    CLOUDWATCH_CONTROL_DATA,
    LOG_GROUP,
    LOG_STREAM,
    Stored,
    cloudwatch_logs_data,
    cloudwatch_logs_event,
    destination_record,
    log_events,
    s3_notification,
    sqs_event,
)
from ingest_server import IngestServer, Reply

from forwarder.redrive import read_dead_letter
from forwarder.sender import TransientDeliveryError

pytest_plugins = ["conftest_forwarder"]

REQUEST_ID = "8f507cfc-xmpl-4697-b07a-ac58fc914c95"
# What a function's log group holds for one invocation (text log format), as the subscription delivers it:
# each message ends with a newline, the REPORT fields are tab-separated.
INVOCATION = [
    f"START RequestId: {REQUEST_ID} Version: $LATEST\n",
    f"2024-03-14T09:30:02.413Z\t{REQUEST_ID}\tINFO\tcharging card\n",
    '{"order": 42, "state": "paid"}\n',
    f"END RequestId: {REQUEST_ID}\n",
    f"REPORT RequestId: {REQUEST_ID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\t"
    "Max Memory Used: 56 MB\tInit Duration: 130.49 ms\t\n",
]


def by_message(records: list[dict[str, Any]]) -> list[str]:
    return [record["log_event_id"] for record in records]


def test_every_log_event_arrives_once_parsed_with_its_provenance(
    invoke: Any, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    events = log_events(*INVOCATION)
    caplog.set_level(logging.INFO, logger="forwarder.summary")
    assert invoke(cloudwatch_logs_event(cloudwatch_logs_data(events))) is None

    records = ingest.records()
    assert by_message(records) == [event["id"] for event in events]
    assert [r["log_type"] for r in records] == [
        "lambda_platform",
        "raw",
        "json",
        "lambda_platform",
        "lambda_platform",
    ]
    for record, event in zip(records, events, strict=True):
        assert record["log_group"] == LOG_GROUP
        assert record["log_stream"] == LOG_STREAM
        assert record["owner"] == ACCOUNT
        assert record["event_time"] == f"2024-03-14T09:30:02.{event['timestamp'] % 1000:03d}Z"
        assert len(record["event_id"]) == 32
        assert "parse_error" not in record
    assert len(set(ingest.event_ids())) == len(events)
    assert records[1]["raw"] == f"2024-03-14T09:30:02.413Z\t{REQUEST_ID}\tINFO\tcharging card"
    assert records[2]["order"] == 42
    report = records[4]
    assert (report["event"], report["request_id"]) == ("REPORT", REQUEST_ID)
    assert (report["duration_ms"], report["billed_duration_ms"], report["init_duration_ms"]) == (
        15.74,
        16.0,
        130.49,
    )
    assert (report["memory_size_mb"], report["max_memory_used_mb"]) == (128, 56)

    (summary,) = [r.summary for r in caplog.records if r.name == "forwarder.summary"]  # type: ignore[attr-defined]
    assert summary["log_group"] == LOG_GROUP
    assert summary["log_stream"] == LOG_STREAM
    assert (summary["lines"], summary["records_sent"], summary["unparseable"]) == (5, 5, 0)
    assert summary["outcome"] == "ok"


def test_a_redelivered_event_gives_the_same_event_ids(invoke: Any, ingest: IngestServer) -> None:
    event = cloudwatch_logs_event(cloudwatch_logs_data(log_events(*INVOCATION)))
    invoke(event)
    first = ingest.event_ids()
    invoke(event)
    assert ingest.event_ids() == first * 2


def test_the_same_event_id_in_another_stream_is_another_record(invoke: Any, ingest: IngestServer) -> None:
    events = log_events("one message")
    invoke(cloudwatch_logs_event(cloudwatch_logs_data(events)))
    invoke(cloudwatch_logs_event(cloudwatch_logs_data(events, log_stream="2024/03/14/[$LATEST]other")))
    first, second = ingest.event_ids()
    assert first != second


def test_a_control_message_sends_nothing(invoke: Any, ingest: IngestServer) -> None:
    assert invoke(cloudwatch_logs_event(CLOUDWATCH_CONTROL_DATA)) is None
    assert ingest.requests == []


def test_a_failed_delivery_raises_so_the_whole_event_is_retried_and_its_dead_letter_redrives(
    invoke: Any, ingest: IngestServer, forwarder_env: Any
) -> None:
    failed_event = cloudwatch_logs_event(cloudwatch_logs_data(log_events(*INVOCATION)))
    forwarder_env(HTTP_MAX_RETRIES="0")
    ingest.script(Reply(503))
    with pytest.raises(TransientDeliveryError) as caught:
        invoke(failed_event)
    assert ingest.records() == []

    record = destination_record(
        failed_event, error_type=type(caught.value).__name__, error_message=str(caught.value)
    )
    # The dead-letter record carries the original awslogs payload: the redrive tool can hand it back.
    dead = read_dead_letter({"MessageId": "m1", "ReceiptHandle": "r1", "Body": json.dumps(record)})
    assert dead.problem is None
    assert dead.payload == failed_event
    assert dead.objects == (f"cloudwatch-logs:{ACCOUNT}:{LOG_GROUP}:{LOG_STREAM}",)

    invoke(dead.payload)
    invoke(record)  # the function also accepts the record itself, as the queue holds it
    assert invoke(sqs_event(record)) == {"batchItemFailures": []}
    ids = ingest.event_ids()
    assert len(ids) == 3 * len(INVOCATION)
    assert ids == ids[: len(INVOCATION)] * 3


def test_a_configured_format_parses_every_message_and_flags_the_others(
    invoke: Any, ingest: IngestServer, forwarder_env: Any
) -> None:
    forwarder_env(CLOUDWATCH_LOG_FORMAT="vpc_flow")
    flow = (
        "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 "
        "1418530070 ACCEPT OK"
    )
    invoke(
        cloudwatch_logs_event(
            cloudwatch_logs_data(log_events(flow, "not a flow record"), log_group="vpc-flow")
        )
    )
    parsed, unparsed = ingest.records()
    assert parsed["log_type"] == "vpc_flow"
    assert parsed["dstport"] == 22
    assert unparsed["log_type"] == "vpc_flow"
    assert unparsed["raw"] == "not a flow record"
    assert unparsed["parse_error"].startswith("not a VPC flow log line")


def test_a_custom_flow_log_format_from_configuration(
    invoke: Any, ingest: IngestServer, forwarder_env: Any
) -> None:
    forwarder_env(VPC_FLOW_LOG_FORMAT="${version} ${vpc-id} ${srcaddr} ${dstaddr} ${bytes} ${action}")
    invoke(
        cloudwatch_logs_event(cloudwatch_logs_data(log_events("5 vpc-0a1b2c3d 10.0.1.5 10.0.2.9 840 ACCEPT")))
    )
    (record,) = ingest.records()
    assert record["log_type"] == "vpc_flow"
    assert (record["vpc_id"], record["bytes"], record["action"]) == ("vpc-0a1b2c3d", 840, "ACCEPT")


def test_an_oversized_message_is_cut_and_flagged(
    invoke: Any, ingest: IngestServer, forwarder_env: Any
) -> None:
    forwarder_env(MAX_LINE_BYTES="100")
    invoke(cloudwatch_logs_event(cloudwatch_logs_data(log_events("é" * 80))))
    (record,) = ingest.records()
    assert record["truncated"] is True
    assert record["raw"] == "é" * 50


def test_waf_log_files_in_s3_arrive_parsed(invoke: Any, s3: Any, ingest: IngestServer) -> None:
    bucket = "aws-waf-logs-123456789012-checkout"
    key = (
        "AWSLogs/123456789012/WAFLogs/us-east-1/checkout-acl/2024/03/14/09/30/"
        "123456789012_waflogs_us-east-1_checkout-acl_20240314T0930Z_a1b2c3d4.log.gz"
    )
    lines = [
        json.dumps(
            {
                "timestamp": 1710408602412 + n,
                "formatVersion": 1,
                "webaclId": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/checkout-acl/0a1b2c3d",
                "terminatingRuleId": "Default_Action",
                "action": "ALLOW",
                "httpRequest": {
                    "clientIp": "192.0.2.10",
                    "headers": [{"name": "Host", "value": "shop.example"}],
                },
                "labels": [{"name": "awswaf:managed:aws:bot-control:bot:verified"}],
            }
        )
        for n in range(3)
    ]
    s3.create_bucket(Bucket=bucket)
    etag = s3.put_object(Bucket=bucket, Key=key, Body=gzip_lines(lines))["ETag"].strip('"')
    invoke(s3_notification(Stored(bucket, key, etag)))
    records = ingest.records()
    assert [r["log_type"] for r in records] == ["waf"] * 3
    assert records[0]["time"] == "2024-03-14T09:30:02.412Z"
    assert records[0]["httpRequest"]["headers"] == {"Host": "shop.example"}
    assert records[0]["labels"] == ["awswaf:managed:aws:bot-control:bot:verified"]
    assert records[0]["s3_bucket"] == bucket


def test_the_summary_names_a_cloudwatch_delivery_not_an_object(
    invoke: Any, ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        invoke(cloudwatch_logs_event(cloudwatch_logs_data(log_events(*INVOCATION))))
    (summary,) = [r for r in caplog.records if r.name == "forwarder.summary"]
    assert summary.getMessage() == f"delivery ok cloudwatch-logs:{ACCOUNT}:{LOG_GROUP}:{LOG_STREAM}"

"""Custom grok formats end to end: S3 objects under a configured prefix and CloudWatch Logs deliveries from a
matching log group, through the handler into the ingest server, every line once with typed fields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_events import cloudwatch_logs_data, cloudwatch_logs_event, log_events, s3_notification, sns_event
from ingest_server import IngestServer

from forwarder.config import ConfigError

pytest_plugins = ["conftest_forwarder"]

ACCESS = (
    '%{HTTPDATE:timestamp} "(?:%{WORD:http_method}|-) %{NOTSPACE:request} HTTP/%{NUMBER:http_version}" '
    "%{NUMBER:status:int}"
)
APP = '%{DATA:timestamp:ts-"2006-01-02 15:04:05.000"} %{LOGLEVEL:level} took=%{NUMBER:took_ms:float}'
CUSTOM = [
    {"name": "web_access", "pattern": ACCESS, "s3_prefix": "web/access/", "log_group": "/ecs/web-*"},
    {"name": "app_timing", "pattern": APP, "s3_prefix": "app/", "log_group": ["/app/*"]},
]
ACCESS_LINES = [
    '10/Oct/2000:13:55:36 -0700 "GET /index.html HTTP/1.1" 200',
    '10/Oct/2000:13:55:37 -0700 "- /favicon.ico HTTP/1.0" 404',
    "a line of some other format",
]
ACCESS_FIELDS = [
    {"timestamp": "2000-10-10T20:55:36Z", "http_method": "GET", "request": "/index.html", "status": 200},
    {"timestamp": "2000-10-10T20:55:37Z", "request": "/favicon.ico", "http_version": "1.0", "status": 404},
    {"raw": "a line of some other format", "parse_error": "does not match custom format 'web_access'"},
]


@pytest.fixture
def custom(forwarder_env: Any) -> None:
    forwarder_env(CUSTOM_FORMATS=json.dumps(CUSTOM))


def assert_fields(records: list[dict[str, Any]], expected: list[dict[str, Any]], log_type: str) -> None:
    assert len(records) == len(expected)
    for record, fields in zip(records, expected, strict=True):
        assert record["log_type"] == log_type
        assert {name: record.get(name) for name in fields} == fields
        assert ("parse_error" in record) == ("raw" in fields)


@pytest.mark.usefixtures("custom")
@pytest.mark.parametrize("key", ["web/access/2024/03/05/host-1.log.gz", "web/access/2024/03/05/host-1.log"])
def test_an_s3_object_under_a_configured_prefix_is_parsed_with_its_grok_pattern(
    invoke: Any, ingest: IngestServer, put_log: Any, key: str
) -> None:
    body = "\n".join(ACCESS_LINES).encode() + b"\n"
    obj = put_log(key, ACCESS_LINES, body=None if key.endswith(".gz") else body)
    invoke(sns_event(s3_notification(obj)))
    records = ingest.records()
    assert_fields(records, ACCESS_FIELDS, "web_access")
    assert [r["line_number"] for r in records] == [1, 2, 3]
    assert len(set(ingest.event_ids())) == 3
    assert records[0]["time"] == "2000-10-10T20:55:36Z"


@pytest.mark.usefixtures("custom")
def test_a_log_group_matching_a_glob_is_parsed_with_its_grok_pattern(
    invoke: Any, ingest: IngestServer
) -> None:
    messages = ["2024-03-05 07:08:09.123 INFO took=12.5\n", "2024-03-05 07:08:10.000 ERROR took=-\n"]
    invoke(cloudwatch_logs_event(cloudwatch_logs_data(log_events(*messages), log_group="/app/orders")))
    records = ingest.records()
    assert_fields(
        records,
        [
            {"timestamp": "2024-03-05T07:08:09.123Z", "level": "INFO", "took_ms": 12.5},
            {
                "raw": "2024-03-05 07:08:10.000 ERROR took=-",
                "parse_error": "does not match custom format 'app_timing'",
            },
        ],
        "app_timing",
    )
    assert {r["log_group"] for r in records} == {"/app/orders"}
    assert len(set(ingest.event_ids())) == 2


@pytest.mark.usefixtures("custom")
def test_other_log_groups_and_keys_keep_their_usual_formats(
    invoke: Any, ingest: IngestServer, put_log: Any
) -> None:
    invoke(cloudwatch_logs_event(cloudwatch_logs_data(log_events('{"a": 1}'), log_group="/aws/lambda/fn")))
    obj = put_log("AWSLogs/web/access/x.log.gz", ['10/Oct/2000:13:55:36 -0700 "GET / HTTP/1.1" 200'])
    invoke(sns_event(s3_notification(obj)))
    assert [r["log_type"] for r in ingest.records()] == ["json", "alb_access"]


def test_a_pattern_that_names_an_unknown_pattern_fails_before_any_line_is_read(
    invoke: Any, ingest: IngestServer, forwarder_env: Any, put_log: Any
) -> None:
    forwarder_env(CUSTOM_FORMATS=json.dumps([CUSTOM[0] | {"pattern": "%{HTTPDATE:timestamp} %{NGINXLOG}"}]))
    obj = put_log("web/access/a.log.gz", ACCESS_LINES)
    with pytest.raises(
        ConfigError, match=r"CUSTOM_FORMATS: format 'web_access': unknown grok pattern %\{NGINXLOG\}"
    ):
        invoke(sns_event(s3_notification(obj)))
    assert ingest.requests == []

"""Parsers for the logs a CloudWatch Logs subscription (or a WAF bucket) delivers, table-driven from the
example lines of the AWS documentation; and how each message's format is detected."""

from __future__ import annotations

import json
from typing import Any

import pytest

from forwarder.config import Config, ConfigError
from forwarder.formats import FormatSettings
from forwarder.parsers import FormatMismatchError, ParseError, detect_log_type, detect_message, parser_for
from forwarder.parsers.vpc_flow import field_list

# --- Lambda platform lines ---------------------------------------------------------------------------------
# https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html ("Example log output"); the REPORT
# fields are listed in https://docs.aws.amazon.com/lambda/latest/dg/dotnet-logging.html. Lambda separates
# the REPORT fields with tabs; the documentation renders them as spaces: both parse.
REQUEST_ID = "8f507cfc-xmpl-4697-b07a-ac58fc914c95"
LAMBDA_PLATFORM = [
    (
        f"START RequestId: {REQUEST_ID} Version: $LATEST",
        {"event": "START", "request_id": REQUEST_ID, "version": "$LATEST"},
    ),
    (f"END RequestId: {REQUEST_ID}", {"event": "END", "request_id": REQUEST_ID}),
    (
        f"REPORT RequestId: {REQUEST_ID}  Duration: 15.74 ms  Billed Duration: 147 ms Memory Size: 128 MB "
        "Max Memory Used: 56 MB  Init Duration: 130.49 ms",
        {
            "event": "REPORT",
            "request_id": REQUEST_ID,
            "duration_ms": 15.74,
            "billed_duration_ms": 147.0,
            "memory_size_mb": 128,
            "max_memory_used_mb": 56,
            "init_duration_ms": 130.49,
        },
    ),
    (
        # As CloudWatch Logs stores it: tab-separated, a trailing tab, no Init Duration on a warm start.
        f"REPORT RequestId: {REQUEST_ID}\tDuration: 2.06 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 62 MB\t",
        {
            "event": "REPORT",
            "request_id": REQUEST_ID,
            "duration_ms": 2.06,
            "billed_duration_ms": 3.0,
            "memory_size_mb": 128,
            "max_memory_used_mb": 62,
        },
    ),
    (
        "INIT_START Runtime Version: python:3.12.v38\tRuntime Version ARN: "
        "arn:aws:lambda:us-east-1::runtime:7b620fc2e66107a1046b140b9d320295811af3ad5d4c6a011fad1fa65127e9e6",
        {
            "event": "INIT_START",
            "runtime_version": "python:3.12.v38",
            "runtime_version_arn": "arn:aws:lambda:us-east-1::runtime:"
            "7b620fc2e66107a1046b140b9d320295811af3ad5d4c6a011fad1fa65127e9e6",
        },
    ),
]


@pytest.mark.parametrize(("line", "expected"), LAMBDA_PLATFORM)
def test_lambda_platform_lines(line: str, expected: dict[str, Any]) -> None:
    assert parser_for("lambda_platform")(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "2024-03-14T09:30:02.412Z\t8f507cfc\tINFO\thello",
        "REPORT without an id",
        f"REPORT RequestId: {REQUEST_ID}",
    ],
)
def test_lambda_platform_rejects_other_lines(line: str) -> None:
    with pytest.raises(FormatMismatchError):
        parser_for("lambda_platform")(line)


# --- Lambda JSON log format --------------------------------------------------------------------------------
# Shapes from https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-logformat.html
# (application log objects) and https://docs.aws.amazon.com/lambda/latest/dg/telemetry-schema-reference.html
# (platform events and the metrics of platform.report).
LAMBDA_JSON = [
    (
        {
            "timestamp": "2023-10-27T19:17:45.586Z",
            "level": "INFO",
            "message": "Inside the handler function",
            "logger": "root",
            "requestId": "79b4f56e-95b1-4643-9700-2807f4e68189",
        },
        {
            "timestamp": "2023-10-27T19:17:45.586Z",
            "level": "INFO",
            "message": "Inside the handler function",
            "logger": "root",
            "requestId": "79b4f56e-95b1-4643-9700-2807f4e68189",
            "time": "2023-10-27T19:17:45.586Z",
        },
    ),
    (
        {
            "time": "2023-10-27T19:17:45.585Z",
            "type": "platform.start",
            "record": {"requestId": "79b4f56e-95b1-4643-9700-2807f4e68189", "version": "$LATEST"},
        },
        {
            "time": "2023-10-27T19:17:45.585Z",
            "event": "platform.start",
            "request_id": "79b4f56e-95b1-4643-9700-2807f4e68189",
            "record": {"version": "$LATEST"},
        },
    ),
    (
        {
            "time": "2023-10-27T19:17:45.590Z",
            "type": "platform.report",
            "record": {
                "requestId": "79b4f56e-95b1-4643-9700-2807f4e68189",
                "metrics": {
                    "durationMs": 2.12,
                    "billedDurationMs": 3,
                    "memorySizeMB": 128,
                    "maxMemoryUsedMB": 68,
                    "initDurationMs": 209.62,
                },
                "status": "success",
            },
        },
        {
            "time": "2023-10-27T19:17:45.590Z",
            "event": "platform.report",
            "request_id": "79b4f56e-95b1-4643-9700-2807f4e68189",
            "duration_ms": 2.12,
            "billed_duration_ms": 3,
            "memory_size_mb": 128,
            "max_memory_used_mb": 68,
            "init_duration_ms": 209.62,
            "record": {"status": "success"},
        },
    ),
]


@pytest.mark.parametrize(("document", "expected"), LAMBDA_JSON)
def test_lambda_json_lines(document: dict[str, Any], expected: dict[str, Any]) -> None:
    assert parser_for("lambda_json")(json.dumps(document)) == expected


# --- API Gateway access logs -------------------------------------------------------------------------------
# Formats from https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-access-logging.html
# (the CLF and JSON examples the console offers), with the values a request gives them.
APIGATEWAY = [
    (
        '192.0.2.10 - - [14/Mar/2024:09:30:02 +0000]"GET /pets HTTP/1.1" 200 45 '
        "6a1d3b2c-0f4e-4c55-9e3b-2c1d0e9f8a7b Uk9vDEXAMPLE=",
        {
            "source_ip": "192.0.2.10",
            "caller": None,
            "user": None,
            "request_time": "14/Mar/2024:09:30:02 +0000",
            "method": "GET",
            "resource_path": "/pets",
            "protocol": "HTTP/1.1",
            "status": 200,
            "response_length": 45,
            "request_id": "6a1d3b2c-0f4e-4c55-9e3b-2c1d0e9f8a7b",
            "extended_request_id": "Uk9vDEXAMPLE=",
            "time": "2024-03-14T09:30:02Z",
        },
    ),
    (
        # Stages set up before extendedRequestId was in the example end at requestId.
        '198.51.100.7 - - [14/Mar/2024:09:30:03 +0100] "POST /orders HTTP/1.1" 502 - '
        "0f7e9c1a-3b2d-4e6f-8a9b-1c2d3e4f5a6b",
        {
            "source_ip": "198.51.100.7",
            "caller": None,
            "user": None,
            "request_time": "14/Mar/2024:09:30:03 +0100",
            "method": "POST",
            "resource_path": "/orders",
            "protocol": "HTTP/1.1",
            "status": 502,
            "response_length": None,
            "request_id": "0f7e9c1a-3b2d-4e6f-8a9b-1c2d3e4f5a6b",
            "extended_request_id": None,
            "time": "2024-03-14T09:30:03+01:00",
        },
    ),
    (
        json.dumps(
            {
                "requestId": "6a1d3b2c-0f4e-4c55-9e3b-2c1d0e9f8a7b",
                "extendedRequestId": "Uk9vDEXAMPLE=",
                "ip": "192.0.2.10",
                "caller": "-",
                "user": "-",
                "requestTime": "14/Mar/2024:09:30:02 +0000",
                "httpMethod": "GET",
                "resourcePath": "/pets",
                "status": "200",
                "protocol": "HTTP/1.1",
                "responseLength": "45",
            }
        ),
        {
            "requestId": "6a1d3b2c-0f4e-4c55-9e3b-2c1d0e9f8a7b",
            "extendedRequestId": "Uk9vDEXAMPLE=",
            "ip": "192.0.2.10",
            "caller": None,
            "user": None,
            "requestTime": "14/Mar/2024:09:30:02 +0000",
            "httpMethod": "GET",
            "resourcePath": "/pets",
            "status": 200,
            "protocol": "HTTP/1.1",
            "responseLength": 45,
            "time": "2024-03-14T09:30:02Z",
        },
    ),
    (
        # HTTP APIs log routeKey instead of resourcePath
        # (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging.html).
        json.dumps(
            {
                "requestId": "Qs1XhjEXAMPLE=",
                "ip": "203.0.113.9",
                "requestTime": "14/Mar/2024:09:30:04 +0000",
                "httpMethod": "GET",
                "routeKey": "GET /items",
                "status": "404",
                "protocol": "HTTP/1.1",
                "responseLength": "23",
            }
        ),
        {
            "requestId": "Qs1XhjEXAMPLE=",
            "ip": "203.0.113.9",
            "requestTime": "14/Mar/2024:09:30:04 +0000",
            "httpMethod": "GET",
            "routeKey": "GET /items",
            "status": 404,
            "protocol": "HTTP/1.1",
            "responseLength": 23,
            "time": "2024-03-14T09:30:04Z",
        },
    ),
]


@pytest.mark.parametrize(("line", "expected"), APIGATEWAY)
def test_apigateway_access_lines(line: str, expected: dict[str, Any]) -> None:
    assert parser_for("apigateway_access")(line) == expected


def test_apigateway_bad_status_is_a_field_error() -> None:
    line = json.dumps({"requestId": "x", "httpMethod": "GET", "status": "OK"})
    with pytest.raises(ParseError, match="status is not an integer") as caught:
        parser_for("apigateway_access")(line)
    assert not isinstance(caught.value, FormatMismatchError)


# --- VPC flow logs -----------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html ("Accepted and rejected
# traffic", "No data and skipped records").
VPC_FLOW = [
    (
        "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 "
        "1418530070 ACCEPT OK",
        {
            "version": 2,
            "account_id": "123456789010",
            "interface_id": "eni-1235b8ca123456789",
            "srcaddr": "172.31.16.139",
            "dstaddr": "172.31.16.21",
            "srcport": 20641,
            "dstport": 22,
            "protocol": 6,
            "packets": 20,
            "bytes": 4249,
            "start": 1418530010,
            "end": 1418530070,
            "action": "ACCEPT",
            "log_status": "OK",
            "time": "2014-12-14T04:06:50Z",
        },
    ),
    (
        "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 "
        "1418530070 REJECT OK",
        {"action": "REJECT", "dstport": 3389, "srcaddr": "172.31.9.69"},
    ),
    (
        "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
        {
            "version": 2,
            "account_id": "123456789010",
            "interface_id": "eni-1235b8ca123456789",
            "srcaddr": None,
            "dstaddr": None,
            "srcport": None,
            "dstport": None,
            "protocol": None,
            "packets": None,
            "bytes": None,
            "start": 1431280876,
            "end": 1431280934,
            "action": None,
            "log_status": "NODATA",
            "time": "2015-05-10T18:01:16Z",
        },
    ),
]


@pytest.mark.parametrize(("line", "expected"), VPC_FLOW)
def test_vpc_flow_default_format(line: str, expected: dict[str, Any]) -> None:
    record = parser_for("vpc_flow")(line)
    assert {name: record[name] for name in expected} == expected


def test_vpc_flow_custom_field_list() -> None:
    # A custom format as AWS shows it (flow-log-records.html, "Available fields").
    fields = field_list(
        "${version} ${vpc-id} ${subnet-id} ${srcaddr} ${dstaddr} ${tcp-flags} ${flow-direction}"
    )
    parse = parser_for("vpc_flow", vpc_flow_fields=fields)
    assert parse("5 vpc-0a1b2c3d subnet-0e1f2a3b 10.0.1.5 10.0.2.9 19 ingress") == {
        "version": 5,
        "vpc_id": "vpc-0a1b2c3d",
        "subnet_id": "subnet-0e1f2a3b",
        "srcaddr": "10.0.1.5",
        "dstaddr": "10.0.2.9",
        "tcp_flags": 19,
        "flow_direction": "ingress",
    }
    assert parser_for("vpc_flow", vpc_flow_fields=fields) is parse  # built once per configuration
    with pytest.raises(FormatMismatchError, match="8 fields, the flow log format has 7"):
        parse("5 vpc-0a1b2c3d subnet-0e1f2a3b 10.0.1.5 10.0.2.9 19 ingress extra")


@pytest.mark.parametrize("bad", ["${version} ${src addr}", "${Version}", "version,srcaddr"])
def test_a_bad_custom_flow_format_is_a_configuration_error(bad: str) -> None:
    problems: list[str] = []
    assert FormatSettings.from_env({"VPC_FLOW_LOG_FORMAT": bad}, problems).vpc_flow_fields is None
    assert len(problems) == 1
    assert problems[0].startswith("VPC_FLOW_LOG_FORMAT is not a flow log format: ")


# --- WAF ---------------------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/waf/latest/developerguide/logging-examples.html ("Log entry for request
# blocked by rate-based rule"), abridged to the fields the parser changes or the tests read.
WAF_LINE = json.dumps(
    {
        "timestamp": 1683355579981,
        "formatVersion": 1,
        "webaclId": "arn:aws:wafv2:eu-west-3:EXAMPLE12345:regional/webacl/STMTest/"
        "1EXAMPLE-2ARN-3ARN-4ARN-123456EXAMPLE",
        "terminatingRuleId": "RateBasedRule",
        "terminatingRuleType": "RATE_BASED",
        "action": "BLOCK",
        "terminatingRuleMatchDetails": [],
        "httpSourceName": "APIGW",
        "httpSourceId": "EXAMPLE11:rjvegx5guh:CanaryTest",
        "ruleGroupList": [],
        "rateBasedRuleList": [],
        "nonTerminatingMatchingRules": [],
        "requestHeadersInserted": None,
        "responseCodeSent": None,
        "httpRequest": {
            "clientIp": "52.46.82.45",
            "country": "FR",
            "headers": [
                {"name": "X-Forwarded-For", "value": "52.46.82.45"},
                {"name": "Host", "value": "rjvegx5guh.execute-api.eu-west-3.amazonaws.com"},
                {"name": "dogname", "value": "Ella"},
                {"name": "dogname", "value": "Toby"},
            ],
            "uri": "/CanaryTest",
            "args": "",
            "httpVersion": "HTTP/1.1",
            "httpMethod": "GET",
            "requestId": "Ed0AiHF_CGYF-XA=",
        },
        "labels": [{"name": "awswaf:111122223333:rulegroup:testRules:LabelNameZ"}],
    }
)


def test_waf_line() -> None:
    record = parser_for("waf")(WAF_LINE)
    assert record["time"] == "2023-05-06T06:46:19.981Z"
    assert record["timestamp"] == 1683355579981
    assert record["terminatingRuleId"] == "RateBasedRule"
    assert record["action"] == "BLOCK"
    assert record["labels"] == ["awswaf:111122223333:rulegroup:testRules:LabelNameZ"]
    assert record["httpRequest"]["headers"] == {
        "X-Forwarded-For": "52.46.82.45",
        "Host": "rjvegx5guh.execute-api.eu-west-3.amazonaws.com",
        "dogname": "Ella, Toby",
    }
    assert record["httpRequest"]["clientIp"] == "52.46.82.45"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('{"formatVersion": 1}', FormatMismatchError),
        ('{"webaclId": "arn", "timestamp": "yesterday"}', ParseError),
        ("not json", FormatMismatchError),
    ],
)
def test_waf_rejects(line: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parser_for("waf")(line)


def test_waf_s3_files_are_typed_by_their_name() -> None:
    # WAF log files in S3 (logging-s3.html): AWSLogs/<account>/WAFLogs/<region>/<web-acl>/<yyyy/mm/dd/HH/mm>/
    key = (
        "AWSLogs/111122223333/WAFLogs/us-east-1/my-web-acl/2024/03/14/09/30/"
        "111122223333_waflogs_us-east-1_my-web-acl_20240314T0930Z_a1b2c3d4.log.gz"
    )
    assert detect_log_type(key, None) == "waf"
    assert detect_log_type("elsewhere/file.log.gz", WAF_LINE) == "waf"


# --- detection of CloudWatch Logs messages -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "log_type"),
    [
        (LAMBDA_PLATFORM[0][0], "lambda_platform"),
        (LAMBDA_PLATFORM[2][0], "lambda_platform"),
        (json.dumps(LAMBDA_JSON[0][0]), "lambda_json"),
        (json.dumps(LAMBDA_JSON[2][0]), "lambda_json"),
        (APIGATEWAY[0][0], "apigateway_access"),
        (APIGATEWAY[2][0], "apigateway_access"),
        (VPC_FLOW[0][0], "vpc_flow"),
        (VPC_FLOW[2][0], "vpc_flow"),
        (WAF_LINE, "waf"),
        ('{"order": 42, "state": "paid"}', "json"),
        ("2024-03-14T09:30:02.412Z\t8f507cfc\tINFO\tcharged card", "raw"),
        ('{"truncated": ', "raw"),
        ("[1, 2, 3]", "raw"),
    ],
)
def test_each_message_is_detected_by_its_content(message: str, log_type: str) -> None:
    detected, record = detect_message(message)
    assert detected == log_type
    assert "parse_error" not in record
    if log_type == "raw":
        assert record == {"raw": message}


def test_a_custom_flow_format_is_detected_too() -> None:
    fields = field_list("${srcaddr} ${dstaddr} ${bytes}")
    assert detect_message("10.0.1.5 10.0.2.9 840", vpc_flow_fields=fields)[0] == "vpc_flow"
    assert detect_message("10.0.1.5 10.0.2.9 840")[0] == "raw"


def test_cloudwatch_format_setting() -> None:
    problems: list[str] = []
    assert FormatSettings.from_env({}, problems) == FormatSettings()
    assert FormatSettings.from_env({"CLOUDWATCH_LOG_FORMAT": "auto"}, problems) == FormatSettings()
    assert (
        FormatSettings.from_env({"CLOUDWATCH_LOG_FORMAT": "VPC_FLOW"}, problems).cloudwatch_format
        == "vpc_flow"
    )
    assert problems == []
    FormatSettings.from_env({"CLOUDWATCH_LOG_FORMAT": "syslog"}, problems)
    assert problems == [problems[0]]
    assert "CLOUDWATCH_LOG_FORMAT must be auto or one of alb_access" in problems[0]


def test_bad_format_variables_fail_the_configuration_with_the_others() -> None:
    environ = {"HTTP_ENDPOINT": "https://logs.example.com", "CLOUDWATCH_LOG_FORMAT": "syslog"}
    with pytest.raises(ConfigError, match="CLOUDWATCH_LOG_FORMAT"):
        Config.from_env(environ | {"VPC_FLOW_LOG_FORMAT": "${version}"})
    config = Config.from_env(
        {"HTTP_ENDPOINT": "https://logs.example.com", "VPC_FLOW_LOG_FORMAT": "${version}"}
    )
    assert config.formats.vpc_flow_fields == ("version",)


# --- JSON text that is not Unicode text ------------------------------------------------------------------


@pytest.mark.parametrize("log_type", ["json", "lambda_json"])
def test_an_escaped_lone_surrogate_is_read_as_the_replacement_character(log_type: str) -> None:
    """Python's json.dumps writes a file name decoded with surrogateescape as "\\udcff"; no UTF-8 can hold
    that code point, so it is read as U+FFFD (as bytes that are not UTF-8 are), while an escaped pair is
    the character it encodes."""
    line = (
        r'{"timestamp": "2024-03-14T09:30:02.413Z", "level": "INFO", "message": "opened /tmp/\udcff.txt", '
        r'"face": "\ud83d\ude00", "k\uDCFF": [1]}'
    )
    record = parser_for(log_type)(line)
    assert record["message"] == "opened /tmp/\ufffd.txt"
    assert record["face"] == "\N{GRINNING FACE}"
    assert record["k\ufffd"] == [1]

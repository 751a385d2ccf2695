"""The otlp destination without a network: the OTLP/HTTP body in either encoding, and reading OTLP answers.

The tests of the body run for both OTLP_PROTOCOL values; a protobuf body is read with the official
opentelemetry-proto package and put in OTLP's JSON mapping, so both are checked against the same values.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest

from forwarder.config import Config
from forwarder.destinations import Rejection, Verdict, destination_for
from forwarder.parsers.alb import parse_alb_access
from forwarder.parsers.nlb import parse_nlb_access
from forwarder.reader import Line
from forwarder.records import iter_records
from forwarder.sender import Batch, HttpResponse, iter_batches
from forwarder.units import object_provenance

ENDPOINT = "https://collector.example.com:4318/v1/logs"
ARN_PREFIX = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
KEY = (
    "prod/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2025/03/14/"
    "123456789012_elasticloadbalancing_us-east-1_app.web.50dc6c495c0c9188_20250314T0930Z_10.0.1.25_x.log.gz"
)
ALB_LINE = (
    "https 2025-03-14T09:30:00.123456Z app/web/50dc6c495c0c9188 203.0.113.7:52344 10.0.1.12:8080 0.001 0.012 "
    '0.000 503 503 412 1211 "GET https://shop.example.com:443/cart?item=7 HTTP/1.1" "curl/8.5.0" '
    "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/"
    'web/6d0ecf831eec9f09 "Root=1-67d3f0a8-0123456789abcdef01234567" "shop.example.com" '
    '"arn:aws:acm:us-east-1:123456789012:certificate/abc" 1 2025-03-14T09:29:59.987000Z "forward" "-" "-" '
    '"10.0.1.12:8080" "503" "-" "-" TID_0123456789abcdef "-" "-" "-"'
)
NLB_LINE = (
    "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd "
    "72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - arn:aws:acm:us-east-2:671290407336:certificate/"
    "2a108f19-aded-46b0-8493-c63eb1ef4a99 - ECDHE-RSA-AES128-SHA tlsv12 - my-network-loadbalancer-c6e77e28c25"
    'b2234.elb.us-east-2.amazonaws.com h2 h2 "h2","http/1.1" 2020-04-01T08:51:42'
)


PROTOCOLS = ("http/json", "http/protobuf")


def otlp(protocol: str = "http/json") -> Any:
    return destination_for(Config(endpoint=ENDPOINT, output_format="otlp", otlp_protocol=protocol))


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    if request.param == "http/protobuf":
        pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
    return str(request.param)


def decoded(body: bytes, protocol: str) -> dict[str, Any]:
    """The request in OTLP's JSON mapping: as sent (JSON), or read by the official protobuf classes."""
    if protocol == "http/json":
        document: dict[str, Any] = json.loads(body)
        return document
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

    request = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
    return MessageToDict(request, use_integers_for_enums=True)


def records(*lines: str, log_type: str = "alb_access") -> list[dict[str, Any]]:
    provenance = object_provenance("logs", KEY, "e")
    return list(iter_records((Line(text) for text in lines), log_type=log_type, provenance=provenance))


def batch_of(items: list[dict[str, Any]], protocol: str = "http/json") -> Batch:
    """One batch of every item (whatever the intake's limits)."""
    destination = otlp(protocol)
    encoded = [destination.encode(item) for item in items]
    return next(iter_batches(encoded, framing=destination.framing, max_records=len(items), max_bytes=10**9))


def values(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {a["key"]: a["value"] for a in attributes}


def test_an_access_line_becomes_one_resource_with_one_log_record_named_by_semantic_conventions(
    protocol: str,
) -> None:
    (record,) = records(ALB_LINE)
    body = decoded(batch_of([record], protocol).body(), protocol)
    (resource_logs,) = body["resourceLogs"]
    assert values(resource_logs["resource"]["attributes"]) == {
        "cloud.provider": {"stringValue": "aws"},
        "cloud.account.id": {"stringValue": "123456789012"},
        "cloud.region": {"stringValue": "us-east-1"},
        "cloud.resource_id": {"stringValue": f"{ARN_PREFIX}:loadbalancer/app/web/50dc6c495c0c9188"},
        "elb": {"stringValue": "app/web/50dc6c495c0c9188"},
    }
    (scope_logs,) = resource_logs["scopeLogs"]
    assert scope_logs["scope"]["name"] == "alb-log-onboarding-forwarder"
    (log_record,) = scope_logs["logRecords"]
    assert log_record["timeUnixNano"] == "1741944600123456000"
    assert log_record["observedTimeUnixNano"].isdigit()
    assert (log_record["severityNumber"], log_record["severityText"]) == (17, "ERROR")  # a 503
    assert "body" not in log_record
    attributes = values(log_record["attributes"])
    assert {
        key: attributes[key]
        for key in (
            "http.request.method",
            "url.full",
            "http.response.status_code",
            "client.address",
            "client.port",
            "user_agent.original",
            "tls.protocol.name",
            "tls.protocol.version",
            "tls.client.server_name",
            "network.protocol.name",
            "network.protocol.version",
            "http.request.size",
            "http.response.size",
            "aws.s3.bucket",
            "event_id",
            "target_status_code",
            "request_processing_time",
        )
    } == {
        "http.request.method": {"stringValue": "GET"},
        "url.full": {"stringValue": "https://shop.example.com:443/cart?item=7"},
        "http.response.status_code": {"intValue": "503"},
        "client.address": {"stringValue": "203.0.113.7"},
        "client.port": {"intValue": "52344"},
        "user_agent.original": {"stringValue": "curl/8.5.0"},
        "tls.protocol.name": {"stringValue": "tls"},
        "tls.protocol.version": {"stringValue": "1.2"},
        "tls.client.server_name": {"stringValue": "shop.example.com"},
        "network.protocol.name": {"stringValue": "http"},
        "network.protocol.version": {"stringValue": "1.1"},
        "http.request.size": {"intValue": "412"},
        "http.response.size": {"intValue": "1211"},
        "aws.s3.bucket": {"stringValue": "logs"},
        "event_id": {"stringValue": record["event_id"]},
        "target_status_code": {"intValue": "503"},
        "request_processing_time": {"doubleValue": 0.001},
    }
    for replaced in ("http_method", "client_ip", "ssl_protocol", "elb", "s3_key", "domain_name"):
        assert replaced not in attributes


def test_the_body_is_read_by_the_official_protobuf_classes(protocol: str) -> None:
    json_format = pytest.importorskip("google.protobuf.json_format")
    logs_service = pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
    items = [*records(ALB_LINE, "not a log line"), *records(NLB_LINE, log_type="nlb_access")]
    items[0]["truncated"] = True
    body = batch_of(items, protocol).body()
    if protocol == "http/json":
        request = json_format.Parse(body, logs_service.ExportLogsServiceRequest())
    else:
        request = logs_service.ExportLogsServiceRequest.FromString(body)
    assert [len(r.scope_logs[0].log_records) for r in request.resource_logs] == [1, 1, 1]
    malformed = request.resource_logs[1].scope_logs[0].log_records[0]
    assert malformed.body.string_value == "not a log line" and malformed.time_unix_nano == 0
    assert malformed.severity_number == 0  # no status: severity unset
    flagged = {a.key: a.value for a in request.resource_logs[0].scope_logs[0].log_records[0].attributes}
    assert flagged["truncated"].bool_value is True


def test_nlb_times_without_fraction_and_tls_protocol_names(protocol: str) -> None:
    (record,) = records(NLB_LINE, log_type="nlb_access")
    assert parse_nlb_access(NLB_LINE)["time"] == "2018-12-20T02:59:40"
    (resource_logs,) = decoded(batch_of([record], protocol).body(), protocol)["resourceLogs"]
    (log_record,) = resource_logs["scopeLogs"][0]["logRecords"]
    assert log_record["timeUnixNano"] == "1545274780000000000"
    attributes = values(log_record["attributes"])
    assert attributes["tls.protocol.version"] == {"stringValue": "1.2"}
    assert attributes["client.address"] == {"stringValue": "72.21.218.154"}
    assert attributes["received_bytes"] == {"intValue": "98"}  # TLS bytes, not an HTTP request size
    assert attributes["alpn_client_preference_list"]["arrayValue"]["values"][0] == {"stringValue": "h2"}


@pytest.mark.parametrize(
    ("status", "severity"), [(200, "INFO"), (302, "INFO"), (404, "WARN"), (500, "ERROR")]
)
def test_severity_follows_the_status(status: int, severity: str, protocol: str) -> None:
    record = parse_alb_access(ALB_LINE) | {"elb_status_code": status, "event_id": "e"}
    (resource_logs,) = decoded(batch_of([record], protocol).body(), protocol)["resourceLogs"]
    assert resource_logs["scopeLogs"][0]["logRecords"][0]["severityText"] == severity


def test_a_retry_subset_is_still_a_valid_request(protocol: str) -> None:
    batch = batch_of(records(ALB_LINE, ALB_LINE, ALB_LINE), protocol)
    assert len(decoded(batch.subset([0, 2]).body(), protocol)["resourceLogs"]) == 2


def answer(status: int, body: bytes) -> Verdict:
    batch = batch_of(records(ALB_LINE, ALB_LINE, ALB_LINE))
    verdict: Verdict = otlp().read_response(HttpResponse(status, None, body), batch)
    return verdict


@pytest.mark.parametrize(
    "body", [b"", b"{}", b'{"partialSuccess":{}}', b'{"partialSuccess":{"rejectedLogRecords":"0"}}']
)
def test_full_success(body: bytes) -> None:
    assert answer(200, body) == Verdict()


def test_partial_success_is_a_position_less_rejection_never_retried() -> None:
    body = b'{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"too\\nold"}}'
    assert answer(200, body) == Verdict(
        rejected=2, rejections=(Rejection(None, "2 log records rejected (partial success): too old"),)
    )
    # Lenient encoders write the int64 as a number.
    assert answer(200, b'{"partialSuccess":{"rejectedLogRecords":1}}').rejected == 1


def test_a_full_success_with_a_warning_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert answer(200, b'{"partialSuccess":{"errorMessage":"attribute dropped"}}') == Verdict()
    assert "attribute dropped" in caplog.text


def test_a_protobuf_answer_is_read_too() -> None:
    logs_service = pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
    response = logs_service.ExportLogsServiceResponse()
    response.partial_success.rejected_log_records = 3
    response.partial_success.error_message = "quota"
    verdict = answer(200, response.SerializeToString())
    assert (verdict.rejected, verdict.rejections[0].reason) == (
        3,
        "3 log records rejected (partial success): quota",
    )
    assert answer(200, logs_service.ExportLogsServiceResponse().SerializeToString()) == Verdict()


@pytest.mark.parametrize("body", [b"<html>login</html>", b"OK", b"[1]"])
def test_an_answer_that_is_no_otlp_response_is_refused(body: bytes) -> None:
    verdict = answer(200, body)
    assert verdict.refused and "without an OTLP ExportLogsServiceResponse" in verdict.failure


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses_retry_the_whole_request(status: int) -> None:
    assert answer(status, b'{"code":14}').retry == (0, 1, 2)


@pytest.mark.parametrize("status", [400, 408, 413, 500, 501])
def test_other_statuses_are_permanent(status: int) -> None:
    assert answer(status, b'{"code":3}') == Verdict(refused=True)


def test_an_endpoint_without_the_logs_path_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        Config.from_env({"HTTP_ENDPOINT": "https://collector.example.com:4318", "OUTPUT_FORMAT": "otlp"})
        Config.from_env({"HTTP_ENDPOINT": ENDPOINT, "OUTPUT_FORMAT": "otlp"})
    (warning,) = caplog.records
    assert "does not end with /v1/logs" in warning.getMessage()


@pytest.mark.parametrize(
    ("region", "partition"), [("us-east-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")]
)
def test_the_load_balancer_arn_is_in_the_partition_of_its_region(
    region: str, partition: str, protocol: str
) -> None:
    (record,) = records(ALB_LINE)
    record["s3_key"] = KEY.replace("us-east-1", region)
    (resource_logs,) = decoded(batch_of([record], protocol).body(), protocol)["resourceLogs"]
    arn = values(resource_logs["resource"]["attributes"])["cloud.resource_id"]["stringValue"]
    assert arn.startswith(f"arn:{partition}:elasticloadbalancing:{region}:123456789012:loadbalancer/app/")


def test_values_outside_what_the_json_mapping_takes_are_kept_readably(protocol: str) -> None:
    json_format = pytest.importorskip("google.protobuf.json_format")
    logs_service = pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
    record = {"event_id": "e", "big": 2**70, "small": -(2**63), "nan": float("nan"), "inf": float("-inf")}
    record |= {"nested": {"a": [1, None, "x"]}, "flag": False}
    body = batch_of([record], protocol).body()
    (resource_logs,) = decoded(body, protocol)["resourceLogs"]
    attributes = values(resource_logs["scopeLogs"][0]["logRecords"][0]["attributes"])
    assert attributes["big"] == {"stringValue": str(2**70)}  # beyond int64: kept as text
    assert attributes["small"] == {"intValue": str(-(2**63))}
    assert (attributes["nan"], attributes["inf"]) == ({"doubleValue": "NaN"}, {"doubleValue": "-Infinity"})
    assert attributes["flag"] == {"boolValue": False}
    if protocol == "http/json":
        json_format.Parse(body, logs_service.ExportLogsServiceRequest())


CLOUDWATCH = {
    "log_group": "/aws/lambda/checkout",
    "log_stream": "2025/03/14/[$LATEST]0123456789abcdef",
    "owner": "123456789012",
    "event_time": "2024-03-14T09:30:02.412Z",
    "log_event_id": "31953106606966983378809025079804211143289615424298221568",
    "event_id": "f" * 32,
}


def only_log_record(record: dict[str, Any], protocol: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(resource attributes, the log record) of a one-record body."""
    (resource_logs,) = decoded(batch_of([record], protocol).body(), protocol)["resourceLogs"]
    return values(resource_logs["resource"]["attributes"]), resource_logs["scopeLogs"][0]["logRecords"][0]


def test_a_cloudwatch_logs_record_has_its_log_group_as_resource_and_its_level_as_severity(
    protocol: str,
) -> None:
    record = {
        "log_type": "lambda_json",
        "time": "2024-03-14T09:30:02.413Z",
        "level": "WARN",
        "message": "slow",
    }
    resource, log_record = only_log_record(record | {"request_id": "8f50", **CLOUDWATCH}, protocol)
    assert resource == {
        "cloud.provider": {"stringValue": "aws"},
        "cloud.account.id": {"stringValue": "123456789012"},
        "aws.log.group.names": {"arrayValue": {"values": [{"stringValue": "/aws/lambda/checkout"}]}},
        "aws.log.stream.names": {"arrayValue": {"values": [{"stringValue": CLOUDWATCH["log_stream"]}]}},
    }
    assert log_record["timeUnixNano"] == "1710408602413000000"  # the line's own time
    assert (log_record["severityNumber"], log_record["severityText"]) == (13, "WARN")
    attributes = values(log_record["attributes"])
    assert attributes["faas.invocation_id"] == {"stringValue": "8f50"}
    assert attributes["log_event_id"] == {"stringValue": CLOUDWATCH["log_event_id"]}
    assert not {"log_group", "log_stream", "owner", "request_id"} & set(attributes)


@pytest.mark.parametrize("elb", [["web", "api"], {"name": "web"}, 7])
def test_a_json_message_with_an_elb_field_of_its_own_keeps_it_whatever_it_holds(
    elb: Any, protocol: str
) -> None:
    """A message's own "elb" (a list, an object, a number) is the resource's elb attribute as it is; only a
    load balancer's name would make a load balancer ARN."""
    record = {"log_type": "json", "elb": elb, "msg": "deploy", **CLOUDWATCH}
    resource, log_record = only_log_record(record, protocol)
    elb_value = {"arrayValue": {"values": [{"stringValue": "web"}, {"stringValue": "api"}]}}
    if isinstance(elb, dict):
        elb_value = {"kvlistValue": {"values": [{"key": "name", "value": {"stringValue": "web"}}]}}
    elif isinstance(elb, int):
        elb_value = {"intValue": "7"}
    assert resource["elb"] == elb_value
    assert "cloud.resource_id" not in resource
    assert values(log_record["attributes"])["msg"] == {"stringValue": "deploy"}


def test_a_message_of_no_known_format_is_the_body_dated_by_its_log_event(protocol: str) -> None:
    _, log_record = only_log_record({"raw": "charging card", "log_type": "raw", **CLOUDWATCH}, protocol)
    assert log_record["body"] == {"stringValue": "charging card"}
    assert log_record["timeUnixNano"] == "1710408602412000000"
    assert "severityNumber" not in log_record


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {"log_type": "apigateway_access", "method": "POST", "status": 502, "protocol": "HTTP/1.1"},
            {
                "http.request.method": {"stringValue": "POST"},
                "http.response.status_code": {"intValue": "502"},
                "network.protocol.version": {"stringValue": "1.1"},
            },
        ),
        (
            {"log_type": "apigateway_access", "httpMethod": "GET", "ip": "198.51.100.4", "userAgent": "k6"},
            {
                "http.request.method": {"stringValue": "GET"},
                "client.address": {"stringValue": "198.51.100.4"},
                "user_agent.original": {"stringValue": "k6"},
            },
        ),
        (
            {
                "log_type": "vpc_flow",
                "srcaddr": "10.0.0.1",
                "srcport": 443,
                "dstaddr": "10.0.0.2",
                "protocol": 6,
            },
            {
                "source.address": {"stringValue": "10.0.0.1"},
                "source.port": {"intValue": "443"},
                "destination.address": {"stringValue": "10.0.0.2"},
                "protocol": {"intValue": "6"},
            },
        ),
    ],
)
def test_other_log_types_use_the_semantic_conventions_too(
    record: dict[str, Any], expected: dict[str, Any], protocol: str
) -> None:
    _, log_record = only_log_record(record | CLOUDWATCH, protocol)
    attributes = values(log_record["attributes"])
    assert {key: attributes.get(key) for key in expected} == expected


def test_records_of_one_key_order_with_other_values_are_each_written_as_they_are(protocol: str) -> None:
    """Records are written from a template per key order and value types: a value that changes type,
    a NUL or the text \\u0000 in a string, an int beyond int64 must still come out as that record's."""
    rows = [  # message, duration, bytes -> the AnyValues written
        ("plain", 5, 1, {"stringValue": "plain"}, {"intValue": "5"}, {"intValue": "1"}),
        ("NUL \x00", 5.5, 2, {"stringValue": "NUL \x00"}, {"doubleValue": 5.5}, {"intValue": "2"}),
        ("text \\u0000", None, 3, {"stringValue": "text \\u0000"}, None, {"intValue": "3"}),
        ('quote "', 7, 2**63, {"stringValue": 'quote "'}, {"intValue": "7"}, {"stringValue": str(2**63)}),
        ("", 7, -(2**63), {"stringValue": ""}, {"intValue": "7"}, {"intValue": str(-(2**63))}),
        ("é \\", 0.25, True, {"stringValue": "é \\"}, {"doubleValue": 0.25}, {"boolValue": True}),
    ]
    destination = otlp(protocol)
    items = [{"message": m, "duration": d, "bytes": b} for m, d, b, *_ in rows] * 2  # twice: templates
    encoded = [destination.encode(item) for item in items]
    batch = next(iter_batches(encoded, framing=destination.framing, max_records=20, max_bytes=10**6))
    written = [
        values(r["scopeLogs"][0]["logRecords"][0]["attributes"])
        for r in decoded(batch.body(), protocol)["resourceLogs"]
    ]
    expected = [
        {k: v for k, v in zip(("message", "duration", "bytes"), row[3:], strict=True) if v is not None}
        for row in rows
    ]
    assert written == expected * 2


def test_both_encodings_carry_the_same_request_for_every_kind_of_line() -> None:
    """JSON and protobuf bodies of the same records, each read back, are one request: the realistic mix of
    ALB lines in every field layout (malformed and cut ones among them), NLB lines and CloudWatch Logs
    events; only the observed time differs (it is the time of writing), and the attributes' order."""
    pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
    import random
    from datetime import UTC, datetime, timedelta

    from script_modules import load_script

    alb_logs = load_script("common/alb_logs")
    maker = alb_logs.LineMaker(
        alb_logs.LoadBalancer(
            "123456789012", "us-east-1", "web", "50dc6c495c0c9188", f"{ARN_PREFIX}:targetgroup/web/6d0e", "c"
        ),
        random.Random(8),  # noqa: S311 -- test data
    )
    start = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    lines = []
    for number in range(400):
        line = maker.line(
            start + timedelta(milliseconds=number),
            maker.realistic_kind(),
            fields=[25, 29, 30, 34][number % 4],
        )
        lines.append(maker.cut_short(line) if number % 97 == 0 else line)
    items = records(*lines) + records(NLB_LINE, log_type="nlb_access")
    items += [
        {"event_id": "lists", "long": ["h" * 200], "accented": ["é"], "two": ["a", "b"], "mixed": [1, "x"]},
        {"event_id": "commas", "tags": [",", "x,", ","], "one": [","], "quotes": ['","', '"']},
        # A lone surrogate (no UTF-8 holds one: U+FFFD in both), non-finite numbers, an int beyond int64.
        {"event_id": "awkward", "name": "a\udcffb", "nan": math.nan, "inf": -math.inf, "big": 2**70},
        {"raw": "charging card", "log_type": "raw", **CLOUDWATCH},
        {"log_type": "lambda_json", "level": "INFO", "message": "ok", **CLOUDWATCH},
    ]

    def without_observed_time(request: dict[str, Any]) -> dict[str, Any]:
        """The request with each record's attributes as a dict (OTLP gives their order no meaning)."""
        for resource_logs in request["resourceLogs"]:
            for log_record in resource_logs["scopeLogs"][0]["logRecords"]:
                assert log_record.pop("observedTimeUnixNano").isdigit()
                log_record["attributes"] = values(log_record.get("attributes", []))
        return request

    as_json, as_protobuf = (
        without_observed_time(decoded(batch_of(items, protocol).body(), protocol)) for protocol in PROTOCOLS
    )
    assert len(as_json["resourceLogs"]) == len(items)
    assert as_protobuf == as_json

"""Records: one per line, in order, with stable event ids; and the JSON helper that serialises them."""

from __future__ import annotations

import builtins
import hashlib
import importlib
import json
import math
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from forwarder import jsonutil
from forwarder.reader import Line
from forwarder.records import iter_records, normalize_etag, record_event_id
from forwarder.units import object_provenance

ALB_LINE = (
    "https 2024-05-01T12:00:01.123456Z app/my-lb/50dc6c495c0c9188 203.0.113.7:51234 10.0.1.20:8080 "
    '0.001 0.012 0.000 200 200 312 4821 "GET https://www.example.com:443/ HTTP/1.1" "curl/8.5.0" '
    "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 "
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067 "
    '"Root=1-6632a1b1-0c9e5e3f1a2b3c4d5e6f7a8b" "www.example.com" "-" 1 2024-05-01T12:00:01.110000Z '
    '"forward" "-" "-" "10.0.1.20:8080" "200" "-" "-" TID_0123 "-" "-" "-" 10.0.0.12'
)
BUCKET = "my-alb-logs"
KEY = (
    "prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/05/01/"
    "123456789012_elasticloadbalancing_us-east-1_app.my-lb.50dc6c495c0c9188_20240501T1205Z_10.0.0.12_x.log.gz"
)
ETAG = '"9b2cf535f27731c974343645a3985328"'


def records(lines: list[Line], **overrides: Any) -> list[dict[str, Any]]:
    options: dict[str, Any] = {
        "log_type": "alb_access",
        "bucket": BUCKET,
        "key": KEY,
        "etag": ETAG,
    } | overrides
    provenance = object_provenance(options.pop("bucket"), options.pop("key"), options.pop("etag"))
    return list(iter_records(lines, provenance=provenance, **options))


def test_every_line_gives_one_record_in_order_with_its_metadata() -> None:
    lines = [Line(ALB_LINE), Line("not an alb line"), Line(""), Line(ALB_LINE.replace("200 200", "503 -"))]
    out = records(lines)
    assert [r["line_number"] for r in out] == [1, 2, 3, 4]
    for record in out:
        assert record["log_type"] == "alb_access"
        assert record["s3_bucket"] == BUCKET
        assert record["s3_key"] == KEY
        assert len(record["event_id"]) == 32
        assert "truncated" not in record
    assert out[0]["elb_status_code"] == 200
    assert out[3]["elb_status_code"] == 503
    assert out[1] == {
        "raw": "not an alb line",
        "parse_error": out[1]["parse_error"],
        "log_type": "alb_access",
        "s3_bucket": BUCKET,
        "s3_key": KEY,
        "line_number": 2,
        "event_id": record_event_id(BUCKET, KEY, ETAG, 2),
    }
    assert out[1]["parse_error"]
    assert out[2]["raw"] == ""
    assert out[2]["parse_error"] == "empty line"


def test_event_ids_match_the_exported_function_and_are_distinct_per_line() -> None:
    out = records([Line(ALB_LINE)] * 50)
    ids = [r["event_id"] for r in out]
    assert ids == [record_event_id(BUCKET, KEY, ETAG, n) for n in range(1, 51)]
    assert len(set(ids)) == 50


def test_redelivery_gives_the_same_ids_and_event_vs_getobject_etag_forms_agree() -> None:
    first = [r["event_id"] for r in records([Line(ALB_LINE), Line("x")], etag=ETAG)]
    # S3 event notifications carry the ETag without quotes; GetObject returns it quoted.
    again = [r["event_id"] for r in records([Line(ALB_LINE), Line("x")], etag=ETAG.strip('"'))]
    assert first == again


@pytest.mark.parametrize(
    ("bucket", "key", "etag", "line_number"),
    [
        (BUCKET, KEY, "0000000000000000000000000000000a", 1),  # new object version
        (BUCKET + "-copy", KEY, ETAG, 1),
        (BUCKET, KEY + ".1", ETAG, 1),
        (BUCKET, KEY, ETAG, 2),
        # Shifting characters between the parts must not collide (length-prefixed parts).
        ("my-alb-logs/p", "refix", ETAG, 1),
    ],
    ids=["etag", "bucket", "key", "line", "boundary-shift"],
)
def test_event_id_changes_with_every_input(bucket: str, key: str, etag: str, line_number: int) -> None:
    assert record_event_id(bucket, key, etag, line_number) != record_event_id(BUCKET, KEY, ETAG, 1)
    assert record_event_id("my-alb-logs", "/prefix", ETAG, 1) != record_event_id(
        "my-alb-logs/", "prefix", ETAG, 1
    )


def test_event_id_is_a_fixed_function_of_its_inputs() -> None:
    # Pinned: receivers deduplicate on these ids across forwarder versions; changing the scheme
    # would resend every replayed line as new.
    assert record_event_id("b", "k", '"e"', 1) == record_event_id("b", "k", "e", 1)
    # BLAKE2b-96 over "<len>:<bucket>,<len>:<key>,<len>:<etag>," (UTF-8 byte lengths), then the
    # line number as 8 hex digits.
    expected = hashlib.blake2b("3:bü,4:k/é,1:e,".encode(), digest_size=12).hexdigest() + "00000011"
    assert record_event_id("bü", "k/é", '"e"', 17) == expected == "0bb7562a7709f5922e20f38800000011"


def test_ids_of_one_object_share_a_prefix_and_sort_by_line() -> None:
    ids = [record_event_id(BUCKET, KEY, ETAG, n) for n in (1, 2, 255, 256, 70_000, 2**32 - 1)]
    assert len({i[:24] for i in ids}) == 1
    assert ids == sorted(ids)
    assert all(len(i) == 32 for i in ids)
    assert record_event_id(BUCKET, KEY, ETAG, 2**32) != record_event_id(BUCKET, KEY, ETAG, 0)


@pytest.mark.parametrize(
    ("raw", "clean"), [('"abc"', "abc"), ("abc", "abc"), (' "abc-3" ', "abc-3"), ("", "")]
)
def test_normalize_etag(raw: str, clean: str) -> None:
    assert normalize_etag(raw) == clean


def test_truncated_line_that_still_parses_keeps_its_fields_and_the_flag() -> None:
    # Cut inside the trailing fields: the head and request survive, the record says so.
    cut = ALB_LINE[: ALB_LINE.index(' "10.0.1.20:8080"')]
    (record,) = records([Line(cut, truncated=True)])
    assert record["truncated"] is True
    assert record["elb_status_code"] == 200
    assert "parse_error" not in record


def test_truncated_line_that_does_not_parse_is_sent_raw_with_the_flag() -> None:
    cut = ALB_LINE[:150]  # inside the user agent: unbalanced quotes
    (record,) = records([Line(cut, truncated=True)])
    assert record["raw"] == cut
    assert record["truncated"] is True
    assert "quote" in record["parse_error"]


def test_a_parser_bug_on_one_line_does_not_lose_the_object(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(line: str) -> dict[str, Any]:
        if line == "boom":
            raise IndexError("list index out of range")
        return {"text": line}

    monkeypatch.setattr("forwarder.records.parser_for", lambda log_type, **_: broken)
    out = records([Line("a"), Line("boom"), Line("b"), Line("boom")])
    assert [r.get("text") for r in out] == ["a", None, "b", None]
    assert out[1]["parse_error"] == "parser failure: IndexError"
    assert out[1]["raw"] == "boom"
    assert len([r for r in caplog.records if "parser failure" in r.getMessage()]) == 1


def test_local_file_records_have_no_bucket() -> None:
    (record,) = records([Line(ALB_LINE)], bucket=None, key="local/file.log", etag="")
    assert record["s3_bucket"] is None
    assert (
        record["event_id"]
        == record_event_id(None, "local/file.log", "", 1)
        == record_event_id("", "local/file.log", "", 1)
    )


def test_records_are_produced_lazily() -> None:
    consumed: list[int] = []

    def lines() -> Iterator[Line]:
        for n in range(1_000_000):
            consumed.append(n)
            yield Line(ALB_LINE)

    stream = iter_records(lines(), log_type="alb_access", provenance=object_provenance(BUCKET, KEY, ETAG))
    next(stream)
    next(stream)
    assert len(consumed) == 2


def test_unknown_log_type_is_refused_before_any_line() -> None:
    with pytest.raises(ValueError, match="unknown log type"):
        records([Line(ALB_LINE)], log_type="alb")


# --- jsonutil -----------------------------------------------------------------------------------


def test_dumps_is_compact_utf8_json() -> None:
    value = {"a": 1, "b": [None, 1.5, "é"], "c": "日本"}
    out = jsonutil.dumps(value)
    assert isinstance(out, bytes)
    assert out == '{"a":1,"b":[null,1.5,"é"],"c":"日本"}'.encode()


def test_dumps_survives_integers_beyond_64_bits() -> None:
    assert json.loads(jsonutil.dumps({"sent_bytes": 2**70})) == {"sent_bytes": 2**70}
    assert jsonutil.dumps_line({"sent_bytes": 2**70}) == b'{"sent_bytes":1180591620717411303424}\n'


def _strict(data: bytes) -> Any:
    """JSON as intakes read it: UTF-8 only, no NaN or Infinity."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


# What Python's json reads from application logs and orjson will not write as it is: an integer beyond
# 64 bits, a lone surrogate (from the escape "\\udcff"), and the non-finite numbers it accepts.
AWKWARD = {"big": 2**70, "name": "a\udcffb", "nan": math.nan, "inf": math.inf, "list": [-math.inf, "\ud800"]}
AWKWARD_AS_JSON = {"big": 2**70, "name": "a\ufffdb", "nan": None, "inf": None, "list": [None, "\ufffd"]}


def test_dumps_writes_json_an_intake_parses_whatever_the_record_holds() -> None:
    assert _strict(jsonutil.dumps(AWKWARD)) == AWKWARD_AS_JSON
    assert _strict(jsonutil.dumps_line({"\udcff": math.nan})) == {"\ufffd": None}
    assert _strict(jsonutil.dumps({"only": math.nan})) == {"only": None}  # orjson's own null


def test_dumps_line_is_one_json_line() -> None:
    value = {"a": [1, None], "b": "é\nx"}
    line = jsonutil.dumps_line(value)
    assert line == jsonutil.dumps(value) + b"\n"
    assert line.count(b"\n") == 1


def test_dumps_falls_back_to_the_standard_library_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_orjson(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "orjson":
            raise ImportError("no orjson here")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "orjson", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_orjson)
    try:
        fallback = importlib.reload(jsonutil)
        assert fallback._fast_dumps is None
        (record,) = records([Line(ALB_LINE)])
        assert json.loads(fallback.dumps(record)) == json.loads(json.dumps(record))
        assert fallback.dumps({"k": "é"}) == '{"k":"é"}'.encode()
        assert fallback.dumps_line({"k": "é"}) == '{"k":"é"}\n'.encode()
        assert _strict(fallback.dumps(AWKWARD)) == AWKWARD_AS_JSON
    finally:
        monkeypatch.setattr(builtins, "__import__", real_import)
        importlib.reload(jsonutil)
    assert jsonutil._fast_dumps is not None


# --- why a line did not parse: the log it looks like, or that it is not the detected format -------------

# Lines of other AWS logs, shaped as their documentation shows them.
CLOUDFRONT_LINE = (
    "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\t"
    "Mozilla/5.0%20(Windows%20NT%2010.0)\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\t"
    "d111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-"
)
S3_ACCESS_LINE = (
    "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be amzn-s3-demo-bucket1 "
    "[06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be "
    '3E57427F3EXAMPLE REST.GET.VERSIONING - "GET /amzn-s3-demo-bucket1?versioning HTTP/1.1" 200 - 113 - 7 - '
    '"-" "S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= '
    "SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com TLSV1.2"
)
VPC_FLOW_LINE = (
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 "
    "1418530010 1418530070 ACCEPT OK"
)
WAF_LINE = (
    '{"timestamp":1576280412771,"formatVersion":1,"webaclId":"arn:aws:wafv2:ap-southeast-2:111122223333:'
    'regional/webacl/STMTest/1EXAMPLE-2ARN-3ARN-4ARN-123456EXAMPLE","terminatingRuleId":"STMTest_SQLi_XSS",'
    '"terminatingRuleType":"REGULAR","action":"BLOCK","httpRequest":{"clientIp":"1.1.1.1","country":"AU"}}'
)
NLB_LINE = (
    "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd "
    "72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - - - ECDHE-RSA-AES128-SHA tlsv12 - - - - -"
)
FORMAT_LABELS = {
    "alb_access": "an ALB access log",
    "alb_connection": "an ALB connection log",
    "alb_health_check": "an ALB health check log",
    "nlb_access": "an NLB access log",
    "classic_elb_access": "a Classic ELB access log",
}


@pytest.mark.parametrize("log_type", list(FORMAT_LABELS))
@pytest.mark.parametrize(
    ("line", "looks_like"),
    [
        (CLOUDFRONT_LINE, "a CloudFront access log"),
        ("#Fields: date time x-edge-location sc-bytes c-ip cs-method", "a CloudFront access log"),
        (S3_ACCESS_LINE, "an S3 server access log"),
        (VPC_FLOW_LINE, "a VPC flow log"),
        ("version account-id interface-id srcaddr dstaddr srcport dstport", "a VPC flow log"),
        (WAF_LINE, "a WAF log"),
    ],
    ids=["cloudfront", "cloudfront-header", "s3-access", "vpc-flow", "vpc-flow-header", "waf"],
)
def test_lines_of_other_aws_logs_are_named_for_the_log_they_look_like(
    log_type: str, line: str, looks_like: str
) -> None:
    (record,) = records([Line(line)], log_type=log_type)
    assert record["parse_error"] == f"not {FORMAT_LABELS[log_type]} line: looks like {looks_like} line"


def test_elb_lines_of_another_format_are_named_for_it() -> None:
    (nlb_as_alb,) = records([Line(NLB_LINE)])
    assert nlb_as_alb["parse_error"] == "not an ALB access log line: looks like an NLB access log line"
    (alb_as_nlb,) = records([Line(ALB_LINE)], log_type="nlb_access")
    assert alb_as_nlb["parse_error"] == "not an NLB access log line: looks like an ALB access log line"


def test_unrecognised_lines_say_they_are_not_of_the_detected_format() -> None:
    (record,) = records([Line("this is not an ALB access log line")])
    assert record["parse_error"] == (
        "not an ALB access log line: expected 12 fields before the quoted request, found 8"
    )


def test_a_broken_field_of_the_right_format_keeps_its_precise_reason() -> None:
    (record,) = records([Line(ALB_LINE.replace(" 312 4821 ", " 312 many "))])
    assert record["parse_error"] == "sent_bytes is not an integer: 'many'"


def test_include_raw_line_adds_the_original_line_to_parsed_records_only() -> None:
    lines = [Line(ALB_LINE), Line("not an alb line"), Line("")]
    parsed, unparsed, empty = records(lines, include_raw_line=True)
    assert parsed["raw_line"] == ALB_LINE
    assert parsed["elb_status_code"] == 200
    # Lines that do not parse carry the line in raw already, once.
    assert "raw_line" not in unparsed
    assert unparsed["raw"] == "not an alb line"
    assert "raw_line" not in empty
    assert all("raw_line" not in r for r in records(lines))


def test_include_raw_line_with_detected_messages_skips_those_of_no_known_format() -> None:
    message = '{"level": "info", "msg": "started"}'
    detected, plain = records(
        [Line(message), Line("plain text message")], log_type=None, include_raw_line=True
    )
    assert detected["raw_line"] == message
    assert plain == {**plain, "raw": "plain text message"}
    assert "raw_line" not in plain

"""Connection, health check, NLB and Classic ELB parsers (AWS doc examples), and log type detection."""

from __future__ import annotations

import re

import pytest

from forwarder.parsers import LOG_TYPES, ParseError, detect_log_type, parser_for
from forwarder.parsers.classic import parse_classic_elb_access
from forwarder.parsers.connection import parse_alb_connection
from forwarder.parsers.health_check import parse_alb_health_check
from forwarder.parsers.nlb import parse_nlb_access

# --- AWS documentation examples, one line each ------------------------------------------------

CONN_SUCCESS = (
    "2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 4.036 "
    '"CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US" '
    "NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z "
    "FEF257372D5C14D4 Success TID_3180a73013c8ca4bac2f731159d4b0fe"
)
CONN_FAILED = (
    "2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 - "
    '"CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US" '
    "NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z "
    "FEF257372D5C14D4 Failed:ClientCertUntrusted TID_1c71a68d70587445ad5127ff8b2687d7"
)
HEALTH_PASS = "http 2025-10-31T12:44:59.875678Z 0.019584011 172.31.20.97:80 HCLogsTestIPs PASS 200 -"
HEALTH_FAIL = "http 2025-10-31T12:44:58.901409Z 1.121980746 172.31.31.9:80 HCLogsTestIPs FAIL 502 TargetError"
NLB_CERT_ARN = "arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99"
NLB_NO_ALPN = (
    "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd "
    "72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - "
    "arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - "
    "ECDHE-RSA-AES128-SHA tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com "
    "- - -"
)
NLB_ALPN = (
    "tls 2.0 2020-04-01T08:51:42 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd "
    "72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - "
    "arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - "
    "ECDHE-RSA-AES128-SHA tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com "
    'h2 h2 "h2","http/1.1"'
)
CLASSIC_HTTP = (
    "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 "
    '0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -'
)
CLASSIC_HTTPS = (
    "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000086 0.001048 "
    '0.001337 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.38.0" '
    "DHE-RSA-AES128-SHA TLSv1.2"
)
CLASSIC_TCP = (
    "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001069 0.000028 "
    '0.000041 - - 82 305 "- - - " "-" - -'
)
CLASSIC_SSL = (
    "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001065 0.000015 "
    '0.000023 - - 57 502 "- - - " "-" ECDHE-ECDSA-AES128-GCM-SHA256 TLSv1.2'
)
# Lines written before 2015 stop after the request.
CLASSIC_OLD = (
    "2014-02-15T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 "
    '0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1"'
)
ALB_LINE = (
    "http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 "
    "192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "
    '"GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - '
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "
    '"Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" '
    '0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90'
)


# --- connection logs ---------------------------------------------------------------------------


def test_connection_success_example() -> None:
    assert parse_alb_connection(CONN_SUCCESS) == {
        "time": "2023-10-04T17:05:15.514108Z",
        "client_ip": "203.0.113.1",
        "client_port": 36280,
        "listener_port": 443,
        "tls_protocol": "TLSv1.2",
        "tls_cipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "tls_handshake_latency": 4.036,
        "leaf_client_cert_subject": "CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US",
        "leaf_client_cert_validity": "NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z",
        "leaf_client_cert_serial_number": "FEF257372D5C14D4",
        "tls_verify_status": "Success",
        "conn_trace_id": "TID_3180a73013c8ca4bac2f731159d4b0fe",
    }


def test_connection_failed_handshake_has_no_latency() -> None:
    record = parse_alb_connection(CONN_FAILED)
    assert record["tls_handshake_latency"] is None
    assert record["tls_verify_status"] == "Failed:ClientCertUntrusted"


def test_connection_newest_fields_and_plain_listener() -> None:
    line = (
        '2025-01-10T08:00:00.000001Z 2001:db8::7 50123 80 - - - "-" - - - TID_00ff X25519MLKEM768 '
        "app/my-lb/50dc6c495c0c9188 10.0.0.12 future"
    )
    record = parse_alb_connection(line)
    assert record["client_ip"] == "2001:db8::7"
    assert record["listener_port"] == 80
    assert record["tls_protocol"] is None
    assert record["leaf_client_cert_subject"] is None
    assert record["tls_keyexchange"] == "X25519MLKEM768"
    assert record["elb"] == "app/my-lb/50dc6c495c0c9188"
    assert record["ip_address"] == "10.0.0.12"
    assert record["extra_fields"] == ["future"]


def test_connection_subject_with_spaces_stays_whole() -> None:
    line = CONN_SUCCESS.replace("O=endEntity", "O=End Entity Inc")
    assert parse_alb_connection(line)["leaf_client_cert_subject"].endswith(
        "O=End Entity Inc,L=Seattle,ST=Washington,C=US"
    )


@pytest.mark.parametrize(
    "line",
    [
        "2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443",
        CONN_SUCCESS.replace(" 36280 ", " port "),
        CONN_SUCCESS.replace('"CN=', "CN="),
    ],
    ids=["too-short", "port-not-a-number", "unbalanced-quote"],
)
def test_connection_broken_lines(line: str) -> None:
    with pytest.raises(ParseError):
        parse_alb_connection(line)


# --- health check logs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "status", "code", "reason", "latency"),
    [
        (HEALTH_PASS, "PASS", 200, None, 0.019584011),
        (HEALTH_FAIL, "FAIL", 502, "TargetError", 1.121980746),
    ],
    ids=["pass", "fail"],
)
def test_health_check_examples(line: str, status: str, code: int, reason: str | None, latency: float) -> None:
    record = parse_alb_health_check(line)
    assert record["type"] == "http"
    assert record["target_group_id"] == "HCLogsTestIPs"
    assert (record["status"], record["status_code"], record["reason_code"], record["latency"]) == (
        status,
        code,
        reason,
        latency,
    )


def test_health_check_lambda_target_timeout_and_trailing_fields() -> None:
    line = (
        "lambda 2025-10-31T12:45:00.000001Z 5.000000000 arn:aws:lambda:us-east-1:123456789012:function:web "
        "LambdaTG FAIL - RequestTimedOut app/my-lb/50dc6c495c0c9188 10.0.0.12"
    )
    record = parse_alb_health_check(line)
    assert record["target_addr"] == "arn:aws:lambda:us-east-1:123456789012:function:web"
    assert record["status_code"] is None
    assert record["reason_code"] == "RequestTimedOut"
    assert record["elb"] == "app/my-lb/50dc6c495c0c9188"
    assert record["ip_address"] == "10.0.0.12"


@pytest.mark.parametrize(
    "line",
    [
        HEALTH_PASS.rsplit(" ", 2)[0],
        HEALTH_PASS.replace("0.019584011", "slow"),
        HEALTH_PASS.replace("200", "OK"),
    ],
    ids=["too-short", "latency-not-a-number", "status-not-a-number"],
)
def test_health_check_broken_lines(line: str) -> None:
    with pytest.raises(ParseError):
        parse_alb_health_check(line)


# --- NLB access logs ---------------------------------------------------------------------------


def test_nlb_example_without_alpn() -> None:
    record = parse_nlb_access(NLB_NO_ALPN)
    assert record == {
        "type": "tls",
        "version": "2.0",
        "time": "2018-12-20T02:59:40",
        "elb": "net/my-network-loadbalancer/c6e77e28c25b2234",
        "listener": "g3d4b5e8bb8464cd",
        "client_ip": "72.21.218.154",
        "client_port": 51341,
        "destination_ip": "172.100.100.185",
        "destination_port": 443,
        "connection_time": 5,
        "tls_handshake_time": 2,
        "received_bytes": 98,
        "sent_bytes": 246,
        "incoming_tls_alert": None,
        "chosen_cert_arn": NLB_CERT_ARN,
        "chosen_cert_serial": None,
        "tls_cipher": "ECDHE-RSA-AES128-SHA",
        "tls_protocol_version": "tlsv12",
        "tls_named_group": None,
        "domain_name": "my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com",
        "alpn_fe_protocol": None,
        "alpn_be_protocol": None,
        "alpn_client_preference_list": None,
    }


def test_nlb_example_with_alpn_and_creation_time() -> None:
    record = parse_nlb_access(NLB_ALPN + " 2020-04-01T08:51:41")
    assert record["alpn_fe_protocol"] == record["alpn_be_protocol"] == "h2"
    assert record["alpn_client_preference_list"] == ["h2", "http/1.1"]
    assert record["tls_connection_creation_time"] == "2020-04-01T08:51:41"
    assert "extra_fields" not in record


def test_nlb_version_1_0_line_has_no_alpn_fields() -> None:
    # Version 1.0, the first NLB access log layout (AWS docs, 2019): 18 fields, ending at domain_name.
    line = NLB_NO_ALPN.replace("tls 2.0", "tls 1.0").removesuffix(" - - -")
    expected = parse_nlb_access(NLB_NO_ALPN) | {"version": "1.0"}
    for name in ("alpn_fe_protocol", "alpn_be_protocol", "alpn_client_preference_list"):
        del expected[name]
    assert parse_nlb_access(line) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            NLB_NO_ALPN.replace("tls 2.0", "tls 1.0").rsplit(" ", 4)[0],
            "expected at least 18 fields in a version 1.0 line, found 17",
        ),
        (NLB_NO_ALPN.rsplit(" ", 1)[0], "expected at least 21 fields in a version 2.0 line, found 20"),
        (
            NLB_NO_ALPN.replace("tls 2.0", "tls 3.1").rsplit(" ", 1)[0],
            "expected at least 21 fields in a version 3.1 line, found 20",
        ),
    ],
    ids=["v1.0-short", "v2.0-short", "unknown-version-short"],
)
def test_nlb_line_shorter_than_its_version_says_so(line: str, reason: str) -> None:
    with pytest.raises(ParseError, match=f"^{re.escape(reason)}$"):
        parse_nlb_access(line)


def test_nlb_bracketed_ipv6_addresses_lose_their_brackets() -> None:
    line = NLB_NO_ALPN.replace(
        "72.21.218.154:51341 172.100.100.185:443", "[2001:db8::7]:51341 [2001:db8::1]:443"
    )
    record = parse_nlb_access(line)
    assert (record["client_ip"], record["client_port"]) == ("2001:db8::7", 51341)
    assert (record["destination_ip"], record["destination_port"]) == ("2001:db8::1", 443)


def test_nlb_failed_handshake_and_alert() -> None:
    line = NLB_NO_ALPN.replace(" 5 2 98 246 - ", " 7 - 0 0 40 ")
    record = parse_nlb_access(line)
    assert record["tls_handshake_time"] is None
    assert record["incoming_tls_alert"] == 40


@pytest.mark.parametrize(
    "line",
    [
        NLB_NO_ALPN.rsplit(" ", 4)[0],
        NLB_NO_ALPN.replace("tls 2.0", "tcp 2.0"),
        NLB_NO_ALPN.replace(" 98 ", " x "),
    ],
    ids=["too-short", "not-tls", "bytes-not-a-number"],
)
def test_nlb_broken_lines(line: str) -> None:
    with pytest.raises(ParseError):
        parse_nlb_access(line)


# --- Classic ELB access logs -------------------------------------------------------------------


def test_classic_http_example() -> None:
    assert parse_classic_elb_access(CLASSIC_HTTP) == {
        "time": "2015-05-13T23:39:43.945958Z",
        "elb": "my-loadbalancer",
        "client_ip": "192.168.131.39",
        "client_port": 2817,
        "backend_ip": "10.0.0.1",
        "backend_port": 80,
        "request_processing_time": 0.000073,
        "backend_processing_time": 0.001048,
        "response_processing_time": 0.000057,
        "elb_status_code": 200,
        "backend_status_code": 200,
        "received_bytes": 0,
        "sent_bytes": 29,
        "request": "GET http://www.example.com:80/ HTTP/1.1",
        "http_method": "GET",
        "request_url": "http://www.example.com:80/",
        "http_version": "HTTP/1.1",
        "user_agent": "curl/7.38.0",
        "ssl_cipher": None,
        "ssl_protocol": None,
    }


@pytest.mark.parametrize(
    ("line", "cipher"),
    [(CLASSIC_TCP, None), (CLASSIC_SSL, "ECDHE-ECDSA-AES128-GCM-SHA256")],
    ids=["tcp", "ssl"],
)
def test_classic_tcp_and_ssl_listeners(line: str, cipher: str | None) -> None:
    record = parse_classic_elb_access(line)
    assert record["elb_status_code"] is None
    assert record["backend_status_code"] is None
    assert record["request"] == "- - - "
    assert (record["http_method"], record["request_url"], record["http_version"]) == (None, None, None)
    assert record["user_agent"] is None
    assert record["ssl_cipher"] == cipher


def test_classic_https_and_pre_2015_lines() -> None:
    assert parse_classic_elb_access(CLASSIC_HTTPS)["ssl_protocol"] == "TLSv1.2"
    old = parse_classic_elb_access(CLASSIC_OLD)
    assert old["request_url"] == "http://www.example.com:80/"
    assert "user_agent" not in old
    assert "ssl_cipher" not in old


def test_classic_bracketed_ipv6_addresses_lose_their_brackets() -> None:
    record = parse_classic_elb_access(
        CLASSIC_HTTP.replace("192.168.131.39:2817 10.0.0.1:80", "[2001:db8::7]:2817 [2001:db8::1]:80")
    )
    assert (record["client_ip"], record["client_port"]) == ("2001:db8::7", 2817)
    assert (record["backend_ip"], record["backend_port"]) == ("2001:db8::1", 80)


def test_classic_unreachable_backend() -> None:
    line = CLASSIC_HTTP.replace("10.0.0.1:80 0.000073 0.001048 0.000057 200 200", "- -1 -1 -1 504 0")
    record = parse_classic_elb_access(line)
    assert (record["backend_ip"], record["backend_port"]) == (None, None)
    assert record["request_processing_time"] == -1.0
    assert (record["elb_status_code"], record["backend_status_code"]) == (504, 0)


@pytest.mark.parametrize(
    "line",
    [ALB_LINE, CLASSIC_HTTP.replace(" 0 29 ", " 0 many "), CLASSIC_HTTP.split('"', maxsplit=1)[0]],
    ids=["alb-line", "bytes-not-a-number", "no-request"],
)
def test_classic_broken_lines(line: str) -> None:
    with pytest.raises(ParseError):
        parse_classic_elb_access(line)


# --- parser_for and detection ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("log_type", "line"),
    [
        ("alb_access", ALB_LINE),
        ("alb_connection", CONN_SUCCESS),
        ("alb_health_check", HEALTH_FAIL),
        ("nlb_access", NLB_ALPN),
        ("classic_elb_access", CLASSIC_TCP),
    ],
)
def test_parser_for_every_type(log_type: str, line: str) -> None:
    assert log_type in LOG_TYPES
    assert isinstance(parser_for(log_type)(line), dict)


def test_parser_for_unknown_type_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="alb_access, alb_connection") as caught:
        parser_for("cloudfront")
    assert not isinstance(caught.value, ParseError)


PREFIX = "logs/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/05/01/"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            PREFIX + "123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef"
            "_20240501T1205Z_172.160.001.192_20sg8hgm.log.gz",
            "alb_access",
        ),
        (
            PREFIX
            + "conn_log_123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef"
            "_20240501T1205Z_172.160.001.192_20sg8hgm.log.gz",
            "alb_connection",
        ),
        (
            PREFIX + "health_check_log_123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer."
            "1234567890abcdef_20240501T1205Z_172.160.001.192_20sg8hgm.log.gz",
            "alb_health_check",
        ),
        (
            PREFIX + "123456789012_elasticloadbalancing_us-east-2_net.my-nlb.1234567890abcdef"
            "_20240501T1205Z_20sg8hgm.log.gz",
            "nlb_access",
        ),
        (
            PREFIX + "123456789012_elasticloadbalancing_us-east-2_my-loadbalancer_20140215T2340Z"
            "_172.160.001.192_20sg8hgm.log",
            "classic_elb_access",
        ),
        # A prefix containing "app." must not confuse detection: only the file name counts.
        (
            "app.conn_log_x/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/05/01/"
            "123456789012_elasticloadbalancing_us-east-2_net.n.1_20240501T1205Z_r.log.gz",
            "nlb_access",
        ),
    ],
    ids=["alb", "connection", "health-check", "nlb", "classic", "prefix-ignored"],
)
def test_detect_by_key_wins_over_content(key: str, expected: str) -> None:
    assert detect_log_type(key, CLASSIC_TCP if expected != "classic_elb_access" else ALB_LINE) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (ALB_LINE, "alb_access"),
        (CONN_SUCCESS, "alb_connection"),
        (CONN_FAILED, "alb_connection"),
        (HEALTH_PASS, "alb_health_check"),
        (NLB_NO_ALPN, "nlb_access"),
        (NLB_NO_ALPN.replace("tls 2.0", "tls 1.0").removesuffix(" - - -"), "nlb_access"),
        (CLASSIC_HTTP, "classic_elb_access"),
        (CLASSIC_TCP, "classic_elb_access"),
    ],
)
def test_detect_by_first_line_when_the_name_says_nothing(line: str, expected: str) -> None:
    assert detect_log_type("/home/me/Downloads/export.log", line) == expected


@pytest.mark.parametrize("first_line", [None, "", "garbage that matches nothing"])
def test_detection_falls_back_to_alb_access(first_line: str | None) -> None:
    assert detect_log_type("-", first_line) == "alb_access"

"""ALB access log parser: every layout AWS has written, and the malformed lines it logs."""

from __future__ import annotations

import pytest

from forwarder.parsers import ParseError
from forwarder.parsers.alb import _parse_general, parse_alb_access

# AWS documentation examples ("Access logs for your Application Load Balancer"), one line each.
DOC_HTTP_25 = (
    "http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 "
    "192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "
    '"GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - '
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "
    '"Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" '
    '0 2018-07-02T22:22:48.364000Z "forward" "-" "-"'
)
DOC_HTTP_33 = DOC_HTTP_25 + ' "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"'
DOC_LAMBDA_FAILED = (
    "http 2018-11-30T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 "
    "192.168.131.39:2817 - 0.000 0.001 0.000 502 - 34 366 "
    '"GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - '
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "
    '"Root=1-58337364-23a8c76965a2ef7629b185e3" "-" "-" '
    '0 2018-11-30T22:22:48.364000Z "forward" "-" "LambdaInvalidResponse" "-" "-" "-" "-"'
)
# The 2021 doc printed the target lists bare; real files quote them. Both must parse alike.
DOC_HTTP_27_BARE_LISTS = DOC_HTTP_25 + " 10.0.0.1:80 200"


TARGET_GROUP_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067"
CERT_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"


def make_line(
    *,
    kind: str = "https",
    client: str = "203.0.113.7:51234",
    target: str = "10.0.1.20:8080",
    times: str = "0.001 0.012 0.000",
    codes: str = "200 200",
    request: str = "GET https://www.example.com:443/api/items?id=7 HTTP/1.1",
    user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    tls: str = "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2",
    priority: str = "1",
    actions: str = "forward",
    target_list: str = "10.0.1.20:8080",
    code_list: str = "200",
    classification: str = '"-" "-"',
    fields: int = 34,
    trailing: str = "",
) -> str:
    """A realistic ALB line with `fields` known fields (25, 27, 29, 30, 33 or 34)."""
    line = (
        f"{kind} 2024-05-01T12:00:01.123456Z app/my-lb/50dc6c495c0c9188 {client} {target} {times} "
        f'{codes} 312 4821 "{request}" "{user_agent}" {tls} '
        f"{TARGET_GROUP_ARN} "
        '"Root=1-6632a1b1-0c9e5e3f1a2b3c4d5e6f7a8b" "www.example.com" '
        f'"{CERT_ARN}" '
        f'{priority} 2024-05-01T12:00:01.110000Z "{actions}" "-" "-"'
    )
    if fields >= 27:
        line += f' "{target_list}" "{code_list}"'
    if fields >= 29:
        line += f" {classification}"
    if fields >= 30:
        line += " TID_0123456789abcdef0123456789abcdef"
    if fields >= 33:
        line += ' "-" "-" "-"'
    if fields >= 34:
        line += " 10.0.0.12"
    return line + trailing


def test_current_layout_gives_every_documented_field_typed() -> None:
    record = parse_alb_access(make_line())
    assert record == {
        "type": "https",
        "time": "2024-05-01T12:00:01.123456Z",
        "elb": "app/my-lb/50dc6c495c0c9188",
        "client_ip": "203.0.113.7",
        "client_port": 51234,
        "target_ip": "10.0.1.20",
        "target_port": 8080,
        "request_processing_time": 0.001,
        "target_processing_time": 0.012,
        "response_processing_time": 0.0,
        "elb_status_code": 200,
        "target_status_code": 200,
        "received_bytes": 312,
        "sent_bytes": 4821,
        "request": "GET https://www.example.com:443/api/items?id=7 HTTP/1.1",
        "http_method": "GET",
        "request_url": "https://www.example.com:443/api/items?id=7",
        "http_version": "HTTP/1.1",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        "ssl_cipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "ssl_protocol": "TLSv1.2",
        "target_group_arn": TARGET_GROUP_ARN,
        "trace_id": "Root=1-6632a1b1-0c9e5e3f1a2b3c4d5e6f7a8b",
        "domain_name": "www.example.com",
        "chosen_cert_arn": CERT_ARN,
        "matched_rule_priority": 1,
        "request_creation_time": "2024-05-01T12:00:01.110000Z",
        "actions_executed": ["forward"],
        "redirect_url": None,
        "error_reason": None,
        "target_port_list": ["10.0.1.20:8080"],
        "target_status_code_list": [200],
        "classification": None,
        "classification_reason": None,
        "conn_trace_id": "TID_0123456789abcdef0123456789abcdef",
        "transformed_host": None,
        "transformed_uri": None,
        "request_transform_status": None,
        "ip_address": "10.0.0.12",
    }


LAST_FIELD_BY_COUNT = {
    25: "error_reason",
    27: "target_status_code_list",
    29: "classification_reason",
    30: "conn_trace_id",
    33: "request_transform_status",
    34: "ip_address",
}


@pytest.mark.parametrize("fields", sorted(LAST_FIELD_BY_COUNT))
def test_every_generation_parses_with_exactly_its_fields(fields: int) -> None:
    record = parse_alb_access(make_line(fields=fields))
    assert list(record)[-1] == LAST_FIELD_BY_COUNT[fields]
    # One key per field, plus one each for client and target (ip + port) and three for the
    # request (method, url, version next to the full request).
    assert len(record) == fields + 5
    assert record["elb_status_code"] == 200
    assert record["user_agent"] == "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
    assert "extra_fields" not in record


def test_unknown_trailing_tokens_are_kept_not_fatal() -> None:
    line = make_line(trailing=' "future-value" 42 -')
    record = parse_alb_access(line)
    assert record["ip_address"] == "10.0.0.12"
    assert record["extra_fields"] == ["future-value", "42", "-"]


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("https 2024-05-01T12:00:01.123456Z app/my-lb/50dc6c495c0c9188", id="3-tokens"),
        pytest.param(
            "http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 "
            "192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366",
            id="12-tokens-no-request",
        ),
        pytest.param(
            'http 2018-07-02T22:23:00.186641Z app/x/1 1.2.3.4:5 - 0.0 0.0 0.0 200 200 1 2 "GET / HTTP/1.1',
            id="unbalanced-quote",
        ),
        pytest.param(
            'http 2018-07-02T22:23:00.186641Z app/x/1 1.2.3.4:5 0.0 0.0 0.0 200 200 1 2 "GET / HTTP/1.1"',
            id="11-head-fields",
        ),
        pytest.param(make_line().replace(" 0.012 ", " fast "), id="time-not-a-number"),
        pytest.param(make_line().replace(" 312 ", " 3x2 "), id="bytes-not-a-number"),
        pytest.param(make_line(client="203.0.113.7"), id="client-without-port"),
        pytest.param(make_line(target="10.0.1.20:http"), id="target-port-not-a-number"),
        pytest.param(make_line(priority="high"), id="rule-priority-not-a-number"),
        pytest.param("", id="empty"),
        pytest.param("just some text", id="not-a-log-line"),
    ],
)
def test_broken_lines_raise_parse_error_with_a_reason(line: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_alb_access(line)
    assert str(caught.value)


@pytest.mark.parametrize(
    ("client", "target", "expected"),
    [
        ("203.0.113.7:51234", "10.0.1.20:8080", ("203.0.113.7", 51234, "10.0.1.20", 8080)),
        (
            "2001:db8:85a3::8a2e:370:7334:51234",
            "2001:db8::20:8080",
            ("2001:db8:85a3::8a2e:370:7334", 51234, "2001:db8::20", 8080),
        ),
        ("::ffff:203.0.113.7:443", "-", ("::ffff:203.0.113.7", 443, None, None)),
        (
            "[fe80::202:b3ff:fe1e:8329]:443",
            "[2001:db8::1]:80",
            ("fe80::202:b3ff:fe1e:8329", 443, "2001:db8::1", 80),
        ),
    ],
    ids=["ipv4", "ipv6-unbracketed", "no-target", "ipv6-bracketed"],
)
def test_addresses_split_at_the_last_colon(
    client: str, target: str, expected: tuple[str, int, str | None, int | None]
) -> None:
    record = parse_alb_access(make_line(client=client, target=target))
    assert (
        record["client_ip"],
        record["client_port"],
        record["target_ip"],
        record["target_port"],
    ) == expected


@pytest.mark.parametrize(
    ("request_line", "method", "url", "version"),
    [
        ("GET http://www.example.com:80/ HTTP/1.1", "GET", "http://www.example.com:80/", "HTTP/1.1"),
        ("- - -", None, None, None),
        (
            "- http://my-lb-123.us-east-1.elb.amazonaws.com:80- -",
            None,
            "http://my-lb-123.us-east-1.elb.amazonaws.com:80-",
            None,
        ),
        (
            "- http://my-lb-123.us-east-1.elb.amazonaws.com:80-/ ",
            None,
            "http://my-lb-123.us-east-1.elb.amazonaws.com:80-/",
            None,
        ),
        (
            "GET http://example.com:80/a b  c.html HTTP/1.1",
            "GET",
            "http://example.com:80/a b  c.html",
            "HTTP/1.1",
        ),
        (
            "GET http://example.com:80/q?x=\\x22quoted\\x22 HTTP/1.1",
            "GET",
            "http://example.com:80/q?x=\\x22quoted\\x22",
            "HTTP/1.1",
        ),
        (
            "POST https://api.example.com:443/grpc.Service/Method HTTP/2.0",
            "POST",
            "https://api.example.com:443/grpc.Service/Method",
            "HTTP/2.0",
        ),
        ("GET /", "GET", "/", None),
    ],
    ids=["normal", "dashes", "no-path", "trailing-space", "raw-spaces", "escaped-quote", "h2", "no-protocol"],
)
def test_request_is_split_at_first_and_last_space(
    request_line: str, method: str | None, url: str | None, version: str | None
) -> None:
    record = parse_alb_access(make_line(request=request_line))
    assert record["request"] == request_line
    assert (record["http_method"], record["request_url"], record["http_version"]) == (method, url, version)


def test_user_agent_keeps_inner_spaces_and_escaped_quotes() -> None:
    agent = "Mozilla/5.0  (double  spaced)  \\x22quoted\\x22 end "
    assert parse_alb_access(make_line(user_agent=agent))["user_agent"] == agent


def test_not_applicable_times_stay_minus_one_as_floats() -> None:
    record = parse_alb_access(make_line(times="-1 -1 -1", codes="460 -", target="-"))
    assert record["request_processing_time"] == -1.0
    assert isinstance(record["request_processing_time"], float)
    assert record["target_processing_time"] == record["response_processing_time"] == -1.0
    assert record["elb_status_code"] == 460
    assert record["target_status_code"] is None


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("-1", -1), ("-", None), ("50000", 50000)])
def test_matched_rule_priority(raw: str, expected: int | None) -> None:
    assert parse_alb_access(make_line(priority=raw))["matched_rule_priority"] == expected


@pytest.mark.parametrize(
    ("actions", "targets", "codes", "expected"),
    [
        ("forward", "10.0.1.20:8080", "200", (["forward"], ["10.0.1.20:8080"], [200])),
        (
            "waf,authenticate,forward",
            "10.0.1.20:8080 10.0.1.21:8080",
            "502 200",
            (["waf", "authenticate", "forward"], ["10.0.1.20:8080", "10.0.1.21:8080"], [502, 200]),
        ),
        ("waf", "-", "-", (["waf"], None, None)),
        ("-", "-", "-", (None, None, None)),
        (
            "forward",
            "10.0.1.20:8080 10.0.1.21:8080",
            "200 -",
            (["forward"], ["10.0.1.20:8080", "10.0.1.21:8080"], [200, None]),
        ),
    ],
    ids=["single", "several", "waf-block", "malformed-request", "one-target-silent"],
)
def test_lists(
    actions: str,
    targets: str,
    codes: str,
    expected: tuple[list[str] | None, list[str] | None, list[int | None] | None],
) -> None:
    record = parse_alb_access(make_line(actions=actions, target_list=targets, code_list=codes))
    assert (
        record["actions_executed"],
        record["target_port_list"],
        record["target_status_code_list"],
    ) == expected


@pytest.mark.parametrize("kind", ["http", "https", "h2", "grpcs", "ws", "wss", "quic-future"])
def test_every_type_value_is_accepted_as_is(kind: str) -> None:
    assert parse_alb_access(make_line(kind=kind))["type"] == kind


def test_desync_classification_fields() -> None:
    record = parse_alb_access(make_line(classification='"Acceptable" "SpaceInUri"'))
    assert (record["classification"], record["classification_reason"]) == ("Acceptable", "SpaceInUri")


def test_plain_http_listener_dashes_become_null() -> None:
    record = parse_alb_access(make_line(kind="http", tls="- -"))
    assert record["ssl_cipher"] is None
    assert record["ssl_protocol"] is None


def test_waf_blocked_request_without_target() -> None:
    line = make_line(
        target="-", codes="403 -", times="0.000 -1 -1", actions="waf", target_list="-", code_list="-"
    )
    record = parse_alb_access(line)
    assert record["elb_status_code"] == 403
    assert record["target_ip"] is None
    assert record["target_status_code"] is None
    assert record["target_processing_time"] == -1.0
    assert record["actions_executed"] == ["waf"]


@pytest.mark.parametrize(
    ("line", "checks"),
    [
        (DOC_HTTP_25, {"matched_rule_priority": 0, "actions_executed": ["forward"], "error_reason": None}),
        (DOC_HTTP_33, {"target_status_code_list": [200], "conn_trace_id": "TID_1234abcd5678ef90"}),
        (
            DOC_LAMBDA_FAILED,
            {"target_ip": None, "target_status_code": None, "error_reason": "LambdaInvalidResponse"},
        ),
        (DOC_HTTP_27_BARE_LISTS, {"target_port_list": ["10.0.0.1:80"], "target_status_code_list": [200]}),
    ],
    ids=["doc-http-25", "doc-http-33", "doc-lambda-failed", "doc-bare-lists"],
)
def test_aws_documentation_examples(line: str, checks: dict[str, object]) -> None:
    record = parse_alb_access(line)
    assert record["elb"] == "app/my-loadbalancer/50dc6c495c0c9188"
    assert record["client_ip"] == "192.168.131.39"
    for name, value in checks.items():
        assert record[name] == value, name


VARIANTS = {
    "plain": {},
    "no-target": {"target": "-", "codes": "460 -", "times": "-1 -1 -1"},
    "dashes": {
        "request": "- - -",
        "user_agent": "-",
        "priority": "-",
        "actions": "-",
        "target_list": "-",
        "code_list": "-",
        "tls": "- -",
    },
    "odd-request-ipv6": {"request": "- http://h:80-/ ", "client": "2001:db8::1:4431"},
    "bracketed-ipv6": {"client": "[2001:db8::1]:4431", "target": "[2001:db8::20]:8080"},
    "two-targets": {"target_list": "10.0.1.20:8080 10.0.1.21:8080", "code_list": "200 -"},
    "trailing": {"trailing": " extra more"},
    "quoted-trailing": {"trailing": ' "new quoted field"'},
    "double-space": {"trailing": "  "},
    "double-space-inside": {"times": "0.001  0.012 0.000", "tls": "ECDHE-RSA-AES128-GCM-SHA256  TLSv1.2"},
    "tab": {"codes": "200\t200"},
}


@pytest.mark.parametrize("fields", sorted(LAST_FIELD_BY_COUNT))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fast_path_and_general_tokenizer_agree(fields: int, variant: str) -> None:
    line = make_line(fields=fields, **VARIANTS[variant])  # type: ignore[arg-type]
    assert parse_alb_access(line) == _parse_general(line.split('"'))


@pytest.mark.parametrize("line", [DOC_HTTP_25, DOC_HTTP_33, DOC_LAMBDA_FAILED, DOC_HTTP_27_BARE_LISTS])
def test_fast_path_and_general_tokenizer_agree_on_doc_examples(line: str) -> None:
    assert parse_alb_access(line) == _parse_general(line.split('"'))


@pytest.mark.parametrize(
    ("codes", "priority", "expected"),
    [
        ("200 200", "1", (200, 200, 1)),
        ("0 000", "0", (0, 0, 0)),
        ("1000 9999", "50000", (1000, 9999, 50000)),
        ("561 -", "-1", (561, None, -1)),
    ],
    ids=["usual", "zeros", "beyond-three-digits", "auth-error"],
)
def test_unusual_status_codes_and_priorities(
    codes: str, priority: str, expected: tuple[int, int | None, int]
) -> None:
    for fields in sorted(LAST_FIELD_BY_COUNT):
        code_list = codes.split()[1]
        record = parse_alb_access(
            make_line(fields=fields, codes=codes, priority=priority, code_list=code_list)
        )
        assert (
            record["elb_status_code"],
            record["target_status_code"],
            record["matched_rule_priority"],
        ) == expected
        if fields >= 27:
            assert record["target_status_code_list"] == (None if code_list == "-" else [expected[1]])

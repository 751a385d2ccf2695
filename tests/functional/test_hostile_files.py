"""Hostile files through the Lambda handler: damaged gzip, odd bytes in lines, huge lines, plain .log files.

Each object is put into the moto bucket, announced with the SNS event the stack's topic delivers, and
forwarded to the real receiver on 127.0.0.1. For each one the test checks what a user sees: the summary
line (outcome, error type and message), whether the invocation failed (so Lambda retries the event and
then keeps it in the dead-letter queue), how many of the file's lines the receiver got, and that no run of
6 characters of the endpoint credential appears in anything captured (log lines, metrics, exceptions,
the dead-letter record).
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable
from typing import Any

import pytest
from alb_log_factory import ACCOUNT, REGION, gzip_lines, log_key, make_alb_lines
from aws_events import Stored
from hostile import assert_nothing_leaked, bearer_forms, bearer_secret
from ingest_server import IngestServer

from forwarder.source import ObjectCorruptError

pytest_plugins = ["conftest_forwarder", "hostile"]

TEN_MB = 10 * 1024 * 1024
MAX_LINE_BYTES = 65536  # the forwarder's default
RANDOM_BYTES = random.Random(3).randbytes(5000)  # noqa: S311 -- test data


@pytest.fixture
def forward(hostile: Any, forwarder_env: Any) -> Callable[[Stored], tuple[dict[str, Any], Exception | None]]:
    """Invoke the handler for one object, with a bearer credential configured; check that no run of it
    leaked into anything captured; return the summary line and the error the invocation raised."""
    bearer_secret(forwarder_env)

    def run(obj: Stored) -> tuple[dict[str, Any], Exception | None]:
        outcome = hostile(objects=[obj])
        assert_nothing_leaked(outcome, *bearer_forms())
        return outcome.summary, outcome.error

    return run


def assert_failed_as_corrupt(summary: dict[str, Any], error: Exception | None, obj: Stored) -> str:
    """The object failed, so it is kept for retry and the dead-letter queue; return the error message."""
    assert isinstance(error, ObjectCorruptError)
    assert (summary["outcome"], summary["error_type"]) == ("failed", "ObjectCorruptError")
    assert summary["error"] == str(error)
    assert str(error).startswith(f"s3://{obj.bucket}/{obj.key} is not valid gzip (")
    return str(error)


# --- .gz objects that are not gzip: nothing is sent -----------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "starts_with"),
    [
        pytest.param(lambda data: b"\x1f\x8c" + data[2:], "1f 8c 08 00 00 00 00 00", id="bad-magic"),
        pytest.param(lambda data: RANDOM_BYTES, RANDOM_BYTES[:8].hex(" "), id="random-bytes"),
        pytest.param(gzip.decompress, "68 32 20", id="plain-text-under-gz"),
    ],
)
def test_gz_object_that_is_not_gzip_fails_and_sends_nothing(
    forward: Any,
    put_log: Any,
    ingest: IngestServer,
    damage: Any,
    starts_with: str,
) -> None:
    lines = make_alb_lines(40)
    obj = put_log(log_key(), lines=lines, body=damage(gzip_lines(lines)))
    summary, error = forward(obj)
    message = assert_failed_as_corrupt(summary, error, obj)
    assert f"(the object is not gzip: it starts with {starts_with}" in message
    assert "(gzip starts with 1f 8b)" in message
    assert (summary["lines"], summary["records_sent"]) == (0, 0)
    assert ingest.requests == []


def test_empty_gz_object_is_zero_lines_and_ok(forward: Any, put_log: Any, ingest: IngestServer) -> None:
    obj = put_log(log_key(), lines=[], body=b"")
    summary, error = forward(obj)
    assert error is None
    assert (summary["outcome"], summary["lines"], summary["records_sent"]) == ("ok", 0, 0)
    assert ingest.requests == []


# --- damaged gzip: the lines before the damage arrive, and the object still fails -------------------------


def test_trailing_garbage_after_a_valid_member_delivers_its_lines_then_fails(
    forward: Any, put_log: Any, ingest: IngestServer
) -> None:
    lines = make_alb_lines(120)
    member = gzip_lines(lines)
    garbage = b"<html>proxy error</html>\n"
    obj = put_log(log_key(), lines=lines, body=member + garbage)
    summary, error = forward(obj)
    message = assert_failed_as_corrupt(summary, error, obj)
    assert (
        f"({len(garbage)} bytes after the last complete gzip member (ending at byte {len(member) - 1}) "
        f"are not gzip: {garbage[:16].hex(' ')} ...)"
    ) in message
    assert "the object is truncated" not in message
    assert (summary["lines"], summary["records_sent"]) == (120, 120)
    assert [r["line_number"] for r in ingest.records()] == list(range(1, 121))


def test_truncated_member_delivers_the_complete_lines_before_the_cut_then_fails(
    forward: Any, put_log: Any, ingest: IngestServer
) -> None:
    lines = make_alb_lines(400)
    data = gzip_lines(lines)
    obj = put_log(log_key(), lines=lines, body=data[: len(data) * 2 // 3])
    summary, error = forward(obj)
    message = assert_failed_as_corrupt(summary, error, obj)
    assert "gzip stream ends inside a member (member starting at byte 0" in message
    assert "the object is truncated" in message
    received = ingest.records()
    assert 0 < len(received) == summary["lines"] == summary["records_sent"] < 400
    # Only whole lines: the partial line at the cut is not sent.
    assert not [r for r in received if "parse_error" in r]
    assert [r["request"] for r in received] == [line.split('"', 2)[1] for line in lines[: len(received)]]


# --- odd bytes inside lines: every line arrives, the object is ok -----------------------------------------


def test_nul_bytes_inside_lines_are_kept_and_every_line_counted(
    forward: Any, put_log: Any, ingest: IngestServer
) -> None:
    lines = make_alb_lines(20)
    lines[4] = lines[4].replace(' "Root=', ' "\x00Root=', 1)  # NUL inside a quoted field: still parses
    lines[9] = "\x00" * 64  # a run of NULs where a line should be (a file pre-allocated and not filled)
    obj = put_log(log_key(), lines=lines)
    summary, error = forward(obj)
    assert error is None
    assert (summary["outcome"], summary["lines"], summary["records_sent"]) == ("ok", 20, 20)
    assert summary["unparseable"] == 1
    received = ingest.records()
    assert len(received) == 20
    assert received[4]["trace_id"].startswith("\x00Root=")
    assert received[9]["raw"] == "\x00" * 64
    assert received[9]["parse_error"] == (
        "not an ALB access log line: expected 12 fields before the quoted request, found 1"
    )


def test_invalid_utf8_is_replaced_and_the_line_still_parses(
    forward: Any, put_log: Any, ingest: IngestServer
) -> None:
    lines = make_alb_lines(10)
    text = "".join(f"{line}\n" for line in lines).encode()
    marker = b' "Root='
    at = text.index(marker)
    body = gzip.compress(text[:at] + b' "\xff\xfe\xc3Root=' + text[at + len(marker) :], mtime=0)
    obj = put_log(log_key(), lines=lines, body=body)
    summary, error = forward(obj)
    assert error is None
    assert (summary["outcome"], summary["lines"], summary["records_sent"], summary["unparseable"]) == (
        "ok",
        10,
        10,
        0,
    )
    received = ingest.records()
    assert len(received) == 10
    assert received[0]["trace_id"].startswith("\ufffd\ufffd\ufffdRoot=")


# --- huge lines: cut at MAX_LINE_BYTES, flagged, counted ---------------------------------------------------


def test_ten_megabyte_single_line_is_truncated_and_counted(
    forward: Any, put_log: Any, ingest: IngestServer
) -> None:
    huge = "x" * TEN_MB
    obj = put_log(log_key(), lines=[huge], body=gzip.compress(huge.encode(), compresslevel=1, mtime=0))
    summary, error = forward(obj)
    assert error is None
    assert (summary["outcome"], summary["lines"], summary["records_sent"]) == ("ok", 1, 1)
    assert (summary["truncated"], summary["unparseable"]) == (1, 1)
    (record,) = ingest.records()
    assert record["truncated"] is True
    assert record["raw"] == "x" * MAX_LINE_BYTES


def test_ten_megabyte_line_between_normal_lines_leaves_its_neighbours_whole(
    forward: Any, put_log: Any, ingest: IngestServer
) -> None:
    lines = make_alb_lines(40)
    # A realistic monster: an ALB line whose user agent is 10 MB (the rest of the line is lost with the cut).
    head, request, between, agent, rest = lines[20].split('"', 4)
    lines.insert(20, f'{head}"{request}"{between}"{"A" * TEN_MB}{agent}"{rest}')
    obj = put_log(log_key(), lines=lines, body=gzip_lines(lines, level=1))
    summary, error = forward(obj)
    assert error is None
    assert (summary["outcome"], summary["lines"], summary["records_sent"]) == ("ok", 41, 41)
    assert summary["truncated"] == 1
    received = ingest.records()
    assert [r["line_number"] for r in received] == list(range(1, 42))
    assert [r["line_number"] for r in received if r.get("truncated")] == [21]
    assert len(received[20]["raw"].encode()) <= MAX_LINE_BYTES
    assert summary["unparseable"] == 1  # the cut line lost its closing quotes; every other line parses
    assert not [r for r in received if "parse_error" in r and not r.get("truncated")]


# --- a plain .log file (Classic ELB): read as text --------------------------------------------------------

CLASSIC_LINES = [
    "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 "
    '0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -',
    "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001065 0.000015 "
    '0.000023 - - 57 502 "- - - " "-" ECDHE-ECDSA-AES128-GCM-SHA256 TLSv1.2',
    "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 - -1 -1 -1 503 0 0 0 "
    '"GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -',
]
CLASSIC_KEY = (
    f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/2015/05/13/"
    f"{ACCOUNT}_elasticloadbalancing_{REGION}_my-loadbalancer_20150513T2340Z_172.160.001.192_20sg8hgm.log"
)


def test_plain_classic_elb_log_is_read_as_text(forward: Any, put_log: Any, ingest: IngestServer) -> None:
    body = "".join(f"{line}\n" for line in CLASSIC_LINES).encode()
    obj = put_log(CLASSIC_KEY, lines=CLASSIC_LINES, body=body)
    summary, error = forward(obj)
    assert error is None
    assert (summary["outcome"], summary["log_type"], summary["lines"], summary["records_sent"]) == (
        "ok",
        "classic_elb_access",
        3,
        3,
    )
    assert summary["unparseable"] == 0
    received = ingest.records()
    assert [r["elb_status_code"] for r in received] == [200, None, 503]
    assert received[2]["backend_ip"] is None

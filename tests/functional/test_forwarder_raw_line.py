"""INCLUDE_RAW_LINE=true through the Lambda handler: every parsed record arrives with its original line."""

from __future__ import annotations

from typing import Any

from alb_log_factory import MALFORMED_LINE, log_key, make_alb_lines
from aws_events import s3_notification, sqs_event
from ingest_server import IngestServer

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")


def test_parsed_records_carry_their_line_and_unparsed_ones_only_raw(
    invoke: Any, put_log: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(INCLUDE_RAW_LINE="true")
    lines = make_alb_lines(30, malformed_every=7)
    obj = put_log(KEY, lines)
    assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    received = sorted(ingest.records(), key=lambda r: r["line_number"])
    assert [r["line_number"] for r in received] == list(range(1, 31))
    for line, record in zip(lines, received, strict=True):
        if line == MALFORMED_LINE:
            assert record["raw"] == line
            assert "raw_line" not in record
        else:
            assert record["raw_line"] == line
            assert "parse_error" not in record
    assert sum(line == MALFORMED_LINE for line in lines) == 4


def test_by_default_records_do_not_carry_the_line(invoke: Any, put_log: Any, ingest: IngestServer) -> None:
    obj = put_log(KEY, count=5)
    assert invoke(sqs_event(s3_notification(obj))) == {"batchItemFailures": []}
    assert all("raw_line" not in record for record in ingest.records())

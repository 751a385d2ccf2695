"""Flat memory on big objects, and what a user sees per object: summary line and EMF metrics."""

from __future__ import annotations

import gzip
import json
import logging
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from alb_log_factory import MALFORMED_LINE, gzip_lines, log_key, make_alb_lines
from aws_events import FUNCTION_NAME, s3_notification, sns_event
from ingest_server import IngestServer

from forwarder.config import Config
from forwarder.pipeline import forward_object
from forwarder.sender import HttpResponse, Sender

pytest_plugins = ["conftest_forwarder"]

KEY = log_key(prefix="prod")


class GeneratedBody:
    """A GetObject body produced on the fly: one gzip member repeated (a valid multi-member gzip file)."""

    def __init__(self, member: bytes, repeats: int, chunk_size: int) -> None:
        self.member = member
        self.repeats = repeats
        self.chunk_size = chunk_size

    def iter_chunks(self, chunk_size: int) -> Iterator[bytes]:
        # Smaller chunks than asked for (64 KiB, not 1 MiB) keep the test fast under tracemalloc; the
        # forwarder must cope with any chunk sizes anyway.
        size = min(chunk_size, self.chunk_size)
        pending = b""
        for _ in range(self.repeats):
            pending += self.member
            while len(pending) >= size:
                yield pending[:size]
                pending = pending[size:]
        if pending:
            yield pending

    def close(self) -> None:
        return


class GeneratedS3:
    def __init__(self, member: bytes, repeats: int, chunk_size: int = 64 * 1024) -> None:
        self.body = GeneratedBody(member, repeats, chunk_size)

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        return {"Body": self.body, "ETag": '"9b2cf535f27731c974343645a3985328-12"', "ContentLength": None}


class CountingTransport:
    """Accepts every batch and keeps only counts, so the measurement is of the forwarder."""

    def __init__(self) -> None:
        self.records = 0
        self.largest_body = 0

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpResponse:
        data = gzip.decompress(body)
        self.largest_body = max(self.largest_body, len(data))
        self.records += data.count(b'"event_id"')
        return HttpResponse(202, None, b"")


def peak_memory(member: bytes, repeats: int, batch_bytes: int) -> tuple[int, int, int]:
    """(lines forwarded, largest body seen, peak bytes allocated while forwarding)."""
    transport = CountingTransport()
    sender = Sender(
        Config(endpoint="https://logs.example.com/in", batch_max_bytes=batch_bytes), None, transport=transport
    )
    s3 = GeneratedS3(member, repeats)
    tracemalloc.start()
    try:
        stats = forward_object(s3, "bucket", KEY, sender=sender)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.lines == transport.records
    return stats.lines, transport.largest_body, peak


def test_memory_stays_flat_whatever_the_object_size() -> None:
    lines = make_alb_lines(500, seed=7)
    member = gzip_lines(lines)
    line_bytes = sum(len(line) + 1 for line in lines)
    batch_bytes = 256 * 1024
    peak_memory(member, 1, batch_bytes)  # warm-up: lazy imports, caches

    small_lines, _, small_peak = peak_memory(member, 4, batch_bytes)
    big_lines, largest_body, big_peak = peak_memory(member, 24, batch_bytes)

    assert (small_lines, big_lines) == (2000, 12000)
    assert line_bytes * 24 > 7 * 1024 * 1024  # and ~17 MB as JSON records
    assert largest_body <= batch_bytes
    # Six times the data, the same memory: a batch, a chunk and its decompressed piece at a time.
    assert big_peak < small_peak + 1024 * 1024, (small_peak, big_peak)
    assert big_peak < 6 * 1024 * 1024, big_peak


def test_summary_line_and_metrics_per_object(  # noqa: PLR0917 -- pytest fixtures
    invoke: Any,
    put_log: Any,
    forwarder_env: Any,
    ingest: IngestServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    forwarder_env(MAX_LINE_BYTES="300", BATCH_MAX_RECORDS="25")
    lines = make_alb_lines(60)
    lines[9] = MALFORMED_LINE
    lines[19] = MALFORMED_LINE
    first = put_log(log_key(suffix="first001"), lines=lines)
    second = put_log(log_key(suffix="second02"), count=5)
    with caplog.at_level(logging.INFO):
        invoke(sns_event(s3_notification(first, second)))

    long_lines = sum(1 for line in lines if len(line.encode()) > 300)
    assert long_lines > 0
    records = [r for r in ingest.records() if r["s3_key"] == first.key]
    assert len(records) == 60  # truncated lines are flagged, not dropped
    assert sum(1 for r in records if r.get("truncated")) == long_lines

    summaries = [r.summary for r in caplog.records if r.name == "forwarder.summary"]
    assert [s["key"] for s in summaries] == [first.key, second.key]
    summary = summaries[0]
    assert summary["bucket"] == first.bucket
    assert summary["log_type"] == "alb_access"
    assert summary["lines"] == 60
    assert summary["unparseable"] == 2 + sum(1 for r in records if r.get("truncated") and "parse_error" in r)
    assert summary["parsed"] == 60 - summary["unparseable"]
    assert summary["truncated"] == long_lines
    assert summary["records_sent"] == 60
    assert summary["batches"] == 3
    assert summary["retries"] == 0
    assert summary["bytes_raw"] == first.size
    first_requests = [r for r in ingest.accepted() if r.logs and r.logs[0]["s3_key"] == first.key]
    assert summary["bytes_sent"] == sum(len(r.raw_body) for r in first_requests)
    assert summary["outcome"] == "ok"
    assert summary["seconds"] >= 0

    documents = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    assert len(documents) == 2
    emf = documents[0]
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "AlbLogOnboarding"
    assert directive["Dimensions"] == [["FunctionName"]]
    names = {m["Name"] for m in directive["Metrics"]}
    assert {
        "LinesRead",
        "RecordsSent",
        "UnparseableLines",
        "DeliveryRetries",
        "DeliveryFailures",
        "ObjectsFailed",
    } <= names
    assert all(name in emf for name in names)
    assert emf["FunctionName"] == FUNCTION_NAME
    assert (emf["LinesRead"], emf["RecordsSent"], emf["UnparseableLines"]) == (60, 60, summary["unparseable"])
    assert (emf["DeliveryFailures"], emf["ObjectsFailed"]) == (0, 0)
    assert isinstance(emf["_aws"]["Timestamp"], int)

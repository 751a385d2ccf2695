"""One S3 object end to end: stream -> lines -> records -> batches -> gzip -> POST, counting everything.

``forward_object`` is what the Lambda handler calls for each announced object, and what a replay tool calls
for objects listed by hand. Memory stays flat: the body is read in chunks, lines and records are produced
lazily, and at most one batch (``BATCH_MAX_BYTES`` of JSON plus its gzip) is held at a time.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any

from forwarder import jsonutil
from forwarder.metrics import OUTCOME_FAILED, OUTCOME_OK, OUTCOME_TEST_MODE, ObjectStats
from forwarder.parsers import detect_log_type
from forwarder.reader import CorruptObjectError, Line, compression_for, iter_lines
from forwarder.records import iter_records
from forwarder.sender import (
    Batch,
    DeadlineError,
    DeliveryError,
    Sender,
    iter_batches,
)
from forwarder.source import ObjectCorruptError, S3Client, open_object

logger = logging.getLogger(__name__)

__all__ = ["DeadlineError", "forward_object"]


def forward_object(
    s3: S3Client,
    bucket: str,
    key: str,
    *,
    sender: Sender,
    version_id: str | None = None,
    seconds_left: Callable[[], float] = lambda: math.inf,
    report: Callable[[ObjectStats], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ObjectStats:
    """Deliver every line of s3://bucket/key; return the counters, or raise after reporting the failure.

    Errors: source.SourceError subclasses (missing, access denied, corrupt, read failure),
    sender.DeliveryError subclasses, DeadlineError, auth.CredentialError. The object's summary (and
    metrics, through ``report``) is emitted in every case.
    """
    stats = ObjectStats(bucket=bucket, key=key)
    started = clock()
    try:
        _run(s3, stats, sender=sender, version_id=version_id, seconds_left=seconds_left)
    except Exception as exc:
        stats.outcome = OUTCOME_FAILED
        stats.error_type = type(exc).__name__
        stats.error = str(exc)
        if isinstance(exc, DeliveryError):
            stats.delivery_failures = 1
            stats.retries += exc.retries
        raise
    else:
        stats.outcome = OUTCOME_TEST_MODE if sender.config.test_mode else OUTCOME_OK
    finally:
        stats.seconds = clock() - started
        if report is not None:
            report(stats)
    return stats


def _run(
    s3: S3Client,
    stats: ObjectStats,
    *,
    sender: Sender,
    version_id: str | None,
    seconds_left: Callable[[], float],
) -> None:
    config = sender.config
    obj = open_object(s3, stats.bucket, stats.key, version_id=version_id)
    stats.etag = obj.etag
    compressed = compression_for(obj.key)
    damage: list[CorruptObjectError] = []
    lines = _until_damage(
        iter_lines(
            _count_bytes(obj.chunks, stats), compressed=compressed, max_line_bytes=config.max_line_bytes
        ),
        damage,
    )
    first = next(lines, None)
    stats.log_type = detect_log_type(obj.key, first.text if first is not None else None)
    if first is not None:
        records = iter_records(
            chain((first,), lines), log_type=stats.log_type, bucket=obj.bucket, key=obj.key, etag=obj.etag
        )
        batches = iter_batches(
            _encode(records, stats), max_records=config.batch_max_records, max_bytes=config.batch_max_bytes
        )
        done = 0
        try:
            for batch in batches:
                _deliver(
                    batch, stats, first_line=done + 1, sender=sender, seconds_left=seconds_left, uri=obj.uri
                )
                done += batch.records
        finally:
            # Stopped early (deadline, delivery error): close the generators now so the line counters
            # are final before the summary is written.
            batches.close()
    if damage:
        # Raised only once every line before the damage was delivered: whatever can be read arrives,
        # and the object still fails, so it is retried and then kept in the dead-letter queue.
        raise ObjectCorruptError(
            f"{obj.uri} is not valid gzip ({damage[0]}); the {stats.lines} lines before the damage were "
            f"read and {stats.records_sent} records sent. Check that the object is a complete ELB log file "
            "(not truncated, re-encoded or appended to)"
        ) from damage[0]


def _until_damage(lines: Iterator[Line], damage: list[CorruptObjectError]) -> Iterator[Line]:
    """The lines up to the first damaged byte; the damage is kept in `damage` instead of raised."""
    try:
        yield from lines
    except CorruptObjectError as exc:
        damage.append(exc)


def _count_bytes(chunks: Iterator[bytes], stats: ObjectStats) -> Iterator[bytes]:
    for chunk in chunks:
        stats.bytes_raw += len(chunk)
        yield chunk


def _encode(records: Iterator[dict[str, Any]], stats: ObjectStats) -> Iterator[bytes]:
    """Serialize each record once and count it; the hot loop of the forwarder."""
    dumps = jsonutil.dumps
    lines = unparseable = truncated = 0
    try:
        for record in records:
            lines += 1
            if "parse_error" in record:
                unparseable += 1
            if record.get("truncated"):
                truncated += 1
            yield dumps(record)
            if lines & 0x3FF == 0:  # keep the counters current for error messages, cheaply
                stats.lines, stats.unparseable, stats.truncated = lines, unparseable, truncated
    finally:
        stats.lines, stats.unparseable, stats.truncated = lines, unparseable, truncated
        stats.parsed = lines - unparseable


def _deliver(
    batch: Batch,
    stats: ObjectStats,
    *,
    first_line: int,
    sender: Sender,
    seconds_left: Callable[[], float],
    uri: str,
) -> None:
    needed = sender.seconds_needed()
    left = seconds_left()
    if left < needed:
        raise DeadlineError(
            f"stopped before sending lines {first_line}-{first_line + batch.records - 1} of {uri}: "
            f"{max(left, 0):.1f}s left in the invocation, {needed:g}s needed for one attempt "
            f"(HTTP_TIMEOUT_SECONDS + margin). {stats.records_sent} records were sent; the retry resends "
            "the object with the same event_ids. Raise the function timeout or lower HTTP_TIMEOUT_SECONDS"
        )
    body = batch.compress(sender.config.compression_level)
    if sender.config.test_mode:
        logger.info(
            "test mode: would POST %d records (%d bytes, %d gzip) from %s to %s",
            batch.records,
            batch.raw_bytes,
            len(body),
            uri,
            sender.endpoint_name,
            extra={"sample_record": batch.first_record.decode("utf-8", "replace")}
            if stats.batches == 0
            else {},
        )
        stats.batches += 1
        return
    result = sender.send(body, seconds_left=seconds_left)
    stats.retries += result.retries
    stats.batches += 1
    stats.records_sent += batch.records
    stats.bytes_sent += len(body)

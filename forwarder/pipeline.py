"""One unit end to end: lines -> records -> batches -> gzip -> POST, counting everything.

A unit is an S3 object or a CloudWatch Logs batch (forwarder.units). ``forward_unit`` is what the Lambda
handler calls for each announced unit; ``forward_object`` is the S3 case, what a replay tool calls for
objects listed by hand. Memory stays flat: the body is read in chunks, lines and records are produced
lazily, and few batches are held at a time: the one being sent, those queued behind it (``QUEUED_BYTES``
in all, or one when batches are larger) and the next, built while the intake answers.

With a ``continuation`` (forwarder.continuation), a unit that stops on a delivery error or the deadline
after some of its lines were delivered hands the rest on, from the first line not delivered, and ends
``continued`` instead of failing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from forwarder.continuation import Continuation
from forwarder.destinations import fit_entry, limits_for
from forwarder.metrics import OUTCOME_CONTINUED, OUTCOME_FAILED, OUTCOME_OK, OUTCOME_TEST_MODE, ObjectStats
from forwarder.sender import (
    Batch,
    DeadlineError,
    DeliveryError,
    PermanentDeliveryError,
    Sender,
    iter_batches,
)
from forwarder.source import S3Client
from forwarder.units import S3ObjectUnit, Unit

logger = logging.getLogger(__name__)

__all__ = ["DeadlineError", "RejectedRecordsError", "forward_object", "forward_unit"]

MAX_REASONS_LOGGED = 3

# A record -> record stage between parsing and encoding (forwarder.geo's enrichment).
Enrich = Callable[[Iterator[dict[str, Any]]], Iterator[dict[str, Any]]]


class RejectedRecordsError(PermanentDeliveryError):
    """The intake refused some records for good; every other record of the unit was delivered."""


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
    enrich: Enrich | None = None,
) -> ObjectStats:
    """Deliver every line of s3://bucket/key; return the counters, or raise after reporting the failure.

    Errors: source.SourceError subclasses (missing, access denied, corrupt, read failure),
    sender.DeliveryError subclasses, DeadlineError, auth.CredentialError. The object's summary (and
    metrics, through ``report``) is emitted in every case.
    """
    unit = S3ObjectUnit(s3, bucket, key, version_id=version_id)
    return forward_unit(
        unit, sender=sender, seconds_left=seconds_left, report=report, clock=clock, enrich=enrich
    )


def forward_unit(
    unit: Unit,
    *,
    sender: Sender,
    seconds_left: Callable[[], float] = lambda: math.inf,
    report: Callable[[ObjectStats], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    enrich: Enrich | None = None,
    continuation: Continuation | None = None,
) -> ObjectStats:
    """Deliver every record of one unit (an S3 object, a CloudWatch Logs batch), as forward_object does;
    ``enrich``, when given, adds fields to each record before it is encoded; ``continuation``, when given,
    takes the rest of a unit this invocation cannot finish (outcome ``continued``)."""
    stats = unit.new_stats()
    started = clock()
    if continuation is not None:
        seconds_left = _sooner(seconds_left, continuation.reserve_seconds)
    try:
        _run(unit, stats, sender=sender, seconds_left=seconds_left, enrich=enrich, continuation=continuation)
    except Exception as exc:
        stats.outcome = OUTCOME_FAILED
        stats.error_type = type(exc).__name__
        stats.error = str(exc)
        if isinstance(exc, DeliveryError):
            stats.delivery_failures = 1
            stats.retries += exc.retries
        raise
    else:
        if stats.continued_at is not None:
            stats.outcome = OUTCOME_CONTINUED
        else:
            stats.outcome = OUTCOME_TEST_MODE if sender.config.test_mode else OUTCOME_OK
    finally:
        stats.seconds = clock() - started
        if report is not None:
            report(stats)
    return stats


def _run(
    unit: Unit,
    stats: ObjectStats,
    *,
    sender: Sender,
    seconds_left: Callable[[], float],
    enrich: Enrich | None,
    continuation: Continuation | None,
) -> None:
    config = sender.config
    records = unit.records(stats, config)
    if enrich is not None:
        records = enrich(records)
    destination = sender.destination
    batches = iter_batches(
        _encode(records, stats, destination.encode, limits_for(config.output_format).max_entry_bytes),
        framing=destination.framing,
        max_records=config.batch_max_records,
        max_bytes=config.batch_max_bytes,
    )
    if not config.test_mode:
        sender.prepare()
    progress = _Progress()
    try:
        _deliver_in_order(
            batches,
            lambda batch, first_line: _deliver(
                batch, stats, first_line=first_line, sender=sender, seconds_left=seconds_left, uri=stats.uri
            ),
            progress,
            first_line=stats.start_line,
        )
    except DeliveryError as exc:
        # Only progress is handed on: a unit none of whose lines got through fails, so its event is
        # retried and then dead-lettered instead of making a chain of invocations that never ends.
        done = progress.delivered
        if not done or not _hand_off(unit, stats, stats.start_line + done, continuation, exc):
            raise
        return
    finally:
        # Stopped early (deadline, delivery error): close the generators now so the line counters
        # are final before the summary is written.
        batches.close()
    unit.finish(stats)
    if stats.rejected or stats.rejected_earlier:
        # Raised only now, after every other record was sent: the unit fails (its event goes back for a
        # retry, then to the dead-letter queue) and nothing is dropped silently.
        raise RejectedRecordsError(_rejected_message(stats, sender.endpoint_name))


# The name of the thread that compresses and posts batches (with a number after it).
DELIVERY_THREAD = "forwarder-delivery"


class _Progress:
    """Lines of the unit delivered so far: every line of each batch delivered, duplicates and rejected
    ones included."""

    __slots__ = ("delivered",)

    def __init__(self) -> None:
        self.delivered = 0


# The batches handed to the delivery thread and not yet delivered, the one being sent included: at most
# MAX_QUEUED, holding at most QUEUED_BYTES (uncompressed) unless there is only one. So a 4 MiB batch
# waits alone while the next is built, and the 1 MB batches of Splunk HEC and Loki queue up to four deep.
# A hand-off to an idle delivery thread waits up to the interpreter's switch interval (5 ms) for it to
# take over, about as long as building a 1 MB batch; with batches queued, the delivery thread goes from
# one to the next without that wait, and the reading thread waits less for it (measured on 100,000 ALB
# lines: about 5% less wall time for splunk_hec, loki and datadog, no change for json).
QUEUED_BYTES = 4 * 1024 * 1024
MAX_QUEUED = 4


# While batches are delivered, the interpreter hands the GIL between threads every millisecond instead of
# every 5: after each wait on the network the delivery thread needs the GIL back from the reading thread,
# which holds it while it parses, and with the default interval a request's few such hand-overs added up
# to more than it takes to build a batch. Measured on 100,000 ALB lines against a receiver in its own
# process: elasticsearch (whose answer comes after the intake has read the whole body) in 0.78 of the
# wall time, json in 0.93, the CPU time the same within the noise.
DELIVERY_SWITCH_INTERVAL = 0.001


class _SwitchInterval:
    """``sys.setswitchinterval(DELIVERY_SWITCH_INTERVAL)`` while any unit is being delivered (units may be
    delivered on several threads at once: the first to start sets it, the last to end restores it)."""

    _lock = threading.Lock()
    _active = 0
    _saved = 0.0

    def __enter__(self) -> None:
        with self._lock:
            if _SwitchInterval._active == 0:
                _SwitchInterval._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(_SwitchInterval._saved, DELIVERY_SWITCH_INTERVAL))
            _SwitchInterval._active += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            _SwitchInterval._active -= 1
            if _SwitchInterval._active == 0:
                sys.setswitchinterval(_SwitchInterval._saved)


class _Skipped(Exception):
    """A queued batch not sent because a batch before it failed."""


def _deliver_in_order(
    batches: Iterator[Batch],
    deliver: Callable[[Batch, int], None],
    progress: _Progress,
    *,
    first_line: int,
) -> None:
    """``deliver(batch, first_line)`` for each batch, in order, on a worker thread: while batches are
    compressed, sent and answered, the lines after them are read, parsed and encoded into the next.
    Batches still go out one at a time, in line order: the next is sent only once the one before is
    delivered, and after a failure no later batch is sent (those already queued are skipped). A few
    batches may wait, within ``QUEUED_BYTES``. The first failure in line order is raised: a delivery's
    before the reading of later lines (the source's error is then its context)."""
    failed = False

    def deliver_unless_failed(batch: Batch, line: int) -> None:
        nonlocal failed  # written and read on the one worker thread only
        if failed:
            raise _Skipped
        try:
            deliver(batch, line)
        except BaseException:
            failed = True
            raise

    with _SwitchInterval(), ThreadPoolExecutor(max_workers=1, thread_name_prefix=DELIVERY_THREAD) as worker:
        in_flight: deque[tuple[Future[None], int, int]] = deque()
        queued = 0  # lines handed to deliveries so far
        queued_bytes = 0  # bytes of the batches in flight
        try:
            for batch in batches:
                size = batch.raw_bytes
                while in_flight and (len(in_flight) >= MAX_QUEUED or queued_bytes + size > QUEUED_BYTES):
                    queued_bytes -= _settle(in_flight.popleft(), progress)
                future = worker.submit(deliver_unless_failed, batch, first_line + queued)
                in_flight.append((future, batch.records, size))
                queued += batch.records
                queued_bytes += size
        finally:
            # The last batches, or those sent when reading the next failed: the first failure is raised
            # (the batches after a failed one were skipped: nothing of theirs to raise).
            while in_flight:
                with contextlib.suppress(_Skipped):
                    _settle(in_flight.popleft(), progress)


def _settle(in_flight: tuple[Future[None], int, int], progress: _Progress) -> int:
    """Wait for a delivery; count its lines as delivered, or raise its error. Returns its bytes."""
    future, records, size = in_flight
    future.result()
    progress.delivered += records
    return size


def _rejected_message(stats: ObjectStats, endpoint_name: str) -> str:
    text = f"{endpoint_name} rejected {stats.rejected} of the {stats.lines} records of {stats.uri}"
    if stats.rejections:
        text += f" (first: {'; '.join(stats.rejections)})"
    if stats.rejected_earlier:
        # The earlier invocations' summary lines name those lines; the work item resumes after them.
        return (
            f"{text}, and {stats.rejected_earlier} in earlier invocations of this file (their summary lines"
            " give the lines and reasons); the others were delivered. Fix the cause on the intake, then "
            "replay the file: the receiver can drop the lines it has by event_id"
        )
    return (
        f"{text}; the others were delivered. Fix the cause on the intake (a mapping conflict, say), then "
        "redrive the event"
    )


def _sooner(seconds_left: Callable[[], float], reserve: float) -> Callable[[], float]:
    """The invocation's clock, ending ``reserve`` seconds early: time kept for queueing a continuation."""

    def left() -> float:
        return seconds_left() - reserve

    return left


def _hand_off(
    unit: Unit, stats: ObjectStats, next_line: int, continuation: Continuation | None, error: Exception
) -> bool:
    """Queue the unit from ``next_line`` on for a later invocation; False when it cannot be continued."""
    if continuation is None:
        return False
    item = unit.rest(stats, next_line)
    if item is None or not continuation(item):
        return False
    stats.continued_at = next_line
    logger.info(
        "stopped %s before line %d (%s: %s); invocation %d continues from there",
        stats.uri,
        next_line,
        type(error).__name__,
        error,
        item.invocation,
    )
    return True


def _encode(
    records: Iterator[dict[str, Any]],
    stats: ObjectStats,
    encode: Callable[[dict[str, Any]], bytes],
    max_entry_bytes: int | None,
) -> Iterator[bytes]:
    """Encode each record once, for the destination, and count it; the hot loop of the forwarder.

    A record larger than the intake takes as one entry is sent truncated and flagged, never dropped."""
    lines = unparseable = truncated = 0
    try:
        for record in records:
            lines += 1
            if "parse_error" in record:
                unparseable += 1
            data = encode(record)
            if max_entry_bytes is not None and len(data) > max_entry_bytes:
                data = fit_entry(record, encode, max_entry_bytes)
                record["truncated"] = True
            if record.get("truncated"):
                truncated += 1
            yield data
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
            f"the {stats.noun} from line {stats.start_line} with the same event_ids. Raise the function "
            "timeout or lower HTTP_TIMEOUT_SECONDS"
        )
    if sender.config.test_mode:
        body = batch.compress(sender.config.compression_level)
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
    result = sender.send(batch, seconds_left=seconds_left)
    stats.retries += result.retries
    stats.batches += 1
    stats.records_sent += batch.records - result.rejected
    stats.duplicates += result.duplicates
    stats.bytes_sent += result.bytes_sent
    if result.rejected:
        last_line = first_line + batch.records - 1
        stats.rejected += result.rejected
        for rejection in result.rejections[: MAX_REASONS_LOGGED - len(stats.rejections)]:
            where = (
                f"lines {first_line}-{last_line}"
                if rejection.position is None
                else f"line {first_line + rejection.position}"
            )
            stats.rejections.append(f"{where}: {rejection.reason}")
        logger.error(
            "%s rejected %d records of lines %d-%d of %s (first: %s); the %s will fail after the rest",
            sender.endpoint_name,
            result.rejected,
            first_line,
            last_line,
            uri,
            result.rejections[0].reason if result.rejections else "no reason given",
            stats.noun,
        )

"""`python -m forwarder replay s3://bucket/prefix/`: backfill log files already in S3.

Each file goes through ``forward_object``, the function the Lambda runs for a notified object, so the
records and their ``event_id``s are the ones the Lambda would have sent: a receiver that deduplicates on
``event_id`` drops any overlap between a backfill and live forwarding.

Resuming works like Logstash's sincedb: a small JSON state file maps every delivered key to the ETag that
was delivered. It is rewritten (temporary file + ``os.replace``) after each delivered file, so an
interrupted run leaves either the previous or the next complete state, never a torn one; the next run
skips keys whose ETag still matches and sends changed objects again.

With ``--via-lambda`` nothing is sent from here: each planned file becomes a work item on the stack's
work queue (forwarder.backfill), the forwarder functions forward it exactly as a notification of that
object, and the state file records what was enqueued (key -> ETag) so a re-run enqueues only the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from forwarder import backfill, jsonutil
from forwarder.auth import CachedCredential, CredentialError, credential_from_config
from forwarder.backfill import QueueSendError, QueueSetupError, StackSettings, WatchResult, WorkQueues
from forwarder.config import HTTP_ENDPOINT, HTTP_MAX_RETRY_WAIT_SECONDS, Config, ConfigError
from forwarder.events import ELB_TEST_FILE_SUFFIX
from forwarder.geo import GeoDatabaseError, load_enricher
from forwarder.metrics import ObjectStats, PlainFormatter
from forwarder.pipeline import Enrich, forward_object
from forwarder.progress import Progress, count_of, format_bytes, format_duration, is_terminal
from forwarder.records import normalize_etag
from forwarder.sender import Sender
from forwarder.work import WorkItem

__all__ = [
    "EnqueueSummary",
    "LogFile",
    "Plan",
    "ReplayInputError",
    "ReplayState",
    "ReplaySummary",
    "StateFileError",
    "enqueue_files",
    "file_time",
    "is_log_file",
    "parse_s3_url",
    "parse_when",
    "plan_replay",
    "replay_files",
    "run_command",
    "write_json_atomic",
]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # some files could not be delivered (they are not in the state file: a re-run retries)
EXIT_INPUT_ERROR = 2  # bad URL or date, missing bucket, access denied, bad configuration or state file
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT

STATE_VERSION = 1
DEFAULT_MAX_CONSECUTIVE_FAILURES = 5
# --via-lambda rewrites the state file after a batch unless that would spend more than this share of the
# run writing it: a state of 200,000 enqueued files (43 MB) takes 0.1 s of CPU and 0.2 s to write.
SAVE_TIME_SHARE = 0.1
LOG_SUFFIXES = (".log.gz", ".log")

# The end of the 5-minute interval a file covers, as ELB writes it in the file name:
# ..._app.my-lb.50dc6c495c0c9188_20250314T0930Z_10.0.1.25_2r6sxvm9.log.gz
_NAME_TIME = re.compile(r"_(\d{8}T\d{4}Z)_")
_S3_URL = re.compile(r"^s3://(?P<bucket>[^/]+)(?:/(?P<prefix>.*))?$", re.DOTALL)
# Current bucket naming rules, plus the upper case and underscores legacy us-east-1 buckets may have.
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_BUCKET_MISSING_CODES = frozenset({"NoSuchBucket", "404", "NotFound"})
_ACCESS_CODES = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem"})
_NO_CREDENTIALS = (
    "no AWS credentials found: configure them as for the AWS CLI (AWS_PROFILE, environment "
    "variables, SSO or an instance role)"
)


class ReplayInputError(Exception):
    """The command cannot start: a bad argument, a missing bucket, no access; the message says what to do."""


class StateFileError(ReplayInputError):
    """The state file cannot be read or belongs to another bucket."""


# --- arguments (pure) ------------------------------------------------------------------------------------


def parse_s3_url(url: str) -> tuple[str, str]:
    """'s3://bucket/prefix/' -> ('bucket', 'prefix/'); the prefix is used exactly as given (may be '')."""
    match = _S3_URL.match(url.strip())
    if match is None:
        raise ReplayInputError(f"not an s3:// URL: {url!r}; expected s3://BUCKET/PREFIX/")
    bucket, prefix = match.group("bucket"), match.group("prefix") or ""
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ReplayInputError(f"{bucket!r} is not a valid S3 bucket name (in {url!r})")
    return bucket, prefix


def parse_when(text: str) -> datetime:
    """YYYY-MM-DD (midnight UTC) or an ISO 8601 timestamp (UTC unless it carries an offset)."""
    value = text.strip()
    try:
        if _DATE_ONLY.match(value):
            parsed = datetime.strptime(value, "%Y-%m-%d")
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ReplayInputError(
            f"not a date: {text!r}; use YYYY-MM-DD or an ISO timestamp such as 2025-03-14T09:30:00Z"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def is_log_file(key: str) -> bool:
    """A load balancer log file: .log.gz (ALB, NLB) or .log (Classic ELB); not the ELB test object."""
    return key.endswith(LOG_SUFFIXES) and not key.endswith(ELB_TEST_FILE_SUFFIX)


def file_time(key: str, last_modified: datetime) -> tuple[datetime, bool]:
    """When a file's interval ended: from its ELB file name when present, else its LastModified.

    Returns (time, True when it came from the name). The name is more faithful: the date folders and
    LastModified are the delivery time, a few minutes later, and a copied object gets a new LastModified.
    """
    name = key.rsplit("/", 1)[-1]
    match = _NAME_TIME.search(name)
    if match is not None:
        try:
            return datetime.strptime(match.group(1), "%Y%m%dT%H%MZ").replace(tzinfo=UTC), True
        except ValueError:
            pass
    when = last_modified if last_modified.tzinfo else last_modified.replace(tzinfo=UTC)
    return when.astimezone(UTC), False


def _iso_minute(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%MZ")


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the state file --------------------------------------------------------------------------------------


def write_json_atomic(path: Path, document: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``document`` all at once: a crash or Ctrl-C mid-write leaves the old file."""
    # Compact, through orjson when installed. The file is rewritten after every delivered file, so this
    # matters: with 10,000 files recorded (2.9 MB) an indented dump took 0.41 s, this one 0.03 s.
    data = jsonutil.dumps(document) + b"\n"
    directory = path.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; not possible (nor needed) everywhere.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def default_state_path(bucket: str) -> Path:
    return Path(f".replay-state-{bucket}.json")


@dataclass(slots=True)
class ReplayState:
    """Delivered objects of one bucket: key -> {etag, lines, records, sent_at}, plus running totals.

    ``enqueued`` holds the objects handed to the forwarder functions by --via-lambda (key -> ETag), and
    ``work_queue`` the queue they went to: another queue's records would skip files it never received.
    """

    path: Path
    bucket: str
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    enqueued: dict[str, str] = field(default_factory=dict)
    work_queue: str | None = None

    @classmethod
    def load(cls, path: Path, bucket: str) -> ReplayState:
        """Read the state file; a missing file is an empty state."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path, bucket)
        except OSError as exc:
            raise StateFileError(f"cannot read the state file {path}: {exc.strerror or exc}") from exc
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        objects = document.get("objects") if isinstance(document, dict) else None
        if not isinstance(document, dict) or not isinstance(objects, dict):
            raise StateFileError(
                f"{path} is not a replay state file; move it away (or pass --state-file) to start afresh"
            )
        if document.get("bucket") != bucket:
            raise StateFileError(
                f"{path} records deliveries from bucket {document.get('bucket')!r}, not {bucket!r}; "
                "pass --state-file with another path"
            )
        clean = {
            str(k): v for k, v in objects.items() if isinstance(v, dict) and isinstance(v.get("etag"), str)
        }
        enqueued = document.get("enqueued")
        work_queue = document.get("work_queue")
        return cls(
            path,
            bucket,
            clean,
            {str(k): v for k, v in enqueued.items() if isinstance(v, str)}
            if isinstance(enqueued, dict)
            else {},
            work_queue if isinstance(work_queue, str) else None,
        )

    def delivered_etag(self, key: str) -> str | None:
        entry = self.objects.get(key)
        return entry["etag"] if entry is not None else None

    def use_work_queue(self, url: str) -> None:
        """Enqueue to ``url`` from now on; StateFileError if this state records another queue's items."""
        if self.enqueued and self.work_queue not in (None, url):
            raise StateFileError(
                f"{self.path} records {count_of(len(self.enqueued), 'file')} enqueued to {self.work_queue}, "
                f"not {url}; pass --state-file with another path to enqueue them to this queue too"
            )
        self.work_queue = url

    def record_enqueued(self, key: str, etag: str) -> None:
        self.enqueued[key] = etag

    def record(self, key: str, stats: ObjectStats) -> None:
        """Remember a delivered object (the ETag that was read, so a later change is sent again)."""
        self.objects[key] = {
            "etag": normalize_etag(stats.etag or ""),
            "lines": stats.lines,
            "records": stats.records_sent,
            "sent_at": _now_iso(),
        }

    def save(self) -> None:
        totals = {
            "files": len(self.objects),
            "lines": sum(int(entry.get("lines", 0)) for entry in self.objects.values()),
            "records": sum(int(entry.get("records", 0)) for entry in self.objects.values()),
        }
        document: dict[str, Any] = {
            "version": STATE_VERSION,
            "bucket": self.bucket,
            "updated_at": _now_iso(),
            "totals": totals,
            "objects": self.objects,
        }
        if self.enqueued or self.work_queue:
            totals["enqueued"] = len(self.enqueued)
            document["work_queue"] = self.work_queue
            document["enqueued"] = self.enqueued
        try:
            write_json_atomic(self.path, document)
        except OSError as exc:
            raise StateFileError(
                f"cannot write the state file {self.path} ({exc.strerror or exc}); it still holds the "
                "previous state, so a re-run sends the last file again"
            ) from exc


# --- planning --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogFile:
    key: str
    etag: str
    size: int
    time: datetime
    time_from_name: bool


@dataclass(slots=True)
class Plan:
    """What a run will send, and what it skips and why."""

    files: list[LogFile] = field(default_factory=list)
    listed: int = 0
    not_logs: int = 0
    out_of_range: int = 0
    already_delivered: int = 0
    already_enqueued: int = 0  # handed to the forwarder functions by an earlier --via-lambda run

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def time_range(self) -> tuple[datetime, datetime] | None:
        if not self.files:
            return None
        times = [f.time for f in self.files]
        return min(times), max(times)


def plan_replay(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    since: datetime | None,
    until: datetime | None,
    state: ReplayState,
) -> Plan:
    """List the prefix (in key order, page by page) and pick the log files to send."""
    plan = Plan()
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                plan.listed += 1
                key = item["Key"]
                if not is_log_file(key):
                    plan.not_logs += 1
                    continue
                when, from_name = file_time(key, item["LastModified"])
                if (since is not None and when < since) or (until is not None and when >= until):
                    plan.out_of_range += 1
                    continue
                etag = normalize_etag(str(item.get("ETag", "")))
                if state.delivered_etag(key) == etag:
                    plan.already_delivered += 1
                    continue
                if state.enqueued.get(key) == etag:
                    plan.already_enqueued += 1
                    continue
                plan.files.append(LogFile(key, etag, int(item.get("Size", 0)), when, from_name))
    except NoCredentialsError as exc:
        raise ReplayInputError(_NO_CREDENTIALS) from exc
    except ClientError as exc:
        raise _listing_error(exc, bucket, prefix) from exc
    except BotoCoreError as exc:
        raise ReplayInputError(f"could not list s3://{bucket}/{prefix}: {exc}") from exc
    return plan


def _listing_error(exc: ClientError, bucket: str, prefix: str) -> ReplayInputError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    if code in _BUCKET_MISSING_CODES:
        return ReplayInputError(f"bucket {bucket!r} does not exist ({code}); check the name in the s3:// URL")
    if code in _ACCESS_CODES:
        return ReplayInputError(
            f"access denied listing s3://{bucket}/{prefix} ({code}: {message}); your credentials need "
            "s3:ListBucket on the bucket and s3:GetObject on the prefix"
        )
    return ReplayInputError(f"could not list s3://{bucket}/{prefix} ({code}: {message})")


# --- sending ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ReplaySummary:
    """Counters of one run, for the final report."""

    sent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    not_attempted: int = 0
    lines: int = 0
    parsed: int = 0
    unparseable: int = 0
    records: int = 0
    bytes_read: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    stopped: str | None = None


def replay_files(
    s3: Any,
    bucket: str,
    files: list[LogFile],
    *,
    sender: Sender,
    state: ReplayState | None,
    progress: Progress,
    summary: ReplaySummary,
    max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
    clock: Callable[[], float] = time.monotonic,
    enrich: Enrich | None = None,
) -> ReplaySummary:
    """Send each file through forward_object; record each delivered one in ``state`` at once.

    A failed file is reported and the run goes on (it is not recorded, so the next run retries it),
    unless ``max_consecutive_failures`` files in a row failed (0: never stop): then the endpoint or the
    credentials are broken for every file and going on would only spend retries. KeyboardInterrupt
    propagates with ``summary`` up to date and the state file complete.
    """
    started = clock()
    consecutive = 0
    try:
        for index, log_file in enumerate(files):
            uri = f"s3://{bucket}/{log_file.key}"
            progress.start(uri)
            reported: list[ObjectStats] = []
            try:
                stats = forward_object(
                    _ReadCounter(s3, progress.read),
                    bucket,
                    log_file.key,
                    sender=sender,
                    report=reported.append,
                    enrich=enrich,
                )
            except Exception as exc:  # noqa: BLE001 -- every failure is reported; the run goes on
                stats = reported[0] if reported else ObjectStats(bucket=bucket, key=log_file.key)
                _count(summary, stats)
                # Every line that reports the failure starts with the URI already.
                message = (str(exc) or type(exc).__name__).replace(uri, "the object")
                summary.failed.append((log_file.key, message))
                progress.finish(
                    uri, ok=False, lines=stats.lines, size=log_file.size, seconds=stats.seconds, error=message
                )
                consecutive += 1
                if max_consecutive_failures and consecutive >= max_consecutive_failures:
                    summary.not_attempted = len(files) - index - 1
                    if summary.not_attempted:
                        summary.stopped = (
                            f"stopped after {count_of(consecutive, 'file')} in a row failed; the endpoint, "
                            "its credentials or your access to the bucket is probably broken for every file"
                        )
                    break
                continue
            consecutive = 0
            _count(summary, stats)
            summary.sent += 1
            if state is not None:
                with _interrupts_deferred():
                    state.record(log_file.key, stats)
                    state.save()
            progress.finish(uri, ok=True, lines=stats.lines, size=log_file.size, seconds=stats.seconds)
    finally:
        summary.seconds = clock() - started
        progress.close()
    return summary


class _ReadCounter:
    """The S3 client as forward_object sees it, telling the progress display how far into a file it is."""

    __slots__ = ("_on_read", "_s3")

    def __init__(self, s3: Any, on_read: Callable[[int], None]) -> None:
        self._s3 = s3
        self._on_read = on_read

    def get_object(self, **kwargs: Any) -> Any:
        response = self._s3.get_object(**kwargs)
        response["Body"] = _CountedBody(response["Body"], self._on_read)
        return response


class _CountedBody:
    __slots__ = ("_body", "_on_read")

    def __init__(self, body: Any, on_read: Callable[[int], None]) -> None:
        self._body = body
        self._on_read = on_read

    def iter_chunks(self, chunk_size: int) -> Iterator[bytes]:
        for chunk in self._body.iter_chunks(chunk_size):
            self._on_read(len(chunk))
            yield chunk

    def close(self) -> None:
        self._body.close()


def _count(summary: ReplaySummary, stats: ObjectStats) -> None:
    summary.lines += stats.lines
    summary.parsed += stats.parsed
    summary.unparseable += stats.unparseable
    summary.records += stats.records_sent
    summary.bytes_read += stats.bytes_raw
    summary.bytes_sent += stats.bytes_sent


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C while a delivered file is recorded, so it is not sent again by the next run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None or previous == signal.SIG_IGN:  # set outside Python, or Ctrl-C ignored: leave it
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


# --- enqueueing for the forwarder functions (--via-lambda) -----------------------------------------------


@dataclass(slots=True)
class EnqueueSummary:
    """Counters of one --via-lambda run, for the final report."""

    enqueued: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    retries: int = 0
    seconds: float = 0.0
    watch: WatchResult | None = None


def enqueue_files(
    sqs: Any,
    queue_url: str,
    bucket: str,
    files: list[LogFile],
    *,
    state: ReplayState,
    progress: Progress,
    summary: EnqueueSummary,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> EnqueueSummary:
    """Enqueue one work item per file, ten to a SendMessageBatch, recording each batch's items in ``state``.

    Ctrl-C lets the batch being sent finish and be recorded, then propagates with the state saved. The
    state file is rewritten after every batch while that is cheap; once it has grown so that writing it
    after every batch would take more than SAVE_TIME_SHARE of the run, it is written less often, and
    always at the end, on Ctrl-C and on errors. A kill -9 can thus enqueue the last few batches again on
    resume: the repeated items are forwarded with the same event_ids. Entries the queue would not take
    are reported in ``summary.failed`` and not recorded, so the next run enqueues them.
    """
    started = clock()
    saver = _PacedSave(state, clock)
    items = (WorkItem(bucket=bucket, key=f.key, etag=f.etag) for f in files)
    sizes = {f.key: f.size for f in files}
    try:
        for batch in backfill.batches(items):
            progress.start(batch[0].uri)
            with _interrupts_deferred():
                result = backfill.send_batch(sqs, queue_url, batch, sleep=sleep)
                for item in result.sent:
                    state.record_enqueued(item.key, item.etag)
                summary.enqueued += len(result.sent)
                summary.retries += result.retries
                summary.failed.extend((item.key, reason) for item, reason in result.failed)
                if result.sent:
                    saver.changed()
                saver.after_batch()
            for item in result.sent:
                progress.finish(item.uri, ok=True, lines=0, size=sizes[item.key], seconds=0.0)
            for item, reason in result.failed:
                progress.finish(item.uri, ok=False, lines=0, size=sizes[item.key], seconds=0.0, error=reason)
    finally:
        with _interrupts_deferred():
            saver.flush()
        summary.seconds = clock() - started
        progress.close()
    return summary


class _PacedSave:
    """Saves a changed state after a batch, unless saves would take more than SAVE_TIME_SHARE of the time."""

    __slots__ = ("_clock", "_dirty", "_not_before", "_state")

    def __init__(self, state: ReplayState, clock: Callable[[], float]) -> None:
        self._state = state
        self._clock = clock
        self._dirty = False
        self._not_before = -float("inf")

    def changed(self) -> None:
        self._dirty = True

    def after_batch(self) -> None:
        if self._dirty and self._clock() >= self._not_before:
            self.flush()

    def flush(self) -> None:
        if not self._dirty:
            return
        began = self._clock()
        self._state.save()
        ended = self._clock()
        self._dirty = False
        # A save that took t is followed by at least t * (1 / share - 1) of sending before the next one.
        self._not_before = ended + (ended - began) * (1 / SAVE_TIME_SHARE - 1)


# --- reporting -------------------------------------------------------------------------------------------


def format_plan(bucket: str, plan: Plan, *, action: str = "send", done: str = "sent") -> list[str]:
    """The dry-run listing: one line per file, then totals (``action``: what a real run would do)."""
    lines = [f"{_iso_minute(f.time)}  {f.size:>12,}  s3://{bucket}/{f.key}" for f in plan.files]
    lines.append(
        f"would {action} {count_of(len(plan.files), 'file')} ({format_bytes(plan.total_bytes)})"
        f"{_span_text(plan)}"
    )
    lines.append(_skipped_line(plan))
    lines.append(f"dry run: nothing was {done} and the state file was not written")
    return lines


def _span_text(plan: Plan) -> str:
    span = plan.time_range()
    return f" from {_iso_minute(span[0])} to {_iso_minute(span[1])}" if span else ""


def _skipped_line(plan: Plan) -> str:
    enqueued = f"{plan.already_enqueued} already enqueued, " if plan.already_enqueued else ""
    return (
        f"skipped: {plan.already_delivered} already delivered, {enqueued}{plan.not_logs} not log files, "
        f"{plan.out_of_range} outside --since/--until ({plan.listed} objects listed)"
    )


def _skipped_counts(plan: Plan) -> str:
    enqueued = f"{plan.already_enqueued} skipped (already enqueued), " if plan.already_enqueued else ""
    return (
        f"{plan.already_delivered} skipped (already delivered), {enqueued}{plan.not_logs} skipped (not log "
        f"files), {plan.out_of_range} outside --since/--until"
    )


def format_summary(bucket: str, prefix: str, plan: Plan, summary: ReplaySummary) -> list[str]:
    rate = summary.lines / summary.seconds if summary.seconds > 0 else 0.0
    lines = [
        f"replay of s3://{bucket}/{prefix}: {count_of(summary.sent, 'file')} sent, {_skipped_counts(plan)}, "
        f"{len(summary.failed)} failed"
        + (f", {summary.not_attempted} not attempted" if summary.not_attempted else ""),
        f"lines: {summary.lines:,} ({summary.parsed:,} parsed, {summary.unparseable:,} unparseable); "
        f"records sent: {summary.records:,}",
        f"bytes: {format_bytes(summary.bytes_read)} read, {format_bytes(summary.bytes_sent)} sent (gzip); "
        f"{summary.seconds:.1f}s, {rate:,.0f} lines/s",
    ]
    if summary.stopped:
        lines.append(summary.stopped)
    if summary.failed:
        lines.append("failed files (not recorded as delivered: run the same command again to retry them):")
        lines.extend(f"  s3://{bucket}/{key}: {error}" for key, error in summary.failed)
    return lines


def format_enqueue_summary(
    bucket: str, prefix: str, plan: Plan, summary: EnqueueSummary, queues: WorkQueues
) -> list[str]:
    """Enqueued, skipped and failed files; then, after a watch, what is still queued and dead-lettered."""
    lines = [
        f"backfill of s3://{bucket}/{prefix} via {queues.source}: {count_of(summary.enqueued, 'file')} "
        f"enqueued, {_skipped_counts(plan)}, {len(summary.failed)} failed",
        f"work items: {summary.enqueued:,} sent to {queues.work_queue_url} in {summary.seconds:.1f}s"
        + (
            f" ({count_of(summary.retries, 'item')} sent again after the queue failed them)"
            if summary.retries
            else ""
        ),
    ]
    watched = summary.watch
    if watched is not None:
        if watched.drained:
            lines.append(
                f"work queue drained after {format_duration(watched.seconds)}: every work item has left it"
            )
        else:
            lines.append(
                f"still queued when the watch stopped after {format_duration(watched.seconds)}: "
                f"{watched.last.describe_work()}; the forwarder goes on: run the same command "
                "again to watch (enqueued files are skipped)"
            )
        dead = watched.last.dead
        if dead is None:
            lines.append("dead-letter queue: not watched (pass --dead-letter-queue-url or --stack)")
        elif dead:
            new = watched.new_dead_letters
            lines.append(
                f"dead-letter queue: {count_of(dead, 'message')} ({new:,} new since the watch began); the "
                "forwarder's log names each failed file and its error: once the cause is fixed, run"
            )
            lines.append(f"  {queues.redrive_command()}")
        else:
            lines.append("dead-letter queue: empty")
    if summary.failed:
        lines.append("files not enqueued (not recorded: run the same command again to enqueue them):")
        lines.extend(f"  s3://{bucket}/{key}: {error}" for key, error in summary.failed)
    return lines


# --- command line ----------------------------------------------------------------------------------------


def run_command(
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run `replay` from parsed arguments; return the exit status (``clock``, ``sleep``: --via-lambda's)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if args.via_lambda:
            return _run_via_lambda(args, out, err, clock=clock, sleep=sleep)
        _refuse_options(args, _VIA_LAMBDA_OPTIONS, "these options need --via-lambda")
        return _run(args, out, err)
    except (ReplayInputError, QueueSetupError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_INPUT_ERROR


# Options of one mode given in the other are refused rather than silently ignored.
_VIA_LAMBDA_OPTIONS = (
    "stack",
    "queue_url",
    "dead_letter_queue_url",
    "concurrency",
    "memory_mb",
    "no_wait",
    "poll_seconds",
    "watch_timeout",
)
_LOCAL_OPTIONS = ("endpoint", "max_retry_wait", "max_consecutive_failures")


def _refuse_options(args: argparse.Namespace, names: tuple[str, ...], why: str) -> None:
    given = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is not None]
    if given:
        raise ReplayInputError(f"{why}: {', '.join(given)}")


def _dates_and_state(
    args: argparse.Namespace,
) -> tuple[str, str, datetime | None, datetime | None, ReplayState]:
    bucket, prefix = parse_s3_url(args.url)
    since: datetime | None = args.since
    until: datetime | None = args.until
    if since is not None and until is not None and since >= until:
        raise ReplayInputError(
            f"--since ({since.isoformat()}) must be before --until ({until.isoformat()}): "
            "--until is exclusive"
        )
    state_path: Path = args.state_file or default_state_path(bucket)
    return bucket, prefix, since, until, ReplayState.load(state_path, bucket)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    bucket, prefix, since, until, state = _dates_and_state(args)
    state_path = state.path

    sender: Sender | None = None
    credential: CachedCredential | None = None
    if not args.dry_run:
        # Configuration first: a missing endpoint should not wait for a long listing.
        sender, credential = _sender_from_env(args.endpoint, args.max_retry_wait)

    s3 = _client("s3")
    plan = plan_replay(s3, bucket, prefix, since=since, until=until, state=state)
    if args.dry_run:
        for line in format_plan(bucket, plan):
            print(line, file=out)
        if plan.listed == 0:
            print(_empty_prefix_hint(bucket, prefix), file=err)
        return EXIT_OK
    assert sender is not None  # noqa: S101 -- built above whenever this is not a dry run

    test_mode = sender.config.test_mode
    if test_mode:
        print("HTTP_TEST_MODE=true: files are parsed, nothing is sent, no state is written", file=err)
    elif plan.files and credential is not None:
        _check_credential(credential)
    if not plan.files:
        print(f"nothing to send: {_skipped_line(plan)}", file=out)
        if plan.listed == 0:
            print(_empty_prefix_hint(bucket, prefix), file=err)
        return EXIT_OK

    summary = ReplaySummary()
    with _geo_enrichment(s3, sender.config) as enrich:
        print(
            f"sending {count_of(len(plan.files), 'file')} ({format_bytes(plan.total_bytes)})"
            f"{_span_text(plan)} to {sender.endpoint_name}; {_skipped_line(plan)}",
            file=err,
        )
        progress = Progress(len(plan.files), plan.total_bytes, stream=err)
        try:
            replay_files(
                s3,
                bucket,
                plan.files,
                sender=sender,
                state=None if test_mode else state,
                progress=progress,
                summary=summary,
                max_consecutive_failures=(
                    DEFAULT_MAX_CONSECUTIVE_FAILURES
                    if args.max_consecutive_failures is None
                    else args.max_consecutive_failures
                ),
                enrich=enrich,
            )
        except KeyboardInterrupt:
            for line in format_summary(bucket, prefix, plan, summary):
                print(line, file=out)
            print(
                f"interrupted: the {count_of(summary.sent, 'file')} delivered in this run are recorded in "
                f"{state_path}; run the same command again to resume (delivered files are skipped)",
                file=err,
            )
            return EXIT_INTERRUPTED
    for line in format_summary(bucket, prefix, plan, summary):
        print(line, file=out)
    if not test_mode:
        print(f"state: {state_path} ({count_of(len(state.objects), 'file')} recorded as delivered)", file=out)
    return EXIT_FAILED if summary.failed else EXIT_OK


def _run_via_lambda(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> int:
    """Enqueue a work item per planned file for the stack's forwarder functions, then watch the queue."""
    _refuse_options(
        args, _LOCAL_OPTIONS, "not with --via-lambda (the forwarder functions send with their own settings)"
    )
    if args.dead_letter_queue_url is not None and args.stack is not None:
        raise ReplayInputError(
            "--dead-letter-queue-url goes with --queue-url; --stack reads it from the stack"
        )
    if args.stack is None and args.queue_url is None and not args.dry_run:
        raise ReplayInputError("--via-lambda needs --stack NAME (the forwarder's stack) or --queue-url URL")
    bucket, prefix, since, until, state = _dates_and_state(args)
    try:
        stack = _stack(args.stack) if args.stack is not None else None
        sizing = backfill.sizing_for(stack, memory_mb=args.memory_mb, concurrency=args.concurrency)
        if args.dry_run:
            plan = plan_replay(_client("s3"), bucket, prefix, since=since, until=until, state=state)
            return _dry_run_via_lambda(
                plan, bucket=bucket, prefix=prefix, stack=stack, sizing=sizing, out=out, err=err
            )
        queues = (
            stack.queues()
            if stack is not None
            else WorkQueues.from_urls(args.queue_url, args.dead_letter_queue_url)
        )
        sqs = _client("sqs", region=queues.region)
        queues = backfill.check_queues(sqs, queues)
    except NoCredentialsError:
        raise ReplayInputError(_NO_CREDENTIALS) from None
    state.use_work_queue(queues.work_queue_url)
    plan = plan_replay(_client("s3"), bucket, prefix, since=since, until=until, state=state)
    _warn_unreadable(stack, bucket, plan, err)
    if plan.listed == 0:
        print(_empty_prefix_hint(bucket, prefix), file=err)
    summary = EnqueueSummary()
    if plan.files:
        print(
            f"enqueuing {count_of(len(plan.files), 'file')} ({format_bytes(plan.total_bytes)})"
            f"{_span_text(plan)} to the work queue of {queues.source}; {_skipped_line(plan)}",
            file=err,
        )
        for line in backfill.format_estimate(
            len(plan.files), plan.total_bytes, sizing, uncompressed=_uncompressed(plan)
        ):
            print(line, file=err)
    else:
        print(f"nothing to enqueue: {_skipped_line(plan)}", file=err)
    note: str | None = None
    status = EXIT_OK
    watching = False
    try:
        progress = Progress(
            len(plan.files), plan.total_bytes, stream=err, clock=clock, action="enqueued", lines=False
        )
        enqueue_files(
            sqs,
            queues.work_queue_url,
            bucket,
            plan.files,
            state=state,
            progress=progress,
            summary=summary,
            sleep=sleep,
            clock=clock,
        )
        if not args.no_wait:
            watching = True
            summary.watch = _watch(sqs, queues, args, err, clock=clock, sleep=sleep)
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
        note = (
            "stopped watching: the forwarder goes on with what is queued; run the same command again to "
            "watch (enqueued files are skipped)"
            if watching
            else f"interrupted: the {count_of(summary.enqueued, 'file')} enqueued in this run are recorded "
            f"in {state.path}; run the same command again to enqueue the rest"
        )
    except QueueSendError as exc:
        status = EXIT_FAILED
        note = (
            f"error: {exc}; the files enqueued so far are recorded in {state.path}: run the same command "
            "again to enqueue the rest"
        )
    for line in format_enqueue_summary(bucket, prefix, plan, summary, queues):
        print(line, file=out)
    print(f"state: {state.path} ({count_of(len(state.enqueued), 'file')} recorded as enqueued)", file=out)
    if note is not None:
        print(note, file=err)
        return status
    watched = summary.watch
    unfinished = watched is not None and (not watched.drained or watched.new_dead_letters > 0)
    return EXIT_FAILED if summary.failed or unfinished else EXIT_OK


def _stack(name: str) -> StackSettings:
    try:
        cloudformation = _client("cloudformation", region=backfill.stack_region(name))
    except NoRegionError:
        raise ReplayInputError(
            f"no AWS region to look for stack {name} in: set AWS_REGION to the stack's region (or pass "
            "the stack ARN)"
        ) from None
    return backfill.describe_stack(cloudformation, name)


def _dry_run_via_lambda(
    plan: Plan,
    *,
    bucket: str,
    prefix: str,
    stack: StackSettings | None,
    sizing: backfill.Sizing,
    out: TextIO,
    err: TextIO,
) -> int:
    """The plan and the estimate; a stack without the work queue is a warning here, not an error."""
    if stack is not None:
        try:
            stack.queues()
        except QueueSetupError as exc:
            print(f"warning: {exc}", file=err)
    _warn_unreadable(stack, bucket, plan, err)
    lines = format_plan(bucket, plan, action="enqueue", done="enqueued")
    estimate = backfill.format_estimate(
        len(plan.files), plan.total_bytes, sizing, uncompressed=_uncompressed(plan)
    )
    for line in [*lines[:-1], *estimate, lines[-1]]:
        print(line, file=out)
    if plan.listed == 0:
        print(_empty_prefix_hint(bucket, prefix), file=err)
    return EXIT_OK


def _uncompressed(plan: Plan) -> int:
    return sum(1 for f in plan.files if not f.key.endswith(".gz"))


def _warn_unreadable(stack: StackSettings | None, bucket: str, plan: Plan, err: TextIO) -> None:
    """Warn of files the forwarder's role may not read: their work items would fail into the dead letters."""
    readable = stack.readable_prefix() if stack is not None else None
    if readable is None or not plan.files:
        return
    read_bucket, read_prefix = readable
    outside = [f for f in plan.files if bucket != read_bucket or not f.key.startswith(read_prefix)]
    if outside:
        name = stack.name if stack is not None else ""
        print(
            f"warning: {count_of(len(outside), 'file')} (e.g. s3://{bucket}/{outside[0].key}) outside "
            f"s3://{read_bucket}/{read_prefix}, the only log files the forwarder of stack {name} may "
            "read: their work items will fail and end in the dead-letter queue unless its role may read them",
            file=err,
        )


def _watch(
    sqs: Any,
    queues: WorkQueues,
    args: argparse.Namespace,
    err: TextIO,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> WatchResult:
    poll = backfill.DEFAULT_POLL_SECONDS if args.poll_seconds is None else args.poll_seconds
    print(
        f"watching the work queue until it is empty (a reading every {format_duration(poll)}); Ctrl-C "
        "stops the watch, not the forwarder",
        file=err,
    )
    display = backfill.WatchDisplay(err, tty=is_terminal(err))
    try:
        return backfill.watch(
            sqs,
            queues,
            report=display,
            poll_seconds=poll,
            timeout_seconds=(
                backfill.DEFAULT_WATCH_TIMEOUT_SECONDS if args.watch_timeout is None else args.watch_timeout
            ),
            clock=clock,
            sleep=sleep,
        )
    finally:
        display.close()


@contextlib.contextmanager
def _geo_enrichment(s3: Any, config: Config) -> Iterator[Enrich | None]:
    """GEOIP_DATABASE_S3_URI as the Lambda reads it: each database is downloaded once, for this run only."""
    if not config.geo_databases:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="replay-geo-") as downloads:
        try:
            geo = load_enricher(s3, config.geo_databases, directory=downloads)
        except GeoDatabaseError as exc:
            raise ReplayInputError(str(exc)) from None
        assert geo is not None  # noqa: S101 -- a database is configured
        try:
            yield geo.enrich
        finally:
            geo.close()


def _empty_prefix_hint(bucket: str, prefix: str) -> str:
    return (
        f"warning: no objects under s3://{bucket}/{prefix}; load balancers write to "
        "<prefix>/AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/ (the stack output LogPrefix "
        "is the <prefix>), and a prefix matches keys character by character"
    )


def _sender_from_env(
    endpoint: str | None, max_retry_wait: float | None
) -> tuple[Sender, CachedCredential | None]:
    environ = dict(os.environ)
    if endpoint is not None:
        environ[HTTP_ENDPOINT] = endpoint
    if max_retry_wait is not None:
        environ[HTTP_MAX_RETRY_WAIT_SECONDS] = repr(max_retry_wait)
    try:
        config = Config.from_env(environ)
    except ConfigError as exc:
        raise ReplayInputError(f"{exc} (replay reads the same variables as the forwarder Lambda)") from None
    _configure_logging(config.log_level)
    secret_region = _arn_region(config.auth_secret_arn)
    credential = credential_from_config(
        config,
        secretsmanager=_lazy_client("secretsmanager", region=secret_region),
        ssm=_lazy_client("ssm"),
    )
    return Sender(config, credential), credential


def _configure_logging(level: str) -> None:
    """Plain log lines on stderr at LOG_LEVEL, unless the program embedding this set up logging itself."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(PlainFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    if level != "DEBUG":
        # botocore says where it found credentials at INFO; only the forwarder's own lines matter here.
        for name in ("botocore", "boto3", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _check_credential(credential: CachedCredential) -> None:
    """Fetch the endpoint credential once before sending anything, so a wrong secret fails at once."""
    try:
        credential.get()
    except CredentialError as exc:
        raise ReplayInputError(str(exc)) from None
    except NoCredentialsError:
        raise ReplayInputError(
            f"no AWS credentials found to read the endpoint credential from {credential.source.description}"
        ) from None


def _arn_region(arn: str | None) -> str | None:
    if arn and arn.startswith("arn:"):
        parts = arn.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    return None


def _client(name: str, *, region: str | None = None) -> Any:
    config = BotoConfig(
        retries={"max_attempts": 8, "mode": "adaptive"}, user_agent_extra="alb-log-onboarding-replay"
    )
    return boto3.client(name, region_name=region, config=config)  # type: ignore[call-overload]


def _lazy_client(name: str, *, region: str | None = None) -> Callable[[], Any]:
    cache: list[Any] = []

    def get() -> Any:
        if not cache:
            cache.append(_client(name, region=region))
        return cache[0]

    return get

"""`python -m forwarder replay s3://bucket/prefix/`: backfill log files already in S3.

Each file goes through ``forward_object``, the function the Lambda runs for a notified object, so the
records and their ``event_id``s are the ones the Lambda would have sent: a receiver that deduplicates on
``event_id`` drops any overlap between a backfill and live forwarding.

Resuming works like Logstash's sincedb: a small JSON state file maps every delivered key to the ETag that
was delivered. It is rewritten (temporary file + ``os.replace``) after each delivered file, so an
interrupted run leaves either the previous or the next complete state, never a torn one; the next run
skips keys whose ETag still matches and sends changed objects again.
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
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from forwarder import jsonutil
from forwarder.auth import CachedCredential, CredentialError, credential_from_config
from forwarder.config import HTTP_ENDPOINT, HTTP_MAX_RETRY_WAIT_SECONDS, Config, ConfigError
from forwarder.events import ELB_TEST_FILE_SUFFIX
from forwarder.geo import GeoDatabaseError, load_enricher
from forwarder.metrics import ObjectStats, PlainFormatter
from forwarder.pipeline import Enrich, forward_object
from forwarder.progress import Progress, count_of, format_bytes
from forwarder.records import normalize_etag
from forwarder.sender import Sender

__all__ = [
    "LogFile",
    "Plan",
    "ReplayInputError",
    "ReplayState",
    "ReplaySummary",
    "StateFileError",
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
    """Delivered objects of one bucket: key -> {etag, lines, records, sent_at}, plus running totals."""

    path: Path
    bucket: str
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)

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
        return cls(path, bucket, clean)

    def delivered_etag(self, key: str) -> str | None:
        entry = self.objects.get(key)
        return entry["etag"] if entry is not None else None

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
        document = {
            "version": STATE_VERSION,
            "bucket": self.bucket,
            "updated_at": _now_iso(),
            "totals": totals,
            "objects": self.objects,
        }
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
                plan.files.append(LogFile(key, etag, int(item.get("Size", 0)), when, from_name))
    except NoCredentialsError as exc:
        raise ReplayInputError(
            "no AWS credentials found: configure them as for the AWS CLI (AWS_PROFILE, environment "
            "variables, SSO or an instance role)"
        ) from exc
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


# --- reporting -------------------------------------------------------------------------------------------


def format_plan(bucket: str, plan: Plan) -> list[str]:
    """The dry-run listing: one line per file, then totals."""
    lines = [f"{_iso_minute(f.time)}  {f.size:>12,}  s3://{bucket}/{f.key}" for f in plan.files]
    lines.append(
        f"would send {count_of(len(plan.files), 'file')} ({format_bytes(plan.total_bytes)}){_span_text(plan)}"
    )
    lines.append(_skipped_line(plan))
    lines.append("dry run: nothing was sent and the state file was not written")
    return lines


def _span_text(plan: Plan) -> str:
    span = plan.time_range()
    return f" from {_iso_minute(span[0])} to {_iso_minute(span[1])}" if span else ""


def _skipped_line(plan: Plan) -> str:
    return (
        f"skipped: {plan.already_delivered} already delivered, {plan.not_logs} not log files, "
        f"{plan.out_of_range} outside --since/--until ({plan.listed} objects listed)"
    )


def format_summary(bucket: str, prefix: str, plan: Plan, summary: ReplaySummary) -> list[str]:
    rate = summary.lines / summary.seconds if summary.seconds > 0 else 0.0
    lines = [
        f"replay of s3://{bucket}/{prefix}: {count_of(summary.sent, 'file')} sent, "
        f"{plan.already_delivered} skipped (already delivered), {plan.not_logs} skipped (not log files), "
        f"{plan.out_of_range} outside --since/--until, {len(summary.failed)} failed"
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


# --- command line ----------------------------------------------------------------------------------------


def run_command(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run `replay` from parsed arguments; return the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return _run(args, out, err)
    except ReplayInputError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_INPUT_ERROR


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    bucket, prefix = parse_s3_url(args.url)
    since: datetime | None = args.since
    until: datetime | None = args.until
    if since is not None and until is not None and since >= until:
        raise ReplayInputError(
            f"--since ({since.isoformat()}) must be before --until ({until.isoformat()}): "
            "--until is exclusive"
        )
    state_path: Path = args.state_file or default_state_path(bucket)
    state = ReplayState.load(state_path, bucket)

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

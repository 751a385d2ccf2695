"""Command line: `python -m forwarder parse PATH` prints the records the Lambda would send; `replay`
sends log files already in S3 through the Lambda's pipeline; `redrive` hands the dead-letter queue's
failed events back to the forwarder function.

Subcommands live in one argparse tree; each is added by its own `_add_<name>_command` function. The
modules behind `replay` and `redrive` (boto3, the HTTP sender) are imported only when those run, so
`parse` starts fast.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import partial
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from forwarder import __version__
from forwarder.config import ES_INDEX, INCLUDE_RAW_LINE, MAX_RETRY_WAIT_LIMIT
from forwarder.destinations import OUTPUT_FORMATS
from forwarder.geo import GeoDatabaseError, GeoEnricher, open_local_enricher
from forwarder.jsonutil import dumps_line
from forwarder.parsers import LOG_TYPES, ParseFunction, detect_log_type
from forwarder.parsers.grok import GrokError, compile_grok, grok_parser
from forwarder.reader import DEFAULT_MAX_LINE_BYTES, CorruptObjectError, Line, compression_for, iter_lines
from forwarder.records import iter_records
from forwarder.sizing import DEFAULT_MEMORY_MB
from forwarder.units import object_provenance

if TYPE_CHECKING:
    from forwarder.destinations import Destination

__all__ = ["main"]

EXIT_OK = 0
EXIT_INPUT_ERROR = 2  # missing/unreadable file, corrupt gzip (argparse uses 2 for usage errors too)
GROK_PREVIEW_NAME = "grok"  # the log_type of records parsed with `parse --grok`

_READ_BYTES = 1 << 20  # read the input in 1 MiB chunks, like the Lambda reads S3
_GC_YOUNG_THRESHOLD = 50_000  # allocations between young-generation collections while parsing
_WRITE_BYTES = 1 << 20  # stdout is written in pieces of about this size


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    status: int = args.handler(args)
    return status


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_program_name(),
        description="ALB log onboarding forwarder tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, title="commands")
    _add_parse_command(commands)
    _add_replay_command(commands)
    _add_redrive_command(commands)
    return parser


def _program_name() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not name or name == "__main__.py":
        return "python -m forwarder"
    return name


def _add_parse_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parse = commands.add_parser(
        "parse",
        help="parse a log file and print one JSON record per line",
        description=(
            "Parse a load balancer log file (.log.gz, .log, or - for stdin) and print, one per line, "
            "the JSON records the forwarder would send. Local files have no bucket: s3_bucket is "
            "null, s3_key is PATH as given, and event ids are computed with an empty ETag."
        ),
    )
    parse.add_argument("path", metavar="PATH", help="log file (gzip or plain), or - to read stdin")
    formats = parse.add_mutually_exclusive_group()
    formats.add_argument(
        "--format",
        choices=LOG_TYPES,
        help="log type; detected from the file name, else from the first line, when omitted",
    )
    formats.add_argument(
        "--grok",
        metavar="PATTERN",
        type=_grok,
        help=f"parse with this grok pattern, as a custom format does (log_type {GROK_PREVIEW_NAME})",
    )
    parse.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        help="print the request bodies the forwarder would send with this OUTPUT_FORMAT (uncompressed, "
        "cut in batches at the format's default limits) instead of one record per line",
    )
    parse.add_argument(
        "--es-index",
        metavar="NAME",
        default=os.environ.get(ES_INDEX),
        help="index or data stream for --output-format elasticsearch (default: $ES_INDEX)",
    )
    parse.add_argument(
        "--include-raw-line",
        action="store_true",
        default=os.environ.get(INCLUDE_RAW_LINE, "").strip().lower() == "true",
        help="add the original line to every parsed record, in raw_line (default: $INCLUDE_RAW_LINE)",
    )
    parse.add_argument(
        "--geoip",
        metavar="FILE[,ASN_FILE]",
        type=_geoip,
        help="add client_geo from these local MaxMind DB (.mmdb) files, as GEOIP_DATABASE_S3_URI does "
        "in the forwarder (e.g. GeoLite2-City.mmdb,GeoLite2-ASN.mmdb)",
    )
    parse.add_argument(
        "--summary",
        action="store_true",
        help="print line counts (lines, parsed, unparseable, truncated) to stderr at the end",
    )
    parse.add_argument(
        "--max-line-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_LINE_BYTES,
        help="cut longer lines to this many bytes and flag them truncated (default %(default)s)",
    )
    parse.set_defaults(handler=_run_parse)


def _grok(pattern: str) -> ParseFunction:
    try:
        return grok_parser(GROK_PREVIEW_NAME, compile_grok(pattern))
    except GrokError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _geoip(text: str) -> GeoEnricher:
    paths = tuple(item.strip() for item in text.split(",") if item.strip())
    missing = [path for path in paths if not os.path.isfile(path)]
    if not paths or missing:
        raise argparse.ArgumentTypeError(f"no such file: {', '.join(missing) if missing else repr(text)}")
    try:
        return open_local_enricher(paths)
    except GeoDatabaseError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "must be at least 1")


def _retry_wait(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= MAX_RETRY_WAIT_LIMIT:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be greater than 0 and at most {MAX_RETRY_WAIT_LIMIT:g}")
    return value


def _int_at_least(text: str, minimum: int, message: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(message)
    return value


def _run_parse(args: argparse.Namespace) -> int:
    path: str = args.path
    destination = None
    if args.output_format is not None:
        try:
            destination = _destination(args.output_format, args.es_index)
        except ValueError as exc:
            hint = " (--es-index)" if ES_INDEX in str(exc) else ""
            print(f"error: {exc}{hint}", file=sys.stderr)
            return EXIT_INPUT_ERROR
    try:
        source: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        print(f"error: cannot open {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    counts = {"lines": 0, "parsed": 0, "unparseable": 0, "truncated": 0}
    log_type = GROK_PREVIEW_NAME if args.grok is not None else args.format
    out = _stdout_writer()
    try:
        chunks = iter(partial(source.read, _READ_BYTES), b"")
        lines = iter_lines(chunks, compressed=compression_for(path), max_line_bytes=args.max_line_bytes)
        first = next(lines, None)
        if log_type is None:
            log_type = detect_log_type(path, first.text if first is not None else None)
        every_line: Iterator[Line] = chain((first,), lines) if first is not None else lines
        records = iter_records(
            every_line,
            log_type=log_type,
            provenance=object_provenance(None, path, ""),
            parse=args.grok,
            include_raw_line=args.include_raw_line,
        )
        if args.geoip is not None:
            records = args.geoip.enrich(records)
        with _fewer_gc_passes():
            if destination is None:
                _write_records(records, out, counts)
            else:
                _write_bodies(records, out, counts, destination)
    except CorruptObjectError as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            # The reader went away (e.g. `| head`): stop quietly. Whatever is still buffered goes
            # to /dev/null, so Python does not complain when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
        print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    finally:
        if source is not sys.stdin.buffer:
            source.close()
        if out is not sys.stdout.buffer:
            with suppress(OSError):
                out.close()  # the descriptor itself stays open (closefd=False)
    if args.summary:
        print(
            f"{path}: log_type={log_type} lines={counts['lines']} parsed={counts['parsed']} "
            f"unparseable={counts['unparseable']} truncated={counts['truncated']}",
            file=sys.stderr,
        )
    return EXIT_OK


def _stdout_writer() -> BinaryIO:
    """stdout with a 1 MiB buffer allocated once: records are written straight into it.

    (Growing and freeing a staging buffer per MiB instead cost a page fault every 4 KiB and a
    tenth of the run time in the kernel.) Falls back to sys.stdout.buffer when stdout has no
    file descriptor, as under test capture.
    """
    sys.stdout.flush()
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.stdout.buffer
    return open(descriptor, "wb", buffering=_WRITE_BYTES, closefd=False)


@contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """Run the young-generation collector less often while streaming records (about 10% faster).

    Records are built and dropped one at a time and hold no reference cycles, so reference
    counting frees them; the cyclic collector only has to run rarely.
    """
    previous = gc.get_threshold()
    gc.set_threshold(max(previous[0], _GC_YOUNG_THRESHOLD), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def _write_records(records: Iterator[dict[str, Any]], out: BinaryIO, counts: dict[str, int]) -> None:
    write = out.write
    try:
        for record in _counted(records, counts):
            write(dumps_line(record))
    finally:
        out.flush()


def _write_bodies(
    records: Iterator[dict[str, Any]], out: BinaryIO, counts: dict[str, int], destination: Destination
) -> None:
    """Each request body as the forwarder would send it (before gzip); a json body ends with a newline."""
    from forwarder.destinations import fit_entry, limits_for  # noqa: PLC0415
    from forwarder.sender import iter_batches  # noqa: PLC0415 -- urllib3 loads only for this option

    limits = limits_for(destination.name)
    entry = limits.max_entry_bytes
    encoded = (
        destination.encode(record) if entry is None else fit_entry(record, destination.encode, entry)
        for record in _counted(records, counts)
    )
    framing = destination.framing
    end = b"" if framing.separator == b"" and framing.suffix == b"" else b"\n"
    try:
        for batch in iter_batches(
            encoded, framing=framing, max_records=limits.max_records, max_bytes=limits.max_bytes
        ):
            out.write(batch.body() + end)
    finally:
        out.flush()


def _counted(records: Iterator[dict[str, Any]], counts: dict[str, int]) -> Iterator[dict[str, Any]]:
    lines = unparseable = truncated = 0
    try:
        for record in records:
            lines += 1
            if "parse_error" in record:
                unparseable += 1
            if "truncated" in record:
                truncated += 1
            yield record
    finally:
        # Also on CorruptObjectError: the records read before the damage are valid output.
        counts["lines"] = lines
        counts["parsed"] = lines - unparseable
        counts["unparseable"] = unparseable
        counts["truncated"] = truncated


# An endpoint of each format's shape, for the checks a forwarder's configuration passes; nothing is sent.
_PREVIEW_ENDPOINTS = {
    "elasticsearch": "https://preview.invalid/_bulk",
    "splunk_hec": "https://preview.invalid/services/collector/event",
    "loki": "https://preview.invalid/loki/api/v1/push",
    "datadog": "https://http-intake.logs.datadoghq.com/api/v2/logs",
    "otlp": "https://preview.invalid/v1/logs",
}


def _destination(output_format: str, es_index: str | None) -> Destination:
    """The destination a forwarder with this OUTPUT_FORMAT, ES_INDEX and the format's settings in the
    environment (DESTINATION_SETTINGS, or each on its own) would use; ValueError naming what is invalid."""
    from forwarder.config import (  # noqa: PLC0415
        DESTINATION_SETTING_NAMES,
        DESTINATION_SETTINGS,
        HTTP_ENDPOINT,
        OUTPUT_FORMAT,
        Config,
    )
    from forwarder.destinations import destination_for  # noqa: PLC0415

    names = (*DESTINATION_SETTING_NAMES, DESTINATION_SETTINGS)
    environ = {name: os.environ[name] for name in names if name in os.environ}
    environ[HTTP_ENDPOINT] = _PREVIEW_ENDPOINTS.get(output_format, "https://preview.invalid/")
    environ[OUTPUT_FORMAT] = output_format
    if es_index is not None and output_format == "elasticsearch":
        environ[ES_INDEX] = es_index
    return destination_for(Config.from_env(environ))


# --- replay and redrive: arguments here, the work in forwarder.replay / forwarder.redrive ----------------


def _add_replay_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = commands.add_parser(
        "replay",
        help="send log files already in S3 through the forwarder's pipeline (backfill)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Send existing load balancer log files (.log.gz, and .log of Classic ELB) under an S3 prefix\n"
            "to the ingest endpoint, with the same records and event_ids the Lambda sends. The endpoint\n"
            "and its credential come from the Lambda's variables (HTTP_ENDPOINT, HTTP_AUTH_TYPE,\n"
            "HTTP_AUTH_SECRET_ARN, ...); S3 is read with your AWS credentials.\n\n"
            "Each delivered file is recorded (key -> ETag) in a state file as soon as it is delivered; a\n"
            "re-run skips files already delivered and sends changed ones again. Ctrl-C is safe.\n\n"
            "--via-lambda sends nothing from here: it enqueues one work item per file on the stack's work\n"
            "queue (--stack NAME, or --queue-url URL), records what was enqueued in the state file, and\n"
            "watches the queue until the forwarder functions have drained it. With --dry-run it prints\n"
            "the estimated function time, wall time and cost on Lambda."
        ),
        epilog=(
            "dates: DATE is YYYY-MM-DD (midnight UTC) or an ISO timestamp (UTC unless it has an offset).\n"
            "A file's time is the end of the 5-minute interval in its ELB file name\n"
            "(..._20250314T0930Z_...), else its LastModified. --since is inclusive, --until exclusive:\n"
            "--since 2025-03-14 --until 2025-03-15 sends the files of 14 March.\n\n"
            "exit status: 0 all sent, 1 some files failed (re-run to retry them), 2 bad arguments or\n"
            "no access, 130 interrupted. With --via-lambda, 1 also when the watch ended with work items\n"
            "still queued or new messages in the dead-letter queue."
        ),
    )
    replay.add_argument("url", metavar="s3://BUCKET/PREFIX/", help="where the log files are")
    replay.add_argument("--since", metavar="DATE", type=_when, help="first time to send (inclusive)")
    replay.add_argument("--until", metavar="DATE", type=_when, help="time to stop at (exclusive)")
    replay.add_argument(
        "--dry-run", action="store_true", help="list what would be sent; send nothing, write no state"
    )
    replay.add_argument(
        "--state-file",
        metavar="PATH",
        type=Path,
        help="where delivered (or enqueued) files are recorded (default: .replay-state-BUCKET.json here)",
    )
    replay.add_argument("--endpoint", metavar="URL", help="ingest URL; overrides HTTP_ENDPOINT")
    replay.add_argument(
        "--max-retry-wait",
        metavar="SECONDS",
        type=_retry_wait,
        help="longest wait before one retry, whatever Retry-After asks (default 120); overrides "
        "HTTP_MAX_RETRY_WAIT_SECONDS",
    )
    replay.add_argument(
        "--max-consecutive-failures",
        metavar="N",
        type=_non_negative_int,
        help="stop after N files in a row failed (default 5; 0 never stops)",
    )
    lambda_options = replay.add_argument_group("backfill on Lambda")
    lambda_options.add_argument(
        "--via-lambda",
        action="store_true",
        help="enqueue a work item per file for the stack's forwarder functions instead of sending from here",
    )
    queues = lambda_options.add_mutually_exclusive_group()
    queues.add_argument(
        "--stack", metavar="NAME", help="the forwarder's stack (name or ARN): its outputs name the queues"
    )
    queues.add_argument("--queue-url", metavar="URL", help="the work queue (stack output WorkQueueUrl)")
    lambda_options.add_argument(
        "--dead-letter-queue-url",
        metavar="URL",
        help="with --queue-url: the dead-letter queue to watch (default: the work queue's redrive policy)",
    )
    lambda_options.add_argument(
        "--concurrency",
        metavar="N",
        type=_positive_int,
        help="functions at once, for the estimate (default: the stack's WorkQueueMaxConcurrency, else 5)",
    )
    lambda_options.add_argument(
        "--memory-mb",
        metavar="MB",
        type=_memory_mb,
        help=(
            "function memory, for the estimate "
            f"(default: the stack's ForwarderMemorySize, else {DEFAULT_MEMORY_MB})"
        ),
    )
    lambda_options.add_argument(
        "--no-wait",
        action="store_true",
        default=None,
        help="end once everything is enqueued instead of watching the queue drain",
    )
    lambda_options.add_argument(
        "--poll-seconds",
        metavar="S",
        type=_seconds,
        help="seconds between two readings of the queue while watching (default 30)",
    )
    lambda_options.add_argument(
        "--watch-timeout",
        metavar="S",
        type=_seconds,
        help="stop watching after S seconds (default 86400); the functions go on",
    )
    replay.set_defaults(handler=_run_replay)


def _add_redrive_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    redrive = commands.add_parser(
        "redrive",
        help="invoke the forwarder again with the failed events of its dead-letter queue",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Receive the dead-letter queue's messages (Lambda on-failure records), invoke the forwarder\n"
            "asynchronously with each original event, and delete each message once Lambda accepted the\n"
            "invocation. Messages that cannot be redriven stay in the queue. Fix the cause first (the\n"
            "endpoint, its credential): each record's error is printed."
        ),
        epilog="exit status: 0 all redriven, 1 some messages kept in the queue, 2 bad arguments or no access",
    )
    redrive.add_argument(
        "--queue-url", required=True, help="the dead-letter queue (stack output DeadLetterQueueUrl)"
    )
    redrive.add_argument(
        "--function-name",
        required=True,
        help="the forwarder function: name or ARN (stack output ForwarderFunctionArn)",
    )
    redrive.add_argument("--max", metavar="N", type=_positive_int, help="handle at most N messages")
    redrive.add_argument(
        "--dry-run", action="store_true", help="print what would be redriven; invoke and delete nothing"
    )
    redrive.add_argument(
        "--wait-seconds",
        metavar="S",
        type=_wait_seconds,
        help="long-poll wait per receive, 0-20 (default 2); the run ends after an empty receive",
    )
    redrive.set_defaults(handler=_run_redrive)


def _run_replay(args: argparse.Namespace) -> int:
    from forwarder import replay  # noqa: PLC0415 -- boto3 and the sender load only for this command

    return replay.run_command(args)


def _run_redrive(args: argparse.Namespace) -> int:
    from forwarder import redrive  # noqa: PLC0415 -- boto3 loads only for this command

    return redrive.run_command(args)


def _when(text: str) -> datetime:
    from forwarder.replay import ReplayInputError, parse_when  # noqa: PLC0415 -- see _run_replay

    try:
        return parse_when(text)
    except ReplayInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "must be 0 or more")


def _memory_mb(text: str) -> int:
    from forwarder.sizing import MAX_MEMORY_MB, MIN_MEMORY_MB  # noqa: PLC0415 -- see _run_replay

    value = _int_at_least(text, MIN_MEMORY_MB, f"must be {MIN_MEMORY_MB} to {MAX_MEMORY_MB} (Lambda's range)")
    if value > MAX_MEMORY_MB:
        raise argparse.ArgumentTypeError(f"must be {MIN_MEMORY_MB} to {MAX_MEMORY_MB} (Lambda's range)")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError("must be a number of seconds greater than 0")
    return value


def _wait_seconds(text: str) -> int:
    value = _non_negative_int(text)
    if value > 20:
        raise argparse.ArgumentTypeError("must be between 0 and 20 (the SQS long-polling limit)")
    return value

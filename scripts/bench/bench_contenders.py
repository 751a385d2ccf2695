"""The benchmark's contenders, each run in its own process by scripts/bench/benchmark.py.

    python scripts/bench/bench_contenders.py floor FILE --result OUT.json
    python scripts/bench/bench_contenders.py baseline FILE --result OUT.json      (records on stdout)
    python scripts/bench/bench_contenders.py e2e FILE --result OUT.json [--endpoint URL] [--level N]
                                              [--library default|isal|zlib] [--format F]
                                              [--setting NAME=VALUE ...]
    python scripts/bench/bench_contenders.py memory --raw-mb 1024 [--seed N] --result OUT.json

Without --endpoint, e2e POSTs to a receiver thread in its own process. --format is the OUTPUT_FORMAT,
--setting one of its settings (OTLP_PROTOCOL=http/protobuf);
the body goes to the path the receiver plays that format's intake on (bench_receiver.INTAKE_PATHS).

The third contender, the forwarder's own parser, is not here: the benchmark runs exactly
`python -m forwarder parse FILE`. Each process writes its counters to --result; wall time and peak
memory are measured by the parent (os.wait4 gives the rusage of that one child).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import resource
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

# The repository root, for `forwarder` when this file is run by hand. Appended, so that the copy of the
# code that scripts/bench/benchmark.py puts first on PYTHONPATH is the one imported. scripts/common holds
# the log line generator that bench_loggen builds on.
sys.path += [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[1] / "common")]

BUCKET = "bench-log-bucket"
KEY_PREFIX = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2025/03/14/"
READ_BYTES = 1 << 20
# The forwarder's modules (and the receiver and generator) are imported inside the functions that use
# them, so the floor and baseline processes do not load them: their start-up and peak memory would
# otherwise include modules they never use.

# The straightforward parser: the regular expression AWS documents for querying ALB access logs with
# Athena (AWS Athena User Guide, "Query Application Load Balancer logs" > "Create the table for ALB
# access logs": the `input.regex` SerDe property of its `CREATE EXTERNAL TABLE alb_access_logs`
# statement, the version with classification, classification_reason and conn_trace_id, whose last
# group `( .*)?` absorbs fields added later). Written here as a Python raw string: the SQL literal's
# `\"` is a plain quote and `[^\\s]` is `[^\s]`. RegexSerDe requires the whole line to match, like
# re.fullmatch. Columns as in that statement; the last group (anything after conn_trace_id) has no
# column and is dropped.
ATHENA_ALB_REGEX = re.compile(
    r"([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*):([0-9]*) ([^ ]*)[:-]([0-9]*) ([-.0-9]*) ([-.0-9]*) ([-.0-9]*) "
    r'(|[-0-9]*) (-|[-0-9]*) ([-0-9]*) ([-0-9]*) "([^ ]*) (.*) (- |[^ ]*)" "([^"]*)" ([A-Z0-9-_]+) '
    r'([A-Za-z0-9.-]*) ([^ ]*) "([^"]*)" "([^"]*)" "([^"]*)" ([-.0-9]*) ([^ ]*) "([^"]*)" "([^"]*)" '
    r'"([^ ]*)" "([^\s]+?)" "([^\s]+)" "([^ ]*)" "([^ ]*)" ?([^ ]*)?( .*)?'
)
ATHENA_ALB_COLUMNS = (
    "type",
    "time",
    "elb",
    "client_ip",
    "client_port",
    "target_ip",
    "target_port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
    "request_verb",
    "request_url",
    "request_proto",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "actions_executed",
    "redirect_url",
    "lambda_error_reason",
    "target_port_list",
    "target_status_code_list",
    "classification",
    "classification_reason",
    "conn_trace_id",
)


def _rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- floor: gunzip and split, nothing else ------------------------------------------------------------


def _inflater_module() -> Any:
    """ISA-L's zlib-compatible inflater when installed (the forwarder's reader uses it too), else zlib."""
    try:
        from isal import isal_zlib  # noqa: PLC0415 -- optional

        return isal_zlib
    except ImportError:
        return zlib


def run_floor(path: Path) -> dict[str, Any]:
    """Stream-decompress the file in 1 MiB reads, split the output into lines and count them."""
    lines = 0
    raw_bytes = 0
    carry = b""
    inflate = _inflater_module()
    inflater = inflate.decompressobj(31)
    with path.open("rb") as source:
        for chunk in iter(partial(source.read, READ_BYTES), b""):
            data = chunk
            while data:
                piece = inflater.decompress(data)
                raw_bytes += len(piece)
                parts = (carry + piece).split(b"\n")
                carry = parts.pop()
                lines += len(parts)
                if not inflater.eof:
                    break
                data = inflater.unused_data  # next gzip member, if any
                inflater = inflate.decompressobj(31)
    if carry:
        lines += 1
    return {"lines": lines, "raw_bytes": raw_bytes, "inflater": inflate.__name__}


# --- baseline: the straightforward regex-and-json parser -------------------------------------------------


def run_baseline(path: Path) -> dict[str, Any]:
    """gzip.open, the Athena regex per line, groups zipped into a dict, json.dumps, written to stdout."""
    matched = unmatched = 0
    write = sys.stdout.write
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as lines:
        for raw in lines:
            line = raw.rstrip("\n")
            match = ATHENA_ALB_REGEX.fullmatch(line)
            if match:
                matched += 1
                record: dict[str, Any] = dict(zip(ATHENA_ALB_COLUMNS, match.groups(), strict=False))
            else:
                unmatched += 1
                record = {"raw": line, "parse_error": "line does not match the ALB regex"}
            write(json.dumps(record) + "\n")
    sys.stdout.flush()
    return {"lines": matched + unmatched, "matched": matched, "unmatched": unmatched}


# --- end to end: the Lambda's per-object pipeline into a local receiver ----------------------------------


class _LocalBody:
    """What boto3's StreamingBody offers the forwarder: iter_chunks and close, over any chunk source."""

    def __init__(self, chunks: Callable[[int], Iterator[bytes]]) -> None:
        self._chunks = chunks

    def iter_chunks(self, chunk_size: int) -> Iterator[bytes]:
        return self._chunks(chunk_size)

    def close(self) -> None:
        """Nothing to release: the chunk source closes its own file."""


class LocalS3:
    """A stand-in for the S3 client: GetObject of one key answered from a local chunk source.

    The benchmark measures the forwarder, not moto: moto's in-memory objects would sit in the same
    process and inflate its peak memory by the object's size.
    """

    def __init__(self, key: str, chunks: Callable[[int], Iterator[bytes]], size: int | None) -> None:
        self._key = key
        self._chunks = chunks
        self._size = size

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("Key") != self._key:
            raise KeyError(kwargs.get("Key"))
        return {
            "Body": _LocalBody(self._chunks),
            "ETag": '"4f1c9b8e2d7a6b5c3e1f0a9d8c7b6a5e"',
            "ContentLength": self._size,
        }


def _file_chunks(path: Path, chunk_size: int) -> Iterator[bytes]:
    with path.open("rb") as source:
        yield from iter(partial(source.read, chunk_size), b"")


class _Timings:
    compress_seconds = 0.0
    json_bytes = 0
    send_seconds = 0.0


def _instrument(timings: type[_Timings]) -> None:
    """Time gzip and POST inside the pipeline (a few calls per MB: the overhead is negligible)."""
    from forwarder import sender as sender_module  # noqa: PLC0415 -- see READ_BYTES

    original_compress = sender_module.Batch.compress

    def compress(self: Any, level: int) -> bytes:
        # CPU time of the thread compressing: the forwarder compresses and posts a batch on its delivery
        # thread while the main thread builds the next, so wall time here would count the turns the
        # two threads take on the interpreter as gzip time.
        started = time.thread_time()
        body = original_compress(self, level)
        timings.compress_seconds += time.thread_time() - started
        timings.json_bytes += self.raw_bytes
        return body

    sender_module.Batch.compress = compress  # type: ignore[method-assign]


def _make_sender(
    endpoint: str,
    level: int,
    library: str,
    transport: Any = None,
    *,
    output_format: str = "json",
    settings: dict[str, str] | None = None,
) -> tuple[Any, str]:
    from forwarder import sender as sender_module  # noqa: PLC0415
    from forwarder.config import Config  # noqa: PLC0415

    if library == "zlib":
        sender_module._isal_zlib = None  # the fallback path the forwarder takes when isal is absent
    elif library == "isal" and sender_module.compressor_name(level) != "isal":
        raise SystemExit(f"isal is not installed or does not serve level {level} in the forwarder")
    env = {
        "HTTP_ENDPOINT": endpoint,
        "HTTP_ALLOW_INSECURE": "true",
        "HTTP_COMPRESSION_LEVEL": str(level),
        "OUTPUT_FORMAT": output_format,
    }
    env.update(settings or {})
    if output_format == "elasticsearch":
        env["ES_INDEX"] = "alb-logs-%Y.%m.%d"  # a daily index, as most clusters are set up
    config = Config.from_env(env)

    class TimedSender(sender_module.Sender):
        def send(self, batch: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            compressing = _Timings.compress_seconds  # the sender gzips each body itself: not POST time
            try:
                return super().send(batch, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                _Timings.send_seconds += elapsed - (_Timings.compress_seconds - compressing)

    return TimedSender(config, None, transport=transport), sender_module.compressor_name(level)


def run_e2e(
    path: Path,
    *,
    endpoint: str | None,
    level: int,
    library: str,
    output_format: str = "json",
    settings: dict[str, str] | None = None,
) -> dict[str, Any]:
    """forward_object on the file: read, parse, batch, gzip and POST every line; return the counters."""
    import bench_receiver  # noqa: PLC0415

    from forwarder.pipeline import forward_object  # noqa: PLC0415

    receiver = None
    if endpoint is None:  # the receiver runs as a thread of this process (its CPU counts here)
        receiver, _ = bench_receiver.start()
        endpoint = f"http://127.0.0.1:{receiver.server_address[1]}/"
    endpoint = endpoint.rstrip("/") + bench_receiver.INTAKE_PATHS[output_format]
    _instrument(_Timings)
    sender, compressor = _make_sender(
        endpoint, level, library, output_format=output_format, settings=settings
    )
    key = KEY_PREFIX + path.name
    s3 = LocalS3(key, partial(_file_chunks, path), path.stat().st_size)
    started = time.perf_counter()
    cpu_started = time.process_time()
    stats = forward_object(s3, BUCKET, key, sender=sender)
    cpu_seconds = time.process_time() - cpu_started
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "forwarder_file": sys.modules["forwarder"].__file__,
        "output_format": output_format,
        # The row's name: the format, with the settings that change its body ("otlp http/protobuf").
        "format_label": " ".join([output_format, *(settings or {}).values()]),
        "lines": stats.lines,
        "unparseable": stats.unparseable,
        "records_sent": stats.records_sent,
        "requests": stats.batches,
        "gzip_bytes": stats.bytes_sent,
        "json_bytes": _Timings.json_bytes,
        "retries": stats.retries,
        "compressor": compressor,
        "level": level,
        "compress_seconds": round(_Timings.compress_seconds, 3),
        "send_seconds": round(_Timings.send_seconds, 3),
        "pipeline_seconds": round(seconds, 3),
        # The process's CPU time in forward_object alone (no start-up): what a warm invocation is billed
        # for when the work is CPU-bound; it includes the receiver's when that runs in this process.
        "pipeline_cpu_seconds": round(cpu_seconds, 4),
    }
    if receiver is not None:
        result["receiver"] = receiver.stats.snapshot()
        receiver.shutdown()
    return result


# --- memory check: a ~1 GB object streamed through the pipeline, never stored ------------------------------


class _NullTransport:
    """Accepts every POST at once: the memory check measures the forwarder, not a network."""

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Any:
        from forwarder.sender import HttpResponse  # noqa: PLC0415

        return HttpResponse(200, None, b"")


def run_memory(raw_mb: int, seed: int) -> dict[str, Any]:
    """Stream `raw_mb` MiB of uncompressed log lines, gzip-compressed on the fly, through forward_object."""
    import bench_loggen  # noqa: PLC0415

    from forwarder.pipeline import forward_object  # noqa: PLC0415

    _instrument(_Timings)
    sender, compressor = _make_sender("http://127.0.0.1:9/", 1, "default", transport=_NullTransport())
    raw_bytes = raw_mb * 1024 * 1024
    key = KEY_PREFIX + bench_loggen.FILE_NAME
    produced = {"gzip": 0, "raw": 0}

    def chunks(chunk_size: int) -> Iterator[bytes]:
        for chunk in bench_loggen.gzip_stream(raw_bytes, seed, chunk_bytes=chunk_size, progress=produced):
            produced["gzip"] += len(chunk)
            yield chunk

    s3 = LocalS3(key, chunks, None)
    rss_before = _rss_mib()
    started = time.perf_counter()
    stats = forward_object(s3, BUCKET, key, sender=sender)
    seconds = time.perf_counter() - started
    return {
        "raw_bytes_target": raw_bytes,
        "raw_bytes": produced["raw"],
        "gzip_bytes_in": produced["gzip"],
        "lines": stats.lines,
        "unparseable": stats.unparseable,
        "records_sent": stats.records_sent,
        "requests": stats.batches,
        "json_bytes": _Timings.json_bytes,
        "compressor": compressor,
        "rss_before_mib": round(rss_before, 1),
        "pipeline_seconds": round(seconds, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("contender", choices=("floor", "baseline", "e2e", "memory"))
    parser.add_argument(
        "path", nargs="?", type=Path, metavar="FILE", help="the .log.gz to read (not for memory)"
    )
    parser.add_argument("--result", type=Path, required=True, help="write the counters here as JSON")
    parser.add_argument("--endpoint", help="e2e: POST to this URL (default: a receiver thread in-process)")
    parser.add_argument("--level", type=int, default=1, help="e2e: gzip level (HTTP_COMPRESSION_LEVEL)")
    parser.add_argument(
        "--library",
        choices=("default", "isal", "zlib"),
        default="default",
        help="e2e: force the gzip library (default: what the forwarder picks)",
    )
    parser.add_argument("--format", default="json", help="e2e: the OUTPUT_FORMAT (default json)")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="e2e: a setting of the format, as the forwarder's environment names it (repeatable)",
    )
    parser.add_argument("--raw-mb", type=int, default=1024, help="memory: uncompressed MiB to stream")
    parser.add_argument("--seed", type=int, default=1, help="memory: log generator seed (default 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.contender != "memory" and args.path is None:
        parser.error(f"{args.contender} needs FILE")
    if args.contender == "floor":
        result = run_floor(args.path)
    elif args.contender == "baseline":
        result = run_baseline(args.path)
    elif args.contender == "e2e":
        result = run_e2e(
            args.path,
            endpoint=args.endpoint,
            level=args.level,
            library=args.library,
            output_format=args.format,
            settings=dict(item.split("=", 1) for item in args.setting),
        )
    else:
        result = run_memory(args.raw_mb, args.seed)
    result["self_peak_rss_mib"] = round(_rss_mib(), 1)
    args.result.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

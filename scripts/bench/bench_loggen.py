"""The benchmark's input: the richest mix of scripts/common/alb_logs.py, written as a cached `.log.gz`.

Every connection type and outcome the generator knows, one client in five on IPv6, the four field
generations side by side in the proportions of GENERATION_MIX, ALB's own malformed request forms
(`"- - -"` and friends, about 0.08% of lines) and about 0.02% of lines cut short, which no parser can read.

The same (lines, seed) always gives the same bytes, so a cached file can be reused across runs.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import alb_logs

# Bump when the line shapes change, so cached files made by an older generator are not reused.
GENERATOR_VERSION = 2

LB = alb_logs.LoadBalancer(
    account="123456789012",
    region="us-east-1",
    name="bench-alb",
    lb_id="0123456789abcdef",
    target_group_arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/bench-targets/73e2d6bc24d8a067",
    certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/3f2a6c1e-8b4d-4e57-9c1a-2d7e5b9f0a11",
    hosts=("www.example.com", "api.example.com", "shop.example.com", "static.example.com"),
)
NODE_IP = "10.0.1.25"
_END = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
# A key shaped like the ones ALB writes, so `python -m forwarder parse` detects the type by name.
FILE_NAME = LB.file_name(end=_END, node_ip=NODE_IP, suffix="bench")

# Field generations and their share of lines (percent). Most lines of a bucket written today have the
# newest layout; older load balancers or older files still have the shorter ones.
GENERATION_MIX: tuple[tuple[int, int], ...] = ((34, 70), (30, 15), (29, 10), (25, 5))
_GENERATIONS = tuple(generation for generation, _ in GENERATION_MIX)
_GENERATION_WEIGHTS = tuple(weight for _, weight in GENERATION_MIX)
# Lines cut short mid-line, per million (a parse failure for any parser).
CUT_PER_MILLION = 200
_WINDOW_US = alb_logs.FILE_INTERVAL // timedelta(microseconds=1)
_START = _END - alb_logs.FILE_INTERVAL


@dataclass(frozen=True, slots=True)
class LogFile:
    """A generated log file and what is in it."""

    path: Path
    lines: int
    seed: int
    raw_bytes: int  # uncompressed size: the MB/s figures are computed on this
    gzip_bytes: int
    generations: dict[str, int] = field(default_factory=dict)  # field count -> lines
    malformed_requests: int = 0
    cut_lines: int = 0


@dataclass(slots=True)
class _Tally:
    """What the lines generated so far hold, for the file's metadata."""

    generations: dict[str, int] = field(default_factory=dict)
    malformed_requests: int = 0
    cut_lines: int = 0
    raw_bytes: int = 0


def _lines(lines: int, seed: int, tally: _Tally) -> Iterator[str]:
    rng = random.Random(seed)  # reproducible test data, not security
    maker = alb_logs.LineMaker(LB, rng, node_ip=NODE_IP)
    generations = tally.generations
    for number in range(lines):
        micros = number * _WINDOW_US // max(lines, 1) + rng.randrange(0, 1000)
        (fields,) = rng.choices(_GENERATIONS, _GENERATION_WEIGHTS)
        generations[str(fields)] = generations.get(str(fields), 0) + 1
        kind = maker.realistic_kind()
        line = maker.line(_START + timedelta(microseconds=micros), kind, fields=fields)
        if rng.randrange(1_000_000) < CUT_PER_MILLION:
            tally.cut_lines += 1
            line = maker.cut_short(line)
        elif kind.outcome == "malformed":
            tally.malformed_requests += 1
        yield line


def iter_log_lines(lines: int, seed: int) -> Iterator[str]:
    """`lines` log lines (without newlines), the same for the same arguments."""
    return _lines(lines, seed, _Tally())


def _blocks(lines: Iterator[str], tally: _Tally, size: int = 4096) -> Iterator[bytes]:
    """The lines, newline-terminated, a few thousand at a time; counts the bytes in `tally`."""
    while block := list(islice(lines, size)):
        data = ("\n".join(block) + "\n").encode()
        tally.raw_bytes += len(data)
        yield data


def ensure_log_file(cache_dir: Path, lines: int, seed: int, *, level: int = 6) -> tuple[LogFile, bool]:
    """The gzip log file for (lines, seed), generated unless cached; returns (file, generated_now)."""
    folder = cache_dir / f"v{GENERATOR_VERSION}-{lines}-lines-seed-{seed}"
    path = folder / FILE_NAME
    meta_path = folder / "meta.json"
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        meta["path"] = path
        return LogFile(**meta), False
    folder.mkdir(parents=True, exist_ok=True)
    tally = _Tally()
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        written = sum(
            out.write(chunk)
            for chunk in alb_logs.gzip_chunks(_blocks(_lines(lines, seed, tally), tally), level=level)
        )
    os.replace(partial, path)
    info = LogFile(
        path=path,
        lines=lines,
        seed=seed,
        raw_bytes=tally.raw_bytes,
        gzip_bytes=written,
        generations=dict(sorted(tally.generations.items())),
        malformed_requests=tally.malformed_requests,
        cut_lines=tally.cut_lines,
    )
    meta = asdict(info)
    meta.pop("path")
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return info, True


def gzip_stream(
    raw_bytes: int,
    seed: int,
    *,
    chunk_bytes: int = 1 << 20,
    level: int = 1,
    progress: dict[str, int] | None = None,
) -> Iterator[bytes]:
    """About `raw_bytes` of log lines as one gzip stream, produced chunk by chunk and never held whole.

    A block of generated lines (about 1.3 MB) is repeated until the size is reached: the reader and
    parser see realistic lines while generation costs almost nothing. `progress["raw"]` (when given)
    counts the uncompressed bytes produced so far.
    """
    block = ("\n".join(iter_log_lines(2048, seed)) + "\n").encode()

    def pieces() -> Iterator[bytes]:
        produced = 0
        while produced < raw_bytes:
            piece = (
                block
                if produced + len(block) <= raw_bytes
                else block[: block.rfind(b"\n", 0, raw_bytes - produced) + 1]
            )
            if not piece:
                return
            produced += len(piece)
            if progress is not None:
                progress["raw"] = produced
            yield piece

    return alb_logs.gzip_chunks(pieces(), level=level, chunk_bytes=chunk_bytes)

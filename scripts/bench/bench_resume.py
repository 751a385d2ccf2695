"""What resuming part-way through a file costs: the lines before the work item's line are inflated and
counted, not split, decoded or parsed.

    python scripts/bench/bench_resume.py                 # 500,000 lines, 3 rounds
    python scripts/bench/bench_resume.py --lines 100000 --repeat 1

The benchmark's lines (scripts/bench/bench_loggen.py), gzip level 6 in memory, read in 1 MiB chunks as
the forwarder reads S3. Timed in CPU seconds (time.process_time, the fastest of --repeat rounds; others
may share the machine's cores): skipping all lines but the last (forwarder.reader.iter_lines with
skip_lines), reading every line without parsing, and the record path the forwarder runs per line (parse,
provenance, JSON) without sending. Reported per line, so a link's start-up cost at line N is N times the
first figure.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "common"))
sys.path.insert(0, str(REPO / "scripts" / "bench"))
sys.path.insert(0, str(REPO))

import bench_loggen  # noqa: E402 -- found through the path set above

from forwarder.jsonutil import dumps_line  # noqa: E402
from forwarder.reader import Line, iter_lines  # noqa: E402
from forwarder.records import iter_records  # noqa: E402
from forwarder.units import object_provenance  # noqa: E402

CHUNK = 1 << 20


def cpu_seconds(run: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def _expect_one(lines: Iterator[Line]) -> None:
    if sum(1 for _ in lines) != 1:
        raise SystemExit("the benchmark's file does not have the lines it was made with")


def measure(lines: int, repeat: int, seed: int = 1) -> dict[str, float]:
    text = "\n".join(bench_loggen.iter_log_lines(lines, seed)) + "\n"
    data = gzip.compress(text.encode(), 6)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    provenance = object_provenance("bench-bucket", bench_loggen.FILE_NAME, "0123456789abcdef")

    def skip() -> None:
        _expect_one(iter_lines(chunks, compressed=True, skip_lines=lines - 1))

    def read() -> None:
        _expect_one(islice(iter_lines(chunks, compressed=True), lines - 1, None))

    def forward() -> None:
        for record in iter_records(
            iter_lines(chunks, compressed=True), log_type="alb_access", provenance=provenance
        ):
            dumps_line(record)

    results = {"lines": float(lines), "gzip_bytes": float(len(data))}
    for name, run in (("skip", skip), ("read", read), ("forward", forward)):
        results[f"{name}_us_per_line"] = cpu_seconds(run, repeat) / lines * 1e6
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)
    results = measure(args.lines, args.repeat)
    if args.json:
        print(json.dumps(results))
        return 0
    size = results["gzip_bytes"] / 1e6
    print(f"{args.lines:,} lines, {size:.1f} MB gzip; CPU time per line, best of {args.repeat}:")
    print(f"  skipped (inflate, count newlines)         {results['skip_us_per_line']:6.2f} us")
    print(f"  read, not parsed (inflate, split, UTF-8)  {results['read_us_per_line']:6.2f} us")
    print(f"  forwarded without sending (parse, JSON)   {results['forward_us_per_line']:6.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())

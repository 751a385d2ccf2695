"""scripts/bench/bench_geo.py at a tiny size: both variants handle every line, only the geo one enriches.

Not a timed test: nothing here asserts on speed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_geo_benchmark_runs_and_reports_both_variants() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/bench/bench_geo.py"),
            "--lines",
            "3000",
            "--clients",
            "100",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    plain = re.search(r"^plain .* with client_geo: 0 of 3,000$", done.stdout, re.MULTILINE)
    geo = re.search(r"^geo .* with client_geo: ([\d,]+) of 3,000$", done.stdout, re.MULTILINE)
    assert plain is not None and geo is not None, done.stdout
    # One client in five is IPv6 of the documentation range (skipped); every IPv4 one is in the database.
    assert 2000 < int(geo[1].replace(",", "")) < 2800
    assert "geo/plain throughput:" in done.stdout

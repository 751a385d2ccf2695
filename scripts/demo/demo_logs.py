"""The demo's ALB access log files: one per load balancer node and 5 minutes, from scripts/common/alb_logs.py.

Each file holds lines of one field generation (alb_logs.GENERATIONS: a bucket holds lines of several
lengths) in the realistic mix, plus a few lines that are not access log lines at all, which the forwarder
must send as counted parse failures.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import alb_logs


@dataclass(frozen=True, slots=True)
class LogFile:
    """One generated file: where it goes, its gzip bytes and what it holds."""

    key: str
    body: bytes
    lines: int
    malformed: int
    fields: int
    node_ip: str


def make_file(
    lb: alb_logs.LoadBalancer,
    *,
    prefix: str,
    end: datetime,
    node_ip: str,
    lines: int,
    fields: int,
    malformed: int,
    rng: random.Random,
) -> LogFile:
    """A 5-minute file of one load balancer node, ending at `end`, as ALB names and compresses it."""
    maker = alb_logs.LineMaker(lb, rng, node_ip=node_ip)
    start = end - alb_logs.FILE_INTERVAL
    step = alb_logs.FILE_INTERVAL / max(lines, 1)
    # Malformed lines never come first: the forwarder looks at the first line to tell the log type.
    bad_at = set(rng.sample(range(1, lines), min(malformed, lines - 1))) if lines > 1 else set()
    out: list[str] = []
    for number in range(lines):
        line = maker.line(start + step * number, maker.realistic_kind(), fields=fields)
        if number in bad_at:
            # Alternately a foreign line and a line cut short.
            foreign = sum(1 for n in bad_at if n < number) % 2 == 0
            line = alb_logs.HTML_ERROR_PAGE if foreign else maker.cut_short(line)
        out.append(line)
    return LogFile(
        key=lb.log_key(prefix=prefix, end=end, node_ip=node_ip, suffix=alb_logs.key_suffix(rng)),
        body=alb_logs.gzip_lines(out),
        lines=lines,
        malformed=len(bad_at),
        fields=fields,
        node_ip=node_ip,
    )


def file_end_times(count: int, now: datetime | None = None) -> list[datetime]:
    """End times of `count` files from two nodes: pairs share a 5-minute interval, newest last."""
    now = now or datetime.now(UTC)
    latest = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    intervals = (count + 1) // 2
    return [latest - timedelta(minutes=5 * (intervals - 1 - i // 2)) for i in range(count)]

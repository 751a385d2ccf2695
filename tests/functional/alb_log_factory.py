"""Realistic ALB access log lines and files for the functional tests, generated deterministically.

A thin layer over the generator the demo and the benchmark share (scripts/common/alb_logs.py, whose
docstring lists the line shapes): one load balancer, 30-field lines (up to conn_trace_id) of the kinds
named in KINDS, and keys as ALB writes them. ``MALFORMED_LINE`` is not an ALB line at all (a parse failure).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from script_modules import load_script

alb_logs = load_script("common/alb_logs")

ACCOUNT = "123456789012"
REGION = "us-east-1"
LB_NAME = "my-loadbalancer"
LB_ID = "50dc6c495c0c9188"
ELB = f"app/{LB_NAME}/{LB_ID}"
TARGET_GROUP = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/my-targets/73e2d6bc24d8a067"
CERT = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/12345678-1234-1234-1234-123456789012"
_LB = alb_logs.LoadBalancer(ACCOUNT, REGION, LB_NAME, LB_ID, TARGET_GROUP, CERT)

MALFORMED_LINE = alb_logs.NOT_A_LOG_LINE
KINDS: tuple[str, ...] = tuple(alb_logs.KINDS)
_FIELDS = 30

gzip_lines = alb_logs.gzip_lines


def alb_line(rng: random.Random, when: datetime, kind: str = "h2") -> str:
    """One ALB access log line of the given kind (see KINDS)."""
    if kind not in alb_logs.KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    return alb_logs.LineMaker(_LB, rng).line(when, alb_logs.KINDS[kind], fields=_FIELDS)


def iter_alb_lines(
    count: int,
    *,
    seed: int = 1,
    start: datetime | None = None,
    malformed_every: int = 0,
    kinds: tuple[str, ...] = KINDS,
) -> Iterator[str]:
    """``count`` lines over ~5 minutes, mixing kinds; every ``malformed_every``-th is MALFORMED_LINE."""
    rng = random.Random(seed)  # noqa: S311 -- reproducible test data, not security
    maker = alb_logs.LineMaker(_LB, rng)
    when = start or datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
    step = max(timedelta(microseconds=1), alb_logs.FILE_INTERVAL / max(count, 1))
    # Mostly h2/https like real traffic, with every odd kind present.
    weights = [20 if kind in ("h2", "https") else 2 for kind in kinds]
    for number in range(1, count + 1):
        when += step
        if malformed_every and number % malformed_every == 0:
            yield MALFORMED_LINE
        else:
            yield maker.line(when, alb_logs.KINDS[rng.choices(kinds, weights)[0]], fields=_FIELDS)


def make_alb_lines(count: int, *, seed: int = 1, malformed_every: int = 0) -> list[str]:
    return list(iter_alb_lines(count, seed=seed, malformed_every=malformed_every))


def log_key(
    *,
    prefix: str = "",
    account: str = ACCOUNT,
    region: str = REGION,
    when: datetime | None = None,
    node_ip: str = "10.0.1.25",
    suffix: str = "2r6sxvm9",
) -> str:
    """The key ALB writes: [prefix/]AWSLogs/account/elasticloadbalancing/region/yyyy/mm/dd/<file>.log.gz."""
    lb = dataclasses.replace(_LB, account=account, region=region)
    return lb.log_key(
        prefix=prefix, end=when or datetime(2025, 3, 14, 9, 30, tzinfo=UTC), node_ip=node_ip, suffix=suffix
    )

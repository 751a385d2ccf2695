"""Realistic ALB access log lines and files, generated deterministically (tests, benchmark, demo).

Line shapes follow the AWS documentation examples and the quirks listed in shared/aws-facts.md: h2 over
TLS, plain HTTP, IPv6 clients (not bracketed), WAF-blocked requests without a target, raw spaces in the
URL (classification Ambiguous/SpaceInUri), malformed request lines, redirects, websockets, Lambda targets
and the 2025 transform fields. ``MALFORMED_LINE`` is not an ALB line at all (a parse failure).
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

ACCOUNT = "123456789012"
REGION = "us-east-1"
LB_NAME = "my-loadbalancer"
LB_ID = "50dc6c495c0c9188"
ELB = f"app/{LB_NAME}/{LB_ID}"
TARGET_GROUP = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/my-targets/73e2d6bc24d8a067"
CERT = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/12345678-1234-1234-1234-123456789012"

MALFORMED_LINE = "this is not an ALB access log line"

_PATHS = (
    "/",
    "/index.html",
    "/api/v1/orders?limit=20&offset=40",
    "/api/v1/users/8841/profile",
    "/static/js/app.4f9c2.js",
    "/images/logo.png",
    "/health",
    "/search?q=load+balancer&page=2",
)
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5  Safari/605.1.15",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "ELB-HealthChecker/2.0",
)
_METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
_STATUSES = (200, 200, 200, 200, 201, 204, 301, 304, 400, 403, 404, 500, 502, 503)
_CIPHER = "ECDHE-RSA-AES128-GCM-SHA256"
KINDS = (
    "h2",
    "https",
    "http",
    "ipv6",
    "waf",
    "space_in_uri",
    "malformed_request",
    "redirect",
    "wss",
    "lambda",
)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _trace(rng: random.Random) -> str:
    return f"Root=1-{rng.getrandbits(32):08x}-{rng.getrandbits(96):024x}"


def _ipv4(rng: random.Random, first: int) -> str:
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def alb_line(rng: random.Random, when: datetime, kind: str = "h2") -> str:
    """One ALB access log line of the given kind (see KINDS)."""
    created = when - timedelta(milliseconds=rng.randrange(1, 900))
    client = f"{_ipv4(rng, 203)}:{rng.randrange(1024, 65535)}"
    target = f"{_ipv4(rng, 10)}:{rng.choice((80, 8080, 443))}"
    req_t, tgt_t, resp_t = (
        f"{rng.random() * 0.01:.3f}",
        f"{rng.random() * 0.4:.3f}",
        f"{rng.random() * 0.01:.3f}",
    )
    status = rng.choice(_STATUSES)
    received, sent = rng.randrange(200, 4000), rng.randrange(0, 250_000)
    method = rng.choice(_METHODS)
    path = rng.choice(_PATHS)
    agent = rng.choice(_AGENTS)
    host = "www.example.com"
    conn_tid = f"TID_{rng.getrandbits(64):016x}"
    scheme, proto, cipher, tls = "https", "HTTP/2.0", _CIPHER, "TLSv1.2"
    type_ = "h2"
    actions, redirect, error, classification, reason = "forward", "-", "-", "-", "-"
    target_status = str(status)
    request = f"{method} https://{host}:443{path} {proto}"
    rule = "1"
    tg = TARGET_GROUP
    if kind == "https":
        type_, proto = "https", "HTTP/1.1"
        request = f"{method} https://{host}:443{path} {proto}"
    elif kind == "http":
        type_, scheme, cipher, tls = "http", "http", "-", "-"
        request = f"{method} http://{host}:80{path} HTTP/1.1"
    elif kind == "ipv6":
        client = f"2001:db8:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}:{rng.randrange(1024, 65535)}"
    elif kind == "waf":
        target, req_t, tgt_t, resp_t, target_status, status = "-", "-1", "-1", "-1", "-", 403
        actions, rule, error = "waf", "0", "-"
    elif kind == "space_in_uri":
        request = f"GET https://{host}:443/files/annual report 2024.pdf HTTP/1.1"
        type_, classification, reason = "https", "Ambiguous", "SpaceInUri"
    elif kind == "malformed_request":
        type_, request, agent = "http", "- http://" + host + ":80- -", "-"
        target, req_t, tgt_t, resp_t, target_status, status = "-", "-1", "-1", "-1", "-", 400
        cipher, tls, tg, rule, actions = "-", "-", "-", "-", "-"
        error = "-"
    elif kind == "redirect":
        type_, scheme, cipher, tls = "http", "http", "-", "-"
        request = f"GET http://{host}:80{path} HTTP/1.1"
        target, tgt_t, target_status, status, tg = "-", "-1", "-", 301, "-"
        actions, redirect = "redirect", f"https://{host}:443{path}"
    elif kind == "wss":
        type_, proto = "wss", "HTTP/1.1"
        request = f"GET wss://{host}:443/socket HTTP/1.1"
        status, target_status = 101, "101"
    elif kind == "lambda":
        type_ = "https"
        request = f"POST https://{host}:443/api/v1/events HTTP/1.1"
        target, error = "-", "-"
    elif kind != "h2":
        raise ValueError(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    target_list = f'"{target}"' if target != "-" else '"-"'
    status_list = f'"{target_status}"' if target_status != "-" else '"-"'
    domain = f'"{host}"' if scheme == "https" else '"-"'
    cert = f'"{CERT}"' if scheme == "https" else '"-"'
    return (
        f"{type_} {_iso(when)} {ELB} {client} {target} {req_t} {tgt_t} {resp_t} {status} {target_status} "
        f'{received} {sent} "{request}" "{agent}" {cipher} {tls} {tg} "{_trace(rng)}" {domain} {cert} '
        f'{rule} {_iso(created)} "{actions}" "{redirect}" "{error}" {target_list} {status_list} '
        f'"{classification}" "{reason}" {conn_tid}'
    )


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
    when = start or datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
    step = timedelta(microseconds=max(1, 300_000_000 // max(count, 1)))
    # Mostly h2/https like real traffic, with every odd kind present.
    weights = [20 if kind in ("h2", "https") else 2 for kind in kinds]
    for number in range(1, count + 1):
        when += step
        if malformed_every and number % malformed_every == 0:
            yield MALFORMED_LINE
        else:
            yield alb_line(rng, when, rng.choices(kinds, weights)[0])


def make_alb_lines(count: int, *, seed: int = 1, malformed_every: int = 0) -> list[str]:
    return list(iter_alb_lines(count, seed=seed, malformed_every=malformed_every))


def gzip_lines(lines: Iterable[str], *, members: int = 1, level: int = 6) -> bytes:
    """Lines joined with newlines (final newline included), gzip-compressed in ``members`` members."""
    text = "".join(f"{line}\n" for line in lines).encode()
    if members <= 1:
        return gzip.compress(text, compresslevel=level, mtime=0)
    size = -(-len(text) // members)
    return b"".join(
        gzip.compress(text[i : i + size], compresslevel=level, mtime=0) for i in range(0, len(text), size)
    )


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
    when = when or datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    name = (
        f"{account}_elasticloadbalancing_{region}_app.{LB_NAME}.{LB_ID}_"
        f"{when.strftime('%Y%m%dT%H%MZ')}_{node_ip}_{suffix}.log.gz"
    )
    path = f"AWSLogs/{account}/elasticloadbalancing/{region}/{when:%Y/%m/%d}/{name}"
    return f"{prefix}/{path}" if prefix else path

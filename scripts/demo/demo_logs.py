"""Realistic ALB access log files for the demo: the key layout ALB writes, four field generations.

Lines follow the AWS documentation's field list. AWS appended fields over the years, so a bucket holds
lines of several lengths: 25 fields (up to error_reason), 29 (target lists and desync classification),
30 (conn_trace_id) and 34 (request transforms and the node's ip_address). Each file also carries a few
lines that are not access log lines at all, which the forwarder must send as counted parse failures.
"""

from __future__ import annotations

import gzip
import random
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

GENERATIONS = (25, 29, 30, 34)

# Not an ALB line at all: what a stray tool could leave in a file.
_FOREIGN_LINE = "<html><head><title>502 Bad Gateway</title></head></html>"

_PATHS = (
    "/",
    "/index.html",
    "/api/v1/orders?limit=20&offset=40",
    "/api/v1/users/8841/profile",
    "/static/js/app.4f9c2.js",
    "/images/logo.png",
    "/search?q=load+balancer&page=2",
    "/checkout/cart",
)
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
)
_STATUSES = (200, 200, 200, 200, 200, 201, 204, 304, 400, 403, 404, 500, 502)
_KINDS = ("h2", "h2", "h2", "https", "https", "http", "ipv6", "waf", "redirect", "space_in_uri")


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    """What the log lines and file names say about the load balancer."""

    account: str
    region: str
    name: str
    lb_id: str
    target_group_arn: str
    certificate_arn: str
    host: str = "www.example.com"

    @property
    def elb(self) -> str:
        return f"app/{self.name}/{self.lb_id}"


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
    lb: LoadBalancer,
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
    start = end - timedelta(minutes=5)
    step = timedelta(seconds=300) / max(lines, 1)
    # Malformed lines never come first: the forwarder looks at the first line to tell the log type.
    bad_at = set(rng.sample(range(1, lines), min(malformed, lines - 1))) if lines > 1 else set()
    out: list[str] = []
    for number in range(lines):
        line = access_line(lb, rng, start + step * number, fields=fields, node_ip=node_ip)
        if number in bad_at:
            # Alternately a foreign line and a line cut short after its first eight fields.
            foreign = sum(1 for n in bad_at if n < number) % 2 == 0
            line = _FOREIGN_LINE if foreign else " ".join(line.split(" ", 8)[:8])
        out.append(line)
    body = gzip.compress("".join(f"{line}\n" for line in out).encode(), compresslevel=6, mtime=0)
    return LogFile(
        key=log_key(lb, prefix=prefix, end=end, node_ip=node_ip, rng=rng),
        body=body,
        lines=lines,
        malformed=len(bad_at),
        fields=fields,
        node_ip=node_ip,
    )


def log_key(lb: LoadBalancer, *, prefix: str, end: datetime, node_ip: str, rng: random.Random) -> str:
    """<prefix>/AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/<account>_..._<random>.log.gz"""
    suffix = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    name = (
        f"{lb.account}_elasticloadbalancing_{lb.region}_app.{lb.name}.{lb.lb_id}_"
        f"{end:%Y%m%dT%H%MZ}_{node_ip}_{suffix}.log.gz"
    )
    path = f"AWSLogs/{lb.account}/elasticloadbalancing/{lb.region}/{end:%Y/%m/%d}/{name}"
    return f"{prefix}/{path}" if prefix else path


def file_end_times(count: int, now: datetime | None = None) -> list[datetime]:
    """End times of `count` files from two nodes: pairs share a 5-minute interval, newest last."""
    now = now or datetime.now(UTC)
    latest = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    intervals = (count + 1) // 2
    return [latest - timedelta(minutes=5 * (intervals - 1 - i // 2)) for i in range(count)]


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def access_line(lb: LoadBalancer, rng: random.Random, when: datetime, *, fields: int, node_ip: str) -> str:
    """One access log line with `fields` fields (one of GENERATIONS)."""
    if fields not in GENERATIONS:
        raise ValueError(f"fields must be one of {GENERATIONS}")
    kind = rng.choice(_KINDS)
    host = lb.host
    client = f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}:{rng.randrange(1024, 65535)}"
    target = f"10.20.{rng.randrange(1, 3)}.{rng.randrange(10, 250)}:{rng.choice((80, 8080))}"
    times = [f"{rng.random() * 0.004:.3f}", f"{rng.random() * 0.35:.3f}", f"{rng.random() * 0.002:.3f}"]
    status = rng.choice(_STATUSES)
    target_status = str(status)
    method = rng.choice(("GET", "GET", "GET", "POST", "PUT", "DELETE"))
    path = rng.choice(_PATHS)
    type_, url, proto = "h2", f"https://{host}:443{path}", "HTTP/2.0"
    cipher, tls = "ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2"
    domain, cert = f'"{host}"', f'"{lb.certificate_arn}"'
    tg, rule, actions, redirect, error = lb.target_group_arn, "1", "forward", "-", "-"
    classification, reason = "-", "-"
    if kind == "https":
        type_, proto = "https", "HTTP/1.1"
    elif kind in ("http", "redirect"):
        type_, url, proto = "http", f"http://{host}:80{path}", "HTTP/1.1"
        cipher, tls, domain, cert = "-", "-", '"-"', '"-"'
        if kind == "redirect":
            method, status, target_status, target, tg = "GET", 301, "-", "-", "-"
            times[1], actions, redirect = "-1", "redirect", f"https://{host}:443{path}"
    elif kind == "ipv6":
        client = f"2001:db8:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}:{rng.randrange(1024, 65535)}"
    elif kind == "waf":
        target, target_status, status, tg, actions, rule = "-", "-", 403, "-", "waf", "0"
        times = ["-1", "-1", "-1"]
    elif kind == "space_in_uri":
        type_, proto, method = "https", "HTTP/1.1", "GET"
        url = f"https://{host}:443/files/annual report 2024.pdf"
        classification, reason = "Ambiguous", "SpaceInUri"
    received, sent = rng.randrange(180, 4000), rng.randrange(0, 250_000)
    created = when - timedelta(milliseconds=rng.randrange(1, 400))
    trace = f"Root=1-{int(when.timestamp()):08x}-{rng.getrandbits(96):024x}"
    agent = rng.choice(_AGENTS)
    line = (
        f"{type_} {_iso(when)} {lb.elb} {client} {target} {times[0]} {times[1]} {times[2]} {status} "
        f'{target_status} {received} {sent} "{method} {url} {proto}" "{agent}" {cipher} {tls} {tg} '
        f'"{trace}" {domain} {cert} {rule} {_iso(created)} "{actions}" "{redirect}" "{error}"'
    )
    if fields >= 29:
        target_list = f'"{target}"' if target != "-" else '"-"'
        status_list = f'"{target_status}"' if target_status != "-" else '"-"'
        line += f' {target_list} {status_list} "{classification}" "{reason}"'
    if fields >= 30:
        line += f" TID_{rng.getrandbits(128):032x}"
    if fields >= 34:
        line += f' "-" "-" "-" {node_ip}'
    return line

"""Realistic ALB access log lines, keys and gzip files, generated deterministically from a seeded stream.

The one generator behind the functional tests (tests/functional/alb_log_factory.py), the demo
(scripts/demo/demo_logs.py) and the benchmark (scripts/bench/bench_loggen.py); each picks its own mix.
Lines follow the AWS field list and the quirks in shared/aws-facts.md: every connection type (http, https,
h2, grpcs, ws, wss), IPv4 and unbracketed IPv6 clients, requests that never reached a target (WAF blocks,
redirects, fixed responses, Lambda targets, 460s), raw spaces and `\\x22` in URLs, user agents with
double spaces, query strings, ALB's own malformed request forms (`"- - -"` and friends), and the four
field generations a bucket can hold side by side: 25 fields (up to error_reason), 29 (target lists,
desync classification), 30 (conn_trace_id) and 34 (request transforms and the node's ip_address).
Lines cut short and lines that are not access log lines at all are parse failures for any parser.
"""

from __future__ import annotations

import functools
import gzip
import random
import string
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate

GENERATIONS = (25, 29, 30, 34)
# ALB writes one file per load balancer node every 5 minutes.
FILE_INTERVAL = timedelta(minutes=5)

TYPES = ("h2", "https", "http", "grpcs", "ws", "wss")
_TLS_TYPES = frozenset(("h2", "https", "grpcs", "wss"))
# What happened to the request: forwarded (most), answered by the load balancer itself, or a request
# ALB could not parse at all ("malformed": no target, no rule, one of the request forms AWS logs).
OUTCOMES = (
    "forward",
    "waf",
    "redirect",
    "fixed",
    "lambda",
    "502",
    "504",
    "460",
    "space",
    "quote",
    "malformed",
)

# Lines that are not access log lines at all, as a stray tool could leave in a file.
NOT_A_LOG_LINE = "this is not an ALB access log line"
HTML_ERROR_PAGE = "<html><head><title>502 Bad Gateway</title></head></html>"


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    """What the log lines and file names say about the load balancer."""

    account: str
    region: str
    name: str
    lb_id: str
    target_group_arn: str
    certificate_arn: str
    hosts: tuple[str, ...] = ("www.example.com",)
    target_net: str = "10.0"  # the first two octets of the targets' addresses (their VPC)

    @property
    def elb(self) -> str:
        return f"app/{self.name}/{self.lb_id}"

    def file_name(self, *, end: datetime, node_ip: str, suffix: str) -> str:
        """<account>_elasticloadbalancing_<region>_app.<name>.<id>_<end time>_<node ip>_<random>.log.gz"""
        return (
            f"{self.account}_elasticloadbalancing_{self.region}_app.{self.name}.{self.lb_id}_"
            f"{end:%Y%m%dT%H%MZ}_{node_ip}_{suffix}.log.gz"
        )

    def log_key(self, *, prefix: str, end: datetime, node_ip: str, suffix: str) -> str:
        """The key ALB writes: [prefix/]AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/<file>."""
        path = (
            f"AWSLogs/{self.account}/elasticloadbalancing/{self.region}/{end:%Y/%m/%d}/"
            f"{self.file_name(end=end, node_ip=node_ip, suffix=suffix)}"
        )
        return f"{prefix}/{path}" if prefix else path


@dataclass(frozen=True, slots=True)
class Kind:
    """What a request was: its connection type, what the load balancer did with it, the client's family."""

    type: str
    outcome: str = "forward"
    ipv6: bool = False

    def __post_init__(self) -> None:
        if self.type not in TYPES or self.outcome not in OUTCOMES:
            raise ValueError(
                f"unknown kind {self}; types: {', '.join(TYPES)}; outcomes: {', '.join(OUTCOMES)}"
            )


# Requests by name, for callers that want a given one (or every one) rather than the realistic mix.
KINDS: dict[str, Kind] = {
    "h2": Kind("h2"),
    "https": Kind("https"),
    "http": Kind("http"),
    "ipv6": Kind("h2", ipv6=True),
    "waf": Kind("h2", "waf"),
    "space_in_uri": Kind("https", "space"),
    "malformed_request": Kind("http", "malformed"),
    "redirect": Kind("http", "redirect"),
    "wss": Kind("wss"),
    "lambda": Kind("https", "lambda"),
}

# The realistic mix: connection types, outcomes and (one client in five) IPv6, drawn independently.
_TYPE_WEIGHTS = (45, 33, 14, 3, 1, 4)
_OUTCOME_WEIGHTS = (9200, 150, 150, 60, 100, 80, 30, 100, 80, 50, 8)
_MIX = tuple(
    (Kind(type_, outcome, ipv6), type_weight * outcome_weight * (1 if ipv6 else 4))
    for type_, type_weight in zip(TYPES, _TYPE_WEIGHTS, strict=True)
    for outcome, outcome_weight in zip(OUTCOMES, _OUTCOME_WEIGHTS, strict=True)
    for ipv6 in (False, True)
)
_MIX_KINDS = tuple(kind for kind, _ in _MIX)
_MIX_CUM = tuple(accumulate(weight for _, weight in _MIX))

_PATHS = (
    "/",
    "/index.html",
    "/api/v1/orders",
    "/api/v1/orders/{n}",
    "/api/v1/users/{n}/profile",
    "/api/v2/search",
    "/static/js/app.{h}.js",
    "/static/css/site.{h}.css",
    "/images/products/{n}.webp",
    "/checkout/cart",
    "/login",
    "/health",
    "/wp-login.php",
)
_QUERIES = (
    "",
    "",
    "",
    "?limit=20&offset={n}",
    "?q=load+balancer&page={d}",
    "?utm_source=newsletter&utm_medium=email&utm_campaign=spring-{d}",
    "?session={h}&lang=en-US",
    "?ids={n},{d},{n}&fields=name,price",
)
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    # Double spaces are logged as sent; a parser must not collapse them.
    "Mozilla/5.0 (compatible;  Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64)  AppleWebKit/537.36 (KHTML, like Gecko)  Edge/125.0",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "grpc-go/1.64.0",
    "ELB-HealthChecker/2.0",
    "-",
)
_METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")
_METHOD_CUM = tuple(accumulate((74, 15, 4, 2, 2, 2, 1)))
_STATUSES = (200, 201, 204, 206, 301, 302, 304, 400, 401, 403, 404, 409, 429, 500, 503)
_STATUS_CUM = tuple(accumulate((700, 20, 30, 5, 10, 15, 60, 15, 15, 10, 50, 3, 5, 6, 6)))
_CIPHERS = (("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2"), ("TLS_AES_128_GCM_SHA256", "TLSv1.3"))
_SUFFIX_CHARS = string.ascii_lowercase + string.digits


@functools.lru_cache(maxsize=4096)
def _utc_second(epoch_second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


def _iso(when: datetime) -> str:
    """`when` (timezone-aware) as ALB writes times: UTC, ISO 8601 with microseconds and a Z."""
    return f"{_utc_second(int(when.timestamp()))}.{when.microsecond:06d}Z"


def key_suffix(rng: random.Random) -> str:
    """The random part ALB puts at the end of a log file's name."""
    return "".join(rng.choice(_SUFFIX_CHARS) for _ in range(8))


class LineMaker:
    """Lines of one load balancer node, built one at a time from one seeded random stream."""

    def __init__(self, lb: LoadBalancer, rng: random.Random, *, node_ip: str = "10.0.1.25") -> None:
        self.lb = lb
        self.rng = rng
        self.node_ip = node_ip
        self._elb = lb.elb

    def realistic_kind(self) -> Kind:
        """A request from the realistic mix: mostly forwarded h2 and https, every odd kind now and then."""
        (kind,) = self.rng.choices(_MIX_KINDS, cum_weights=_MIX_CUM)
        return kind

    def cut_short(self, line: str) -> str:
        """`line` cut before its request's closing quote, as a file cut mid-write leaves it: unparseable."""
        return line[: self.rng.randrange(20, line.index('"', line.index('"') + 1))]

    def line(self, when: datetime, kind: Kind, *, fields: int) -> str:
        """One access log line for `kind`, logged at `when`, with `fields` fields (one of GENERATIONS)."""
        if fields not in GENERATIONS:
            raise ValueError(f"fields must be one of {GENERATIONS}")
        if kind.outcome == "malformed":
            return self._malformed_request(when, kind, fields)
        rng = self.rng
        type_, outcome = kind.type, kind.outcome
        (method,) = rng.choices(_METHODS, cum_weights=_METHOD_CUM)
        (status,) = rng.choices(_STATUSES, cum_weights=_STATUS_CUM)
        host = rng.choice(self.lb.hosts)
        tls = type_ in _TLS_TYPES
        scheme, port = ("https", 443) if tls else ("http", 80)
        path = self._fill(rng.choice(_PATHS)) + self._fill(rng.choice(_QUERIES))
        protocol = "HTTP/2.0" if type_ in ("h2", "grpcs") else "HTTP/1.1"
        agent = rng.choice(_USER_AGENTS)
        if type_ == "grpcs":
            method, path, agent = (
                "POST",
                f"/orders.v1.OrderService/{rng.choice(('Get', 'List', 'Create'))}",
                "grpc-go/1.64.0",
            )
        elif type_ in ("ws", "wss"):
            method, path, status = "GET", "/socket?token=" + f"{rng.getrandbits(64):016x}", 101
        url = f"{scheme}://{host}:{port}{path}"
        target_ip = f"{self.lb.target_net}.{rng.randrange(0, 4)}.{rng.randrange(2, 254)}"
        target = f"{target_ip}:{rng.choice((80, 8080, 8443))}"
        rpt = f"{rng.random() * 0.002:.3f}"
        tpt = f"{rng.expovariate(12):.3f}"
        rspt = f"{rng.random() * 0.001:.3f}"
        target_code = str(status)
        actions, redirect, error = "forward", "-", "-"
        classification, reason = "-", "-"
        tg = self.lb.target_group_arn
        priority = str(rng.choice((0, 1, 2, 5, 10, 20)))
        if outcome == "waf":
            target, rpt, tpt, rspt, status, target_code, actions = "-", "-1", "-1", "-1", 403, "-", "waf"
        elif outcome == "redirect":
            tls, url = False, f"http://{host}:80{path}"
            type_, protocol = "http", "HTTP/1.1"
            target, tpt, status, target_code, tg = "-", "-1", 301, "-", "-"
            actions, redirect = "redirect", f"https://{host}:443{path}"
        elif outcome == "fixed":
            target, tpt, target_code, tg, actions = "-", "-1", "-", "-", "fixed-response"
            status = rng.choice((404, 503))
        elif outcome == "lambda":
            target = "-"
            if rng.randrange(10) == 0:
                status, target_code, error = 502, "-", "LambdaUnhandled"
        elif outcome in ("502", "504"):
            status, target_code, tpt = int(outcome), "-", "-1"
        elif outcome == "460":  # the client closed the connection before the idle timeout
            status, target_code, tpt, rspt = 460, "-", "-1", "-1"
        elif outcome == "space":  # raw spaces in the URL: desync mitigation classifies it Ambiguous
            url = f"{scheme}://{host}:{port}/files/annual report {rng.randrange(2019, 2026)}.pdf"
            method, classification, reason = "GET", "Ambiguous", "SpaceInUri"
        elif outcome == "quote":  # a double quote inside the URL is logged as \x22
            url = f"{scheme}://{host}:{port}/search?q=\\x22load+balancer\\x22&page=1"
            method = "GET"
        if tls:
            cipher, tls_protocol = rng.choice(_CIPHERS)
            domain = f'"{host}"'
            cert = '"session-reused"' if rng.randrange(8) == 0 else f'"{self.lb.certificate_arn}"'
        else:
            cipher = tls_protocol = "-"
            domain = cert = '"-"'
        if priority == "0" and rng.randrange(200) == 0:
            priority = "-1"
        received = rng.randrange(150, 4000) if method != "POST" else rng.randrange(400, 60_000)
        sent = 0 if status in (204, 304) else rng.randrange(200, 300_000)
        created = _iso(when - timedelta(microseconds=rng.randrange(1000, 900_000)))
        # X-Amzn-Trace-Id: Root=1-<epoch seconds, 8 hex digits>-<96 random bits>.
        trace = f"Root=1-{int(when.timestamp()):08x}-{rng.getrandbits(96):024x}"
        line = (
            f"{type_} {_iso(when)} {self._elb} {self._client(kind.ipv6)} {target} {rpt} {tpt} {rspt} "
            f'{status} {target_code} {received} {sent} "{method} {url} {protocol}" "{agent}" {cipher} '
            f'{tls_protocol} {tg} "{trace}" {domain} {cert} {priority} {created} "{actions}" "{redirect}" '
            f'"{error}"'
        )
        if classification == "-" and rng.randrange(3) == 0:
            classification = "Acceptable"
        codes = target_code if target != "-" else "-"
        return self._later_fields(
            line, fields, targets=target, codes=codes, classification=classification, reason=reason
        )

    def _fill(self, template: str) -> str:
        rng = self.rng
        return template.format(
            n=rng.randrange(1, 99_999), d=rng.randrange(1, 50), h=f"{rng.getrandbits(32):08x}"
        )

    def _client(self, ipv6: bool) -> str:
        rng = self.rng
        port = rng.randrange(1024, 65536)
        if ipv6:  # IPv6 clients are logged without brackets
            return f"2001:db8:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}:{port}"
        octets = (rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
        return "{}.{}.{}.{}".format(*octets) + f":{port}"

    def _malformed_request(self, when: datetime, kind: Kind, fields: int) -> str:
        """A request ALB could not parse: no target, no rule, one of the request forms AWS logs."""
        rng = self.rng
        host = rng.choice(self.lb.hosts)
        request = rng.choice(("- - -", f"- http://{host}:80- -", f"- http://{host}:80-/ "))
        stamp = _iso(when)
        line = (
            f"http {stamp} {self._elb} {self._client(kind.ipv6)} - -1 -1 -1 400 - {rng.randrange(0, 600)} "
            f'272 "{request}" "-" - - - "-" "-" "-" - {stamp} "-" "-" "-"'
        )
        return self._later_fields(line, fields, targets="-", codes="-", classification="-", reason="-")

    def _later_fields(
        self, line: str, fields: int, *, targets: str, codes: str, classification: str, reason: str
    ) -> str:
        """`line` (25 fields) with what later generations append, up to `fields` fields."""
        if fields == 25:
            return line
        line += f' "{targets}" "{codes}" "{classification}" "{reason}"'
        if fields == 29:
            return line
        line += f" TID_{self.rng.getrandbits(128):032x}"
        if fields == 30:
            return line
        return line + f' "-" "-" "-" {self.node_ip}'


def gzip_lines(lines: Iterable[str], *, members: int = 1, level: int = 6) -> bytes:
    """Lines joined with newlines (final newline included), gzip-compressed in ``members`` members."""
    text = "".join(f"{line}\n" for line in lines).encode()
    if members <= 1:
        return gzip.compress(text, compresslevel=level, mtime=0)
    size = -(-len(text) // members)
    return b"".join(
        gzip.compress(text[i : i + size], compresslevel=level, mtime=0) for i in range(0, len(text), size)
    )


def gzip_chunks(pieces: Iterable[bytes], *, level: int = 6, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """`pieces` as one gzip member (the bytes gzip_lines would write), in chunks of `chunk_bytes`.

    Streaming: only a piece and a chunk are held at a time, whatever the total size; the last chunk is
    shorter.
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: a gzip header with mtime 0, as above
    pending = bytearray()
    for piece in pieces:
        pending += compressor.compress(piece)
        while len(pending) >= chunk_bytes:
            yield bytes(pending[:chunk_bytes])
            del pending[:chunk_bytes]
    pending += compressor.flush()
    while pending:
        yield bytes(pending[:chunk_bytes])
        del pending[:chunk_bytes]

"""Deterministic, realistic ALB access log lines for the benchmark, written as a cached `.log.gz`.

The mix follows the AWS field list and the quirks in shared/aws-facts.md: every connection type (http,
https, h2, grpcs, ws, wss), IPv4 and unbracketed IPv6 clients, requests that never reached a target
(WAF blocks, redirects, fixed responses, Lambda targets, 460s), raw spaces and `\\x22` in URLs, user
agents with double spaces, query strings, and the four field generations a bucket can hold side by side:
25 fields (up to error_reason), 29 (target lists, desync classification), 30 (conn_trace_id) and 34
(request transforms and the node's ip_address). About 0.1% of lines are malformed: ALB's own malformed
request forms (`"- - -"` and friends) and a few lines cut short, which no parser can read.

The same (lines, seed) always gives the same bytes, so a cached file can be reused across runs.
"""

from __future__ import annotations

import json
import os
import random
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Bump when the line shapes change, so cached files made by an older generator are not reused.
GENERATOR_VERSION = 1

ACCOUNT = "123456789012"
REGION = "us-east-1"
LB_NAME = "bench-alb"
LB_ID = "0123456789abcdef"
ELB = f"app/{LB_NAME}/{LB_ID}"
NODE_IP = "10.0.1.25"
# A key shaped like the ones ALB writes, so `python -m forwarder parse` detects the type by name.
FILE_NAME = (
    f"{ACCOUNT}_elasticloadbalancing_{REGION}_app.{LB_NAME}.{LB_ID}_20250314T0930Z_{NODE_IP}_bench.log.gz"
)

# Field generations and their share of lines (percent). Most lines of a bucket written today have the
# newest layout; older load balancers or older files still have the shorter ones.
GENERATION_MIX: tuple[tuple[int, int], ...] = ((34, 70), (30, 15), (29, 10), (25, 5))
# Malformed lines per million: 1000 = 0.1%. Four in five are ALB's own malformed request forms (valid
# lines with an odd request); one in five is cut short mid-line (a parse failure for any parser).
MALFORMED_PER_MILLION = 1000

_TG_ARN = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/bench-targets/73e2d6bc24d8a067"
_CERT_ARN = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/3f2a6c1e-8b4d-4e57-9c1a-2d7e5b9f0a11"
_HOSTS = ("www.example.com", "api.example.com", "shop.example.com", "static.example.com")
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
_METHOD_WEIGHTS = (74, 15, 4, 2, 2, 2, 1)
_TYPES = ("h2", "https", "http", "grpcs", "ws", "wss")
_TYPE_WEIGHTS = (45, 33, 14, 3, 1, 4)
_STATUSES = (200, 201, 204, 206, 301, 302, 304, 400, 401, 403, 404, 409, 429, 500, 503)
_STATUS_WEIGHTS = (700, 20, 30, 5, 10, 15, 60, 15, 15, 10, 50, 3, 5, 6, 6)
# What happened to the request: forwarded (most), or answered by the load balancer itself.
_OUTCOMES = ("forward", "waf", "redirect", "fixed", "lambda", "502", "504", "460", "space", "quote")
_OUTCOME_WEIGHTS = (9200, 150, 150, 60, 100, 80, 30, 100, 80, 50)
_CIPHERS = (("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2"), ("TLS_AES_128_GCM_SHA256", "TLSv1.3"))
_WINDOW_US = 300_000_000  # ALB writes one file per node every 5 minutes


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


def _iso(micros: int) -> str:
    """2025-03-14T09:25:00.000000Z plus `micros` (less than an hour), formatted like ALB."""
    seconds, fraction = divmod(micros, 1_000_000)
    minutes, seconds = divmod(seconds + 25 * 60, 60)
    return f"2025-03-14T09:{minutes:02d}:{seconds:02d}.{fraction:06d}Z"


class _LineMaker:
    """Builds lines one at a time from one seeded random stream."""

    def __init__(self, seed: int, total: int) -> None:
        self.rng = random.Random(seed)  # reproducible test data, not security
        self.step = _WINDOW_US / max(total, 1)
        self.generations: dict[str, int] = {}
        self.malformed_requests = 0
        self.cut_lines = 0

    def _fill(self, template: str) -> str:
        rng = self.rng
        return template.format(
            n=rng.randrange(1, 99_999), d=rng.randrange(1, 50), h=f"{rng.getrandbits(32):08x}"
        )

    def line(self, number: int) -> str:
        rng = self.rng
        micros = int(number * self.step) + rng.randrange(0, 1000)
        (generation,) = rng.choices(_GEN_VALUES, _GEN_WEIGHTS)
        self.generations[str(generation)] = self.generations.get(str(generation), 0) + 1
        malformed = rng.randrange(1_000_000) < MALFORMED_PER_MILLION
        if malformed and rng.randrange(5) == 0:
            self.cut_lines += 1
            text = self._normal(micros, generation)
            return text[: rng.randrange(20, len(text) // 2)]
        if malformed:
            self.malformed_requests += 1
            return self._malformed_request(micros, generation)
        return self._normal(micros, generation)

    def _client(self) -> str:
        rng = self.rng
        port = rng.randrange(1024, 65536)
        if rng.randrange(5) == 0:  # IPv6 clients are logged without brackets
            return f"2001:db8:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}:{port}"
        octets = (rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
        return "{}.{}.{}.{}".format(*octets) + f":{port}"

    def _normal(self, micros: int, generation: int) -> str:
        rng = self.rng
        (kind,) = rng.choices(_TYPES, _TYPE_WEIGHTS)
        (outcome,) = rng.choices(_OUTCOMES, _OUTCOME_WEIGHTS)
        (method,) = rng.choices(_METHODS, _METHOD_WEIGHTS)
        (status,) = rng.choices(_STATUSES, _STATUS_WEIGHTS)
        host = rng.choice(_HOSTS)
        tls = kind in ("https", "h2", "grpcs", "wss")
        scheme, port = ("https", 443) if tls else ("http", 80)
        path = self._fill(rng.choice(_PATHS)) + self._fill(rng.choice(_QUERIES))
        protocol = "HTTP/2.0" if kind in ("h2", "grpcs") else "HTTP/1.1"
        agent = rng.choice(_USER_AGENTS)
        if kind == "grpcs":
            method, path, agent = (
                "POST",
                f"/orders.v1.OrderService/{rng.choice(('Get', 'List', 'Create'))}",
                "grpc-go/1.64.0",
            )
        elif kind in ("ws", "wss"):
            method, path, status = "GET", "/socket?token=" + f"{rng.getrandbits(64):016x}", 101
        url = f"{scheme}://{host}:{port}{path}"
        target_ip = f"10.0.{rng.randrange(0, 4)}.{rng.randrange(2, 254)}"
        target = f"{target_ip}:{rng.choice((80, 8080, 8443))}"
        rpt = f"{rng.random() * 0.002:.3f}"
        tpt = f"{rng.expovariate(12):.3f}"
        rspt = f"{rng.random() * 0.001:.3f}"
        target_code: str = str(status)
        actions, redirect, error = "forward", "-", "-"
        classification, reason = "-", "-"
        tg = _TG_ARN
        priority = str(rng.choice((0, 1, 2, 5, 10, 20)))
        if outcome == "waf":
            target, rpt, tpt, rspt, status, target_code, actions = "-", "-1", "-1", "-1", 403, "-", "waf"
        elif outcome == "redirect":
            scheme, port, tls = "http", 80, False
            url = f"http://{host}:80{path}"
            kind, protocol = "http", "HTTP/1.1"
            target, tpt, status, target_code, tg = "-", "-1", 301, "-", "-"
            actions, redirect = "redirect", f"https://{host}:443{path}"
        elif outcome == "fixed":
            target, tpt, status, target_code, tg, actions = (
                "-",
                "-1",
                rng.choice((404, 503)),
                "-",
                "-",
                "fixed-response",
            )
        elif outcome == "lambda":
            target = "-"
            if rng.randrange(10) == 0:
                status, target_code, error = 502, "-", "LambdaUnhandled"
        elif outcome == "502":
            status, target_code, tpt = 502, "-", "-1"
        elif outcome == "504":
            status, target_code, tpt = 504, "-", "-1"
        elif outcome == "460":
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
            cert = '"session-reused"' if rng.randrange(8) == 0 else f'"{_CERT_ARN}"'
        else:
            cipher = tls_protocol = "-"
            domain = cert = '"-"'
        if priority == "0" and rng.randrange(200) == 0:
            priority = "-1"
        received = rng.randrange(150, 4000) if method != "POST" else rng.randrange(400, 60_000)
        sent = 0 if status in (204, 304) else rng.randrange(200, 300_000)
        created = _iso(max(micros - rng.randrange(1000, 900_000), 0))
        trace = f"Root=1-{rng.getrandbits(32):08x}-{rng.getrandbits(96):024x}"
        line = (
            f"{kind} {_iso(micros)} {ELB} {self._client()} {target} {rpt} {tpt} {rspt} {status} "
            f'{target_code} {received} {sent} "{method} {url} {protocol}" "{agent}" {cipher} {tls_protocol} '
            f'{tg} "{trace}" {domain} {cert} {priority} {created} "{actions}" "{redirect}" "{error}"'
        )
        if generation == 25:
            return line
        target_list = target if target != "-" else "-"
        code_list = target_code if target != "-" else "-"
        if classification == "-" and rng.randrange(3) == 0:
            classification = "Acceptable"
        line += f' "{target_list}" "{code_list}" "{classification}" "{reason}"'
        if generation == 29:
            return line
        line += f" TID_{rng.getrandbits(128):032x}"
        if generation == 30:
            return line
        return line + f' "-" "-" "-" {NODE_IP}'

    def _malformed_request(self, micros: int, generation: int) -> str:
        """A request ALB could not parse: no target, no rule, one of the request forms AWS logs."""
        rng = self.rng
        host = rng.choice(_HOSTS)
        request = rng.choice(("- - -", f"- http://{host}:80- -", f"- http://{host}:80-/ "))
        line = (
            f"http {_iso(micros)} {ELB} {self._client()} - -1 -1 -1 400 - {rng.randrange(0, 600)} 272 "
            f'"{request}" "-" - - - "-" "-" "-" - {_iso(micros)} "-" "-" "-"'
        )
        if generation == 25:
            return line
        line += ' "-" "-" "-" "-"'
        if generation == 29:
            return line
        line += f" TID_{rng.getrandbits(128):032x}"
        if generation == 30:
            return line
        return line + f' "-" "-" "-" {NODE_IP}'


_GEN_VALUES = tuple(generation for generation, _ in GENERATION_MIX)
_GEN_WEIGHTS = tuple(weight for _, weight in GENERATION_MIX)


def iter_log_lines(lines: int, seed: int) -> Iterator[str]:
    """`lines` log lines (without newlines), the same for the same arguments."""
    maker = _LineMaker(seed, lines)
    for number in range(lines):
        yield maker.line(number)


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
    maker = _LineMaker(seed, lines)
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    raw = written = 0
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        block: list[str] = []
        for number in range(lines):
            block.append(maker.line(number))
            if len(block) == 4096 or number == lines - 1:
                data = ("\n".join(block) + "\n").encode()
                raw += len(data)
                written += out.write(compressor.compress(data))
                block.clear()
        written += out.write(compressor.flush())
    os.replace(partial, path)
    info = LogFile(
        path=path,
        lines=lines,
        seed=seed,
        raw_bytes=raw,
        gzip_bytes=written,
        generations=dict(sorted(maker.generations.items())),
        malformed_requests=maker.malformed_requests,
        cut_lines=maker.cut_lines,
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
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    pending = bytearray()
    produced = 0
    while produced < raw_bytes:
        piece = (
            block
            if produced + len(block) <= raw_bytes
            else block[: block.rfind(b"\n", 0, raw_bytes - produced) + 1]
        )
        if not piece:
            break
        produced += len(piece)
        if progress is not None:
            progress["raw"] = produced
        pending += compressor.compress(piece)
        while len(pending) >= chunk_bytes:
            yield bytes(pending[:chunk_bytes])
            del pending[:chunk_bytes]
    pending += compressor.flush()
    while pending:
        yield bytes(pending[:chunk_bytes])
        del pending[:chunk_bytes]

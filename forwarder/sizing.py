"""What forwarding costs on Lambda: the CPU share a memory size buys, the seconds and dollars per GB of logs.

The model is deliberately small, and every input is named with where it comes from:
- Lambda allocates CPU in proportion to memory: at 1,769 MB a function has the equivalent of one vCPU,
  and up to 6 vCPUs at 10,240 MB (AWS Lambda Developer Guide, "Configure Lambda function memory").
  The forwarder is one Python thread, so a share above one vCPU does not make it faster;
- duration is billed per GB-second: arm64, first pricing tier, US East (N. Virginia),
  USD 0.0000133334 per GB-second, and USD 0.20 per million requests (aws.amazon.com/lambda/pricing);
- how many lines one CPU-second forwards, and how many compressed bytes a line takes, are measured by
  ``scripts/bench/benchmark.py --sizing`` on the machine that runs it. The defaults below are the json
  format's figures from ``python scripts/bench/benchmark.py --lines 200000 --repeat 1 --sizing
  --continuation --continuation-lines 500000`` (2026-12-02, commit ca91d1b, 2-core AMD EPYC, load average
  about 4): 17.6 us of CPU a line end to end, 102.9 gzip bytes a line of the benchmark's generated file.
  Quieter runs of the same machine gave 14.5 us, busier ones 18.3; Graviton cores differ from it and
  real ALB files compress differently from generated ones: treat the result as an estimate, and
  re-measure where it matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "ARM64_PRICE_PER_GB_SECOND",
    "BYTES_PER_GB",
    "CPU_SOURCE",
    "DEFAULT_MEMORY_MB",
    "FILE_INTERVAL_SECONDS",
    "MB_PER_VCPU",
    "PRICE_PER_REQUEST",
    "PRICING_SOURCE",
    "Estimate",
    "busiest_node",
    "cpu_share",
    "duration_cost",
    "estimate",
    "lines_in",
    "per_gb",
]

MB_PER_VCPU = 1769
MAX_MEMORY_MB = 10240
MIN_MEMORY_MB = 128
ARM64_PRICE_PER_GB_SECOND = 0.0000133334
PRICE_PER_REQUEST = 0.20 / 1_000_000
PRICING_SOURCE = "aws.amazon.com/lambda/pricing (arm64, first tier, us-east-1)"
CPU_SOURCE = "Lambda Developer Guide: 1,769 MB = 1 vCPU"
# ForwarderMemorySize's default in templates/onboarding.yaml, chosen from the benchmark's sizing table
# (README, "Sizing and cost"); a contract test keeps the two equal.
DEFAULT_MEMORY_MB = 1024
# A GB of logs is 10^9 bytes, as S3 counts a bucket's size; a GB of memory in the price is 1,024 MB.
BYTES_PER_GB = 1_000_000_000
# ELB writes one log file per load balancer node every 5 minutes (ELB User Guide, "Access log files").
FILE_INTERVAL_SECONDS = 300

# Measured end to end (S3 -> parse -> json -> gzip -> POST to a local receiver), see the module docstring.
DEFAULT_LINES_PER_CPU_SECOND = 57_000.0
DEFAULT_COMPRESSED_BYTES_PER_LINE = 103.0


def cpu_share(memory_mb: int) -> float:
    """The fraction of one vCPU a single-threaded function gets at this memory size (at most 1)."""
    if not MIN_MEMORY_MB <= memory_mb <= MAX_MEMORY_MB:
        raise ValueError(f"Lambda memory is {MIN_MEMORY_MB} to {MAX_MEMORY_MB} MB, not {memory_mb}")
    return min(memory_mb / MB_PER_VCPU, 1.0)


def duration_cost(seconds: float, memory_mb: int) -> float:
    """What ``seconds`` of billed duration at ``memory_mb`` cost, whatever the function did meanwhile."""
    return seconds * memory_mb / 1024 * ARM64_PRICE_PER_GB_SECOND


@dataclass(frozen=True, slots=True)
class Estimate:
    """Forwarding ``lines`` lines (``objects`` objects) at ``memory_mb`` with ``concurrency`` at once."""

    memory_mb: int
    concurrency: int
    lines: int
    objects: int
    function_seconds: float  # billed duration, all invocations together
    wall_seconds: float  # with `concurrency` invocations running side by side
    invocations: int
    cost_usd: float

    @property
    def cost_per_million_lines(self) -> float:
        return self.cost_usd / self.lines * 1_000_000 if self.lines else 0.0


def estimate(
    *,
    lines: int,
    objects: int,
    memory_mb: int,
    concurrency: int = 1,
    lines_per_cpu_second: float = DEFAULT_LINES_PER_CPU_SECOND,
    timeout_seconds: float = 300.0,
) -> Estimate:
    """Seconds and dollars to forward ``lines`` lines in ``objects`` objects.

    Each object takes at least one invocation, and one more each time it outlasts ``timeout_seconds``
    (the forwarder continues a long file in a new invocation); CPU-bound work is assumed, so the
    figures are a floor when the endpoint is slow to answer.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency is at least 1, not {concurrency}")
    if lines_per_cpu_second <= 0:
        raise ValueError(f"lines per CPU-second must be positive, not {lines_per_cpu_second}")
    share = cpu_share(memory_mb)
    seconds = lines / (lines_per_cpu_second * share)
    per_object = seconds / objects if objects else 0.0
    invocations = objects * max(1, math.ceil(per_object / timeout_seconds)) if objects else 0
    # Objects are spread over `concurrency` invocations at a time; one object is never split across them.
    wall = max(seconds / concurrency, per_object) if objects else 0.0
    cost = duration_cost(seconds, memory_mb) + invocations * PRICE_PER_REQUEST
    return Estimate(
        memory_mb=memory_mb,
        concurrency=concurrency,
        lines=lines,
        objects=objects,
        function_seconds=seconds,
        wall_seconds=wall,
        invocations=invocations,
        cost_usd=cost,
    )


def per_gb(
    *,
    memory_mb: int,
    lines_per_cpu_second: float,
    bytes_per_line: float,
    lines_per_object: int,
    timeout_seconds: float = 300.0,
) -> Estimate:
    """Seconds and dollars to forward one GB of logs, in objects of ``lines_per_object`` lines.

    Which GB is the caller's: ``bytes_per_line`` counted in gzip'd bytes gives a GB of log files as S3
    stores them, counted uncompressed a GB of log text.
    """
    if bytes_per_line <= 0 or lines_per_object < 1:
        raise ValueError("bytes per line must be positive and an object holds at least one line")
    lines = round(BYTES_PER_GB / bytes_per_line)
    return estimate(
        lines=lines,
        objects=math.ceil(lines / lines_per_object),
        memory_mb=memory_mb,
        lines_per_cpu_second=lines_per_cpu_second,
        timeout_seconds=timeout_seconds,
    )


def busiest_node(*, memory_mb: int, lines_per_cpu_second: float, timeout_seconds: float = 300.0) -> float:
    """Requests per second of the busiest load balancer node whose 5-minute file one invocation finishes."""
    lines = lines_per_cpu_second * cpu_share(memory_mb) * timeout_seconds
    return lines / FILE_INTERVAL_SECONDS


def lines_in(compressed_bytes: int, *, bytes_per_line: float = DEFAULT_COMPRESSED_BYTES_PER_LINE) -> int:
    """About how many lines ``compressed_bytes`` of gzip'd ELB logs hold."""
    return round(compressed_bytes / bytes_per_line)

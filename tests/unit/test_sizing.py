"""The cost model behind replay --via-lambda --dry-run and the benchmark's sizing table."""

from __future__ import annotations

import pytest

from forwarder.sizing import ARM64_PRICE_PER_GB_SECOND, PRICE_PER_REQUEST, cpu_share, estimate


def test_cpu_grows_with_memory_up_to_one_vcpu() -> None:
    assert cpu_share(1769) == 1.0
    assert cpu_share(10240) == 1.0  # one Python thread uses one vCPU, however many there are
    assert cpu_share(256) == pytest.approx(256 / 1769)
    with pytest.raises(ValueError, match="128 to 10240"):
        cpu_share(64)


def test_below_one_vcpu_the_cost_per_line_stays_and_the_time_falls() -> None:
    small = estimate(lines=10_000_000, objects=10, memory_mb=256, lines_per_cpu_second=100_000)
    large = estimate(lines=10_000_000, objects=10, memory_mb=1769, lines_per_cpu_second=100_000)
    assert large.wall_seconds == pytest.approx(small.wall_seconds * 256 / 1769)
    assert large.cost_usd == pytest.approx(small.cost_usd, rel=0.01)
    # Above one vCPU, memory costs more and buys nothing.
    larger = estimate(lines=10_000_000, objects=10, memory_mb=3538, lines_per_cpu_second=100_000)
    assert larger.wall_seconds == pytest.approx(large.wall_seconds)
    assert larger.cost_usd == pytest.approx(large.cost_usd * 2, rel=0.01)


def test_cost_is_billed_duration_plus_requests() -> None:
    result = estimate(lines=1_769_000, objects=1, memory_mb=1769, lines_per_cpu_second=1769)
    seconds = 1000.0
    assert result.function_seconds == pytest.approx(seconds)
    # 1000 s in one object outlasts a 300 s timeout: four invocations.
    assert result.invocations == 4
    expected = seconds * 1769 / 1024 * ARM64_PRICE_PER_GB_SECOND + 4 * PRICE_PER_REQUEST
    assert result.cost_usd == pytest.approx(expected)


def test_concurrency_divides_the_time_but_not_below_one_object() -> None:
    many = estimate(lines=1_000_000, objects=100, memory_mb=1769, concurrency=10, lines_per_cpu_second=1000)
    assert many.wall_seconds == pytest.approx(100.0)
    one = estimate(lines=1_000_000, objects=1, memory_mb=1769, concurrency=10, lines_per_cpu_second=1000)
    assert one.wall_seconds == pytest.approx(1000.0)

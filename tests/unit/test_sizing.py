"""The cost model behind replay --via-lambda --dry-run and the benchmark's sizing table."""

from __future__ import annotations

import pytest

from forwarder.sizing import (
    ARM64_PRICE_PER_GB_SECOND,
    PRICE_PER_REQUEST,
    busiest_node,
    cpu_share,
    estimate,
    per_gb,
)


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


def test_a_gb_of_logs_is_counted_in_the_bytes_the_caller_names() -> None:
    # 100 bytes a line: 10 million lines in 10^9 bytes, in objects of a million lines.
    gzip_gb = per_gb(memory_mb=1769, lines_per_cpu_second=50_000, bytes_per_line=100, lines_per_object=10**6)
    assert gzip_gb.lines == 10_000_000 and gzip_gb.objects == 10
    assert gzip_gb.function_seconds == pytest.approx(200.0)
    assert gzip_gb.invocations == 10
    # The same lines uncompressed take 6 times the bytes: a GB of them is 6 times fewer lines.
    raw_gb = per_gb(memory_mb=1769, lines_per_cpu_second=50_000, bytes_per_line=600, lines_per_object=10**6)
    assert raw_gb.lines == round(10_000_000 / 6) and raw_gb.objects == 2
    assert raw_gb.function_seconds == pytest.approx(200.0 / 6, rel=1e-6)
    # A part-filled last object is still an object: 10.5 million lines in 11.
    assert (
        per_gb(memory_mb=1769, lines_per_cpu_second=1, bytes_per_line=100, lines_per_object=950_000).objects
        == 11
    )


def test_a_gb_needs_positive_sizes() -> None:
    with pytest.raises(ValueError, match="bytes per line"):
        per_gb(memory_mb=1024, lines_per_cpu_second=1000, bytes_per_line=0, lines_per_object=10)
    with pytest.raises(ValueError, match="at least one line"):
        per_gb(memory_mb=1024, lines_per_cpu_second=1000, bytes_per_line=100, lines_per_object=0)


def test_the_busiest_node_one_invocation_keeps_up_with() -> None:
    # A 5-minute file within a 300 s timeout: the node may log as many lines a second as are forwarded.
    assert busiest_node(memory_mb=1769, lines_per_cpu_second=40_000) == pytest.approx(40_000)
    assert busiest_node(memory_mb=1024, lines_per_cpu_second=40_000) == pytest.approx(40_000 * 1024 / 1769)
    assert busiest_node(memory_mb=1769, lines_per_cpu_second=40_000, timeout_seconds=900) == pytest.approx(
        120_000
    )
    assert busiest_node(memory_mb=3008, lines_per_cpu_second=40_000) == pytest.approx(40_000)

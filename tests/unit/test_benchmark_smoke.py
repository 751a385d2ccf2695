"""scripts/bench/benchmark.py at a tiny size: it runs, every contender handles every line, the report is
whole.

Not a timed test: nothing here asserts on speed. The generator and the baseline regex are checked
directly, because a benchmark against a broken baseline or on the wrong input would mislead.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from script_modules import load_script

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "scripts" / "bench"


loggen = load_script("bench/bench_loggen")
contenders = load_script("bench/bench_contenders")
benchmark = load_script("bench/benchmark")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    scratch = tmp_path_factory.mktemp("bench")
    out = scratch / "results.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCH / "benchmark.py"),
            "--lines",
            "400",
            "--repeat",
            "1",
            "--cache-dir",
            str(scratch / "cache"),
            "--memory-check",
            "--memory-mb",
            "2",
            "--sizing",
            "--continuation",
            "--continuation-lines",
            "30000",
            "--continuation-speedup",
            "500",
            "--json",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=240,
        check=False,
    )
    results = json.loads(out.read_text()) if out.exists() else {}
    return completed, results


def test_report_has_every_section_and_contender(
    smoke_run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    completed, _ = smoke_run
    assert completed.returncode == 0, completed.stderr
    report = completed.stdout
    for heading in (
        "### Machine",
        "### Input",
        "### Throughput",
        "### Compression",
        "### Memory",
        "### Memory check: a 2 MiB object",
        "### Per format",
        "### Verdict",
    ):
        assert heading in report, heading
    for label in (
        "floor: gunzip + split",
        "baseline: Athena regex + json",
        "ours: python -m forwarder parse",
        "end to end, receiver in its own process",
        "end to end, receiver in the same process",
        "zlib level 1",
        "zlib level 6",
    ):
        assert f"| {label} |" in report, label
    assert "| vs baseline | by CPU |" in report
    assert "Parse: ours is" in report
    assert "End to end:" in report
    assert "Python " in report and "orjson" in report and "isal" in report


def test_json_results_account_for_every_line(
    smoke_run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    completed, results = smoke_run
    assert completed.returncode == 0, completed.stderr
    assert results["input"]["lines"] == 400
    names = [row["name"] for row in results["throughput"]]
    assert names == ["floor", "baseline", "ours", "e2e", "e2e_inprocess"]
    rows = {row["name"]: row for row in results["throughput"]}
    assert rows["baseline"]["vs_baseline"] == 1.0
    assert rows["baseline"]["vs_baseline_cpu"] == 1.0
    assert "commit" in results["code"]
    for row in results["throughput"]:
        assert row["lines_per_second"] > 0 and row["peak_rss_mib"] > 0
    for name in ("e2e", "e2e_inprocess"):
        details = rows[name]["details"]
        assert details["records_sent"] == 400
        assert details["receiver"]["records"] == 400
        assert details["receiver"]["bad_bodies"] == 0
    levels = {row["compressor"] for row in results["compression"]}
    assert {"zlib level 1", "zlib level 6"} <= levels
    assert [row["small_lines"] for row in results["memory"]] == [40, 40]
    check = results["memory_check"]
    assert check["lines"] > 0 and check["records_sent"] == check["lines"]
    assert check["raw_bytes"] <= 2 * 1024 * 1024
    assert set(results["verdict"]) >= {"parse_met", "e2e_met", "memory_met"}


def test_every_output_format_runs_end_to_end_on_the_same_file(
    smoke_run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    """One e2e run per registered format (and otlp's protobuf encoding), each answered as its intake
    answers, every line received."""
    from forwarder.destinations import OUTPUT_FORMATS

    completed, results = smoke_run
    assert completed.returncode == 0, completed.stderr
    rows = results["formats"]
    assert [row["format"] for row in rows] == [*OUTPUT_FORMATS, "otlp http/protobuf"]
    for row in rows:
        receiver = row["details"]["receiver"]
        assert receiver["records"] == 400 and receiver["bad_bodies"] == 0, row["format"]
        assert row["details"]["retries"] == 0, row["format"]
        assert row["lines_per_second"] > 0 and row["gzip_bytes"] > 0 and row["peak_rss_mib"] > 0
        assert f"| {row['format']} |" in completed.stdout
        assert isinstance(row["met"], bool)
    assert rows[0]["vs_json"] == 1.0 and rows[0]["cost"] == 0.0
    verdicts = [line for line in completed.stdout.splitlines() if line.startswith("- Format ")]
    assert len(verdicts) == len(OUTPUT_FORMATS) + 1
    assert "formats_met" in results["verdict"]


def test_sizing_prices_every_format_at_each_memory_size(
    smoke_run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    """Below one vCPU the cost per GB stays and the time falls; above it the cost rises and the time stays."""
    from forwarder.destinations import OUTPUT_FORMATS

    completed, results = smoke_run
    assert completed.returncode == 0, completed.stderr
    table = results["sizing"]
    assert table["memory_mb"] == [128, 256, 512, 1024, 1769, 3008]
    assert table["cpu_share"][-2:] == [1.0, 1.0]
    assert [row["format"] for row in table["rows"]] == [*OUTPUT_FORMATS, "otlp http/protobuf"]
    report = completed.stdout.split("### Sizing and cost", 1)[1]
    assert table["cpu_source"] in report and table["pricing_source"] in report
    for row in table["rows"]:
        assert row["lines_per_cpu_second"] > 0 and row["peak_rss_mib"] > 0 and row["requests_per_gb_gzip"] > 0
        cells = {cell["memory_mb"]: cell for cell in row["sizes"]}
        seconds = [cells[memory]["seconds_per_gb_gzip"] for memory in (128, 256, 512, 1024, 1769)]
        assert seconds == sorted(seconds, reverse=True) and seconds[0] > seconds[-1], row["format"]
        assert cells[3008]["seconds_per_gb_gzip"] == cells[1769]["seconds_per_gb_gzip"]
        assert cells[128]["usd_per_gb_gzip"] == pytest.approx(cells[1769]["usd_per_gb_gzip"], rel=1e-3)
        # Above it, the same seconds billed at more GB: the difference is the extra memory's GB-seconds.
        extra = cells[3008]["usd_per_gb_gzip"] - cells[1769]["usd_per_gb_gzip"]
        seconds_at_one_vcpu = cells[1769]["seconds_per_gb_gzip"]
        assert extra == pytest.approx(
            seconds_at_one_vcpu * (3008 - 1769) / 1024 * table["price_per_gb_second"], rel=0.01
        )
        # Waiting for answers is billed at the memory size, less the work on the next batch done meanwhile:
        # it never costs less than the CPU alone, and more memory (less work per second) waits longer.
        waiting = [cells[memory]["usd_per_gb_gzip_waiting"] for memory in table["memory_mb"]]
        assert waiting == sorted(waiting) and waiting[-1] > cells[3008]["usd_per_gb_gzip"]
        assert all(waiting[i] >= cells[m]["usd_per_gb_gzip"] for i, m in enumerate(table["memory_mb"]))
        # A GB of uncompressed text holds fewer lines than a GB of gzip'd files.
        assert cells[1024]["usd_per_gb_raw"] < cells[1024]["usd_per_gb_gzip"]
        nodes = [cells[memory]["busiest_node_requests_per_second"] for memory in table["memory_mb"]]
        assert nodes[0] < nodes[-2] == nodes[-1]
        assert sum(line.startswith(f"| {row['format']} | ") for line in report.splitlines()) == 4
    assert table["answer_seconds"] == 0.1 and "waits 100 ms for its answer" in report
    assert "USD per GB of gzip'd logs" in report and "| 1,769 MB (1.00 vCPU) |" in report


def test_continuation_delivers_every_line_once_along_a_consistent_chain(
    smoke_run: tuple[subprocess.CompletedProcess[str], dict],
) -> None:
    """The real handler, moto S3 and SQS: however many invocations the simulated deadline made it take."""
    from forwarder.sizing import DEFAULT_MEMORY_MB

    completed, results = smoke_run
    assert completed.returncode == 0, completed.stderr
    run = results["continuation"]
    assert run["memory_mb"] == DEFAULT_MEMORY_MB and run["lines"] == 30000 and run["speedup"] == 500
    assert run["records_received"] == run["distinct_event_ids"] == 30000
    assert run["duplicate_event_ids"] == 0 and run["event_ids_as_uncut"] and run["dead_letters"] == 0
    chain = [row for row in run["invocations"] if row["outcome"] != "failed"]
    # 30,000 lines at 500 times the speed are as 15,000,000 lines: several 300 s invocations, not one.
    assert len(chain) > 1
    assert chain[0]["start_line"] == 1 and chain[-1]["outcome"] == "ok"
    for before, after in itertools.pairwise(chain):
        assert before["outcome"] == "continued" and after["start_line"] == before["continued_at"]
        assert after["invocation"] == before["invocation"] + 1
    assert sum(row["records_sent"] for row in chain) == 30000
    assert isinstance(run["met"], bool)
    report = completed.stdout.split("### Continuation: a file larger than one invocation", 1)[1]
    assert f"{DEFAULT_MEMORY_MB:,} MB" in report and "scaled down 500 times" in report
    assert sum(line.startswith("| ") for line in report.splitlines()) == len(run["invocations"]) + 1


def test_the_simulated_deadline_runs_on_cpu_time_over_the_share_times_the_speedup() -> None:
    continuation = load_script("bench/bench_continuation")
    context = continuation.SimulatedContext(300.0, 0.5, 10.0, "request-1")
    past = continuation.SimulatedContext(1.0, 1.0, 1e6, "request-2")
    started = time.thread_time()
    while time.thread_time() - started < 0.05:  # spend some CPU; a sleep would not move the clock
        sum(range(1000))
    used = context.seconds_used()
    assert used >= (time.thread_time() - started) * 20 * 0.9 > 0
    assert context.get_remaining_time_in_millis() <= (300.0 - used) * 1000
    assert past.get_remaining_time_in_millis() == 0  # never negative, as Lambda's context


def test_the_simulated_deadline_counts_the_delivery_threads_cpu_too() -> None:
    continuation = load_script("bench/bench_continuation")
    context = continuation.SimulatedContext(300.0, 1.0, 1.0, "request-1")
    spent: list[float] = []

    def deliver() -> None:  # as the forwarder's delivery thread: busy while the invoking thread waits
        started = time.thread_time()
        while time.thread_time() - started < 0.05:
            sum(range(1000))
        spent.append(context.seconds_used())

    from forwarder.pipeline import DELIVERY_THREAD

    worker = threading.Thread(target=deliver, name=DELIVERY_THREAD + "_0")
    worker.start()
    worker.join()
    assert spent[0] >= 0.05 * 0.9
    assert context.seconds_used() >= spent[0]  # the thread has ended: what it used still counts


def test_memory_sizes_are_lambdas(capsys: pytest.CaptureFixture[str]) -> None:
    assert benchmark.parse_args(["--memory-sizes", "128,10240"]).memory_sizes == (128, 10240)
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--memory-sizes", "64,256"])
    assert "128 to 10240 MB, not 64" in capsys.readouterr().err


def test_generated_file_is_deterministic_and_cached(tmp_path: Path) -> None:
    first, generated = loggen.ensure_log_file(tmp_path / "a", 3000, 7)
    assert generated
    again, generated_again = loggen.ensure_log_file(tmp_path / "a", 3000, 7)
    assert not generated_again and again == first
    elsewhere, _ = loggen.ensure_log_file(tmp_path / "b", 3000, 7)
    assert elsewhere.path.read_bytes() == first.path.read_bytes()
    other_seed, _ = loggen.ensure_log_file(tmp_path / "a", 3000, 8)
    assert other_seed.path.read_bytes() != first.path.read_bytes()


def test_generated_lines_have_the_realistic_mix() -> None:
    lines = list(loggen.iter_log_lines(20000, 3))
    assert len(lines) == 20000
    kinds = {line.split(" ", 1)[0] for line in lines}
    assert {"http", "https", "h2", "grpcs", "ws", "wss"} <= kinds
    assert any(line.split(" ")[3].startswith("2001:db8:") for line in lines)  # IPv6 client, unbracketed
    assert any(line.split(" ")[4] == "-" for line in lines)  # no target reached
    statuses = {line.split(" ")[8] for line in lines if line.count('"') >= 22}
    assert {"200", "301", "404", "460", "502"} <= statuses
    assert any('"- - -"' in line for line in lines)
    assert any("  " in line.split('"')[3] for line in lines if line.count('"') >= 22)  # double-spaced agent
    assert any("annual report" in line for line in lines)  # raw space in the URL
    assert any("?" in line.split('"')[1] for line in lines if line.count('"') >= 22)
    # The four field generations, by the number of quoted values and the conn_trace_id / ip_address tail.
    newest = [line for line in lines if line.count('"') == 30 and line.endswith(loggen.NODE_IP)]
    with_tid = [line for line in lines if line.count('"') == 24 and " TID_" in line]
    with_lists = [line for line in lines if line.count('"') == 24 and " TID_" not in line]
    oldest = [line for line in lines if line.count('"') == 16]
    assert min(len(newest), len(with_tid), len(with_lists), len(oldest)) > 0
    assert len(newest) > len(lines) // 2
    broken = len(lines) - len(newest) - len(with_tid) - len(with_lists) - len(oldest)
    assert 0 < broken < len(lines) // 200  # cut lines: a small fraction


def test_memory_stream_is_valid_gzip_of_whole_lines() -> None:
    import zlib

    progress: dict[str, int] = {}
    data = b"".join(loggen.gzip_stream(3_000_000, 1, chunk_bytes=65536, progress=progress))
    text = zlib.decompress(data, 31)
    assert len(text) == progress["raw"] <= 3_000_000
    assert len(text) > 2_000_000 and text.endswith(b"\n")


def test_baseline_regex_reads_a_documented_line_shape() -> None:
    line = (
        "h2 2025-03-14T09:26:53.123456Z app/my-loadbalancer/50dc6c495c0c9188 10.0.1.252:48160 "
        "10.0.0.66:9000 0.000 0.002 0.000 200 200 5 257 "
        '"GET https://www.example.com:443/a b?c=1 HTTP/2.0" "curl/8.5.0  (x)" '
        "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 "
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/73e2d6bc24d8a067 "
        '"Root=1-58337327-72bd00b0343d75b906739c42" "www.example.com" "session-reused" 1 '
        '2025-03-14T09:26:53.000000Z "forward" "-" "-" "10.0.0.66:9000" "200" "Ambiguous" "SpaceInUri" '
        'TID_1234abcd "-" "-" "-" 10.0.1.25'
    )
    match = contenders.ATHENA_ALB_REGEX.fullmatch(line)
    assert match is not None
    record = dict(zip(contenders.ATHENA_ALB_COLUMNS, match.groups(), strict=False))
    assert record["client_ip"] == "10.0.1.252" and record["target_port"] == "9000"
    assert record["request_url"] == "https://www.example.com:443/a b?c=1"
    assert record["user_agent"] == "curl/8.5.0  (x)"
    assert record["classification_reason"] == "SpaceInUri"
    assert record["conn_trace_id"] == "TID_1234abcd"


def test_resume_benchmark_runs_and_reports_each_path_per_line() -> None:
    """bench_resume.py at a tiny size (not timed: the figures only have to exist and be per line)."""
    completed = subprocess.run(
        [sys.executable, str(BENCH / "bench_resume.py"), "--lines", "300", "--repeat", "1", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout)
    assert results["lines"] == 300
    for name in ("skip", "read", "forward"):
        assert results[f"{name}_us_per_line"] > 0, name


def test_a_wait_for_the_answer_is_billed_only_where_it_outlasts_building_the_next_batch() -> None:
    # 100 requests of 0.1 s waits: with 2 s of CPU work (0.02 s a batch) 0.08 s of each wait is idle.
    assert benchmark._waiting_seconds(100, 0.1, 2.0) == pytest.approx(8.0)
    assert benchmark._waiting_seconds(100, 0.1, 50.0) == 0.0  # a batch takes longer to build than to answer
    assert benchmark._waiting_seconds(0, 0.1, 2.0) == 0.0


def test_transport_benchmark_times_posts_to_a_receiver_in_its_own_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    transport = load_script("bench/bench_transport")
    assert transport.main(["--posts", "5", "--repeat", "2", "--kib", "4"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    cpu, wall = (int(n) for n in re.findall(r"(\d+) us of", line))
    assert cpu > 0 and wall > 0 and "best of 2 rounds of 5" in line

"""Benchmark the forwarder against a floor and a straightforward parser, side by side in one run.

    python scripts/bench/benchmark.py                      # 1,000,000 lines, 3 runs each (make bench)
    python scripts/bench/benchmark.py --lines 100000 --repeat 1 --memory-check --json build/bench/out.json
    python scripts/bench/benchmark.py --lines 200000 --repeat 1 --sizing --continuation \
        --continuation-lines 500000 --json build/bench/continuation.json       # README, Sizing and cost

Contenders, each in its own process reading the same generated `.log.gz` (scripts/bench/bench_loggen.py):
  floor     gunzip and split into lines, nothing else: no parser can be faster than this
  baseline  the straightforward parser: gzip.open, AWS's Athena regex for ALB logs, json.dumps
  ours      `python -m forwarder parse FILE > /dev/null`, exactly the command users run
  e2e       the Lambda's per-object pipeline (forward_object): read, parse, batch, gzip, POST to a local
            receiver; once with the receiver in a separate process, once in the forwarder's process
plus the forwarder's gzip choices end to end (zlib 1 and 6, ISA-L 1 when installed), the forwarder at a
10x smaller input (streaming: peak memory should not grow with the input), end to end once per output
format (OUTPUT_FORMAT) on the same file, each answered as its intake answers, and with --memory-check a
~1 GiB uncompressed object generated on the fly and streamed through the pipeline. With --sizing, each
format's CPU time in those end-to-end runs becomes seconds and dollars per GB of logs at several Lambda
memory sizes (forwarder/sizing.py's model, its sources named in the report). With --continuation, one
file is forwarded by the real handler, with moto S3 and SQS and the stack's work queue, on a simulated
deadline at the template's default memory, over as many invocations as it takes
(scripts/bench/bench_continuation.py).

Peak memory is each process's own maximum resident set size (os.wait4 returns that child's rusage).
Throughput is lines (and uncompressed MB, 10^6 bytes) per second of wall time, start-up included; the
fastest of --repeat runs is reported, the median next to it. Runs are interleaved (one of each contender,
then the next round) so background load on the machine hits every contender alike.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The log line generator the benchmark shares with the demo and the tests; the repository root, for the
# list of output formats (the runs themselves import the forwarder from a snapshot, see snapshot_code).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
sys.path.append(str(Path(__file__).resolve().parents[2]))

import bench_loggen

from forwarder import sizing
from forwarder.destinations import OUTPUT_FORMATS

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CONTENDERS = HERE / "bench_contenders.py"
RECEIVER = HERE / "bench_receiver.py"
CONTINUATION = HERE / "bench_continuation.py"
DEFAULT_CACHE = REPO / "build" / "bench"

# The aims: parse >= 2.5x the straightforward parser; end to end >= 1.5x its parse-only rate.
PARSE_AIM = 2.5
E2E_AIM = 1.5
LAMBDA_MEMORY_MIB = 256
# No output format may cost more than 25% of the json format's end-to-end rate (cost = 1 - rate/json).
FORMAT_COST_AIM = 0.25


class BenchmarkError(RuntimeError):
    """A contender failed or produced the wrong number of lines: its numbers would mean nothing."""


@dataclass(frozen=True, slots=True)
class Run:
    """One contender process: wall time, CPU time and peak memory from its rusage, and its counters."""

    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    result: dict[str, Any]


@dataclass(slots=True)
class Contender:
    """A command to run repeatedly, and its runs."""

    name: str
    label: str
    argv: list[str]
    stdout_to_null: bool = True
    runs: list[Run] = field(default_factory=list)

    def best(self) -> Run:
        return min(self.runs, key=lambda run: run.seconds)

    def median_seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    def peak_rss_mib(self) -> float:
        return max(run.peak_rss_mib for run in self.runs)


# --- running children ------------------------------------------------------------------------------------


def run_child(
    argv: list[str], *, stdout_to_null: bool, timeout: float, env: dict[str, str], cwd: Path = REPO
) -> Run:
    """Run one process; measure its wall time from spawn to exit and read its own rusage."""
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        result_path = Path(scratch) / "result.json"
        err_path = Path(scratch) / "stderr.txt"
        full = [arg.replace("{result}", str(result_path)) for arg in argv]
        with open(os.devnull, "wb") as null, err_path.open("wb") as err:
            started = time.perf_counter()
            process = subprocess.Popen(
                full, stdout=null if stdout_to_null else subprocess.PIPE, stderr=err, cwd=cwd, env=env
            )
            watchdog = threading.Timer(timeout, process.kill)
            watchdog.start()
            try:
                # wait4, not Popen.wait: it returns this child's own resource usage.
                _, status, usage = os.wait4(process.pid, 0)
            finally:
                watchdog.cancel()
            seconds = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
        stderr = err_path.read_text(errors="replace")
        if process.returncode != 0:
            raise BenchmarkError(f"{shlex.join(full)} exited with {process.returncode}:\n{stderr[-2000:]}")
        result: dict[str, Any] = json.loads(result_path.read_text()) if result_path.exists() else {}
        result["stderr"] = stderr
    return Run(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        result=result,
    )


class SeparateReceiver:
    """bench_receiver.py in its own process: its CPU is not the forwarder's (it uses the other core)."""

    def __init__(self, env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(RECEIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            env=env,
            text=True,
        )
        if self._process.stdout is None:
            raise BenchmarkError("the receiver has no stdout pipe")
        line = self._process.stdout.readline()
        if not line.startswith("PORT "):
            raise BenchmarkError(f"the receiver did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/"

    def reset(self) -> None:
        urllib.request.urlopen(
            urllib.request.Request(self.url + "reset", data=b"", method="POST"), timeout=30
        ).read()

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "stats", timeout=90) as response:
            data: dict[str, Any] = json.loads(response.read())
        return data

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


# --- checks ----------------------------------------------------------------------------------------------


def lines_seen(contender: Contender, run: Run) -> int:
    """How many lines the run says it handled (the forwarder CLI says so with --summary on stderr)."""
    if contender.name.startswith("ours"):
        for token in run.result.get("stderr", "").split():
            if token.startswith("lines="):
                return int(token.split("=", 1)[1])
        return -1
    return int(run.result.get("lines", -1))


def check_run(contender: Contender, run: Run, expected: int) -> None:
    seen = lines_seen(contender, run)
    if seen != expected:
        raise BenchmarkError(f"{contender.label}: {seen} lines handled, {expected} expected")
    receiver = run.result.get("receiver")
    if receiver is not None and (receiver["records"] != expected or receiver["bad_bodies"]):
        raise BenchmarkError(
            f"{contender.label}: the receiver counted {receiver['records']} records "
            f"({receiver['bad_bodies']} bad bodies), {expected} lines were sent"
        )


# --- the benchmark ---------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "orjson": _version("orjson"),
        "isal": _version("isal"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def code_version() -> dict[str, Any]:
    """The commit measured, and whether forwarder/ had uncommitted changes (then the numbers are theirs)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        except OSError:
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "--short=12", "HEAD") or None,
        "forwarder_changed": bool(git("status", "--porcelain", "--", "forwarder")),
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def snapshot_code(into: Path) -> Path:
    """Copy forwarder/ so that every run measures the code as it was when the benchmark started.

    A run takes minutes; without the copy, a commit landing meanwhile would give the rounds different
    code and the report a commit that only some of them ran.
    """
    shutil.copytree(REPO / "forwarder", into / "forwarder", ignore=shutil.ignore_patterns("__pycache__"))
    return into


def _child_env(code_dir: Path) -> dict[str, str]:
    # The snapshot comes first on the path (and is the working directory, which `python -m` puts
    # before everything): the forwarder is imported from it, not from the checkout.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code_dir), str(HERE), env.get("PYTHONPATH")]))
    env["PYTHONHASHSEED"] = "0"
    return env


def _contenders(path: Path, isal: bool) -> tuple[list[Contender], list[Contender], list[Contender]]:
    """(main contenders, extra gzip variants, one end-to-end run per output format) for one input file."""
    py = sys.executable
    file = str(path)

    def e2e(name: str, label: str, *extra: str) -> Contender:
        return Contender(name, label, [py, str(CONTENDERS), "e2e", file, "--result", "{result}", *extra])

    main = [
        Contender(
            "floor", "floor: gunzip + split", [py, str(CONTENDERS), "floor", file, "--result", "{result}"]
        ),
        Contender(
            "baseline",
            "baseline: Athena regex + json",
            [py, str(CONTENDERS), "baseline", file, "--result", "{result}"],
        ),
        Contender(
            "ours", "ours: python -m forwarder parse", [py, "-m", "forwarder", "parse", file, "--summary"]
        ),
        e2e("e2e", "end to end, receiver in its own process", "--endpoint", "{endpoint}"),
        e2e("e2e_inprocess", "end to end, receiver in the same process"),
    ]
    variants = [
        e2e("gzip_zlib_1", "zlib level 1", "--endpoint", "{endpoint}", "--library", "zlib", "--level", "1"),
        e2e("gzip_zlib_6", "zlib level 6", "--endpoint", "{endpoint}", "--library", "zlib", "--level", "6"),
    ]
    if isal:
        # The default run (e2e) already uses ISA-L level 1 when isal is installed; level 2 is its other level.
        variants.append(
            e2e(
                "gzip_isal_2", "isal level 2", "--endpoint", "{endpoint}", "--library", "isal", "--level", "2"
            )
        )
    formats = [
        e2e(f"format_{name}", f"{name} format", "--endpoint", "{endpoint}", "--format", name)
        for name in OUTPUT_FORMATS
    ]
    # otlp's other encoding, binary protobuf (OTLP_PROTOCOL), as a row of its own.
    formats.append(
        e2e(
            "format_otlp_protobuf",
            "otlp format, http/protobuf",
            *("--endpoint", "{endpoint}", "--format", "otlp", "--setting", "OTLP_PROTOCOL=http/protobuf"),
        )
    )
    return main, variants, formats


def _execute(
    contender: Contender,
    expected: int,
    *,
    receiver: SeparateReceiver | None,
    timeout: float,
    env: dict[str, str],
    cwd: Path,
) -> Run:
    argv = contender.argv
    separate = receiver if "{endpoint}" in argv else None
    if separate is not None:
        argv = [arg.replace("{endpoint}", separate.url) for arg in argv]
        separate.reset()
    run = run_child(argv, stdout_to_null=contender.stdout_to_null, timeout=timeout, env=env, cwd=cwd)
    if separate is not None:
        run.result["receiver"] = separate.stats()
    check_run(contender, run, expected)
    imported = run.result.get("forwarder_file")
    if imported is not None and not Path(imported).resolve().is_relative_to(cwd.resolve()):
        raise BenchmarkError(f"{contender.label} imported the forwarder from {imported}, not from {cwd}")
    return run


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-code-") as scratch:
        code = code_version()
        code_dir = snapshot_code(Path(scratch))
        return _benchmark(args, code, code_dir)


def _benchmark(args: argparse.Namespace, code: dict[str, Any], code_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    env = _child_env(code_dir)
    machine = machine_info()
    progress = _progress(args)

    progress(f"input: {args.lines} lines, seed {args.seed} (cache {args.cache_dir})")
    t0 = time.perf_counter()
    info, generated = bench_loggen.ensure_log_file(args.cache_dir, args.lines, args.seed)
    generation_seconds = time.perf_counter() - t0
    progress(f"  {'generated' if generated else 'reused'} {info.path} in {generation_seconds:.1f}s")
    small_lines = max(args.lines // 10, 1)
    small, _ = bench_loggen.ensure_log_file(args.cache_dir, small_lines, args.seed)

    main, variants, formats = _contenders(info.path, machine["isal"] is not None)
    receiver = SeparateReceiver(env)
    try:
        for round_number in range(1, args.repeat + 1):
            for contender in [*main, *variants, *formats]:
                progress(f"  run {round_number}/{args.repeat}: {contender.label}")
                contender.runs.append(
                    _execute(
                        contender,
                        info.lines,
                        receiver=receiver,
                        timeout=args.child_timeout,
                        env=env,
                        cwd=code_dir,
                    )
                )
        small_main, _, _ = _contenders(small.path, False)
        small_runs = {}
        for contender in small_main:
            if contender.name in ("ours", "e2e"):
                progress(f"  10x smaller input: {contender.label}")
                contender.runs.append(
                    _execute(
                        contender,
                        small.lines,
                        receiver=receiver,
                        timeout=args.child_timeout,
                        env=env,
                        cwd=code_dir,
                    )
                )
                small_runs[contender.name] = contender
    finally:
        receiver.close()

    memory_check = None
    if args.memory_check:
        progress(f"  memory check: {args.memory_mb} MiB uncompressed, streamed")
        checker = Contender(
            "memory",
            "memory check",
            [
                sys.executable,
                str(CONTENDERS),
                "memory",
                "--raw-mb",
                str(args.memory_mb),
                "--seed",
                str(args.seed),
                "--result",
                "{result}",
            ],
        )
        run = run_child(checker.argv, stdout_to_null=True, timeout=args.child_timeout, env=env, cwd=code_dir)
        memory_check = {
            "raw_mib": args.memory_mb,
            "seconds": round(run.seconds, 1),
            "peak_rss_mib": round(run.peak_rss_mib, 1),
            **{k: v for k, v in run.result.items() if k != "stderr"},
        }

    continuation = _continuation(args, info, env, code_dir, progress) if args.continuation else None
    results = _results(
        args=args,
        machine=machine,
        info=info,
        generated=generated,
        generation_seconds=generation_seconds,
        small=small,
        main=main,
        variants=variants,
        formats=formats,
        small_runs=small_runs,
        memory_check=memory_check,
        total_seconds=time.perf_counter() - started,
        code=code,
    )
    if args.sizing:
        results["sizing"] = sizing_table(
            formats, info, args.memory_sizes, args.forwarder_timeout, args.answer_ms / 1000
        )
    if continuation is not None:
        results["continuation"] = continuation
    return results


def _continuation(
    args: argparse.Namespace,
    info: bench_loggen.LogFile,
    env: dict[str, str],
    code_dir: Path,
    progress: Any,
) -> dict[str, Any]:
    """One file through the handler at the template's default memory, invocation after invocation."""
    lines = args.continuation_lines or info.lines
    log = info if lines == info.lines else bench_loggen.ensure_log_file(args.cache_dir, lines, args.seed)[0]
    progress(
        f"  continuation: {lines} lines at {sizing.DEFAULT_MEMORY_MB} MB, clock {args.continuation_speedup}x"
    )
    argv = [
        sys.executable,
        str(CONTINUATION),
        str(log.path),
        "--result",
        "{result}",
        "--memory-mb",
        str(sizing.DEFAULT_MEMORY_MB),
        "--timeout",
        str(args.forwarder_timeout),
        "--speedup",
        str(args.continuation_speedup),
    ]
    run = run_child(argv, stdout_to_null=True, timeout=args.child_timeout, env=env, cwd=code_dir)
    result = {k: v for k, v in run.result.items() if k != "stderr"}
    if not Path(result["forwarder_file"]).resolve().is_relative_to(code_dir.resolve()):
        raise BenchmarkError(f"the continuation run imported the forwarder from {result['forwarder_file']}")
    result["gzip_bytes"] = log.gzip_bytes
    result["met"] = (
        len(result["invocations"]) > 1
        and result["records_received"] == result["distinct_event_ids"] == log.lines == result["lines"]
        and result["duplicate_event_ids"] == 0
        and result["event_ids_as_uncut"]
        and result["dead_letters"] == 0
        and result["bad_bodies"] == 0
    )
    return result


def _progress(args: argparse.Namespace) -> Any:
    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    return say


def _row(
    contender: Contender, info: bench_loggen.LogFile, baseline_rate: float, baseline_cpu: float
) -> dict[str, Any]:
    best = contender.best()
    rate = info.lines / best.seconds
    row: dict[str, Any] = {
        "name": contender.name,
        "label": contender.label,
        "runs": len(contender.runs),
        "best_seconds": round(best.seconds, 3),
        "median_seconds": round(contender.median_seconds(), 3),
        "lines_per_second": round(rate),
        "median_lines_per_second": round(info.lines / contender.median_seconds()),
        "mb_per_second": round(info.raw_bytes / 1e6 / best.seconds, 1),
        "cpu_seconds": round(best.cpu_seconds, 2),
        "peak_rss_mib": round(contender.peak_rss_mib(), 1),
        "vs_baseline": round(rate / baseline_rate, 2),
        # The same comparison by CPU time: less sensitive to other processes on a shared machine.
        "vs_baseline_cpu": round(baseline_cpu / best.cpu_seconds, 2) if best.cpu_seconds else None,
        "all_seconds": [round(run.seconds, 3) for run in contender.runs],
    }
    extra = {k: v for k, v in best.result.items() if k not in ("stderr", "lines")}
    if extra:
        row["details"] = extra
    return row


def _results(
    *,
    args: argparse.Namespace,
    machine: dict[str, Any],
    info: bench_loggen.LogFile,
    generated: bool,
    generation_seconds: float,
    small: bench_loggen.LogFile,
    main: list[Contender],
    variants: list[Contender],
    formats: list[Contender],
    small_runs: dict[str, Contender],
    memory_check: dict[str, Any] | None,
    total_seconds: float,
    code: dict[str, Any],
) -> dict[str, Any]:
    by_name = {c.name: c for c in main}
    baseline_best = by_name["baseline"].best()
    baseline_rate = info.lines / baseline_best.seconds
    rows = [_row(c, info, baseline_rate, baseline_best.cpu_seconds) for c in main]
    rows_by_name = {row["name"]: row for row in rows}
    gzip_rows = [
        rows_by_name["e2e"],
        *(_row(c, info, baseline_rate, baseline_best.cpu_seconds) for c in variants),
    ]
    for row in gzip_rows:
        details = row["details"]
        row["compressor"] = f"{details['compressor']} level {details['level']}"
        row["ratio"] = round(details["json_bytes"] / details["gzip_bytes"], 2)
        row["gzip_mb_per_second"] = (
            round(details["json_bytes"] / 1e6 / details["compress_seconds"], 1)
            if details["compress_seconds"]
            else None
        )
        row["gzip_share"] = round(details["compress_seconds"] / row["best_seconds"], 3)
    memory_rows = []
    for name in ("ours", "e2e"):
        big = rows_by_name[name]
        little = small_runs[name].runs[0]
        memory_rows.append(
            {
                "name": name,
                "label": by_name[name].label,
                "lines": info.lines,
                "peak_rss_mib": big["peak_rss_mib"],
                "small_lines": small.lines,
                "small_peak_rss_mib": round(little.peak_rss_mib, 1),
            }
        )
    format_rows = _format_rows(formats, info, baseline_rate, baseline_best.cpu_seconds)
    parse_ratio = rows_by_name["ours"]["vs_baseline"]
    e2e_ratio = rows_by_name["e2e"]["vs_baseline"]
    verdict = {
        "parse_vs_baseline": parse_ratio,
        "parse_aim": PARSE_AIM,
        "parse_met": parse_ratio >= PARSE_AIM,
        "parse_vs_baseline_cpu": rows_by_name["ours"]["vs_baseline_cpu"],
        "e2e_vs_baseline": e2e_ratio,
        "e2e_vs_baseline_cpu": rows_by_name["e2e"]["vs_baseline_cpu"],
        "e2e_aim": E2E_AIM,
        "e2e_met": e2e_ratio >= E2E_AIM,
        "format_cost_aim": FORMAT_COST_AIM,
        "formats_met": all(row["met"] for row in format_rows),
    }
    if memory_check is not None:
        memory_check["within_lambda_mib"] = LAMBDA_MEMORY_MIB
        memory_check["met"] = memory_check["peak_rss_mib"] < LAMBDA_MEMORY_MIB
        verdict["memory_met"] = memory_check["met"]
    return {
        "command": shlex.join(["python", "scripts/bench/benchmark.py", *sys.argv[1:]]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "total_seconds": round(total_seconds, 1),
        "repeat": args.repeat,
        "statistic": "best (fastest wall time) of the runs; median given too",
        "machine": machine,
        "code": code,
        "input": {
            "path": str(info.path),
            "lines": info.lines,
            "seed": info.seed,
            "raw_bytes": info.raw_bytes,
            "gzip_bytes": info.gzip_bytes,
            "generations": info.generations,
            "malformed_requests": info.malformed_requests,
            "cut_lines": info.cut_lines,
            "generated_now": generated,
            "generation_seconds": round(generation_seconds, 1),
        },
        "throughput": rows,
        "compression": gzip_rows,
        "memory": memory_rows,
        "formats": format_rows,
        "memory_check": memory_check,
        "verdict": verdict,
    }


def _format_rows(
    formats: list[Contender], info: bench_loggen.LogFile, baseline_rate: float, baseline_cpu: float
) -> list[dict[str, Any]]:
    """Each format's end-to-end row, with its rate against the json format's and the 25% verdict."""
    rows = [_row(c, info, baseline_rate, baseline_cpu) for c in formats]
    for row, contender in zip(rows, formats, strict=True):
        row["median_cpu_seconds"] = round(statistics.median(run.cpu_seconds for run in contender.runs), 3)
    json_row = next(row for row in rows if row["details"]["output_format"] == "json")
    for row in rows:
        details = row["details"]
        vs_json = row["lines_per_second"] / json_row["lines_per_second"]
        row["format"] = details.get("format_label", details["output_format"])
        row["vs_json"] = round(vs_json, 2)
        # The forwarder process's median CPU time against json's: what other load on the machine
        # disturbs less than wall time.
        row["vs_json_cpu"] = (
            round(json_row["median_cpu_seconds"] / row["median_cpu_seconds"], 2)
            if row["median_cpu_seconds"]
            else None
        )
        row["cost"] = round(max(1 - vs_json, 0.0), 3)
        row["met"] = 1 - vs_json <= FORMAT_COST_AIM
        row["gzip_bytes"] = details["gzip_bytes"]
        row["body_bytes"] = details["json_bytes"]
    return rows


# --- sizing: seconds and dollars per GB of logs at Lambda memory sizes -------------------------------------

SIZING_MEMORY_MB = (128, 256, 512, 1024, 1769, 3008)


def sizing_table(
    formats: list[Contender],
    info: bench_loggen.LogFile,
    memory_sizes: tuple[int, ...],
    timeout_seconds: float,
    answer_seconds: float,
) -> dict[str, Any]:
    """Each format's CPU-seconds per line, from its end-to-end runs, priced at each memory size.

    The least CPU time of a format's runs is taken: other load on the machine only ever adds to it.
    ``answer_seconds`` is a wait for each request's answer, billed but not CPU: its cost is given apart,
    less the work on the next batch that overlaps with it.
    """
    gzip_per_line = info.gzip_bytes / info.lines
    raw_per_line = info.raw_bytes / info.lines
    rows = []
    for contender in formats:
        cpu = min(run.result["pipeline_cpu_seconds"] for run in contender.runs)
        rate = info.lines / cpu
        best = contender.best().result
        requests_per_gb = best["requests"] / info.gzip_bytes * sizing.BYTES_PER_GB
        cells = []
        for memory in memory_sizes:
            gzip_gb, raw_gb = (
                sizing.per_gb(
                    memory_mb=memory,
                    lines_per_cpu_second=rate,
                    bytes_per_line=per_line,
                    lines_per_object=info.lines,
                    timeout_seconds=timeout_seconds,
                )
                for per_line in (gzip_per_line, raw_per_line)
            )
            waiting = _waiting_seconds(requests_per_gb, answer_seconds, gzip_gb.function_seconds)
            busiest = sizing.busiest_node(
                memory_mb=memory, lines_per_cpu_second=rate, timeout_seconds=timeout_seconds
            )
            cells.append(
                {
                    "memory_mb": memory,
                    "seconds_per_gb_gzip": round(gzip_gb.function_seconds, 1),
                    "usd_per_gb_gzip": round(gzip_gb.cost_usd, 6),
                    "usd_per_gb_gzip_waiting": round(
                        gzip_gb.cost_usd + sizing.duration_cost(waiting, memory), 6
                    ),
                    "seconds_per_gb_raw": round(raw_gb.function_seconds, 1),
                    "usd_per_gb_raw": round(raw_gb.cost_usd, 6),
                    "busiest_node_requests_per_second": round(busiest),
                }
            )
        rows.append(
            {
                "format": best.get("format_label", best["output_format"]),
                "pipeline_cpu_seconds": cpu,
                "lines_per_cpu_second": round(rate),
                "cpu_us_per_line": round(cpu / info.lines * 1e6, 2),
                "peak_rss_mib": round(contender.peak_rss_mib(), 1),
                # Each request is one wait for the endpoint's answer, billed at the memory size where it
                # lasts longer than building the next batch (_waiting_seconds).
                "requests_per_gb_gzip": round(requests_per_gb),
                "sizes": cells,
            }
        )
    return {
        "memory_mb": list(memory_sizes),
        "cpu_share": [round(sizing.cpu_share(memory), 3) for memory in memory_sizes],
        "cpu_source": sizing.CPU_SOURCE,
        "pricing_source": sizing.PRICING_SOURCE,
        "price_per_gb_second": sizing.ARM64_PRICE_PER_GB_SECOND,
        "price_per_request": sizing.PRICE_PER_REQUEST,
        "timeout_seconds": timeout_seconds,
        "answer_seconds": answer_seconds,
        "file_interval_seconds": sizing.FILE_INTERVAL_SECONDS,
        "gb": "10^9 bytes: *_gzip of gzip'd log files as S3 stores them, *_raw of uncompressed log text",
        "lines_per_object": info.lines,
        "gzip_bytes_per_line": round(gzip_per_line, 1),
        "raw_bytes_per_line": round(raw_per_line, 1),
        "rows": rows,
    }


def _waiting_seconds(requests: float, answer_seconds: float, cpu_seconds: float) -> float:
    """Billed seconds spent only waiting, when each of ``requests`` waits ``answer_seconds`` for its answer
    and the CPU work is ``cpu_seconds`` in all: the next batch is built during the wait, so a request
    costs only the part of its wait longer than the work on one batch."""
    if requests <= 0:
        return 0.0
    return requests * max(0.0, answer_seconds - cpu_seconds / requests)


# --- the report ------------------------------------------------------------------------------------------


def _mb(value: int) -> str:
    return f"{value / 1e6:,.1f} MB"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table: the first column left-aligned, the others right-aligned."""
    return [
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def render_sizing(table: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """The sizing section: per format, USD and seconds per GB of gzip'd logs at each memory size."""
    sizes = [
        f"{memory:,} MB ({share:.2f} vCPU)"
        for memory, share in zip(table["memory_mb"], table["cpu_share"], strict=True)
    ]
    ratio = table["raw_bytes_per_line"] / table["gzip_bytes_per_line"]
    answer_ms = table["answer_seconds"] * 1000
    out = [
        "",
        "### Sizing and cost",
        "",
        "Each format's CPU time in forward_object in its end-to-end runs above (the least of its runs; "
        "time.process_time, so start-up and other processes on the machine are left out; the receiver runs "
        "in its own process), priced for Lambda by forwarder/sizing.py. CPU: a memory size buys "
        f"memory / {sizing.MB_PER_VCPU:,} of one vCPU, at most one, as the forwarder parses and encodes "
        "on one thread; source: "
        f"{table['cpu_source']}. Price: USD {table['price_per_gb_second']:.10f} per GB-second and USD "
        f"{table['price_per_request'] * 1e6:.2f} per million requests, one request per object of this "
        f"file's size ({table['lines_per_object']:,} lines, {_mb(data['gzip_bytes'])} gzip); source: "
        f"{table['pricing_source']}. ForwarderTimeout {table['timeout_seconds']:.0f} s.",
        "",
        f"A GB here is 10^9 bytes of gzip'd log files, as S3 stores them ({table['gzip_bytes_per_line']:.1f} "
        f"bytes a line in this file); a GB of uncompressed log text ({table['raw_bytes_per_line']:.1f} bytes "
        f"a line) costs {1 / ratio:.2f} times as much (both are in the JSON). Measured on this machine's "
        "CPU, not on Lambda's Graviton: an estimate, to re-measure where it matters.",
    ]
    for title, key in (
        ("USD per GB of gzip'd logs, CPU only (the floor):", "usd_per_gb_gzip"),
        (
            f"USD per GB of gzip'd logs when each request also waits {answer_ms:,.0f} ms for its answer "
            "(billed at the memory size, not CPU, where it lasts longer than building the next batch, "
            "which the forwarder does meanwhile; requests per GB below):",
            "usd_per_gb_gzip_waiting",
        ),
    ):
        rows = [[row["format"], *(f"{cell[key]:.5f}" for cell in row["sizes"])] for row in table["rows"]]
        out += ["", title, "", *_table(["format", *sizes], rows)]
    seconds_rows = [
        [
            row["format"],
            *(f"{cell['seconds_per_gb_gzip']:,.0f}" for cell in row["sizes"]),
            f"{row['cpu_us_per_line']:.1f}",
            f"{row['peak_rss_mib']:.0f}",
            f"{row['requests_per_gb_gzip']:,}",
        ]
        for row in table["rows"]
    ]
    out += [
        "",
        "Seconds per GB of gzip'd logs (billed duration, CPU only), with what was measured: CPU per line, "
        "peak RSS, and requests per GB (the batches the format's limits cut):",
        "",
        *_table(["format", *sizes, "CPU us/line", "peak RSS MiB", "requests/GB"], seconds_rows),
    ]
    node_rows = [
        [row["format"], *(f"{cell['busiest_node_requests_per_second']:,}" for cell in row["sizes"])]
        for row in table["rows"]
    ]
    out += [
        "",
        f"The busiest load balancer node (requests per second) whose {table['file_interval_seconds'] // 60}-"
        f"minute log file one {table['timeout_seconds']:.0f} s invocation finishes (CPU only):",
        "",
        *_table(["format", *sizes], node_rows),
    ]
    return out


def render_continuation(run: dict[str, Any]) -> list[str]:
    """The continuation section: the chain of invocations one file took, and whether every line came once."""
    share, speedup = run["cpu_share"], run["speedup"]
    out = [
        "",
        "### Continuation: a file larger than one invocation",
        "",
        f"{run['lines']:,} lines ({_mb(run['gzip_bytes'])} gzip) through forwarder.handler.handler, with "
        "moto S3 and SQS in the same process: S3 notifies a queue, the stack's work queue (its redrive "
        "policy as the template sets it) takes what an invocation hands on, and the script plays the event "
        f"source mappings. The function has ForwarderMemorySize's default, {run['memory_mb']:,} MB "
        f"({share:.2f} vCPU), and a {run['timeout_seconds']:.0f} s timeout, on a simulated deadline: an "
        f"invocation's clock is its CPU time divided by {share:.3f} and multiplied by {speedup:g}, the "
        f"timeout scaled down {speedup:g} times so that the run is short. This file meets its deadlines as a "
        f"file of {run['lines'] * speedup:,.0f} lines would on Lambda at that memory, at this machine's "
        "speed; waiting for the receiver does not move the clock (CPU-bound, as the sizing model).",
        "",
    ]
    rows = [
        [
            str(number),
            f"{row['invocation']}",
            f"{row['start_line']:,}",
            f"{row['continued_at']:,}" if row["continued_at"] else "-",
            f"{row['records_sent']:,}",
            f"{row['cpu_seconds']:.2f}",
            f"{row['simulated_seconds']:.0f}",
            row["outcome"],
        ]
        for number, row in enumerate(run["invocations"], start=1)
    ]
    out += _table(
        [
            "run",
            "invocation of the chain",
            "from line",
            "handed on at",
            "records sent",
            "CPU s",
            "simulated s",
            "outcome",
        ],
        rows,
    )
    out += [
        "",
        f"{len(run['invocations'])} invocations; the receiver got {run['records_received']:,} records with "
        f"{run['distinct_event_ids']:,} distinct event_ids ({run['duplicate_event_ids']:,} duplicates), "
        f"{'the same as' if run['event_ids_as_uncut'] else 'NOT the same as'} a run that reads the file in "
        f"one go; {run['dead_letters']} items in the dead-letter queue; {run['wall_seconds']:.1f} s wall "
        "time. Every line delivered exactly once over several invocations: "
        f"{'met' if run['met'] else 'NOT met'}.",
    ]
    return out


def render(results: dict[str, Any]) -> str:
    machine = results["machine"]
    data = results["input"]
    rows = results["throughput"]
    by_name = {row["name"]: row for row in rows}
    out: list[str] = []
    add = out.append
    add("## Benchmark results")
    add("")
    add(f"Command: `{results['command']}` ({results['date']}, {results['total_seconds']:.0f} s in all).")
    add("")
    add("### Machine")
    add("")
    add(f"- CPU: {machine['cpu']}, {machine['cores']} cores; {machine['system']}")
    add(
        f"- Python {machine['python']}; orjson {machine['orjson'] or 'not installed'}; "
        f"isal {machine['isal'] or 'not installed'}"
    )
    code = results["code"]
    if code["commit"]:
        changed = (
            "with uncommitted changes in forwarder/" if code["forwarder_changed"] else "forwarder/ clean"
        )
        add(f"- Code: commit {code['commit']} ({changed}), copied at the start so every run measures it")
    load = machine["load_average_at_start"]
    add(f"- Load average when the run started: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)")
    add("")
    add("### Input")
    add("")
    generations = ", ".join(f"{count:,} x {fields} fields" for fields, count in data["generations"].items())
    add(
        f"- {data['lines']:,} ALB access log lines (seed {data['seed']}): {_mb(data['raw_bytes'])} "
        f"uncompressed, {_mb(data['gzip_bytes'])} gzip"
    )
    add(f"- Field generations: {generations}")
    add(
        f'- Malformed: {data["malformed_requests"]:,} malformed request lines (`"- - -"` and other forms ALB '
        f"logs), {data['cut_lines']:,} lines cut short"
    )
    how = "generated" if data["generated_now"] else "reused from the cache (generation is skipped)"
    add(f"- File {how} in {data['generation_seconds']:.1f} s: `{data['path']}`")
    add("")
    add("### Throughput")
    add("")
    add(
        f"Each contender in its own process, {results['repeat']} run(s) each, interleaved; lines/s and MB/s "
        "(uncompressed input, 10^6 bytes) from the fastest run's wall time, start-up included; the median "
        "lines/s is next to it. CPU s is that run's user + system time; 'by CPU' compares it with the "
        "baseline's, which other processes on the machine disturb less than wall time. Peak RSS is the "
        "process's own maximum resident set over all runs."
    )
    add("")
    add("| contender | lines/s | median lines/s | MB/s | CPU s | peak RSS MiB | vs baseline | by CPU |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        by_cpu = f"{row['vs_baseline_cpu']:.2f}x" if row["vs_baseline_cpu"] else "-"
        add(
            f"| {row['label']} | {row['lines_per_second']:,} | {row['median_lines_per_second']:,} | "
            f"{row['mb_per_second']:.1f} | {row['cpu_seconds']:.1f} | {row['peak_rss_mib']:.0f} | "
            f"{row['vs_baseline']:.2f}x | {by_cpu} |"
        )
    add("")
    baseline = by_name["baseline"]["details"]
    add(
        f"The baseline's regex matched {baseline['matched']:,} of {data['lines']:,} lines: it requires the "
        "29-field layout or newer, so 25-field lines and cut lines come out as raw records. It also does "
        "less work per line than ours: strings only (no numbers, nulls or lists), no source fields, no "
        "event_id."
    )
    e2e = by_name["e2e"]["details"]
    receiver = e2e["receiver"]
    add(
        f"End to end ({e2e['compressor']} level {e2e['level']}): {e2e['requests']:,} requests, "
        f"{_mb(e2e['json_bytes'])} of JSON sent as {_mb(e2e['gzip_bytes'])} gzip "
        f"(ratio {e2e['json_bytes'] / e2e['gzip_bytes']:.1f}); {e2e['compress_seconds']:.1f} CPU s in gzip "
        f"and {e2e['send_seconds']:.1f} s in POST out of {by_name['e2e']['best_seconds']:.1f} s, both on the "
        "delivery thread while the next batch was built; the receiver "
        f"counted {receiver['records']:,} records using {receiver['cpu_seconds']:.1f} CPU s of the other "
        "core. With the receiver in the forwarder's process, its decompression and counting compete for "
        "the same interpreter: that row is the pessimistic bound."
    )
    add("")
    add("### Compression")
    add("")
    add(
        "The same end-to-end run with each gzip library and level the forwarder can use "
        "(HTTP_COMPRESSION_LEVEL)."
    )
    add("")
    add("| gzip | lines/s end to end | gzip MB/s (JSON in) | gzip CPU / run | ratio | request bytes |")
    add("|---|---:|---:|---:|---:|---:|")
    for row in results["compression"]:
        speed = f"{row['gzip_mb_per_second']:,.0f}" if row["gzip_mb_per_second"] else "-"
        add(
            f"| {row['compressor']} | {row['lines_per_second']:,} | {speed} | {row['gzip_share']:.0%} | "
            f"{row['ratio']:.1f} | {_mb(row['details']['gzip_bytes'])} |"
        )
    add("")
    add("### Memory")
    add("")
    add("Peak RSS of the same commands on the input and on a 10x smaller one: flat means streaming.")
    add("")
    add("| contender | lines | peak RSS MiB | lines (10x smaller) | peak RSS MiB |")
    add("|---|---:|---:|---:|---:|")
    for row in results["memory"]:
        add(
            f"| {row['label']} | {row['lines']:,} | {row['peak_rss_mib']:.0f} | {row['small_lines']:,} | "
            f"{row['small_peak_rss_mib']:.0f} |"
        )
    add("")
    add("### Per format")
    add("")
    add(
        "End to end once per output format (OUTPUT_FORMAT), same file, same run, receiver in its own "
        "process answering as that format's intake does; request bytes are the gzip bodies sent, body "
        "bytes the same uncompressed; 'by CPU' compares the forwarder process's median CPU time with "
        "json's. Cost is 1 - rate / json rate; the aim is at most "
        f"{results['verdict']['format_cost_aim']:.0%}."
    )
    add("")
    add("| format | lines/s | vs json | by CPU | requests | request bytes | body bytes | peak RSS MiB |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in results["formats"]:
        by_cpu = f"{row['vs_json_cpu']:.2f}x" if row["vs_json_cpu"] else "-"
        add(
            f"| {row['format']} | {row['lines_per_second']:,} | {row['vs_json']:.2f}x | {by_cpu} | "
            f"{row['details']['requests']:,} | {_mb(row['gzip_bytes'])} | {_mb(row['body_bytes'])} | "
            f"{row['peak_rss_mib']:.0f} |"
        )
    check = results["memory_check"]
    if check is not None:
        add("")
        add(f"### Memory check: a {check['raw_mib']:,} MiB object")
        add("")
        add(
            f"{check['raw_bytes'] / 2**20:,.0f} MiB of uncompressed log lines ({check['lines']:,} lines), "
            f"generated as one gzip stream on the fly ({_mb(check['gzip_bytes_in'])} compressed) and never "
            f"stored, went through reader, parser, records, batching and {check['compressor']} gzip to a "
            f"sender that accepts every request ({check['requests']:,} requests, "
            f"{_mb(check['json_bytes'])} of JSON) in {check['seconds']:.0f} s. "
            f"Peak RSS: {check['peak_rss_mib']:.0f} MiB "
            f"({check['rss_before_mib']:.0f} MiB after imports, before the first byte); "
            f"{'within' if check['met'] else 'NOT within'} a {check['within_lambda_mib']} MB function."
        )
    verdict = results["verdict"]
    add("")
    add("### Verdict")
    add("")
    add(
        f"- Parse: ours is {verdict['parse_vs_baseline']:.2f}x the baseline by wall time "
        f"({verdict['parse_vs_baseline_cpu']:.2f}x by CPU time; aim: at least {verdict['parse_aim']}x): "
        f"{'met' if verdict['parse_met'] else 'NOT met'}."
    )
    add(
        f"- End to end: {verdict['e2e_vs_baseline']:.2f}x the baseline's parse-only rate by wall time "
        f"({verdict['e2e_vs_baseline_cpu']:.2f}x by CPU time; aim: at least {verdict['e2e_aim']}x): "
        f"{'met' if verdict['e2e_met'] else 'NOT met'}."
    )
    if "memory_met" in verdict:
        add(f"- Memory: {'met' if verdict['memory_met'] else 'NOT met'} (see the memory check).")
    for row in results["formats"]:
        add(
            f"- Format {row['format']}: {row['vs_json']:.2f}x the json rate, cost {row['cost']:.0%} "
            f"({row['vs_json_cpu'] or 0:.2f}x by CPU time; "
            f"aim: cost at most {verdict['format_cost_aim']:.0%}): "
            f"{'met' if row['met'] else 'NOT met'}."
        )
    if results.get("sizing"):
        out += render_sizing(results["sizing"], data)
    if results.get("continuation"):
        out += render_continuation(results["continuation"])
    return "\n".join(out) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--lines", type=_positive, default=1_000_000, help="lines in the log file (default %(default)s)")
    add("--seed", type=int, default=1, help="generator seed (default %(default)s)")
    add("--repeat", type=_positive, default=3, help="runs per contender (default %(default)s)")
    add("--cache-dir", type=Path, default=DEFAULT_CACHE, help="generated files are kept here (build/bench)")
    add("--memory-check", action="store_true", help="also stream a ~1 GiB object (see --memory-mb)")
    add("--memory-mb", type=_positive, default=1024, help="memory check size in MiB (default 1024)")
    add("--sizing", action="store_true", help="also price each format per GB at Lambda memory sizes")
    add(
        "--memory-sizes",
        type=_memory_sizes,
        default=SIZING_MEMORY_MB,
        help="--sizing: Lambda memory sizes in MB, comma-separated (default 128,256,512,1024,1769,3008)",
    )
    add("--forwarder-timeout", type=float, default=300.0, help="--sizing: ForwarderTimeout (default 300)")
    add("--continuation", action="store_true", help="also forward one file over several invocations")
    add("--continuation-lines", type=_positive, help="--continuation: lines of its file (default --lines)")
    add(
        "--continuation-speedup",
        type=float,
        default=100.0,
        help="--continuation: how many times faster than CPU time the invocation's clock runs (default 100)",
    )
    add("--answer-ms", type=float, default=100.0, help="--sizing: an endpoint's answer time (default 100)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--child-timeout", type=float, default=3600.0, help="seconds before a run is killed")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _memory_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
        for memory in sizes:
            sizing.cpu_share(memory)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return sizes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = benchmark(args)
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

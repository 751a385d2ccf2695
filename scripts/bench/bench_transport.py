"""CPU time of one POST through the forwarder's transport, against the benchmark's receiver.

    python scripts/bench/bench_transport.py [--posts 300] [--repeat 5] [--kib 16]

The receiver (bench_receiver.py) runs in its own process, so only the forwarder's side is timed: the
HTTP client, the per-attempt watchdog, and reading the answer, for one gzip body of --kib KiB of
JSON, sent again and again over one kept-alive connection. It prints the least CPU time per POST over
--repeat rounds (other load on the machine only ever adds to it), and the wall time next to it.
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--posts", type=int, default=300, help="POSTs per round (default 300)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best is reported (default 5)")
    parser.add_argument("--kib", type=int, default=16, help="KiB of JSON in each body (default 16)")
    args = parser.parse_args(argv)

    from forwarder.sender import Urllib3Transport  # noqa: PLC0415 -- after sys.path is set

    receiver = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("bench_receiver.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(receiver.stdout.readline().split()[1]) if receiver.stdout else 0
        url = f"http://127.0.0.1:{port}/services/collector/event"
        events = (b'{"event":{"event_id":"%032x"}}' % (number * 2654435761) for number in range(1 << 30))
        text = b""
        while len(text) < args.kib * 1024:
            text += next(events)
        body = gzip.compress(text)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        transport = Urllib3Transport()
        for _ in range(20):  # connect, and warm up
            transport.post(url, body, headers, 5.0)
        best_cpu = best_wall = float("inf")
        for _ in range(args.repeat):
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(args.posts):
                transport.post(url, body, headers, 5.0)
            best_cpu = min(best_cpu, (time.process_time() - cpu) / args.posts)
            best_wall = min(best_wall, (time.perf_counter() - wall) / args.posts)
    finally:
        if receiver.stdin is not None:
            receiver.stdin.close()
        receiver.wait(timeout=10)
    print(
        f"{best_cpu * 1e6:.0f} us of CPU and {best_wall * 1e6:.0f} us of wall time per POST "
        f"(best of {args.repeat} rounds of {args.posts}, {len(body):,}-byte gzip body)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

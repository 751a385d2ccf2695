"""The cost of geo enrichment per line: the record path with and without `client_geo`, on the same lines.

    python scripts/bench/bench_geo.py                       # 200,000 lines, 20,000 distinct clients, 3 rounds
    python scripts/bench/bench_geo.py --lines 50000 --clients 50000 --repeat 1

Each round runs both variants, each in its own process (so peak memory is each one's own): generate the
benchmark's ALB lines (scripts/bench/bench_loggen.py) in memory, then time parse -> [enrich] -> JSON line
for every line, as the forwarder does between reading and batching. The IPv4 clients are replaced with
addresses drawn from a pool of --clients public addresses (real files repeat their clients; --clients equal
to --lines makes nearly every lookup a cache miss); the generator's IPv6 clients are documentation
addresses, which are skipped without a lookup, as private ones are. The database, written with mmdb-writer
(the dev extra), holds one /24 per pool address with a City-shaped record in eight languages, like
GeoLite2-City's. Reported: lines/s of the fastest round and the median, the ratio, peak RSS (mostly the
lines held in memory) and how much the timed pass added to the resident set (the cache, mapped pages).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "common"))
sys.path.insert(0, str(REPO / "scripts" / "bench"))
sys.path.insert(0, str(REPO))  # this checkout's forwarder, in the children too

import bench_loggen  # noqa: E402 -- found through the path set above

LANGUAGES = ("de", "en", "es", "fr", "ja", "pt-BR", "ru", "zh-CN")


def pool(clients: int, seed: int) -> list[str]:
    """Distinct public IPv4 addresses, each in a /24 of its own (first octets outside special ranges)."""
    rng = random.Random(seed)
    networks: set[tuple[int, int, int]] = set()
    while len(networks) < clients:
        first = rng.choice([n for n in range(1, 224) if n not in (10, 100, 127, 169, 172, 192, 198, 203)])
        networks.add((first, rng.randrange(256), rng.randrange(256)))
    return [f"{a}.{b}.{c}.{rng.randrange(1, 255)}" for a, b, c in sorted(networks)]


def write_database(path: Path, addresses: list[str]) -> None:
    from mmdb_writer import MMDBWriter  # noqa: PLC0415 -- only the parent writes the database
    from netaddr import IPSet  # noqa: PLC0415

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City", languages=["en"])
    for n, address in enumerate(addresses):
        names = {language: f"City {n} ({language})" for language in LANGUAGES}
        writer.insert_network(
            IPSet([address.rsplit(".", 1)[0] + ".0/24"]),
            {
                "city": {"geoname_id": 1000 + n, "names": names},
                "continent": {"code": "EU", "geoname_id": 6255148, "names": names},
                "country": {"geoname_id": 2635167, "iso_code": "GB", "names": names},
                "location": {"accuracy_radius": 50, "latitude": 51.5, "longitude": -0.09, "time_zone": "UTC"},
                "postal": {"code": "EC2V"},
                "registered_country": {"geoname_id": 2635167, "iso_code": "GB", "names": names},
                "subdivisions": [{"geoname_id": 6269131, "iso_code": "ENG", "names": names}],
            },
        )
    writer.to_db_file(str(path))


def lines_with_clients(count: int, seed: int, addresses: list[str]) -> list[str]:
    """The benchmark's lines, each IPv4 client replaced with one drawn from the pool."""
    rng = random.Random(seed)
    out = []
    for line in bench_loggen.iter_log_lines(count, seed):
        fields = line.split(" ", 4)
        if len(fields) == 5 and fields[3].count(":") == 1:
            fields[3] = f"{rng.choice(addresses)}:{fields[3].split(':')[1]}"
        out.append(" ".join(fields))
    return out


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    """One timed pass in this process; prints its result as JSON."""
    import maxminddb  # noqa: PLC0415 -- imported after sys.path is set

    from forwarder.geo import GeoEnricher  # noqa: PLC0415
    from forwarder.jsonutil import dumps_line  # noqa: PLC0415
    from forwarder.reader import Line  # noqa: PLC0415
    from forwarder.records import iter_records  # noqa: PLC0415
    from forwarder.units import object_provenance  # noqa: PLC0415

    lines = lines_with_clients(args.lines, args.seed, pool(args.clients, args.seed))
    records = iter_records(
        (Line(text) for text in lines),
        log_type="alb_access",
        provenance=object_provenance("bench", "bench.log", "etag"),
    )
    enricher = None
    if args.variant == "geo":
        enricher = GeoEnricher((maxminddb.open_database(args.database, maxminddb.MODE_AUTO),))
        records = enricher.enrich(records)
    before = _rss_mib()
    started = time.perf_counter()
    enriched = size = 0
    for record in records:
        size += len(dumps_line(record))
        enriched += "client_geo" in record
    seconds = time.perf_counter() - started
    return {
        "variant": args.variant,
        "lines": len(lines),
        "enriched": enriched,
        "bytes": size,
        "seconds": seconds,
        "lines_per_second": len(lines) / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        # What the pass itself added (the cache, the database's mapped pages) to the lines held in memory.
        "rss_growth_mib": _rss_mib() - before,
    }


def _rss_mib() -> float:
    """Resident set size now (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=20_000, help="distinct IPv4 client addresses")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variant", choices=("plain", "geo"), help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        database = Path(scratch) / "city.mmdb"
        started = time.perf_counter()
        write_database(database, pool(args.clients, args.seed))
        print(
            f"database: {args.clients} networks, {database.stat().st_size / 1e6:.1f} MB, "
            f"written in {time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
        results: dict[str, list[dict[str, Any]]] = {"plain": [], "geo": []}
        for _ in range(args.repeat):  # interleaved, so background load hits both alike
            for variant, runs in results.items():
                command = [sys.executable, __file__, "--variant", variant, "--database", str(database)]
                command += [
                    "--lines",
                    str(args.lines),
                    "--clients",
                    str(args.clients),
                    "--seed",
                    str(args.seed),
                ]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                runs.append(json.loads(done.stdout))
    best = {variant: max(runs, key=lambda r: r["lines_per_second"]) for variant, runs in results.items()}
    for variant, runs in results.items():
        median = statistics.median(r["lines_per_second"] for r in runs)
        print(
            f"{variant:5}  {best[variant]['lines_per_second']:>9,.0f} lines/s (median {median:,.0f})  "
            f"peak RSS {max(r['peak_rss_mib'] for r in runs):6.1f} MiB "
            f"(+{max(r['rss_growth_mib'] for r in runs):5.1f} during the pass)  "
            f"with client_geo: {best[variant]['enriched']:,} of {best[variant]['lines']:,}"
        )
    plain, geo = best["plain"]["lines_per_second"], best["geo"]["lines_per_second"]
    print(
        f"geo/plain throughput: {geo / plain:.2f}; cost {1e6 / geo - 1e6 / plain:.2f} us per line "
        f"({args.lines:,} lines, {args.clients:,} distinct IPv4 clients, best of {args.repeat})"
    )


if __name__ == "__main__":
    main()

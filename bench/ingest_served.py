"""Where the CPU of served ingestion goes: the server process, PostgreSQL's backends and this
load generator, per batch of 1000, while `bench/ingest.py`'s workload runs over HTTP.

Usage: .venv/bin/python bench/ingest_served.py [--postgres URL] [--batches 300] [--clients 4]

Each figure is read from `/proc/<pid>/stat` before and after the run, so other load on the
machine does not count; "busy" is the share of the machine's cores the three used. Compare it
with 100%: what is left is time every process waited (locks, the commit's flush, round trips).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from harness import postgres_schema, serve
from ingest import APP, BATCH, batches_of, reach_steady_state, seed, send
from ingest_profile import process_cpu


def _pids(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("TIERKIT_TEST_DATABASE_URL"))
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    if not args.postgres:
        raise SystemExit("give --postgres URL (or set TIERKIT_TEST_DATABASE_URL)")
    with postgres_schema(args.postgres) as url:
        _, key = seed(url)
        with serve(APP, url, args.port) as base:
            reach_steady_state(base, key, args.clients, "warm")
            bodies = batches_of("served", args.batches)
            server = _pids(f"uvicorn.*--port {args.port}")
            backends = _pids("postgres:")
            before = (process_cpu(server), process_cpu(backends), time.process_time())
            started = time.perf_counter()
            rate = send(base, key, bodies, args.clients)
            elapsed = time.perf_counter() - started
            backends = sorted(set(backends) | set(_pids("postgres:")))
            after = (process_cpu(server), process_cpu(backends), time.process_time())
    server_ms, postgres_ms, client_ms = (
        1000 * (end - start) / args.batches for start, end in zip(before, after, strict=True)
    )
    busy = (server_ms + postgres_ms + client_ms) * args.batches / 1000 / elapsed
    print(
        f"{rate:,.0f} events/s; CPU per batch of {BATCH}: server {server_ms:.2f} ms, "
        f"PostgreSQL {postgres_ms:.2f} ms, load generator {client_ms:.2f} ms; "
        f"busy {100 * busy / (os.cpu_count() or 1):.0f}% of {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()

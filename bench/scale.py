"""Checks and event ingestion with 1, 2 and 4 server processes (`tierkit serve --workers N`)
on one PostgreSQL: how throughput grows with processes.

Usage: .venv/bin/python bench/scale.py --postgres URL [--workers 1 2 4] [--seconds 5]
       [--companies 200] [--batches 20] [--clients 8] [--connections 32]

The workloads are bench/checks.py's (random company and feature per `POST /v1/check`, loaded
by wrk) and bench/ingest.py's (batches of 1000 events over 100 companies), with their code.
Checks use fewer companies (200 by default) so that every process holds all of them after the
warm-up (12 clients each check every company: a keep-alive connection sticks to one process,
and each process caches what it reads), as one long-running process would. Servers
trust what they read for an hour (`TIERKIT_CACHE_SECONDS=3600`): other processes' writes reach
them by notification. The load generators run on the same machine as the servers: on a
machine with fewer cores than processes plus clients, the figures show contention, not
scaling. Needs wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import os
import shutil

import checks
import ingest
from harness import open_environment, postgres_schema, serve_workers

PORT = 8960


def scale_checks(
    database_url: str, workers: list[int], seconds: int, connections: int, companies: int
) -> dict[int, dict[str, float]]:
    checks.COMPANIES = companies  # read by its seeding, warm-up and wrk script
    database, services, environment_id, key = open_environment(database_url)
    features = checks.seed(services, environment_id)
    database.dispose()
    results = {}
    for count in workers:
        with serve_workers(database_url, PORT, count, cache_seconds="3600") as url:
            checks.warm(url, key, 12, each_client_all=True)
            checks.wrk(url, "/v1/check", key, features, 2, connections)
            results[count] = checks.wrk(url, "/v1/check", key, features, seconds, connections)
        print(f"checks, {count} process(es): {results[count]['rps']:.0f} req/s", flush=True)
    return results


def scale_ingestion(
    database_url: str, workers: list[int], batches: int, clients: int
) -> dict[int, float]:
    _, key = ingest.seed(database_url)
    results = {}
    for count in workers:
        with serve_workers(database_url, PORT + 1, count, cache_seconds="3600") as url:
            ingest.reach_steady_state(url, key, clients, f"warm{count}")
            payloads = ingest.batches_of(f"scale{count}", batches)
            results[count] = ingest.send(url, key, payloads, clients)
        print(f"ingestion, {count} process(es): {results[count]:,.0f} events/s", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("TIERKIT_TEST_DATABASE_URL"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=int, default=5, help="wrk's measured run per count")
    parser.add_argument("--connections", type=int, default=32, help="wrk's connections")
    parser.add_argument("--companies", type=int, default=200, help="companies checked")
    parser.add_argument("--batches", type=int, default=20, help="batches of 1000 events")
    parser.add_argument("--clients", type=int, default=8, help="concurrent ingestion clients")
    args = parser.parse_args()
    if not args.postgres:
        raise SystemExit("bench/scale.py needs PostgreSQL: --postgres URL")
    if shutil.which("wrk") is None:
        raise SystemExit("bench/scale.py needs wrk: apt-get install wrk")
    with postgres_schema(args.postgres) as url:
        checked = scale_checks(url, args.workers, args.seconds, args.connections, args.companies)
    with postgres_schema(args.postgres) as url:
        ingested = scale_ingestion(url, args.workers, args.batches, args.clients)
    first = args.workers[0]
    rows = [
        f"machine: {os.cpu_count()} cores; client and servers on it",
        "",
        "| processes | checks req/s | p50 ms | p99 ms | checks vs. 1 | ingestion events/s "
        "| ingestion vs. 1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for count in args.workers:
        check = checked[count]
        rows.append(
            f"| {count} | {check['rps']:.0f} | {check['p50']:.2f} | {check['p99']:.2f} | "
            f"{check['rps'] / checked[first]['rps']:.2f} | {ingested[count]:,.0f} | "
            f"{ingested[count] / ingested[first]:.2f} |"
        )
    print("\n".join(rows))


if __name__ == "__main__":
    main()

"""Catalog read latency and throughput against a real `tierkit serve` process.

Usage: .venv/bin/python bench/catalog_reads.py [--requests N] [--postgres URL]

Starts one server per database (a temporary SQLite file, and PostgreSQL when a URL is given),
loads the demo catalog, then times authenticated GETs over keep-alive HTTP from this process:
sequentially (latency) and from 8 threads (throughput). Both databases run in the same
invocation so their ratio is comparable even on a noisy machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

TIERKIT = str(Path(sys.executable).parent / "tierkit")
ROUTES = [
    "/v1/plans/pro",
    "/v1/features?limit=50",
    "/v1/plans/pro/features",
    "/v1/companies/acme",
    "/v1/companies?plan=pro",
]


def _tierkit(database_url: str, *args: str) -> str:
    env = os.environ | {"TIERKIT_DATABASE_URL": database_url}
    done = subprocess.run([TIERKIT, *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _serve(database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {"TIERKIT_DATABASE_URL": database_url, "TIERKIT_LOG_LEVEL": "warning"}
    server = subprocess.Popen(
        [TIERKIT, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("server did not start")


def _latencies(client: httpx.Client, route: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        client.get(route).raise_for_status()
        times.append(time.perf_counter() - start)
    return times


def _throughput(base: str, headers: dict[str, str], route: str, seconds: float) -> float:
    done = [0] * 8
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        with httpx.Client(base_url=base, headers=headers) as client:
            while time.monotonic() < stop:
                client.get(route).raise_for_status()
                done[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def run(name: str, database_url: str, port: int, requests: int) -> None:
    _tierkit(database_url, "migrate")
    _tierkit(database_url, "demo")
    key = _tierkit(database_url, "keys", "create", "--environment", "development")
    server = _serve(database_url, port)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=base, headers=headers) as client:
            for route in ROUTES:
                _latencies(client, route, 20)  # warm up
                times = sorted(_latencies(client, route, requests))
                p50 = statistics.median(times) * 1000
                p99 = times[int(len(times) * 0.99) - 1] * 1000
                rps = _throughput(base, headers, route, 3.0)
                print(f"| {name} | `GET {route}` | {p50:.2f} | {p99:.2f} | {rps:.0f} |")
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--postgres", default=os.environ.get("TIERKIT_TEST_DATABASE_URL"))
    args = parser.parse_args()
    print("| database | request | p50 ms | p99 ms | req/s (8 threads) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{tmp}/bench.db", 8931, args.requests)
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(
            make_url(args.postgres).set(drivername="postgresql+psycopg"),
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        url = make_url(args.postgres).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            run("PostgreSQL", url.render_as_string(hide_password=False), 8932, args.requests)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()

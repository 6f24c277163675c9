"""Event ingestion through `POST /v1/events` against the raw insert rate of the same rows, and
usage reads with 1,000 against 1,000,000 stored events.

Usage: .venv/bin/python bench/ingest.py [--postgres URL] [--batches 200] [--clients 4]
       [--rounds 5] [--no-sqlite] [--no-latency]

For each database (SQLite, and PostgreSQL when a URL is given): one uvicorn worker, batches of
1000 track events with idempotency keys over 100 companies whose usage counters exist (each
event updates three), sent by `--clients` concurrent clients. Then the same rows are inserted
straight into the events table, and into a bare table of the same columns (COPY on PostgreSQL,
executemany on SQLite), as ceilings. The ratios are what to compare across machines. The
three take turns for `--rounds` rounds (the machine's load drifts; a bare COPY alone moved
by a fifth between runs) and the medians are reported, with the range of the bare ratio.
Each phase starts with no autovacuum at work, and the references also with the API's
writes flushed (`settle`): a COPY run while they were written out measured up to a third
slower (see `run` for why the API's rounds start without a checkpoint).

Then one company gets 1,000 events and another 1,000,000 (inserted raw), and a check and a
consume are timed for each (300 rounds, the four calls taking turns in each) with the server
reading the company's state anew on every check (`TIERKIT_CACHE_SECONDS=0`): usage is read from
pre-aggregated counters, so the ratio should stay near 1.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from harness import open_environment, postgres_schema, serve
from sqlalchemy import text

from tierkit.engine.catalog import Aggregation, Entitlement, Feature, FeatureType, Meter, Plan
from tierkit.server.db import Database
from tierkit.server.services.events import ensure_companies

COMPANIES = 100
BATCH = 1000
APP = "tierkit.server.app:create_app_from_environment"


def seed(database_url: str) -> tuple[str, str]:
    database, services, environment_id, key = open_environment(database_url)
    meters = {
        "api_calls": Meter("api_call", Aggregation.SUM),
        "requests": Meter("api_call", Aggregation.COUNT),
        "tokens": Meter("api_call", Aggregation.SUM, "tokens"),
    }
    features = [Feature(k, k, FeatureType.METERED, meter=m) for k, m in meters.items()]
    for feature in features:
        services.features.create_feature(environment_id, feature)
    entitlements = tuple(Entitlement(f.key, value=10**12) for f in features)
    services.plans.create_plan(
        environment_id, Plan("free", "Free", is_default=True, entitlements=entitlements)
    )
    database.dispose()
    return environment_id, key


def _event(run: str, index: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    return {
        "event": "api_call",
        "company": f"c{rng.randrange(COMPANIES)}",
        "quantity": 1,
        "properties": {"tokens": rng.randrange(1, 500), "model": "small"},
        "timestamp": (now - timedelta(seconds=rng.randrange(3600))).isoformat(),
        "idempotency_key": f"{run}-{index}",
    }


def batches_of(run: str, count: int) -> list[bytes]:
    rng = random.Random(run)
    now = datetime.now(UTC)
    return [
        orjson.dumps({"events": [_event(run, b * BATCH + i, rng, now) for i in range(BATCH)]})
        for b in range(count)
    ]


def send(url: str, key: str, batches: list[bytes], clients: int) -> float:
    """Post every batch with `clients` concurrent clients; events per second."""
    queue = iter(batches)
    lock = threading.Lock()
    failures: list[str] = []

    address = urlsplit(url)

    def work() -> None:
        # http.client, not httpx: the load generator shares the cores with the server and
        # the database, and the standard library's client spends a fraction of httpx's CPU.
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=120)
        try:
            while True:
                with lock:
                    body = next(queue, None)
                if body is None:
                    return
                connection.request("POST", "/v1/events", body, headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 202:
                    failures.append(answer[:200].decode(errors="replace"))
        finally:
            connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} batches failed: {failures[0]}")
    return len(batches) * BATCH / elapsed


def reach_steady_state(url: str, key: str, clients: int, run: str) -> None:
    """Send two batches, then check every company once: its counters exist (a check created
    them), so each event updates three counters, as in a running system."""
    send(url, key, batches_of(run, 2), clients)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
        for index in range(COMPANIES):
            client.post("/v1/check/bulk", json={"company": f"c{index}"}).raise_for_status()


def _raw_rows(
    environment_id: str, events: list[dict[str, Any]], companies: dict[str, str]
) -> Iterator[tuple[Any, ...]]:
    now = datetime.now(UTC).replace(tzinfo=None)
    for e in events:
        yield (
            environment_id, "track", e["event"], companies[e["company"]], None, 1.0,
            orjson.dumps(e["properties"]).decode(), now, now, e["idempotency_key"],
        )  # fmt: skip


# The references' tables. On PostgreSQL, `events_like` has the events table's keys and
# indexes; autovacuum leaves both alone, so that cleaning up after a reference's bulk load
# does not run during the next round of ingestion. SQLite (no autovacuum, no LIKE) takes the
# reference rows in the events table itself.
_REFERENCE_TABLES = {
    True: ["CREATE TABLE events_bare AS SELECT * FROM events WHERE 0"],
    False: [
        "CREATE TABLE events_bare (LIKE events INCLUDING DEFAULTS)"
        " WITH (autovacuum_enabled = false)",
        "CREATE TABLE events_like (LIKE events INCLUDING ALL) WITH (autovacuum_enabled = false)",
    ],
}
_COLUMNS = (
    "environment_id, type, event, company_id, user_key, quantity, properties, timestamp, "
    "received_at, idempotency_key"
)


def _insert_raw(
    database: Database, environment_id: str, events: list[dict[str, Any]], table: str = "events"
) -> float:
    """Insert `events` straight into `table` (the events table, or a copy of its columns);
    rows per second."""
    with database.write() as session:
        companies = ensure_companies(
            session, environment_id, sorted({e["company"] for e in events}), datetime.now(UTC)
        )
    rows = list(_raw_rows(environment_id, events, companies))
    started = time.perf_counter()
    if database.is_sqlite:
        with database.engine.begin() as connection:
            placeholders = ", ".join("?" * 10)
            connection.exec_driver_sql(
                f"INSERT INTO {table} ({_COLUMNS}) VALUES ({placeholders})",
                rows,
            )
    else:
        raw = database.engine.raw_connection()
        try:
            cursor = raw.cursor()
            with cursor.copy(f"COPY {table} ({_COLUMNS}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
    return len(rows) / (time.perf_counter() - started)


def _store_raw(database: Database, environment_id: str, company: str, count: int) -> None:
    """`count` events for `company`, stamped now, inserted raw (fast) in chunks."""
    rng = random.Random(count)
    for start in range(0, count, 100_000):
        events = [
            {
                "event": "api_call",
                "company": company,
                "properties": {"tokens": rng.randrange(1, 500)},
                "idempotency_key": f"{company}-{start + i}",
            }
            for i in range(min(100_000, count - start))
        ]
        _insert_raw(database, environment_id, events)


def settle(database: Database, *, flush: bool, seconds: float = 120) -> None:
    """Start a measurement on a quiet database: no autovacuum still cleaning up after the
    phase before (PostgreSQL), and with `flush`, that phase's writes flushed first (a
    checkpoint; SQLite folds its write-ahead log back)."""
    if database.is_sqlite:
        if flush:
            with database.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    quiet = database.engine.execution_options(isolation_level="AUTOCOMMIT")
    with quiet.connect() as connection:
        if flush:
            connection.exec_driver_sql("CHECKPOINT")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            busy = connection.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
                " AND datname = current_database()"
            ).scalar()
            if not busy:
                return
            time.sleep(0.2)


def _latencies(client: httpx.Client, bodies: list[dict[str, Any]], rounds: int) -> list[float]:
    """Median milliseconds of each body's check over `rounds` rounds, the bodies taking turns
    within a round (so that a change in the machine's load weighs on all of them alike)."""
    timings: list[list[float]] = [[] for _ in bodies]
    for _ in range(rounds):
        for body, kept in zip(bodies, timings, strict=True):
            started = time.perf_counter()
            client.post("/v1/check", json=body).raise_for_status()
            kept.append((time.perf_counter() - started) * 1000)
    return [statistics.median(kept) for kept in timings]


def run(
    name: str, database_url: str, batches: int, clients: int, port: int, big: int, rounds: int
) -> list[str]:
    environment_id, key = seed(database_url)
    database = Database(database_url)
    with database.write() as session:
        for statement in _REFERENCE_TABLES[database.is_sqlite]:
            session.execute(text(statement))
    like_table = "events" if database.is_sqlite else "events_like"
    api_rates, raw_rates, bare_rates = [], [], []
    with serve(APP, database_url, port) as url:
        reach_steady_state(url, key, clients, "warm")
        # Rounds take turns with the references, so a change in the machine's load weighs on
        # both; the medians are reported.
        # Each phase starts with no autovacuum at work. The references start with the API's
        # writes flushed too (a checkpoint): the API pays for its own writes in its steady
        # state, and a COPY measured while they were written out ran up to a third slower.
        # The API's rounds start without one: right after a checkpoint, every page is first
        # written whole to the log, a cost a running server pays once per checkpoint
        # interval (minutes), not once a round. The references' rows are then truncated,
        # their unwritten pages dropped, so none of their writing falls in the API's rounds.
        for round_ in range(rounds):
            api_bodies = batches_of(f"api{round_}", batches)
            settle(database, flush=False)
            api_rates.append(send(url, key, api_bodies, clients))
            raw_events = [
                e for b in batches_of(f"raw{round_}", batches) for e in orjson.loads(b)["events"]
            ]
            settle(database, flush=True)
            raw_rates.append(_insert_raw(database, environment_id, raw_events, like_table))
            settle(database, flush=True)
            bare_rates.append(_insert_raw(database, environment_id, raw_events, "events_bare"))
            print(
                f"{name} round {round_ + 1}/{rounds}: API {api_rates[-1]:,.0f} events/s, "
                f"like events {raw_rates[-1]:,.0f} rows/s, bare {bare_rates[-1]:,.0f} rows/s",
                file=sys.stderr,
                flush=True,
            )
            with database.write() as session:
                session.execute(
                    text(
                        "DELETE FROM events_bare"
                        if database.is_sqlite
                        else "TRUNCATE events_like, events_bare"
                    )
                )
    api_rate, raw_rate, bare_rate = (
        statistics.median(api_rates),
        statistics.median(raw_rates),
        statistics.median(bare_rates),
    )
    bare_ratios = sorted(api / bare for api, bare in zip(api_rates, bare_rates, strict=True))
    rows = [
        f"| {name} | ingestion | {api_rate:,.0f} events/s | raw insert into a table like events "
        f"(its keys and indexes) {raw_rate:,.0f} rows/s | **{api_rate / raw_rate:.2f}** |",
        f"| {name} | ingestion | {api_rate:,.0f} events/s | raw insert into a bare table "
        f"(same columns, no key or index) {bare_rate:,.0f} rows/s | "
        f"**{api_rate / bare_rate:.3f}** (rounds {bare_ratios[0]:.3f}-{bare_ratios[-1]:.3f}) |",
    ]
    if not big:
        database.dispose()
        return rows
    started = time.perf_counter()
    _store_raw(database, environment_id, "small", 1_000)
    _store_raw(database, environment_id, "big", big)
    stored = time.perf_counter() - started
    database.dispose()
    headers = {"Authorization": f"Bearer {key}"}
    with (
        serve(APP, database_url, port, cache_seconds="0") as url,
        httpx.Client(base_url=url, headers=headers, timeout=600) as client,
    ):
        counted = {}
        for company in ("small", "big"):
            first = time.perf_counter()
            check = {"company": company, "feature": "tokens"}
            client.post("/v1/check", json=check).raise_for_status()  # counts the window once
            counted[company] = time.perf_counter() - first
        bodies = [
            body
            for company in ("small", "big")
            for body in (
                {"company": company, "feature": "tokens"},
                {"company": company, "feature": "api_calls", "consume": True},
            )
        ]
        small_check, small_consume, big_check, big_consume = _latencies(client, bodies, 300)
        timings = {
            "small": (small_check, small_consume, counted["small"]),
            "big": (big_check, big_consume, counted["big"]),
        }
    big_label = f"{big:,}"
    for label, index in (("check", 0), ("consume", 1)):
        small, big_ms = timings["small"][index], timings["big"][index]
        rows.append(
            f"| {name} | {label} latency (median) | 1k events {small:.2f} ms | "
            f"{big_label} events {big_ms:.2f} ms | **{big_ms / small:.2f}** |"
        )
    rows.append(
        f"| {name} | first read of a window (counted from raw events, once) | "
        f"1k events {timings['small'][2] * 1000:.0f} ms | "
        f"{big_label} events {timings['big'][2] * 1000:.0f} ms | "
        f"({big_label} stored raw in {stored:.0f} s) |"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("TIERKIT_TEST_DATABASE_URL"))
    parser.add_argument(
        "--batches", type=int, default=200, help="batches of 1000 events in each round"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--big", type=int, default=1_000_000, help="events of the big company")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of ingestion and references (medians)"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--no-latency", action="store_true", help="ingestion only (no 1k vs 1M latencies)"
    )
    args = parser.parse_args()
    rows = ["| database | measure | Tierkit | reference | ratio |", "|---|---|---|---|---|"]
    big = 0 if args.no_latency else args.big
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = f"sqlite:///{tmp}/bench.db"
            rows += run("SQLite", sqlite, args.batches, args.clients, 8950, big, args.rounds)
    if args.postgres:
        with postgres_schema(args.postgres) as postgres:
            rows += run("PostgreSQL", postgres, args.batches, args.clients, 8951, big, args.rounds)
    print("\n".join(rows))


if __name__ == "__main__":
    main()

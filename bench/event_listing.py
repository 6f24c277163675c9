"""How long a page of `GET /v1/events` takes, by filter, with companies of 1,000 to 1,000,000
stored events on PostgreSQL: a company's page should not grow with its events.

Usage: .venv/bin/python bench/event_listing.py [--postgres URL] [--big 1000000] [--repeat 5]

Events are stored raw in this order: `small` (1,000), `mid` (30% of `--big`), `big` and `late`
(1,000), then the table is analyzed, as autovacuum would have. `mid`'s events lie under all of
`big`'s: PostgreSQL walks the events backwards by number expecting `mid`'s soon, and passes
all of `big`'s first (see `bench/RESULTS.md`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import httpx
from harness import postgres_schema, serve
from ingest import APP, _store_raw, seed
from sqlalchemy import text

from tierkit.server.db import Database

QUERIES = [
    {"company": "small"},
    {"company": "mid"},
    {"company": "big"},
    {"company": "late"},
    {},
    {"company": "mid", "event": "api_call"},
    {"event": "api_call"},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("TIERKIT_TEST_DATABASE_URL"))
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--port", type=int, default=8768)
    args = parser.parse_args()
    if not args.postgres:
        raise SystemExit("give --postgres URL (or set TIERKIT_TEST_DATABASE_URL)")
    with postgres_schema(args.postgres) as url:
        environment_id, key = seed(url)
        database = Database(url)
        for company, count in (("small", 1000), ("mid", args.big * 3 // 10), ("big", args.big)):
            print(f"storing {count:,} events of {company}", flush=True)
            _store_raw(database, environment_id, company, count)
        _store_raw(database, environment_id, "late", 1000)
        with database.engine.connect() as connection:
            connection.execute(text("ANALYZE events"))
            connection.commit()
        database.dispose()
        headers = {"Authorization": f"Bearer {key}"}
        print("| filter | first page, median ms | second page ms |")
        print("|---|---|---|")
        with (
            serve(APP, url, args.port) as base,
            httpx.Client(base_url=base, headers=headers, timeout=600) as client,
        ):
            for query in QUERIES:
                params = {"limit": 50, **query}
                timings = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    reply = client.get("/v1/events", params=params)
                    timings.append(time.perf_counter() - started)
                    reply.raise_for_status()
                started = time.perf_counter()
                cursor = reply.json()["next_cursor"]
                client.get("/v1/events", params={**params, "cursor": cursor}).raise_for_status()
                second = time.perf_counter() - started
                label = " ".join(f"{k}={v}" for k, v in query.items()) or "(none)"
                print(
                    f"| {label} | {1000 * statistics.median(timings):.1f} | {1000 * second:.1f} |"
                )


if __name__ == "__main__":
    main()

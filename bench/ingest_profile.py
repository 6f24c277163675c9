"""Where a batch of 1000 events goes, in CPU time: the server's Python (parsing, validation and
`services.events.ingest`, in this process, one thread) and PostgreSQL's backend (read from
`/proc/<pid>/stat`), so that the load of a shared machine does not count.

Usage: .venv/bin/python bench/ingest_profile.py [--postgres URL] [--batches 60] [--profile]

The workload is bench/ingest.py's: batches of 1000 keyed `api_call` events over 100 companies
whose three counters exist. `--profile` prints cProfile's top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
from harness import postgres_schema
from ingest import COMPANIES, batches_of, seed
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tierkit.server.api.routes.usage import record_events
from tierkit.server.db import Database
from tierkit.server.services.change_relay import build_relay
from tierkit.server.services.checks import CheckRequest
from tierkit.server.services.container import Services

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pids: list[int]) -> float:
    """Seconds of CPU the processes `pids` have used (those gone since are left out)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def _named(database_url: str) -> tuple[str, str | None]:
    """The URL with an application name that finds its backend (PostgreSQL only)."""
    if database_url.startswith("sqlite"):
        return database_url, None
    name = f"tk_profile_{uuid.uuid4().hex[:8]}"
    return make_url(database_url).update_query_dict({"application_name": name}).render_as_string(
        hide_password=False
    ), name


def run(
    database_url: str, batches: int, profile: bool, relayed: bool = True
) -> tuple[float, float, float]:
    """Python CPU milliseconds per batch (least and median) and the backend's (mean)."""
    environment_id, _ = seed(database_url)
    url, name = _named(database_url)
    database = Database(url)
    relay = build_relay(database, None) if relayed else None
    services = Services.build(database, relay=relay)
    bodies = batches_of("profile", batches)

    def batch(body: bytes) -> None:
        record_events(services, environment_id, orjson.loads(body))

    for body in batches_of("warm", 3):  # creates the companies
        batch(body)
    for index in range(COMPANIES):  # steady state: every company's counters exist
        services.checks.check(environment_id, CheckRequest(f"c{index}", None))
    # Every backend of the pool, once the warm-up has opened them.
    pids: list[int] = []
    if name is not None:
        with database.read() as session:
            pids = list(
                session.scalars(
                    text("SELECT pid FROM pg_stat_activity WHERE application_name = :n"),
                    {"n": name},
                )
            )
    gc.freeze()  # as the served app does once built (create_app_from_environment)
    python_ms, backend_ms = [], []
    profiler = cProfile.Profile(time.thread_time) if profile else None
    for body in bodies:
        python_ms.append(_timed(time.thread_time, batch, body, profiler))
        backend_ms.append(process_cpu(pids))
    # The kernel counts CPU in ticks (10 ms): the backend's is a mean over the run.
    backend_mean = 1000 * (backend_ms[-1] - backend_ms[0]) / max(len(backend_ms) - 1, 1)
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
    database.dispose()
    return min(python_ms), statistics.median(python_ms), backend_mean


def _timed(
    clock: Callable[[], float],
    work: Callable[[bytes], None],
    body: bytes,
    profiler: cProfile.Profile | None,
) -> float:
    started = clock()
    if profiler is not None:
        profiler.enable()
    work(body)
    if profiler is not None:
        profiler.disable()
    return 1000 * (clock() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("TIERKIT_TEST_DATABASE_URL"))
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--sqlite", action="store_true", help="SQLite too")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument(
        "--no-relay", action="store_true", help="without the change notes other processes hear"
    )
    args = parser.parse_args()
    rows = [
        "| database | Python CPU per batch, least | median | backend CPU per batch |",
        "|---|---|---|---|",
    ]
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            least, median, _ = run(f"sqlite:///{tmp}/profile.db", args.batches, args.profile)
            rows.append(f"| SQLite (its work included) | {least:.1f} ms | {median:.1f} ms | |")
    if args.postgres:
        with postgres_schema(args.postgres) as url:
            least, median, backend = run(url, args.batches, args.profile, not args.no_relay)
            rows.append(f"| PostgreSQL | {least:.1f} ms | {median:.1f} ms | {backend:.1f} ms |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

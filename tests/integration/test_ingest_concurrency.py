"""Ingestion beside other writers, on both databases: batches take their companies' locks only
after inserting their events, so what must hold across that gap is tested here. Counters
created by checks while batches for the same companies go in count each event once; batches
sharing keys in opposite orders never fail; a company deleted between a batch's lookup and its
lock is created anew with the whole batch (PostgreSQL: SQLite runs one writer at a time)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select

from tests.conftest import SettableClock
from tests.support.api import create_feature, create_plan
from tests.support.locks import wait_for_a_row_lock_wait
from tierkit.server.db import Database
from tierkit.server.db.tables import CompanyRow, EventRow
from tierkit.server.services.container import Services
from tierkit.server.services.events import NewEvent

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
COMPANIES = [f"co{index}" for index in range(5)]


@pytest.fixture
def metered(api: httpx.Client, clock: SettableClock) -> httpx.Client:
    """`api_calls` sums `api_call` quantities; `requests` counts them."""
    clock.now = NOW
    create_feature(api, "api_calls", "metered", meter={"event": "api_call", "aggregation": "sum"})
    create_feature(api, "requests", "metered", meter={"event": "api_call", "aggregation": "count"})
    create_plan(
        api,
        "free",
        [
            {"feature": "api_calls", "value": 10**9, "period": "month"},
            {"feature": "requests", "value": 10**9, "period": "month"},
        ],
        is_default=True,
    )
    return api


def post_events(client: httpx.Client, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post("/v1/events", json={"events": events})
    assert response.status_code == 202, response.text
    reply: dict[str, Any] = response.json()
    return reply


def usage(client: httpx.Client, company: str) -> dict[str, float]:
    response = client.get(f"/v1/companies/{company}/usage")
    assert response.status_code == 200, response.text
    return {row["feature"]: row["used"] for row in response.json()["data"]}


def test_batches_and_checks_creating_counters__side_by_side__each_event_counted_once(
    metered: httpx.Client,
) -> None:
    # Given batches of 2-unit events for five companies unknown so far, and checks of those
    # companies that create their counters from the raw events while the batches go in
    def batch(worker: int) -> dict[str, Any]:
        events = [
            {"event": "api_call", "company": COMPANIES[(worker + i) % 5], "quantity": 2}
            for i in range(50)
        ]
        return post_events(metered, events)

    def check(worker: int) -> None:
        company = COMPANIES[worker % 5]
        response = metered.post("/v1/check", json={"company": company, "feature": "requests"})
        assert response.status_code in (200, 404), response.text  # 404 before it exists

    # When 12 batches and 20 checks run four at a time
    with ThreadPoolExecutor(max_workers=4) as pool:
        checks = [pool.submit(check, worker) for worker in range(20)]
        replies = list(pool.map(batch, range(12)))
        for done in checks:
            done.result()

    # Then every event was stored, and each company's counters hold each of its events once
    assert sum(reply["accepted"] for reply in replies) == 600
    for company in COMPANIES:
        assert usage(metered, company) == {"api_calls": 240, "requests": 120}


def test_batches_sharing_keys_in_opposite_orders__concurrently__all_202_each_key_once(
    metered: httpx.Client,
) -> None:
    # Given batches over the same 100 keys, half of them in reverse order
    keys = [f"k{index:03}" for index in range(100)]

    def batch(worker: int) -> dict[str, Any]:
        ordered = keys if worker % 2 else keys[::-1]
        events = [{"event": "api_call", "company": "acme", "idempotency_key": k} for k in ordered]
        return post_events(metered, events)

    # When eight are sent four at a time
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(batch, range(8)))

    # Then each key was stored once, by whichever batch came first, and counted once
    assert sum(reply["accepted"] for reply in replies) == 100
    assert sum(reply["duplicates"] for reply in replies) == 700
    assert usage(metered, "acme") == {"api_calls": 100, "requests": 100}


def test_company_deleted_between_lookup_and_lock__batch_starts_over_and_creates_it_anew(
    database: Database, services: Services, clock: SettableClock
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite runs one write transaction at a time: there is no such gap")
    clock.now = NOW
    environment = services.environments.get_environment("development").id
    services.events.ingest(environment, [NewEvent(type="track", event="e", company="acme")])
    with database.read() as session:
        first_id = session.scalar(select(CompanyRow.id).where(CompanyRow.key == "acme"))

    # Given a transaction holding acme's row, as a deletion does before it deletes
    with database.write() as deleting:
        deleting.execute(
            select(CompanyRow.id).where(CompanyRow.id == first_id).with_for_update()
        ).all()
        # When a batch for acme looks it up, inserts its events and waits for the lock
        batch = [
            NewEvent(type="track", event="e", company="acme", idempotency_key=f"k{index}")
            for index in range(3)
        ]
        result: list[Any] = []
        worker = threading.Thread(
            target=lambda: result.append(services.events.ingest(environment, batch))
        )
        worker.start()
        wait_for_a_row_lock_wait(database)
        # and the company is deleted with its events meanwhile
        deleting.execute(delete(EventRow).where(EventRow.company_id == first_id))
        deleting.execute(delete(CompanyRow).where(CompanyRow.id == first_id))
    worker.join(30)

    # Then the batch was stored whole, for a new acme, and none of it for the deleted one
    assert result[0].accepted == 3
    with database.read() as session:
        company_id = session.scalar(select(CompanyRow.id).where(CompanyRow.key == "acme"))
        keys = session.scalars(
            select(EventRow.idempotency_key).where(EventRow.company_id == company_id)
        ).all()
        orphans = session.scalar(
            select(func.count()).select_from(EventRow).where(EventRow.company_id == first_id)
        )
    assert company_id is not None
    assert company_id != first_id
    assert sorted(keys) == ["k0", "k1", "k2"]
    assert orphans == 0

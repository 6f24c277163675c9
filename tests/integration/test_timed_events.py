"""Time-driven jobs: an override expiring and a trial about to end are announced once, when
their time comes, whichever process runs the job; expired grants reach the ledger unread."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import SettableClock
from tests.support.api import create_customer_catalog, rfc3339
from tests.support.locks import wait_for_a_row_lock_wait
from tierkit.server.db.tables import CompanyRow
from tierkit.server.services import jobs
from tierkit.server.services.container import Services
from tierkit.server.services.events import NewEvent
from tierkit.server.services.jobs import Job
from tierkit.server.services.timed_events import time_driven_jobs

EVERY = timedelta(seconds=10)


def job_named(services: Services, name: str) -> Job:
    return next(job for job in time_driven_jobs(EVERY) if job.name == name)


@pytest.fixture
def announced(api: httpx.Client, services: Services) -> Any:
    """`announced()`: the event types delivered so far to an endpoint taking every type."""
    created = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks"})
    assert created.status_code == 201, created.text
    endpoint = created.json()["id"]

    def read() -> list[dict[str, Any]]:
        services.webhooks.fan_out()
        reply = api.get(f"/v1/webhooks/{endpoint}/deliveries", params={"limit": 500})
        assert reply.status_code == 200, reply.text
        return [d["payload"] for d in reversed(reply.json()["data"])]

    return read


def run(services: Services, name: str, clock: SettableClock, holder: str = "test") -> bool:
    ran = services.jobs.run_if_due(job_named(services, name), holder)
    clock.advance(seconds=EVERY.total_seconds())
    return ran


def timed(payloads: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [p for p in payloads if p["type"] == kind]


def test_override_expiry__its_instant_passes__override_expired_once(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any
) -> None:
    # Given acme with an override that expires in a minute, and the job run once
    create_customer_catalog(api)
    assert api.put("/v1/companies/acme", json={"plan": "pro"}).status_code == 201
    expires = clock.now + timedelta(minutes=1)
    body = {"value": 3, "expires_at": rfc3339(expires)}
    assert api.put("/v1/companies/acme/overrides/projects", json=body).status_code == 200
    run(services, "override_expiry", clock)

    # When the clock passes the expiry and the job runs, then again
    clock.advance(minutes=2)
    run(services, "override_expiry", clock)
    run(services, "override_expiry", clock)

    # Then override.expired was announced once, naming the company and feature
    expired = timed(announced(), "override.expired")
    assert [(e["data"]["company"], e["data"]["override"]) for e in expired] == [
        ("acme", "projects")
    ]


def test_override_expiry__before_its_instant__nothing(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any
) -> None:
    create_customer_catalog(api)
    assert api.put("/v1/companies/acme", json={"plan": "pro"}).status_code == 201
    body = {"value": 3, "expires_at": rfc3339(clock.now + timedelta(hours=1))}
    assert api.put("/v1/companies/acme/overrides/projects", json=body).status_code == 200

    run(services, "override_expiry", clock)
    clock.advance(minutes=30)
    run(services, "override_expiry", clock)

    assert timed(announced(), "override.expired") == []


def test_trial_ending__three_days_before_the_end__announced_once(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any
) -> None:
    # Given acme starting the 14-day trial of `starter`
    create_customer_catalog(api)
    run(services, "trial_ending", clock)
    assert api.put("/v1/companies/acme", json={"plan": "starter"}).status_code == 201

    # When 10 days pass (nothing yet), then the 11th (3 days left), then more
    clock.advance(days=10)
    run(services, "trial_ending", clock)
    before = timed(announced(), "subscription.trial_ending")
    clock.advance(days=1, hours=1)
    run(services, "trial_ending", clock)
    clock.advance(hours=5)
    run(services, "trial_ending", clock)

    # Then it was announced once, after the 11th day
    after = timed(announced(), "subscription.trial_ending")
    assert (len(before), [e["data"]["company"] for e in after]) == (0, ["acme"])


def test_trial_ending__trial_shorter_than_the_notice__announced_at_once(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any
) -> None:
    create_customer_catalog(api)
    run(services, "trial_ending", clock)
    trial_end = rfc3339(clock.now + timedelta(days=1))
    assert api.put("/v1/companies/acme", json={}).status_code == 201
    reply = api.post(
        "/v1/companies/acme/subscriptions", json={"plan": "pro", "trial_ends_at": trial_end}
    )
    assert reply.status_code == 201, reply.text

    clock.advance(seconds=1)
    run(services, "trial_ending", clock)

    assert [e["data"]["company"] for e in timed(announced(), "subscription.trial_ending")] == [
        "acme"
    ]


def test_jobs__two_processes_at_once__the_job_runs_once(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any
) -> None:
    # Given an override about to expire
    create_customer_catalog(api)
    assert api.put("/v1/companies/acme", json={"plan": "pro"}).status_code == 201
    body = {"value": 3, "expires_at": rfc3339(clock.now + timedelta(seconds=30))}
    assert api.put("/v1/companies/acme/overrides/projects", json=body).status_code == 200
    services.jobs.run_if_due(job_named(services, "override_expiry"), "first")
    clock.advance(minutes=1)

    # When two holders run the job at the same moment, many times
    results: list[bool] = []

    def contend(holder: str) -> None:
        for _ in range(5):
            results.append(services.jobs.run_if_due(job_named(services, "override_expiry"), holder))

    threads = [threading.Thread(target=contend, args=(h,)) for h in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then one run did the work: one announcement, one successful run
    assert (results.count(True), len(timed(announced(), "override.expired"))) == (1, 1)


def test_grant_expiry__nobody_reads_the_company__the_ledger_gets_its_expiry_row(
    api: httpx.Client, services: Services, clock: SettableClock
) -> None:
    # Given acme with 10 credits that expire in an hour
    assert api.post("/v1/credits", json={"key": "ai", "name": "AI"}).status_code == 201
    assert api.put("/v1/companies/acme", json={}).status_code == 201
    body = {"credit": "ai", "amount": 10, "expires_at": rfc3339(clock.now + timedelta(hours=1))}
    assert api.post("/v1/companies/acme/credit-grants", json=body).status_code == 201
    run(services, "grant_expiry", clock)

    # When the expiry passes and the job runs (no read of acme in between)
    clock.advance(hours=2)
    run(services, "grant_expiry", clock)

    # Then the ledger holds the expiry of the 10 credits
    ledger = api.get("/v1/companies/acme/credits/ledger")
    assert ledger.status_code == 200, ledger.text
    kinds = [(row["kind"], row["amount"]) for row in ledger.json()["data"]]
    assert ("expiry", -10) in kinds


def test_grant_expiry__a_plan_period_ends_unread__next_period_granted_at_the_job_run(
    api: httpx.Client, services: Services, clock: SettableClock
) -> None:
    # Given acme on a plan granting 100 `ai` a month with up to 30 rolling over, read once
    assert api.post("/v1/credits", json={"key": "ai", "name": "AI"}).status_code == 201
    grants = [{"credit": "ai", "amount": 100, "period": "month", "rollover_max": 30}]
    plan = {"key": "basic", "name": "Basic", "credit_grants": grants}
    assert api.post("/v1/plans", json=plan).status_code == 201
    assert api.put("/v1/companies/acme", json={"plan": "basic"}).status_code == 201
    assert api.get("/v1/companies/acme/credits").json()["data"][0]["balance"] == 100
    first_period_end = clock.now + timedelta(days=40)  # past the month, whichever it is
    run(services, "grant_expiry", clock)

    # When the period ends, the job runs, and nobody reads acme for a week
    clock.now = first_period_end
    job_ran_at = clock.now
    run(services, "grant_expiry", clock)
    clock.advance(days=7)

    # Then the ledger has the expiry, the rollover and the new period's grant, written at the
    # job's run rather than at this read
    ledger = api.get("/v1/companies/acme/credits/ledger", params={"limit": 500})
    assert ledger.status_code == 200, ledger.text
    rows = [(row["kind"], row["amount"]) for row in ledger.json()["data"]]
    assert rows == [("grant", 100), ("rollover", 30), ("expiry", -100), ("grant", 100)]
    issued = [row for row in ledger.json()["data"] if row["kind"] == "grant"]
    assert max(row["at"] for row in issued) == rfc3339(job_ran_at)


# entitlements.changed


def run_all(services: Services, clock: SettableClock) -> None:
    """Every job once (in the server's order), then the clock moves past their interval."""
    for job in time_driven_jobs(EVERY):
        services.jobs.run_if_due(job, "test")
    clock.advance(seconds=EVERY.total_seconds())


def changes_of(payloads: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [
        (p["data"]["company"], p["data"]["changed"])
        for p in timed(payloads, "entitlements.changed")
    ]


def test_entitlements_changed__plan_entitlement_raised__announced_for_its_companies_only(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any
) -> None:
    # Given acme on pro and beta on starter, both evaluated once (their baselines)
    create_customer_catalog(api)
    assert api.put("/v1/companies/acme", json={"plan": "pro"}).status_code == 201
    assert api.put("/v1/companies/beta", json={"plan": "starter"}).status_code == 201
    run_all(services, clock)
    assert changes_of(announced()) == []

    # When pro's `projects` goes from 10 to 20 (a new version: acme keeps version 1, so
    # nothing changes yet), and acme is migrated onto it
    body = {"value": 20}
    assert api.put("/v1/plans/pro/entitlements/projects", json=body).status_code == 200
    run_all(services, clock)
    assert changes_of(announced()) == []
    migration = {"from_version": 1, "to_version": 2}
    assert api.post("/v1/plans/pro/migrations", json=migration).json()["migrated"] == 1
    run_all(services, clock)

    # Then acme's entitlements changed, with before and after; beta's did not
    events = timed(announced(), "entitlements.changed")
    assert changes_of(events) == [("acme", ["projects"])]
    data = events[0]["data"]
    assert (data["previous"]["projects"]["value"], data["object"]["projects"]["value"]) == (
        10,
        20,
    )


def test_entitlements_changed__override_then_its_expiry__announced_both_ways(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any
) -> None:
    create_customer_catalog(api)
    assert api.put("/v1/companies/acme", json={"plan": "pro"}).status_code == 201
    run_all(services, clock)

    body = {"value": 3, "expires_at": rfc3339(clock.now + timedelta(minutes=5))}
    assert api.put("/v1/companies/acme/overrides/projects", json=body).status_code == 200
    run_all(services, clock)
    clock.advance(minutes=10)
    run_all(services, clock)

    events = timed(announced(), "entitlements.changed")
    values = [
        (e["data"]["previous"]["projects"]["reason"], e["data"]["object"]["projects"]["reason"])
        for e in events
    ]
    assert values == [("plan", "override"), ("override", "plan")]


def test_entitlements_changed__a_change_that_changes_nothing__no_event(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any
) -> None:
    create_customer_catalog(api)
    assert api.put("/v1/companies/acme", json={"plan": "pro"}).status_code == 201
    run_all(services, clock)

    # A trait no rule reads
    assert api.put("/v1/companies/acme", json={"traits": {"color": "blue"}}).status_code == 200
    run_all(services, clock)

    assert changes_of(announced()) == []


# usage.threshold_reached


def track(api: httpx.Client, count: int, company: str = "acme") -> None:
    events = [{"event": "api_call", "company": company} for _ in range(count)]
    assert api.post("/v1/events", json={"events": events}).status_code == 202


def levels_of(payloads: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [
        (p["data"]["company"], p["data"]["feature"], p["data"]["percent"])
        for p in timed(payloads, "usage.threshold_reached")
    ]


@pytest.fixture
def small_plan(api: httpx.Client) -> None:
    """`api_calls` (count of `api_call`) limited to 10 a month on plan `small`; acme on it."""
    create_customer_catalog(api)
    body = {
        "key": "small",
        "name": "Small",
        "entitlements": [{"feature": "api_calls", "value": 10}],
    }
    assert api.post("/v1/plans", json=body).status_code == 201
    assert api.put("/v1/companies/acme", json={"plan": "small"}).status_code == 201


def test_usage_thresholds__80_then_100_percent__each_announced_once(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any, small_plan: None
) -> None:
    # Given the job running since before any usage
    run(services, "usage_thresholds", clock)

    # When acme uses 8 of 10, then 1 more, then 2 more, with the job running between
    track(api, 8)
    run(services, "usage_thresholds", clock)
    track(api, 1)
    run(services, "usage_thresholds", clock)
    track(api, 2)
    run(services, "usage_thresholds", clock)
    run(services, "usage_thresholds", clock)

    # Then 80% and 100% were announced once each, with the usage and limit
    events = timed(announced(), "usage.threshold_reached")
    assert levels_of(events) == [("acme", "api_calls", 80), ("acme", "api_calls", 100)]
    assert (events[1]["data"]["used"], events[1]["data"]["limit"]) == (11, 10)


def test_usage_thresholds__more_new_events_than_a_page__one_run_announces(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any, small_plan: None
) -> None:
    # Given the job running, then 25,000 events of a busy company (on the default plan), and
    # only after them acme's 8 calls of its 10
    run(services, "usage_thresholds", clock)
    for _ in range(25):
        track(api, 1000, company="busy")
    track(api, 8)

    # When the job runs once
    run(services, "usage_thresholds", clock)

    # Then acme's 80% is announced by that run: it follows every new event, not a page of them
    assert levels_of(announced()) == [("acme", "api_calls", 80)]


@pytest.mark.usefixtures("small_plan")
def test_usage_thresholds__events_commit_after_later_ones__still_announced(
    api: httpx.Client,
    services: Services,
    clock: SettableClock,
    announced: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = services.database
    if database.is_sqlite:
        pytest.skip("SQLite runs one write transaction at a time: commits keep their order")
    monkeypatch.setattr(jobs, "WRITERS_WAIT_SECONDS", 0.2)
    environment = services.environments.get_environment("development").id
    run(services, "usage_thresholds", clock)
    with database.read() as session:
        acme = session.scalar(select(CompanyRow.id).where(CompanyRow.key == "acme"))
    # Given acme's batch of 8 calls of its 10, its events inserted but its commit held back
    # (it waits for acme's row, which this transaction holds)
    with database.write() as holding:
        holding.execute(select(CompanyRow.id).where(CompanyRow.id == acme).with_for_update())
        batch = [NewEvent(type="track", event="api_call", company="acme") for _ in range(8)]
        worker = threading.Thread(target=lambda: services.events.ingest(environment, batch))
        worker.start()
        wait_for_a_row_lock_wait(database)
        # and another company's event, numbered after acme's, committed meanwhile
        track(api, 1, company="busy")

        # When the job runs while acme's batch is still open
        run(services, "usage_thresholds", clock)
    worker.join(30)
    # and again once it has committed
    run(services, "usage_thresholds", clock)

    # Then acme's 80% is announced: the first run did not step over its uncommitted events
    assert levels_of(announced()) == [("acme", "api_calls", 80)]


def test_usage_thresholds__next_period__announced_again(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any, small_plan: None
) -> None:
    run(services, "usage_thresholds", clock)
    track(api, 8)
    run(services, "usage_thresholds", clock)

    # A month and more later, 8 more calls
    clock.advance(days=32)
    track(api, 8)
    run(services, "usage_thresholds", clock)

    events = timed(announced(), "usage.threshold_reached")
    assert levels_of(events) == [("acme", "api_calls", 80), ("acme", "api_calls", 80)]
    assert events[0]["data"]["period_start"] != events[1]["data"]["period_start"]


def test_usage_thresholds__under_80_percent__nothing(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any, small_plan: None
) -> None:
    run(services, "usage_thresholds", clock)
    track(api, 7)
    run(services, "usage_thresholds", clock)

    assert levels_of(announced()) == []


# credits.low and credits.depleted


def test_credit_alerts__balance_falls_low_then_to_nothing_then_refilled__each_fall_announced(
    api: httpx.Client, services: Services, clock: SettableClock, announced: Any
) -> None:
    # Given acme with 10 `ai` credits, and image_gen costing 3 a use
    assert api.post("/v1/credits", json={"key": "ai", "name": "AI"}).status_code == 201
    feature = {"key": "image_gen", "name": "Images", "type": "boolean"}
    assert api.post("/v1/features", json=feature).status_code == 201
    use = {"feature": "image_gen", "value": True, "credit": "ai", "credit_cost": 3}
    plan = {"key": "ai_plan", "name": "AI", "entitlements": [use]}
    assert api.post("/v1/plans", json=plan).status_code == 201
    assert api.put("/v1/companies/acme", json={"plan": "ai_plan"}).status_code == 201
    grant = {"credit": "ai", "amount": 10}
    assert api.post("/v1/companies/acme/credit-grants", json=grant).status_code == 201
    run(services, "credit_alerts", clock)

    def consume() -> None:
        body = {"company": "acme", "feature": "image_gen", "consume": True}
        assert api.post("/v1/check", json=body).json()["allowed"] is True

    # When it uses 3 credits twice (4 left: not low), then once more (1 left: low)
    consume()
    consume()
    run(services, "credit_alerts", clock)
    first = [p["type"] for p in announced() if p["type"].startswith("credits.")]
    consume()
    run(services, "credit_alerts", clock)

    # Then void the rest (0: depleted); a new grant re-arms, and a new fall is announced
    grants = api.get("/v1/companies/acme/credit-grants").json()["data"]
    void = api.post(f"/v1/companies/acme/credit-grants/{grants[0]['id']}/void")
    assert void.status_code == 200, void.text
    run(services, "credit_alerts", clock)
    assert api.post("/v1/companies/acme/credit-grants", json=grant).status_code == 201
    run(services, "credit_alerts", clock)
    consume()
    consume()
    consume()
    run(services, "credit_alerts", clock)

    kinds = [p["type"] for p in announced() if p["type"].startswith("credits.")]
    assert first == []
    assert kinds == ["credits.low", "credits.depleted", "credits.low"]

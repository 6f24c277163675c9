"""`UsageVerifyService` (behind `tierkit usage verify`): a recount of every counter from the raw
events finds exactly the counters that drifted, changes nothing unless asked to repair, and a
repair makes them equal to the recount, on both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.support.api import create_feature, create_plan
from tierkit.server.db import Database
from tierkit.server.services.errors import NotFound
from tierkit.server.services.usage_verify import UsageVerifyService

METERS = {
    "calls": {"aggregation": "count"},
    "tokens": {"aggregation": "sum", "property": "tokens"},
    "peak": {"aggregation": "max", "property": "load"},
    "people": {"aggregation": "unique_count", "property": "user_id"},
    "level": {"aggregation": "latest"},
}


def usage(api: httpx.Client, company: str) -> dict[str, float]:
    response = api.get(f"/v1/companies/{company}/usage")
    assert response.status_code == 200, response.text
    return {item["feature"]: item["used"] for item in response.json()["data"]}


@pytest.fixture
def metered(api: httpx.Client) -> httpx.Client:
    """Two companies with usage of every aggregation, their counters created and kept."""
    for key, meter in METERS.items():
        create_feature(api, key, "metered", meter={"event": "hit", **meter})
    create_plan(
        api, "free", [{"feature": key, "unlimited": True} for key in METERS], is_default=True
    )
    for company in ("acme", "initech"):
        assert api.put(f"/v1/companies/{company}", json={}).status_code == 201
        usage(api, company)  # the counters exist from here and are kept by ingestion
        events: list[dict[str, Any]] = [
            {
                "event": "hit",
                "company": company,
                "quantity": index % 3 + 1,
                "properties": {"tokens": index * 10, "load": index % 7, "user_id": f"u{index % 4}"},
            }
            for index in range(30)
        ]
        assert api.post("/v1/events", json={"events": events}).status_code == 202
    return api


def counter_id(database: Database, company: str, aggregation: str) -> int:
    with database.read() as session:
        found = session.execute(
            text(
                "SELECT c.id FROM usage_counters c JOIN companies co ON co.id = c.company_id "
                "WHERE co.key = :company AND c.aggregation = :aggregation"
            ),
            {"company": company, "aggregation": aggregation},
        ).scalar_one()
        return int(found)


def corrupt(database: Database) -> None:
    """acme's sum counter gains 5; one of initech's distinct values is forgotten."""
    tokens = counter_id(database, "acme", "sum")
    people = counter_id(database, "initech", "unique_count")
    with database.write() as session:
        session.execute(
            text("UPDATE usage_counters SET value = value + 5 WHERE id = :id"), {"id": tokens}
        )
        forgotten = session.execute(
            text("SELECT value_hash FROM usage_uniques WHERE counter_id = :id LIMIT 1"),
            {"id": people},
        ).scalar_one()
        session.execute(
            text("DELETE FROM usage_uniques WHERE counter_id = :id AND value_hash = :h"),
            {"id": people, "h": forgotten},
        )


def test_usage_verify__counters_kept_by_ingestion__no_drift(
    metered: httpx.Client, database: Database
) -> None:
    report = UsageVerifyService(database).verify()

    assert (report.companies, report.counters, report.drifts) == (2, 10, [])


def test_usage_verify__two_counters_corrupted__exactly_those_reported_and_left_as_they_are(
    metered: httpx.Client, database: Database
) -> None:
    # Given acme's sum counter off by 5 and a distinct value missing from initech's
    before = usage(metered, "acme")
    corrupt(database)

    # When the counters are verified without repair
    progress: list[tuple[int, int]] = []
    report = UsageVerifyService(database).verify(progress=lambda *p: progress.append(p))

    # Then exactly those two are reported, with the stored and recounted values
    drifts = {(d.company, d.meter): (d.stored, d.recounted) for d in report.drifts}
    assert drifts == {
        ("acme", "hit/sum/tokens"): (before["tokens"] + 5, before["tokens"]),
        ("initech", "hit/unique_count/user_id"): (4, 4),  # the value kept, a hash lost
    }
    assert progress[-1] == (2, 2)
    # and nothing was changed
    assert UsageVerifyService(database).verify().drifts == report.drifts


def test_usage_verify__repair__drifted_counters_equal_the_recount_again(
    metered: httpx.Client, database: Database
) -> None:
    # Given two drifted counters
    expected = usage(metered, "acme")
    corrupt(database)
    assert usage(metered, "acme")["tokens"] == expected["tokens"] + 5

    # When they are repaired
    repaired = UsageVerifyService(database).verify(repair=True)

    # Then both were, a new verify finds nothing, and usage reads the recount
    assert (len(repaired.drifts), repaired.repaired) == (2, True)
    assert UsageVerifyService(database).verify().drifts == []
    assert usage(metered, "acme") == expected
    # and the restored distinct value is not counted again by a later event
    event = {"event": "hit", "company": "initech", "properties": {"user_id": "u1"}}
    assert metered.post("/v1/events", json=event).status_code == 202
    assert usage(metered, "initech")["people"] == 4


def test_usage_verify__one_environment__only_its_companies(
    metered: httpx.Client, database: Database
) -> None:
    assert UsageVerifyService(database).verify("production").companies == 0
    assert UsageVerifyService(database).verify("development").companies == 2
    with pytest.raises(NotFound):
        UsageVerifyService(database).verify("staging")

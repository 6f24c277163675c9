"""Counters kept up event by event equal counters counted at once from the raw events, for every
aggregation, on both databases (the database's own aggregation must read events as the engine
does: JSON numbers only, booleans and text ignored)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.api import create_feature, create_plan
from tierkit.engine.catalog import Aggregation, Meter
from tierkit.engine.meters import MeterEvent, aggregate

METERS = {
    "calls": {"aggregation": "count"},
    "units": {"aggregation": "sum"},
    "tokens": {"aggregation": "sum", "property": "tokens"},
    "peak": {"aggregation": "max", "property": "load"},
    "people": {"aggregation": "unique_count", "property": "user_id"},
    "level": {"aggregation": "latest"},
}
ODD_VALUES: list[Any] = [True, False, "12", None, [1], {"a": 1}, -3, 2.5, 0]


def _events(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    events = []
    for index in range(count):
        properties: dict[str, Any] = {}
        for name in ("tokens", "load", "user_id"):
            roll = rng.random()
            if roll < 0.6:
                properties[name] = rng.randint(-5, 500)
            elif roll < 0.85:
                properties[name] = rng.choice(ODD_VALUES)
        if rng.random() < 0.3:
            properties["user_id"] = rng.choice(["alice", "bob", 1, "1"])
        events.append(
            {
                "event": "hit",
                "quantity": rng.choice([1, 2, 0.5, -1, 100]),
                "properties": properties,
                "idempotency_key": f"{seed}-{index}",
            }
        )
    return events


@pytest.fixture
def metered(api: httpx.Client) -> httpx.Client:
    for key, meter in METERS.items():
        create_feature(api, key, "metered", meter={"event": "hit", **meter})
    create_plan(
        api, "free", [{"feature": key, "unlimited": True} for key in METERS], is_default=True
    )
    return api


def _usage(client: httpx.Client, company: str) -> dict[str, float]:
    response = client.get(f"/v1/companies/{company}/usage")
    assert response.status_code == 200, response.text
    return {item["feature"]: item["used"] for item in response.json()["data"]}


def test_counters__kept_per_batch_and_counted_at_once__agree(metered: httpx.Client) -> None:
    events = _events(seed=3, count=400)
    metered.put("/v1/companies/kept", json={})
    _usage(metered, "kept")  # the counters exist from here on and are kept per batch

    for start in range(0, len(events), 50):
        chunk = events[start : start + 50]
        for company in ("kept", "counted"):
            batch = [
                e | {"company": company, "idempotency_key": f"{company}-{e['idempotency_key']}"}
                for e in chunk
            ]
            assert metered.post("/v1/events", json={"events": batch}).status_code == 202

    kept, counted = _usage(metered, "kept"), _usage(metered, "counted")
    assert kept == pytest.approx(counted)
    assert kept == pytest.approx(_expected(events))


def _expected(events: list[dict[str, Any]]) -> dict[str, float]:
    """What the engine's meters make of the events (all stamped at one instant, so the gauge
    takes the last one received)."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    readings = [
        MeterEvent(at, e["quantity"], e["properties"], sequence)
        for sequence, e in enumerate(events)
    ]
    return {
        key: aggregate(
            Meter("hit", Aggregation(meter["aggregation"]), meter.get("property")), readings
        )
        for key, meter in METERS.items()
    }

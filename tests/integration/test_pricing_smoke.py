"""Smoke: pricing table and invoice preview (full tests to follow)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from tests.conftest import ClientFactory, SettableClock
from tests.support.api import create_feature, create_plan
from tierkit.server.services.api_keys import KeyKind


def test_pricing_smoke(api: httpx.Client, clock: SettableClock, make_client: ClientFactory) -> None:
    clock.now = datetime(2026, 3, 10, tzinfo=UTC)
    create_feature(api, "sso")
    create_feature(api, "secret_thing", visibility="private")
    create_feature(
        api, "api_calls", "metered", unit="call", meter={"event": "api_call", "aggregation": "sum"}
    )
    create_plan(
        api, "free", [{"feature": "api_calls", "value": 1000}], is_default=True, sort_order=0
    )
    create_plan(
        api,
        "pro",
        [
            {"feature": "sso", "value": True},
            {"feature": "secret_thing", "value": True},
            {
                "feature": "api_calls",
                "value": 10000,
                "soft_limit": True,
                "overage": {"price": 50, "per": 1000},
            },
        ],
        sort_order=10,
        prices=[
            {
                "interval": "month",
                "currency": "usd",
                "amount": 2900,
                "default": True,
                "regional": [{"currency": "eur", "amount": 2700}],
                "intro": {"kind": "percent", "value": 50, "cycles": 3},
            }
        ],
    )
    create_plan(api, "hidden", [], visibility="private")
    create_plan(
        api,
        "seats",
        [],
        type="add_on",
        prices=[{"interval": "month", "currency": "usd", "amount": 500}],
    )
    browser = make_client(kind=KeyKind.PUBLISHABLE)
    t = browser.get("/v1/pricing-table", params={"currency": "eur"})
    assert t.status_code == 200, t.text
    body = t.json()
    assert [p["key"] for p in body["plans"]] == ["free", "pro", "seats"], body
    assert [f["key"] for f in body["features"]] == ["api_calls", "sso"], body
    pro = body["plans"][1]
    assert pro["price"]["amount"] == 2700
    assert [c["display"] for c in pro["features"]] == ["10,000 / month", "Included"], pro
    api.put("/v1/companies/acme", json={})
    api.post(
        "/v1/companies/acme/subscriptions",
        json={"plan": "pro", "started_at": "2026-02-01T00:00:00Z"},
    )
    api.post(
        "/v1/companies/acme/subscriptions",
        json={"plan": "seats", "quantity": 3, "started_at": "2026-02-01T00:00:00Z"},
    )
    api.post("/v1/events", json={"event": "api_call", "company": "acme", "quantity": 12500})
    inv = api.get("/v1/companies/acme/invoice-preview")
    assert inv.status_code == 200, inv.text
    assert inv.json()["total"] == 2900 - 1450 + 1500 + 150, inv.json()

"""Smoke: credits end to end (to be replaced by the full credits tests)."""

from __future__ import annotations

import httpx

from tests.conftest import SettableClock
from tests.support.api import create_feature, create_plan


def test_credits_smoke(api: httpx.Client, clock: SettableClock) -> None:
    assert api.post("/v1/credits", json={"key": "ai", "name": "AI credits"}).status_code == 201
    create_feature(api, "image_gen")
    create_plan(
        api,
        "free",
        [{"feature": "image_gen", "value": True, "credit": "ai", "credit_cost": 5}],
        is_default=True,
    )
    api.put("/v1/companies/acme", json={})
    r = api.post("/v1/check", json={"company": "acme", "feature": "image_gen"})
    assert r.json()["reason"] == "insufficient_credits", r.text
    assert r.json()["credits"] == {"credit": "ai", "balance": 0, "cost": 5}
    g = api.post("/v1/companies/acme/credit-grants", json={"credit": "ai", "amount": 12})
    assert g.status_code == 201, g.text
    r = api.post("/v1/check", json={"company": "acme", "feature": "image_gen", "consume": True})
    assert r.json()["allowed"] is True, r.text
    assert r.json()["credits"] == {"credit": "ai", "balance": 7, "cost": 5}, r.text
    r = api.post(
        "/v1/check",
        json={"company": "acme", "feature": "image_gen", "consume": True, "quantity": 2},
    )
    assert r.json()["reason"] == "insufficient_credits", r.text
    assert api.get("/v1/companies/acme/credits").json()["data"][0]["balance"] == 7
    ledger = api.get("/v1/companies/acme/credits/ledger").json()["data"]
    assert [e["kind"] for e in ledger] == ["grant", "debit"], ledger
    assert sum(e["amount"] for e in ledger) == 7
    v = api.post(f"/v1/companies/acme/credit-grants/{g.json()['id']}/void")
    assert v.json()["status"] == "voided", v.text
    assert api.get("/v1/companies/acme/credits").json()["data"][0]["balance"] == 0
    r = api.get("/v1/plans/free").json()["entitlements"][0]
    assert (r["credit"], r["credit_cost"]) == ("ai", 5), r


def test_bundle_smoke(api: httpx.Client) -> None:
    api.post("/v1/credits", json={"key": "ai", "name": "AI credits"})
    api.put("/v1/companies/acme", json={})
    b = api.post(
        "/v1/credit-bundles",
        json={
            "key": "pack",
            "name": "Pack",
            "credit": "ai",
            "amount": 500,
            "price": {"currency": "usd", "amount": 900},
            "expires_in_days": 30,
        },
    )
    assert b.status_code == 201, b.text
    r = api.post("/v1/companies/acme/credit-bundles/pack/purchase")
    assert r.status_code == 201, r.text
    assert r.json()["charge"] == {"currency": "usd", "amount": 900}
    assert r.json()["grant"]["source"] == "purchase"
    assert api.get("/v1/companies/acme/credits").json()["data"][0]["balance"] == 500


def test_plan_grants_smoke(api: httpx.Client, clock: SettableClock) -> None:
    from datetime import UTC, datetime

    clock.now = datetime(2026, 1, 10, 12, tzinfo=UTC)
    api.post("/v1/credits", json={"key": "ai", "name": "AI credits"})
    create_feature(api, "image_gen")
    create_plan(
        api,
        "pro",
        [{"feature": "image_gen", "value": True, "credit": "ai", "credit_cost": 10}],
        credit_grants=[{"credit": "ai", "amount": 100, "period": "month", "rollover_max": 30}],
    )
    api.put("/v1/companies/acme", json={})
    api.post(
        "/v1/companies/acme/subscriptions",
        json={"plan": "pro", "started_at": "2026-01-05T00:00:00Z"},
    )
    r = api.post(
        "/v1/check",
        json={"company": "acme", "feature": "image_gen", "consume": True, "quantity": 5},
    )
    assert r.json()["credits"] == {"credit": "ai", "balance": 50, "cost": 50}, r.text
    clock.now = datetime(2026, 2, 6, tzinfo=UTC)
    balances = api.get("/v1/companies/acme/credits").json()["data"]
    assert balances[0]["balance"] == 130, balances
    ledger = api.get("/v1/companies/acme/credits/ledger").json()["data"]
    assert [e["kind"] for e in ledger] == ["grant", "debit", "rollover", "expiry", "grant"], ledger
    assert sum(e["amount"] for e in ledger) == 130
    r = api.post("/v1/check", json={"company": "acme", "feature": "image_gen"})
    assert r.json()["credits"]["balance"] == 130, r.text

"""Smoke: events in, usage and checks out."""

from __future__ import annotations

import httpx

from tests.support.api import create_feature, create_plan


def test_smoke(api: httpx.Client) -> None:
    create_feature(api, "api_calls", "metered", meter={"event": "api_call", "aggregation": "sum"})
    create_plan(api, "free", [{"feature": "api_calls", "value": 5}], is_default=True)
    r = api.post("/v1/events", json={"event": "api_call", "company": "acme", "quantity": 2})
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 1, "duplicates": 0}
    r = api.post("/v1/check", json={"company": "acme", "feature": "api_calls"})
    assert r.json()["usage"]["used"] == 2, r.text
    r = api.post("/v1/events", json={"events": [{"event": "api_call", "company": "acme", "quantity": 1, "idempotency_key": "k"}] * 3})
    assert r.json() == {"accepted": 1, "duplicates": 2}, r.text
    r = api.post("/v1/check", json={"company": "acme", "feature": "api_calls", "quantity": 2, "consume": True})
    assert r.json()["allowed"] is True, r.text
    assert r.json()["usage"]["used"] == 5, r.text
    r = api.post("/v1/check", json={"company": "acme", "feature": "api_calls", "quantity": 1, "consume": True})
    assert r.json()["allowed"] is False, r.text
    r = api.get("/v1/companies/acme/usage")
    assert r.json()["data"][0]["used"] == 5, r.text
    r = api.get("/v1/events", params={"company": "acme"})
    assert len(r.json()["data"]) == 3, r.text
    r = api.get(f"/v1/events/{r.json()['data'][0]['id']}")
    assert r.status_code == 200, r.text
    r = api.get("/v1/companies/acme/usage/api_calls", params={"granularity": "hour"})
    assert sum(p["value"] for p in r.json()["data"]) == 5, r.text
    r = api.post("/v1/events", json={"events": [{"event": "api_call", "company": "acme"}, {"event": "", "company": "acme", "quantity": "x"}]})
    assert r.status_code == 400, r.text
    print(r.json())
    r = api.post("/v1/events", json={"type": "identify", "company": {"key": "zed", "name": "Zed", "traits": {"timezone": "Europe/Paris"}}, "user": {"key": "u1"}})
    assert r.status_code == 202, r.text
    assert api.get("/v1/companies/zed").json()["name"] == "Zed"
    r = api.post("/v1/metrics/set", json={"key": "seats", "company": "acme", "value": 3})
    assert r.status_code == 202, r.text
    assert api.get("/openapi.json").status_code == 200

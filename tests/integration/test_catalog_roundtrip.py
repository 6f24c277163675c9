"""Features of all four types and a plan with entitlements and prices read back as written."""

from __future__ import annotations

from typing import Any

import httpx

FEATURES: list[dict[str, Any]] = [
    {"key": "sso", "name": "Single sign-on", "type": "boolean", "default": False},
    {"key": "projects", "name": "Projects", "type": "numeric", "unit": "project", "default": 1},
    {
        "key": "support",
        "name": "Support",
        "type": "enum",
        "options": [{"key": "email", "name": "Email"}, {"key": "chat", "name": "Chat"}],
        "default": "email",
    },
    {
        "key": "api_calls",
        "name": "API calls",
        "description": "Requests to the public API.\nCounted per call.",
        "type": "metered",
        "unit": "call",
        "visibility": "private",
        "status": "coming_soon",
        "meter": {"event": "api_call", "aggregation": "sum", "property": "count"},
    },
]

PRO: dict[str, Any] = {
    "key": "pro",
    "name": "Pro",
    "description": "For growing teams",
    "type": "base",
    "group": "default",
    "is_default": False,
    "trial_days": 14,
    "sort_order": 20,
    "metadata": {"highlight": True, "badge": {"text": "Popular"}},
    "entitlements": [
        {"feature": "sso", "value": True},
        {"feature": "projects", "value": 10},
        {"feature": "support", "value": "chat"},
        {
            "feature": "api_calls",
            "value": 10000,
            "period": "month",
            "reset": "billing_cycle",
            "soft_limit": True,
            "overage": {"price": 50, "per": 1000},
        },
    ],
    "prices": [
        {
            "interval": "month",
            "currency": "usd",
            "amount": 2900,
            "default": True,
            "regional": [{"currency": "eur", "amount": 2700}],
        },
        {"interval": "year", "currency": "usd", "amount": 29000},
    ],
}


def _subset(sent: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    return {key: got[key] for key in sent}


def test_features__of_every_type__read_back_as_written(api: httpx.Client) -> None:
    for body in FEATURES:
        created = api.post("/v1/features", json=body)
        assert created.status_code == 201, created.text
        assert _subset(body, created.json()) == body

    for body in FEATURES:
        got = api.get(f"/v1/features/{body['key']}")
        assert got.status_code == 200
        assert _subset(body, got.json()) == body
    listed = api.get("/v1/features").json()
    assert [f["key"] for f in listed["data"]] == sorted(f["key"] for f in FEATURES)
    assert listed["next_cursor"] is None


def test_plan__with_entitlements_and_prices__reads_back_identical(api: httpx.Client) -> None:
    for body in FEATURES:
        api.post("/v1/features", json=body).raise_for_status()

    created = api.post("/v1/plans", json=PRO)

    assert created.status_code == 201, created.text
    got = api.get("/v1/plans/pro").json()
    assert got == created.json()
    entitlements = {e["feature"]: e for e in got["entitlements"]}
    assert entitlements["api_calls"] == {
        "feature": "api_calls",
        "value": 10000,
        "unlimited": False,
        "period": "month",
        "reset": "billing_cycle",
        "soft_limit": True,
        "overage": {"price": 50, "per": 1000},
    }
    assert entitlements["support"]["value"] == "chat"
    assert got["prices"] == [
        {
            "interval": "month",
            "currency": "usd",
            "amount": 2900,
            "default": True,
            "regional": [{"currency": "eur", "amount": 2700}],
        },
        {"interval": "year", "currency": "usd", "amount": 29000, "default": False, "regional": []},
    ]
    assert _subset({k: v for k, v in PRO.items() if k not in ("entitlements", "prices")}, got) == {
        k: v for k, v in PRO.items() if k not in ("entitlements", "prices")
    }

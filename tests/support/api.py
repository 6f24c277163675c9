"""Helpers for tests that talk to the API: create catalog objects, read errors and times."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx

SUPPORT_OPTIONS = [{"key": "email", "name": "Email"}, {"key": "chat", "name": "Chat"}]


def create_feature(
    api: httpx.Client, key: str, type: str = "boolean", **fields: Any
) -> dict[str, Any]:
    """Create a feature of `type` with what that type needs (a meter, options) unless `fields`
    say otherwise; returns the reply."""
    body: dict[str, Any] = {"key": key, "name": key.replace("_", " ").title(), "type": type}
    if type == "metered":
        body["meter"] = {"event": key, "aggregation": "count"}
    if type == "enum":
        body["options"] = SUPPORT_OPTIONS
    response = api.post("/v1/features", json=body | fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def create_plan(
    api: httpx.Client,
    key: str,
    entitlements: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"key": key, "name": key.title(), **fields}
    if entitlements is not None:
        body["entitlements"] = entitlements
    response = api.post("/v1/plans", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The error of a reply, which must be exactly the documented envelope."""
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"type", "code", "message", "param", "details"}
    return error


def assert_is_a_sentence(message: object) -> None:
    assert isinstance(message, str)
    assert message == message.strip()
    assert message[0].isupper() or message[0] in "`'\""
    assert len(message.split()) >= 3
    assert "\n" not in message
    assert "Traceback" not in message


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_utc(timestamp: str) -> datetime:
    """The instant of an RFC 3339 UTC timestamp as the API writes them (`...Z`)."""
    assert timestamp.endswith("Z"), timestamp
    parsed = datetime.fromisoformat(timestamp)
    assert parsed.utcoffset() == UTC.utcoffset(None)
    return parsed


def create_customer_catalog(api: httpx.Client) -> None:
    """The catalog of the customer tests: features `sso`, `beta` (on no plan), `projects`,
    `support`, `api_calls`; base plans `free` (default), `starter` (14-day trial, monthly and
    yearly), `pro` (monthly and yearly); add-on `extra_seats` (monthly); base plan `team` of
    group `seats`."""
    create_feature(api, "sso")
    create_feature(api, "beta")
    create_feature(api, "projects", "numeric")
    create_feature(api, "support", "enum")
    create_feature(api, "api_calls", "metered", meter={"event": "api_call", "aggregation": "count"})
    create_plan(api, "free", [{"feature": "projects", "value": 1}], is_default=True)
    yearly = {"interval": "year", "currency": "usd"}
    create_plan(
        api,
        "starter",
        [{"feature": "projects", "value": 5}, {"feature": "support", "value": "email"}],
        trial_days=14,
        prices=[
            {"interval": "month", "currency": "usd", "amount": 1900, "default": True},
            yearly | {"amount": 19000},
        ],
    )
    create_plan(
        api,
        "pro",
        [
            {"feature": "sso", "value": True},
            {"feature": "projects", "value": 10},
            {"feature": "api_calls", "value": 10000},
        ],
        prices=[
            {"interval": "month", "currency": "usd", "amount": 4900},
            yearly | {"amount": 49000},
        ],
    )
    create_plan(
        api,
        "extra_seats",
        type="add_on",
        prices=[{"interval": "month", "currency": "usd", "amount": 500}],
    )
    create_plan(api, "team", group="seats")


def used_of(api: httpx.Client, company: str, feature: str) -> float:
    """The company's usage of a metered feature in its current period, read from
    `GET /v1/companies/{key}/usage`."""
    usage = api.get(f"/v1/companies/{company}/usage")
    usage.raise_for_status()
    (line,) = [u for u in usage.json()["data"] if u["feature"] == feature]
    used: float = line["used"]
    return used


def fifty_consumes_at_once(consume: Callable[[int], httpx.Response]) -> list[dict[str, Any]]:
    """The replies of `consume(0)` to `consume(49)`, sent from 50 threads at once (the index
    picks the client); each must be a 200."""

    def one(index: int) -> dict[str, Any]:
        reply = consume(index)
        assert reply.status_code == 200, reply.text
        decision: dict[str, Any] = reply.json()
        return decision

    with ThreadPoolExecutor(max_workers=50) as pool:
        return list(pool.map(one, range(50)))


def assert_twenty_allowed_thirty_denied(replies: list[dict[str, Any]]) -> None:
    """Fifty consumes of 1 against a hard limit of 20: exactly 20 allowed, numbered 1 to 20,
    and 30 denied as over the limit."""
    allowed = [r for r in replies if r["allowed"]]
    denied = [r for r in replies if not r["allowed"]]
    assert (len(allowed), len(denied)) == (20, 30)
    assert {r["reason"] for r in denied} == {"limit_exceeded"}
    assert sorted(r["usage"]["used"] for r in allowed) == list(range(1, 21))

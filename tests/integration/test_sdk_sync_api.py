"""The SDK sync routes over real HTTP on both databases: the catalog snapshot and its ETag,
company and user states in the engine's terms (which evaluate locally to the server's own
answers), secret-key-only access, and the server-sent event stream of changes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from tests.conftest import SettableClock
from tests.support.api import create_feature, create_plan, error_of, parse_utc, rfc3339
from tierkit.client.sse import ServerEvent, parse_events
from tierkit.engine.codec import (
    catalog_from_json,
    catalog_to_json,
    company_from_json,
    decision_to_json,
)
from tierkit.engine.evaluate import evaluate
from tierkit.server.services.api_keys import KeyKind

ClientFactory = Callable[..., httpx.Client]
KeyFactory = Callable[..., str]

STREAM_READ_TIMEOUT = 5.0
"""How long a stream test waits for its next event before it fails."""

FEATURES = ["api_calls", "beta", "image_gen", "projects", "sso"]
SDK_PATHS = [
    "/v1/sdk/snapshot",
    "/v1/sdk/companies/acme",
    "/v1/sdk/users/u1",
    "/v1/sdk/stream",
]

PRO_ENTITLEMENTS = [
    {"feature": "sso", "value": True},
    {"feature": "projects", "value": 10},
    {"feature": "api_calls", "value": 1000, "reset": "billing_cycle"},
]
BETA_RULE = {
    "name": "gold",
    "value": True,
    "conditions": [
        [{"type": "trait", "entity": "company", "trait": "tier", "op": "eq", "value": "gold"}]
    ],
}


# Setup and reading through the API


@pytest.fixture
def catalog(api: httpx.Client) -> httpx.Client:
    """Credit type `ai`; features `sso`, `beta` (on for companies of trait tier=gold),
    `projects` (numeric, default 1), `api_calls` (metered, count of `api_calls`) and
    `image_gen` (5 `ai` a use); the default plan `free` (100 `api_calls`, `image_gen`),
    `pro` (`sso`, 10 `projects`, 1000 `api_calls` a billing cycle, $49 a month, 500 `ai` a
    month) and the add-on `pack` (5 `projects`)."""
    response = api.post("/v1/credits", json={"key": "ai", "name": "AI credits", "unit": "credit"})
    assert response.status_code == 201, response.text
    create_feature(api, "sso")
    create_feature(api, "beta")
    create_feature(api, "projects", "numeric", default=1)
    create_feature(api, "api_calls", "metered")
    create_feature(api, "image_gen")
    create_plan(
        api,
        "free",
        [
            {"feature": "api_calls", "value": 100},
            {"feature": "image_gen", "value": True, "credit": "ai", "credit_cost": 5},
        ],
        is_default=True,
    )
    create_plan(
        api,
        "pro",
        PRO_ENTITLEMENTS,
        prices=[{"interval": "month", "currency": "usd", "amount": 4900, "default": True}],
        credit_grants=[{"credit": "ai", "amount": 500, "period": "month"}],
    )
    create_plan(api, "pack", [{"feature": "projects", "value": 5}], type="add_on")
    response = api.put("/v1/features/beta/rules", json=[BETA_RULE])
    assert response.status_code == 200, response.text
    return api


def get_snapshot(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/v1/sdk/snapshot")
    assert response.status_code == 200, response.text
    snapshot: dict[str, Any] = response.json()
    assert set(snapshot) == {"etag", "catalog"}
    assert response.headers["etag"] == snapshot["etag"]
    return snapshot


def get_state(client: httpx.Client, company: str) -> dict[str, Any]:
    response = client.get(f"/v1/sdk/companies/{company}")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


def put_company(client: httpx.Client, key: str, **fields: Any) -> None:
    response = client.put(f"/v1/companies/{key}", json=fields)
    assert response.status_code in (200, 201), response.text


def subscribe(client: httpx.Client, company: str, plan: str, **fields: Any) -> None:
    response = client.post(f"/v1/companies/{company}/subscriptions", json={"plan": plan, **fields})
    assert response.status_code == 201, response.text


def put_override(client: httpx.Client, company: str, feature: str, **body: Any) -> None:
    response = client.put(f"/v1/companies/{company}/overrides/{feature}", json=body)
    assert response.status_code == 200, response.text


def track(client: httpx.Client, company: str, count: int = 1) -> None:
    events = [{"event": "api_calls", "company": company} for _ in range(count)]
    response = client.post("/v1/events", json={"events": events})
    assert response.status_code == 202, response.text


def grant(client: httpx.Client, company: str, amount: int, **fields: Any) -> dict[str, Any]:
    body = {"credit": "ai", "amount": amount, **fields}
    response = client.post(f"/v1/companies/{company}/credit-grants", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def post_check(client: httpx.Client, company: str, feature: str) -> dict[str, Any]:
    response = client.post("/v1/check", json={"company": company, "feature": feature})
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()
    return decision


def month_window(now: datetime, zone: Any = UTC) -> list[str]:
    """The calendar month around `now` in `zone`, as the state's `usage_windows` writes it."""
    local = now.astimezone(zone)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return [rfc3339(start), rfc3339(end)]


# The catalog snapshot


def test_snapshot__catalog_made_through_the_api__holds_features_plans_rules_and_credits(
    catalog: httpx.Client,
) -> None:
    snapshot = get_snapshot(catalog)

    document = snapshot["catalog"]
    assert [f["key"] for f in document["features"]] == sorted(FEATURES)
    features = {f["key"]: f for f in document["features"]}
    assert features["api_calls"]["meter"] == {
        "event": "api_calls",
        "aggregation": "count",
        "property": None,
    }
    assert (features["projects"]["type"], features["projects"]["default"]) == ("numeric", 1)
    assert [p["key"] for p in document["plans"]] == ["free", "pack", "pro"]
    plans = {p["key"]: p for p in document["plans"]}
    assert (plans["free"]["is_default"], plans["pack"]["type"]) == (True, "add_on")
    pro = plans["pro"]
    assert [(e["feature"], e["value"], e["reset"]) for e in pro["entitlements"]] == [
        ("sso", True, None),
        ("projects", 10, None),
        ("api_calls", 1000, "billing_cycle"),
    ]
    assert [(p["interval"], p["currency"], p["amount"], p["default"]) for p in pro["prices"]] == [
        ("month", "usd", 4900, True)
    ]
    assert pro["credit_grants"] == [
        {"credit": "ai", "amount": 500, "period": "month", "rollover_max": None}
    ]
    image_gen = plans["free"]["entitlements"][1]
    assert (image_gen["credit"], image_gen["credit_cost"]) == ("ai", 5)
    assert document["rules"] == {"beta": [BETA_RULE | {"unlimited": False, "rollout": None}]}
    assert document["credits"] == [{"key": "ai", "name": "AI credits", "unit": "credit"}]


def test_snapshot__if_none_match_with_its_etag__304_without_a_body(
    catalog: httpx.Client,
) -> None:
    etag = get_snapshot(catalog)["etag"]

    unchanged = catalog.get("/v1/sdk/snapshot", headers={"If-None-Match": etag})
    listed = catalog.get("/v1/sdk/snapshot", headers={"If-None-Match": f'"0123", {etag}'})
    other = catalog.get("/v1/sdk/snapshot", headers={"If-None-Match": '"0123"'})

    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert (listed.status_code, listed.content) == (304, b"")
    assert other.status_code == 200
    assert other.json()["etag"] == etag


def test_snapshot__if_none_match_with_its_weak_form__304(api: httpx.Client) -> None:
    # RFC 9110 13.1.2: If-None-Match compares weakly. Proxies that compress (nginx's gzip)
    # hand clients `W/"..."` for a strong tag, and those clients send it back.
    etag = get_snapshot(api)["etag"]

    weak = api.get("/v1/sdk/snapshot", headers={"If-None-Match": f"W/{etag}"})

    assert (weak.status_code, weak.content) == (304, b"")


def test_snapshot__each_catalog_change__changes_the_etag_and_customer_changes_do_not(
    catalog: httpx.Client,
) -> None:
    changes: list[Callable[[], object]] = [
        lambda: create_feature(catalog, "seats", "numeric"),
        lambda: catalog.patch("/v1/features/sso", json={"name": "Single sign-on"}),
        lambda: catalog.put("/v1/plans/pro/entitlements/seats", json={"value": 3}),
        lambda: catalog.patch("/v1/plans/free", json={"name": "Free forever"}),
        lambda: catalog.put("/v1/features/beta/rules", json=[BETA_RULE | {"value": False}]),
        lambda: catalog.post("/v1/credits", json={"key": "storage", "name": "Storage"}),
    ]
    etags = [get_snapshot(catalog)["etag"]]

    for change in changes:
        result = change()
        if isinstance(result, httpx.Response):
            assert result.is_success, result.text
        etags.append(get_snapshot(catalog)["etag"])
    put_company(catalog, "acme", traits={"tier": "gold"}, plan="pro")
    track(catalog, "acme")

    assert len(set(etags)) == len(changes) + 1
    assert get_snapshot(catalog)["etag"] == etags[-1]
    stale = catalog.get("/v1/sdk/snapshot", headers={"If-None-Match": etags[0]})
    assert stale.status_code == 200


def test_snapshot__document__round_trips_through_the_engine_codec(catalog: httpx.Client) -> None:
    create_feature(catalog, "support", "enum", default="email")
    catalog.put("/v1/plans/pro/entitlements/support", json={"value": "chat"}).raise_for_status()
    document = get_snapshot(catalog)["catalog"]

    decoded = catalog_from_json(document)

    assert catalog_to_json(decoded) == document
    assert orjson.dumps(catalog_to_json(decoded), option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        document, option=orjson.OPT_SORT_KEYS
    )


# Company states


def test_sdk_company__with_plans_and_an_override__holds_traits_subscriptions_and_overrides(
    catalog: httpx.Client, clock: SettableClock
) -> None:
    put_company(catalog, "acme", traits={"tier": "gold"}, plan="pro")
    subscribe(catalog, "acme", "pack", quantity=2)
    put_override(catalog, "acme", "projects", value=3, expires_at="2099-01-01T00:00:00Z")

    state = get_state(catalog, "acme")

    assert (state["key"], state["found"], state["traits"]) == ("acme", True, {"tier": "gold"})
    subscriptions = sorted(state["subscriptions"], key=lambda s: s["plan"])
    assert [
        (s["plan"], s["plan_type"], s["group"], s["quantity"], s["ends_at"]) for s in subscriptions
    ] == [("pack", "add_on", "default", 2, None), ("pro", "base", "default", 1, None)]
    assert all(parse_utc(s["started_at"]) == clock.now for s in subscriptions)
    assert all(s["id"] for s in subscriptions)
    assert state["overrides"] == [
        {
            "feature": "projects",
            "value": 3,
            "unlimited": False,
            "period": None,
            "reset": None,
            "soft_limit": False,
            "overage": None,
            "credit": None,
            "credit_cost": None,
            "expires_at": "2099-01-01T00:00:00Z",
            "note": "",
        }
    ]
    assert parse_utc(state["read_at"]) == clock.now


def test_sdk_company__events_on_a_metered_feature__usage_in_its_current_window(
    catalog: httpx.Client, clock: SettableClock
) -> None:
    put_company(catalog, "acme")
    track(catalog, "acme", count=3)

    state = get_state(catalog, "acme")

    assert state["usage"] == {"api_calls": 3}
    assert state["usage_windows"] == {"api_calls": month_window(clock.now)}


def test_sdk_company__credit_grant__listed_with_its_expiry_as_refresh_at(
    catalog: httpx.Client, clock: SettableClock
) -> None:
    put_company(catalog, "acme")
    expires_at = rfc3339(clock.now + timedelta(days=10))
    created = grant(catalog, "acme", 50, expires_at=expires_at)

    state = get_state(catalog, "acme")

    assert state["grants"] == [
        {
            "id": created["id"],
            "credit": "ai",
            "remaining": 50,
            "created_at": created["created_at"],
            "priority": 0,
            "expires_at": expires_at,
            "voided": False,
        }
    ]
    assert state["refresh_at"] == expires_at


def test_sdk_company__timezone_trait__names_the_zone_and_cuts_windows_there(
    catalog: httpx.Client, clock: SettableClock
) -> None:
    put_company(catalog, "acme")
    put_company(catalog, "nyc", traits={"timezone": "America/New_York"})
    track(catalog, "nyc")

    default, zoned = get_state(catalog, "acme"), get_state(catalog, "nyc")

    assert default["timezone"] == "UTC"
    assert zoned["timezone"] == "America/New_York"
    new_york = ZoneInfo("America/New_York")
    assert zoned["usage_windows"] == {"api_calls": month_window(clock.now, new_york)}
    decoded = company_from_json(
        zoned, catalog_from_json(get_snapshot(catalog)["catalog"]), ZoneInfo
    )
    assert decoded.timezone == new_york


def test_sdk_company__unknown__200_not_found_and_empty(catalog: httpx.Client) -> None:
    state = get_state(catalog, "nobody")

    assert {k: v for k, v in state.items() if k != "read_at"} == {
        "key": "nobody",
        "found": False,
        "traits": {},
        "timezone": "UTC",
        "subscriptions": [],
        "overrides": [],
        "usage": {},
        "usage_windows": {},
        "credits": {},
        "grants": [],
        "refresh_at": None,
        "stored": [],
    }


def test_sdk_company__pending_event_keys__names_those_the_state_counts(
    catalog: httpx.Client,
) -> None:
    # Given acme with one event stored under the key `k-stored`
    put_company(catalog, "acme", plan="pro")
    body = {"events": [{"event": "api_calls", "company": "acme", "idempotency_key": "k-stored"}]}
    assert catalog.post("/v1/events", json=body).status_code == 202

    # When a reader asks about it and about one never sent
    response = catalog.get(
        "/v1/sdk/companies/acme", params={"pending": ["k-stored", "k-in-flight"]}
    )

    # Then the state counts the stored one and says so, and only it
    assert response.status_code == 200, response.text
    state = response.json()
    assert (state["stored"], state["usage"]["api_calls"]) == (["k-stored"], 1)


def test_sdk_company__more_pending_keys_than_allowed__400_naming_pending(
    catalog: httpx.Client,
) -> None:
    response = catalog.get(
        "/v1/sdk/companies/acme", params={"pending": [f"k{i}" for i in range(101)]}
    )

    assert response.status_code == 400, response.text
    assert "pending" in str(response.json()["error"])


def test_sdk_company__evaluated_by_the_engine__decides_as_post_check(
    catalog: httpx.Client, clock: SettableClock
) -> None:
    put_company(catalog, "acme", traits={"tier": "gold"}, plan="pro")
    subscribe(catalog, "acme", "pack", quantity=2)
    put_override(catalog, "acme", "projects", value=3, expires_at="2099-01-01T00:00:00Z")
    track(catalog, "acme", count=4)
    put_company(catalog, "nyc", traits={"timezone": "America/New_York", "tier": "silver"})
    track(catalog, "nyc", count=100)
    put_company(catalog, "credited")
    grant(catalog, "credited", 7)
    put_override(catalog, "credited", "api_calls", unlimited=True)
    clock.advance(hours=1)
    document = catalog_from_json(get_snapshot(catalog)["catalog"])

    for company in ("acme", "nyc", "credited", "nobody"):
        state = company_from_json(get_state(catalog, company), document, ZoneInfo)
        for feature in FEATURES:
            local = evaluate(document, state, feature, now=clock.now)

            assert decision_to_json(local) == post_check(catalog, company, feature), (
                company,
                feature,
            )


# User states


def test_sdk_user__known_and_unknown__their_traits_or_none(catalog: httpx.Client) -> None:
    response = catalog.put("/v1/users/u1", json={"traits": {"role": "admin"}})
    assert response.status_code in (200, 201), response.text

    known = catalog.get("/v1/sdk/users/u1")
    unknown = catalog.get("/v1/sdk/users/ghost")

    assert (known.status_code, known.json()) == (200, {"key": "u1", "traits": {"role": "admin"}})
    assert (unknown.status_code, unknown.json()) == (200, {"key": "ghost", "traits": {}})


def test_sdk_states__keys_with_a_slash_and_spaces__read_url_encoded(api: httpx.Client) -> None:
    put_company(api, "org%2F42 ü", traits={"tier": "gold"})
    response = api.put("/v1/users/team%2Fu%201", json={"traits": {"role": "admin"}})
    assert response.status_code in (200, 201), response.text

    company = get_state(api, "org%2F42%20%C3%BC")
    user = api.get("/v1/sdk/users/team%2Fu%201").json()

    assert (company["key"], company["found"], company["traits"]) == (
        "org/42 ü",
        True,
        {"tier": "gold"},
    )
    assert user == {"key": "team/u 1", "traits": {"role": "admin"}}


# Access


def test_sdk_routes__objects_of_another_environment__not_seen(
    api: httpx.Client, production: httpx.Client
) -> None:
    create_feature(production, "sso")
    put_company(production, "globex", traits={"tier": "gold"})
    response = production.put("/v1/users/u1", json={"traits": {"role": "admin"}})
    assert response.status_code in (200, 201), response.text

    snapshot = get_snapshot(api)
    company = get_state(api, "globex")
    user = api.get("/v1/sdk/users/u1").json()

    assert snapshot["catalog"]["features"] == []
    assert snapshot["etag"] != get_snapshot(production)["etag"]
    assert (company["found"], company["traits"]) == (False, {})
    assert user == {"key": "u1", "traits": {}}


def test_sdk_routes__publishable_key__403_and_no_key__401(
    make_client: ClientFactory, server_url: str
) -> None:
    browser = make_client(kind=KeyKind.PUBLISHABLE)

    with httpx.Client(base_url=server_url, timeout=STREAM_READ_TIMEOUT) as anonymous:
        for path in SDK_PATHS:
            forbidden = browser.get(path)
            missing = anonymous.get(path)

            assert forbidden.status_code == 403, path
            assert error_of(forbidden)["type"] == "permission"
            assert missing.status_code == 401, path
            assert error_of(missing)["type"] == "authentication"


# The event stream


@contextlib.contextmanager
def open_stream(server_url: str, key: str) -> Iterator[Iterator[ServerEvent]]:
    """The stream's events, one `next()` at a time (a read timeout fails the test)."""
    headers = {"Authorization": f"Bearer {key}"}
    with (
        httpx.Client(base_url=server_url, headers=headers, timeout=STREAM_READ_TIMEOUT) as client,
        client.stream("GET", "/v1/sdk/stream") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield parse_events(response.iter_lines())


def payload(event: ServerEvent) -> tuple[str, dict[str, Any]]:
    data: dict[str, Any] = orjson.loads(event.data)
    return event.event, data


def test_sdk_stream__on_connect__says_hello_with_the_current_etag(
    catalog: httpx.Client, server_url: str, make_key: KeyFactory
) -> None:
    etag = get_snapshot(catalog)["etag"]

    with open_stream(server_url, make_key()) as events:
        hello = next(events)

    assert payload(hello) == ("hello", {"etag": etag})


def test_sdk_stream__override_puts__override_events_with_increasing_ids(
    catalog: httpx.Client, server_url: str, make_key: KeyFactory
) -> None:
    put_company(catalog, "acme")

    with open_stream(server_url, make_key()) as events:
        assert next(events).event == "hello"
        put_override(catalog, "acme", "projects", value=3)
        first = next(events)
        put_override(catalog, "acme", "projects", value=4)
        second = next(events)

    assert payload(first) == ("override", {"kind": "override", "company": "acme"})
    assert payload(second) == ("override", {"kind": "override", "company": "acme"})
    assert int(second.id or 0) > int(first.id or 0) > 0


def test_sdk_stream__each_kind_of_write__an_event_of_its_kind(
    catalog: httpx.Client, server_url: str, make_key: KeyFactory
) -> None:
    put_company(catalog, "acme")
    writes: list[tuple[Callable[[], object], tuple[str, dict[str, Any]]]] = [
        (
            lambda: catalog.patch("/v1/features/sso", json={"name": "SSO"}).raise_for_status(),
            ("catalog", {"kind": "catalog"}),
        ),
        (lambda: track(catalog, "acme", 2), ("usage", {"kind": "usage", "company": "acme"})),
        (
            lambda: subscribe(catalog, "acme", "pro"),
            ("subscription", {"kind": "subscription", "company": "acme"}),
        ),
        (
            lambda: catalog.put("/v1/users/u1", json={"traits": {"a": 1}}).raise_for_status(),
            ("user", {"kind": "user", "user": "u1"}),
        ),
        (
            lambda: put_company(catalog, "acme", traits={"tier": "gold"}),
            ("company", {"kind": "company", "company": "acme"}),
        ),
        (lambda: grant(catalog, "acme", 5), ("credits", {"kind": "credits", "company": "acme"})),
    ]
    received = []
    ids = []

    with open_stream(server_url, make_key()) as events:
        assert next(events).event == "hello"
        for write, _ in writes:
            write()
            event = next(events)
            received.append(payload(event))
            ids.append(int(event.id or 0))

    assert received == [expected for _, expected in writes]
    assert ids == sorted(set(ids))
    assert ids[0] > 0


def test_sdk_stream__change_in_another_environment__not_sent(
    catalog: httpx.Client, production: httpx.Client, server_url: str, make_key: KeyFactory
) -> None:
    put_company(catalog, "acme")
    create_feature(production, "sso")
    put_company(production, "globex")

    with open_stream(server_url, make_key()) as events:
        assert next(events).event == "hello"
        create_feature(production, "beta")
        put_override(production, "globex", "sso", value=True)
        put_override(catalog, "acme", "projects", value=3)
        first = next(events)

    assert payload(first) == ("override", {"kind": "override", "company": "acme"})

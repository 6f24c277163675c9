"""The SDK in remote mode against a real server on both databases: every resource family round
trips through `Client`, checks answer exactly what `POST /v1/check` answers, errors arrive as
their classes with the envelope's fields, failed checks answer the configured fallback instead
of raising, consumes record once per idempotency key, and `AsyncClient` does the same awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import SettableClock
from tests.support.api import rfc3339
from tests.support.live_server import PATIENT_TIMEOUT, free_port
from tierkit import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from tierkit.client import WorkerStats
from tierkit.client.http import Call
from tierkit.engine.codec import decision_to_json
from tierkit.engine.evaluate import Decision, Reason
from tierkit.server.services.api_keys import KeyKind

KeyFactory = Callable[..., str]

BETA_RULE = {
    "name": "gold",
    "value": True,
    "conditions": [
        [{"type": "trait", "entity": "company", "trait": "tier", "op": "eq", "value": "gold"}]
    ],
}
PRO_ENTITLEMENTS = [
    {"feature": "sso", "value": True},
    {"feature": "projects", "value": 10},
    {"feature": "api_calls", "value": 100},
    {"feature": "seats", "value": 10},
    {"feature": "image_gen", "value": True, "credit": "ai", "credit_cost": 5},
    {"feature": "tokens", "value": 1000},
]
PRO_PRICES = [
    {"interval": "month", "currency": "usd", "amount": 4900, "default": True},
    {"interval": "year", "currency": "usd", "amount": 49000},
]
FEATURES = ["api_calls", "beta", "image_gen", "projects", "seats", "sso", "tokens"]


@pytest.fixture
def client(server_url: str, make_key: KeyFactory) -> Iterator[Client]:
    """A remote `Client` holding a secret key of `development`."""
    with Client(api_key=make_key(), base_url=server_url, timeout=PATIENT_TIMEOUT) as client:
        yield client


def create_catalog(client: Client) -> None:
    """Through the SDK: credit type `ai`; features `sso`, `beta` (a rule: on for tier=gold),
    `projects` (numeric, default 1), `api_calls` (metered, count of `api_call`), `seats` (a
    `latest` gauge), `image_gen` (5 `ai` a use) and `tokens` (metered, sum of `tokens`); the
    default plan `free` (10 `api_calls`) and `pro` (PRO_ENTITLEMENTS at $49 a month)."""
    client.credits.create_type("ai", name="AI credits", unit="credit")
    client.features.create("sso", type="boolean", name="SSO")
    client.features.create("beta", type="boolean", name="Beta")
    client.features.create("projects", type="numeric", name="Projects", default=1)
    meter = {"event": "api_call", "aggregation": "count"}
    client.features.create("api_calls", type="metered", name="API calls", meter=meter)
    gauge = {"event": "seats", "aggregation": "latest"}
    client.features.create("seats", type="metered", name="Seats", meter=gauge)
    client.features.create("image_gen", type="boolean", name="Image generation")
    summed = {"event": "tokens", "aggregation": "sum"}
    client.features.create("tokens", type="metered", name="Tokens", meter=summed)
    client.features.set_rules("beta", [BETA_RULE])
    free = [{"feature": "api_calls", "value": 10}]
    client.plans.create("free", name="Free", entitlements=free, is_default=True)
    client.plans.create("pro", name="Pro", entitlements=PRO_ENTITLEMENTS, prices=PRO_PRICES)


def raw_check(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/check", json=body)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def raw_bulk(api: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    response = api.post("/v1/check/bulk", json=body)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def used(client: Client, company: str, feature: str) -> float:
    usage = {row["feature"]: row for row in client.usage.get(company)["data"]}
    value: float = usage[feature]["used"]
    return value


# Resources


def test_client_catalog__created_through_the_sdk__read_back_as_created(client: Client) -> None:
    # Given a catalog made through the SDK alone
    create_catalog(client)

    # When it is read back, and changed
    feature = client.features.get("api_calls")
    features = client.features.list()
    rules = client.features.get_rules("beta")
    updated = client.features.update("projects", name="Max projects", global_value=None)
    plan = client.plans.get("pro")
    plans = client.plans.list()
    entitlement = client.plans.set_entitlement("pro", "projects", value=25)
    plan_features = {f["feature"]: f for f in client.plans.features("pro")["data"]}
    table = client.pricing.table(currency="usd", interval="month")
    environment = client.environment.get()

    # Then the server holds exactly what was sent
    assert (feature["key"], feature["type"], feature["name"]) == (
        "api_calls",
        "metered",
        "API calls",
    )
    assert feature["meter"] == {"event": "api_call", "aggregation": "count", "property": None}
    assert sorted(f["key"] for f in features["data"]) == FEATURES
    assert features["next_cursor"] is None
    assert [r["name"] for r in rules["data"]] == ["gold"]
    assert rules["data"][0]["conditions"] == BETA_RULE["conditions"]
    assert (updated["name"], updated["default"], updated["global_value"]) == (
        "Max projects",
        1,
        None,
    )
    assert [(e["feature"], e.get("value")) for e in plan["entitlements"]] == [
        (e["feature"], e["value"]) for e in PRO_ENTITLEMENTS
    ]
    assert [(p["interval"], p["amount"]) for p in plan["prices"]] == [
        ("month", 4900),
        ("year", 49000),
    ]
    assert sorted(p["key"] for p in plans["data"]) == ["free", "pro"]
    assert (entitlement["feature"], entitlement["value"]) == ("projects", 25)
    assert plan_features["projects"]["value"] == 25
    assert plan_features["beta"]["included"] is False
    pro_column = next(p for p in table["plans"] if p["key"] == "pro")
    assert pro_column["price"]["amount"] == 4900
    assert environment["name"] == "development"


def test_client_customers__company_subscription_override_user__read_back_and_decided(
    client: Client, clock: SettableClock
) -> None:
    # Given the catalog, and acme put on pro by the company's `plan=` shortcut
    create_catalog(client)
    company = client.companies.upsert("acme", name="Acme", traits={"tier": "gold"}, plan="pro")

    # When a yearly subscription to pro replaces it, an expiring override is set, and a user
    # joins
    subscription = client.subscriptions.create("acme", "pro", price_interval="year")
    expires = (clock.now + timedelta(days=3)).replace(microsecond=0)
    override = client.overrides.set("acme", "sso", value=False, expires_at=expires)
    user = client.users.upsert("u1", name="Ann", traits={"role": "admin"}, companies=["acme"])

    # Then each reads back as written
    assert (company["name"], company["traits"], company["plan"]) == (
        "Acme",
        {"tier": "gold"},
        "pro",
    )
    assert (subscription["plan"], subscription["status"]) == ("pro", "active")
    assert subscription["price_interval"] == "year"
    statuses = {s["id"]: s["status"] for s in client.subscriptions.list("acme")["data"]}
    assert statuses == {company["subscriptions"][0]["id"]: "ended", subscription["id"]: "active"}
    assert client.subscriptions.get("acme", subscription["id"]) == subscription
    assert (override["feature"], override["value"]) == ("sso", False)
    assert override["expires_at"] == rfc3339(expires)
    assert [o["feature"] for o in client.overrides.list("acme")["data"]] == ["sso"]
    assert client.users.get("u1") == user
    assert (user["traits"], user["companies"]) == ({"role": "admin"}, ["acme"])
    assert client.companies.get("acme")["plan"] == "pro"
    assert [c["key"] for c in client.companies.list(plan="pro")["data"]] == ["acme"]

    # And checks see them: the override until it expires, the rule through acme's trait
    sso = client.check("acme", "sso")
    assert (sso.allowed, sso.reason, sso.override_expires_at) == (False, Reason.OVERRIDE, expires)
    beta = client.check("acme", "beta")
    assert (beta.allowed, beta.reason, beta.rule) == (True, Reason.RULE, "gold")
    clock.advance(days=4)
    assert client.check("acme", "sso").reason == Reason.PLAN
    preview = client.pricing.invoice_preview("acme")
    assert (preview["currency"], preview["total"]) == ("usd", 49000)

    # When the subscription is cancelled and the user deleted
    cancelled = client.subscriptions.cancel("acme", subscription["id"])
    client.users.delete("u1")

    # Then acme is back on the default plan and the user is gone
    assert cancelled["status"] == "ended"
    assert client.check("acme", "api_calls").plan == "free"
    with pytest.raises(NotFoundError):
        client.users.get("u1")


def test_client_timestamps__given_in_another_zone__the_same_instant_read_back_in_utc(
    client: Client, clock: SettableClock
) -> None:
    # Given acme and a feature
    client.features.create("sso", type="boolean", name="SSO")
    client.credits.create_type("ai", name="AI credits")
    client.companies.upsert("acme")

    # When an override and a credit grant get expiries as aware datetimes of Paris time
    expires = (clock.now + timedelta(days=3)).replace(microsecond=0)
    in_paris = expires.astimezone(ZoneInfo("Europe/Paris"))
    override = client.overrides.set("acme", "sso", value=True, expires_at=in_paris)
    grant = client.credits.grant("acme", "ai", 10, expires_at=in_paris)

    # Then the replies, the lists and checks all hold that instant, written in UTC (API.md:
    # "timestamps RFC 3339 in UTC")
    assert override["expires_at"] == rfc3339(expires)
    assert grant["expires_at"] == rfc3339(expires)
    assert client.overrides.list("acme")["data"][0]["expires_at"] == rfc3339(expires)
    assert client.check("acme", "sso").override_expires_at == expires


def test_client_usage__events_and_a_gauge__stored_once_listed_and_counted(
    client: Client, clock: SettableClock
) -> None:
    # Given acme on pro
    create_catalog(client)
    client.companies.upsert("acme", plan="pro")

    # When two events are sent with idempotency keys, then the first again; and the seats
    # gauge is set to 4, then to 7, then the first set is repeated
    first = client.events.send(
        [
            {"event": "api_call", "company": "acme", "idempotency_key": "e1"},
            {"event": "api_call", "company": "acme", "user": "u1", "idempotency_key": "e2"},
        ]
    )
    again = client.events.send([{"event": "api_call", "company": "acme", "idempotency_key": "e1"}])
    gauge = [
        client.events.set_metric("seats", "acme", 4, idempotency_key="m1"),
        client.events.set_metric("seats", "acme", 7, idempotency_key="m2"),
        client.events.set_metric("seats", "acme", 4, idempotency_key="m1"),
    ]

    # Then each is stored once
    assert first == {"accepted": 2, "duplicates": 0}
    assert again == {"accepted": 0, "duplicates": 1}
    assert [(g["accepted"], g["duplicates"]) for g in gauge] == [(1, 0), (1, 0), (0, 1)]
    events = client.events.list(company="acme", event="api_call")["data"]
    assert sorted(e["idempotency_key"] for e in events) == ["e1", "e2"]
    by_key = {e["idempotency_key"]: e for e in events}
    assert client.events.get(by_key["e2"]["id"]) == by_key["e2"]
    assert by_key["e2"]["user"] == "u1"
    assert client.events.list(company="acme", to=clock.now - timedelta(days=1))["data"] == []

    # And usage counts them
    usage = {row["feature"]: row for row in client.usage.get("acme")["data"]}
    assert (usage["api_calls"]["used"], usage["api_calls"]["remaining"]) == (2, 98)
    assert (usage["seats"]["used"], usage["seats"]["limit"]) == (7, 10)
    series = client.usage.series(
        "acme",
        "api_calls",
        from_=clock.now - timedelta(days=1),
        to=clock.now + timedelta(days=1),
        granularity="day",
    )
    assert series["granularity"] == "day"
    assert sum(point["value"] for point in series["data"]) == 2
    assert len(series["data"]) in (2, 3)


def test_client_credits__grant_void_bundle_purchase__balances_and_ledger_follow(
    client: Client, clock: SettableClock
) -> None:
    # Given acme on pro (image_gen at 5 `ai` a use, no plan grants)
    create_catalog(client)
    client.companies.upsert("acme", plan="pro")

    # When 100 credits expiring in 10 days and 30 more are granted, the 30 voided, and a
    # 500-credit bundle bought
    expires = (clock.now + timedelta(days=10)).replace(microsecond=0)
    kept = client.credits.grant("acme", "ai", 100, expires_at=expires, note="welcome")
    voided = client.credits.grant("acme", "ai", 30)
    void = client.credits.void("acme", voided["id"])
    bundle = client.credits.create_bundle(
        "pack", name="Pack", credit="ai", amount=500, price={"currency": "usd", "amount": 900}
    )
    bought = client.credits.purchase("acme", "pack")

    # Then balances, grants and the ledger agree
    assert [t["key"] for t in client.credits.list_types()["data"]] == ["ai"]
    assert (kept["amount"], kept["expires_at"], kept["note"]) == (100, rfc3339(expires), "welcome")
    assert (void["status"], void["remaining"]) == ("voided", 0)
    assert [b["key"] for b in client.credits.list_bundles()["data"]] == [bundle["key"]]
    assert bought["charge"] == {"currency": "usd", "amount": 900}
    assert (bought["grant"]["amount"], bought["grant"]["source"]) == (500, "purchase")
    statuses = {g["id"]: g["status"] for g in client.credits.grants("acme")["data"]}
    assert statuses == {
        kept["id"]: "active",
        voided["id"]: "voided",
        bought["grant"]["id"]: "active",
    }
    balances = client.credits.balances("acme")["data"]
    assert [(b["credit"], b["balance"]) for b in balances] == [("ai", 600)]
    ledger = client.credits.ledger("acme")["data"]
    assert [(row["kind"], row["amount"]) for row in ledger] == [
        ("grant", 100),
        ("grant", 30),
        ("void", -30),
        ("grant", 500),
    ]

    # And a credit-priced check burns from them
    decision = client.check("acme", "image_gen", consume=True)
    assert decision.credits is not None
    assert (decision.allowed, decision.credits.cost) == (True, 5)
    assert client.credits.balances("acme")["data"][0]["balance"] == 595


# Checks


def test_client_check__remote__same_reply_as_post_check(client: Client, api: httpx.Client) -> None:
    # Given acme on pro with an expiring override, a gold trait, usage, credits and a user
    create_catalog(client)
    client.companies.upsert("acme", traits={"tier": "gold"}, plan="pro")
    client.overrides.set("acme", "projects", value=3, expires_at="2999-01-01T00:00:00Z")
    client.events.send([{"event": "api_call", "company": "acme", "idempotency_key": "e1"}])
    client.events.set_metric("seats", "acme", 4)
    client.credits.grant("acme", "ai", 12)
    client.users.upsert("u1", traits={"role": "admin"}, companies=["acme"])

    # When each feature is checked through the SDK and through the raw API, for acme, an
    # unknown company, with a user, a quantity and context traits
    cases: list[dict[str, Any]] = [
        {"company": "acme"},
        {"company": "ghost"},
        {"company": "acme", "user": "u1", "quantity": 95},
        {"company": "acme", "context": {"tier": "silver"}},
    ]
    for case in cases:
        for feature in FEATURES:
            sdk = client.check(feature=feature, **case)
            body = case | {"feature": feature}
            if "context" in case:
                body["context"] = {"traits": case["context"]}

            # Then the answers are the same, field for field
            assert decision_to_json(sdk) == raw_check(api, **body), (case, feature)

    # And check_bulk answers as POST /v1/check/bulk, for all features or some
    assert [decision_to_json(d) for d in client.check_bulk("acme")] == raw_bulk(api, company="acme")
    some = client.check_bulk("acme", ["beta", "sso"], user="u1", context={"tier": "silver"})
    raw = raw_bulk(
        api,
        company="acme",
        user="u1",
        features=["beta", "sso"],
        context={"traits": {"tier": "silver"}},
    )
    assert [decision_to_json(d) for d in some] == raw
    assert [(d.feature, d.allowed) for d in some] == [("beta", False), ("sso", True)]


def test_client_check__consume__recorded_and_once_per_idempotency_key(
    client: Client, api: httpx.Client
) -> None:
    # Given acme on pro (1000 tokens a month, metered by sum)
    create_catalog(client)
    client.companies.upsert("acme", plan="pro")

    # When 200 tokens are consumed, then 300 with an idempotency key, retried with that key
    plain = client.check("acme", "tokens", quantity=200, consume=True)
    keyed = client.check("acme", "tokens", quantity=300, consume=True, idempotency_key="c1")
    retried = client.check("acme", "tokens", quantity=300, consume=True, idempotency_key="c1")

    # Then both were allowed, and the keyed one counted once, with one answer
    assert (plain.allowed, keyed.allowed) == (True, True)
    assert decision_to_json(retried) == decision_to_json(keyed)
    after = client.check("acme", "tokens")
    assert after.usage is not None
    assert (after.usage.used, after.usage.remaining) == (500, 500)
    assert raw_check(api, company="acme", feature="tokens")["usage"]["used"] == 500
    assert used(client, "acme", "tokens") == 500

    # And a consume past the hard limit is refused and records nothing
    refused = client.check("acme", "tokens", quantity=600, consume=True)
    assert (refused.allowed, refused.reason) == (False, Reason.LIMIT_EXCEEDED)
    assert used(client, "acme", "tokens") == 500


# Errors and fallbacks


def test_client_errors__bad_calls__raise_their_class_with_the_envelope(client: Client) -> None:
    # Given the catalog
    create_catalog(client)

    # When an unknown feature is read, a bad key created, and an existing key created again
    with pytest.raises(NotFoundError) as not_found:
        client.features.get("ghost")
    with pytest.raises(InvalidRequestError) as invalid:
        client.features.create("Bad Key!", type="boolean", name="Bad")
    with pytest.raises(ConflictError) as conflict:
        client.features.create("sso", type="boolean", name="SSO again")

    # Then each error carries the status, code, message and details of the reply
    assert (not_found.value.status, not_found.value.code) == (404, "feature_not_found")
    assert "ghost" in not_found.value.message
    assert (invalid.value.status, invalid.value.code) == (400, "validation_failed")
    assert [d["param"] for d in invalid.value.details] == ["key"]
    assert invalid.value.param == "key"
    assert (conflict.value.status, conflict.value.code) == (409, "feature_exists")
    assert client.features.get("sso")["name"] == "SSO"


def test_client_errors__bogus_and_publishable_keys__authentication_and_permission_errors(
    server_url: str, make_key: KeyFactory
) -> None:
    # Given a client with an unknown key and one with a publishable key
    publishable_key = make_key(kind=KeyKind.PUBLISHABLE)
    with (
        Client(api_key="tk_sec_bogus", base_url=server_url, timeout=PATIENT_TIMEOUT) as bogus,
        Client(
            api_key=publishable_key, base_url=server_url, timeout=PATIENT_TIMEOUT
        ) as publishable,
    ):
        # When each calls a secret route
        with pytest.raises(AuthenticationError) as unauthenticated:
            bogus.environment.get()
        with pytest.raises(PermissionDeniedError) as denied:
            publishable.features.list()

        # Then 401 and 403, while the publishable key may still read the pricing table
        assert (unauthenticated.value.status, unauthenticated.value.code) == (
            401,
            "invalid_api_key",
        )
        assert denied.value.status == 403
        assert publishable.pricing.table()["plans"] == []


def test_client_check__failures__the_fallback_with_the_error_code_never_raised(
    server_url: str, make_key: KeyFactory, client: Client
) -> None:
    # Given the catalog, a client with an unknown key, and one with fallbacks configured
    create_catalog(client)
    with (
        Client(api_key="tk_sec_bogus", base_url=server_url, timeout=PATIENT_TIMEOUT) as bogus,
        Client(
            api_key=make_key(),
            base_url=server_url,
            timeout=PATIENT_TIMEOUT,
            fallback_allowed=True,
            fallback_values={"f": 5, "off": 0},
        ) as lenient,
    ):
        # When unknown features are checked, and any feature with the unknown key
        unknown = client.check("acme", "ghost")
        bulk = client.check_bulk("acme", ["sso", "ghost"])
        unauthenticated = bogus.check("acme", "sso")
        valued = lenient.check("acme", "f")
        zero = lenient.check("acme", "off")
        plain = lenient.check("acme", "g")

    # Then each answers the fallback, naming the server's error code
    assert (unknown.allowed, unknown.value, unknown.reason) == (False, None, Reason.ERROR)
    assert unknown.error_code == "feature_not_found"
    assert [(d.feature, d.reason, d.error_code) for d in bulk] == [
        ("sso", Reason.ERROR, "feature_not_found"),
        ("ghost", Reason.ERROR, "feature_not_found"),
    ]
    assert (unauthenticated.allowed, unauthenticated.reason) == (False, Reason.ERROR)
    assert unauthenticated.error_code == "invalid_api_key"
    assert (valued.allowed, valued.value, valued.error_code) == (True, 5, "feature_not_found")
    assert (zero.allowed, zero.value) == (False, 0)
    assert (plain.allowed, plain.value, plain.reason) == (True, None, Reason.ERROR)


def test_client_check__server_unreachable__unavailable_fallback_at_once() -> None:
    # Given clients of a port where nothing listens, one without retries, one with quick ones
    url = f"http://127.0.0.1:{free_port()}"
    fallbacks = {"fallback_allowed": True, "fallback_values": {"projects": 3}}
    with (
        Client(api_key="tk_sec_x", base_url=url, max_retries=0) as once,
        Client(
            api_key="tk_sec_x", base_url=url, max_retries=2, backoff=0.001, **fallbacks
        ) as twice,
    ):
        # When they check
        decisions = [
            once.check("acme", "sso"),
            twice.check("acme", "sso"),
            twice.check("acme", "projects", consume=True),
        ]
        bulk = twice.check_bulk("acme", ["sso"])

    # Then `unavailable`, with each client's fallback
    assert [(d.reason, d.error_code) for d in [*decisions, *bulk]] == [
        (Reason.ERROR, "unavailable")
    ] * 4
    assert [(d.allowed, d.value) for d in decisions] == [(False, None), (True, None), (True, 3)]


# AsyncClient and closing


def test_async_client__remote__resources_checks_and_fallbacks_awaited(
    server_url: str, make_key: KeyFactory, api: httpx.Client
) -> None:
    key = make_key()

    async def scenario() -> tuple[list[Any], list[Decision], WorkerStats]:
        async with AsyncClient(api_key=key, base_url=server_url, timeout=PATIENT_TIMEOUT) as client:
            # Given a feature, a plan and a company made through the async client
            created = await client.features.create("sso", type="boolean", name="SSO")
            await client.plans.create(
                "pro", name="Pro", entitlements=[{"feature": "sso", "value": True}]
            )
            company = await client.companies.upsert("acme", plan="pro")
            read = await client.features.get("sso")
            try:
                await client.features.get("ghost")
                missing: Any = None
            except NotFoundError as error:
                missing = error

            # When checks are awaited, including an unknown feature
            decisions = [await client.check("acme", "sso"), await client.check("acme", "ghost")]
            decisions += await client.check_bulk("acme")
        return [created, read, company, missing], decisions, await client.close()

    async def unreachable() -> Decision:
        url = f"http://127.0.0.1:{free_port()}"
        async with AsyncClient(api_key=key, base_url=url, max_retries=0) as client:
            return await client.check("acme", "sso")

    (created, read, company, missing), decisions, stats = asyncio.run(scenario())
    down = asyncio.run(unreachable())

    # Then the resources round trip, checks answer as the server, failures as fallbacks
    assert read == created
    assert company["plan"] == "pro"
    assert isinstance(missing, NotFoundError)
    assert missing.code == "feature_not_found"
    sso, ghost, bulk_sso = decisions
    assert decision_to_json(sso) == raw_check(api, company="acme", feature="sso")
    assert (sso.allowed, sso.reason, sso.plan) == (True, Reason.PLAN, "pro")
    assert (ghost.reason, ghost.error_code) == (Reason.ERROR, "feature_not_found")
    assert [decision_to_json(bulk_sso)] == raw_bulk(api, company="acme")
    assert (down.reason, down.error_code, down.allowed) == (Reason.ERROR, "unavailable", False)
    assert stats == WorkerStats(queued=0, delivered=0, dropped=0, rejected=0, retries=0, pending=0)


def test_client_context_manager__exit__closes_connections_and_reports_stats(
    server_url: str, make_key: KeyFactory
) -> None:
    # Given a client used in a `with` block that tracked one event
    with Client(api_key=make_key(), base_url=server_url, timeout=PATIENT_TIMEOUT) as client:
        assert client.environment.get()["name"] == "development"
        client.track("api_call", company="acme")

    # When the block has exited
    # Then its event was sent on the way out, and its connection is closed
    assert client.close() == WorkerStats(
        queued=1, delivered=1, dropped=0, rejected=0, retries=0, pending=0
    )
    with pytest.raises(RuntimeError, match="closed"):
        client.request(Call("GET", "/v1/environment"))

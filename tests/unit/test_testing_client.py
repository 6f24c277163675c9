"""`tierkit.testing.InMemoryClient`, Tierkit without a server for users' own tests: catalog,
companies, overrides, usage and credits defined in code, answered by the engine as a
`Client` would answer them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import SettableClock
from tierkit import Reason
from tierkit.engine.codec import (
    catalog_from_json,
    company_from_json,
    decision_to_json,
    format_time,
    user_from_json,
)
from tierkit.engine.evaluate import after_consuming, evaluate
from tierkit.testing import InMemoryClient

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

SUPPORT_OPTIONS = [{"key": "email", "name": "Email"}, {"key": "chat", "name": "Chat"}]
FEATURES: list[dict[str, Any]] = [
    {"key": "sso", "type": "boolean"},
    {"key": "beta", "type": "boolean"},
    {"key": "seats", "type": "numeric", "default": 1},
    {"key": "support", "type": "enum", "default": "email", "options": SUPPORT_OPTIONS},
    {"key": "api_calls", "type": "metered", "meter": {"event": "api_call", "aggregation": "sum"}},
    {"key": "image_gen", "type": "boolean"},
]
PLANS: list[dict[str, Any]] = [
    {
        "key": "free",
        "is_default": True,
        "entitlements": [{"feature": "api_calls", "value": 100}],
    },
    {
        "key": "pro",
        "entitlements": [
            {"feature": "seats", "value": 5},
            {"feature": "support", "value": "chat"},
            {"feature": "api_calls", "value": 1000},
            {"feature": "image_gen", "value": True, "credit": "ai", "credit_cost": 5},
        ],
    },
    {
        "key": "extra_seats",
        "type": "add_on",
        "entitlements": [{"feature": "seats", "value": 2}, {"feature": "sso", "value": True}],
    },
]
GOLD = {"type": "trait", "entity": "company", "trait": "tier", "op": "eq", "value": "gold"}
ADMINS = {"type": "trait", "entity": "user", "trait": "role", "op": "eq", "value": "admin"}
RULES: dict[str, list[dict[str, Any]]] = {
    "beta": [
        {"name": "gold", "value": True, "conditions": [[GOLD]]},
        {"name": "admins", "value": True, "conditions": [[ADMINS]]},
    ]
}


@pytest.fixture
def clock() -> SettableClock:
    clock = SettableClock()
    clock.now = START
    return clock


@pytest.fixture
def tk(clock: SettableClock) -> Iterator[InMemoryClient]:
    """Credit type `ai`; the features, plans and rules above; `acme` on `pro`."""
    with InMemoryClient(clock=clock) as client:
        client.add_credit_type("ai", "AI credits")
        for feature in FEATURES:
            client.add_feature(**feature)
        for plan in PLANS:
            client.add_plan(**plan)
        for feature_key, rules in RULES.items():
            client.set_rules(feature_key, rules)
        client.set_company("acme", plan="pro")
        yield client


# The module's example


def test_in_memory_client__docstring_example__counts_the_tracked_call() -> None:
    tk = InMemoryClient()
    tk.add_feature("api_calls", "metered", meter={"event": "api_call", "aggregation": "count"})
    tk.add_plan("pro", [{"feature": "api_calls", "value": 1000}])
    tk.set_company("acme", plan="pro")
    tk.track("api_call", company="acme")

    decision = tk.check("acme", "api_calls")

    assert decision.usage is not None
    assert decision.usage.used == 1
    assert (decision.allowed, decision.value, decision.reason) == (True, 1000, Reason.PLAN)


# Entitlements


def test_in_memory_client__base_plan_and_add_ons__add_up_by_quantity(tk: InMemoryClient) -> None:
    # Given acme on pro (5 seats) with 3 extra_seats add-ons (2 seats and sso each)
    tk.set_company("acme", plan="pro", add_ons={"extra_seats": 3})

    # When its seats and sso are checked
    seats = tk.check("acme", "seats")
    sso = tk.check("acme", "sso")

    # Then the numbers add up by quantity and the add-on's boolean is on
    assert (seats.value, seats.reason, seats.plan) == (5 + 2 * 3, Reason.PLAN, "pro")
    assert (sso.allowed, sso.value, sso.reason) == (True, True, Reason.PLAN)


def test_in_memory_client__nothing_entitles__the_features_default(tk: InMemoryClient) -> None:
    tk.set_company("initech", plan="free")

    seats = tk.check("initech", "seats")
    support = tk.check("initech", "support")
    sso = tk.check("initech", "sso")

    assert (seats.value, seats.reason) == (1, Reason.DEFAULT)
    assert (support.value, support.reason) == ("email", Reason.DEFAULT)
    assert (sso.allowed, sso.value, sso.reason) == (False, False, Reason.DEFAULT)


def test_in_memory_client__rule_on_a_company_trait__matches_traits_and_context(
    tk: InMemoryClient,
) -> None:
    tk.set_company("gold_co", plan="free", traits={"tier": "gold"})
    tk.set_company("silver_co", plan="free", traits={"tier": "silver"})

    gold = tk.check("gold_co", "beta")
    silver = tk.check("silver_co", "beta")
    silver_as_gold = tk.check("silver_co", "beta", context={"tier": "gold"})
    gold_as_bronze = tk.check("gold_co", "beta", context={"tier": "bronze"})

    assert (gold.allowed, gold.reason, gold.rule) == (True, Reason.RULE, "gold")
    assert (silver.allowed, silver.reason, silver.rule) == (False, Reason.DEFAULT, None)
    assert (silver_as_gold.allowed, silver_as_gold.rule) == (True, "gold")
    assert (gold_as_bronze.allowed, gold_as_bronze.reason) == (False, Reason.DEFAULT)
    assert tk.check("silver_co", "beta").allowed is False  # the context was not kept


def test_in_memory_client__rule_on_a_user_trait__reads_the_users_traits(
    tk: InMemoryClient,
) -> None:
    tk.set_user("u1", {"role": "admin"})

    admin = tk.check("acme", "beta", user="u1")
    stranger = tk.check("acme", "beta", user="u2")
    nobody = tk.check("acme", "beta")

    assert (admin.allowed, admin.reason, admin.rule) == (True, Reason.RULE, "admins")
    assert (stranger.allowed, stranger.reason) == (False, Reason.DEFAULT)
    assert (nobody.allowed, nobody.reason) == (False, Reason.DEFAULT)


def test_in_memory_client__override_with_an_expiry__wins_until_it_expires(
    tk: InMemoryClient, clock: SettableClock
) -> None:
    # Given a 50-seat override for acme that expires in a day
    expires_at = START + timedelta(days=1)
    tk.set_override("acme", "seats", 50, expires_at=expires_at)

    # When seats are checked before and after the expiry
    before = tk.check("acme", "seats")
    clock.advance(days=1)
    after = tk.check("acme", "seats")

    # Then the override wins until it expires, and the plan's value is back after
    assert (before.value, before.reason, before.override_expires_at) == (
        50,
        Reason.OVERRIDE,
        expires_at,
    )
    assert (after.value, after.reason, after.plan, after.override_expires_at) == (
        5,
        Reason.PLAN,
        "pro",
        None,
    )


def test_in_memory_client__unlimited_override__is_unlimited(tk: InMemoryClient) -> None:
    tk.set_usage("acme", "api_calls", 5000)
    tk.set_override("acme", "api_calls", unlimited=True)

    decision = tk.check("acme", "api_calls", quantity=100)

    assert (decision.allowed, decision.unlimited, decision.value) == (True, True, None)
    assert decision.usage is not None
    assert (decision.usage.used, decision.usage.limit) == (5000, None)


# Usage


def test_in_memory_client__set_usage__moves_usage_and_a_hard_limit_denies(
    tk: InMemoryClient,
) -> None:
    tk.set_usage("acme", "api_calls", 999)

    last_one = tk.check("acme", "api_calls")
    two_more = tk.check("acme", "api_calls", quantity=2)

    assert last_one.usage is not None
    assert (last_one.allowed, last_one.reason) == (True, Reason.PLAN)
    assert (last_one.usage.used, last_one.usage.remaining) == (999, 1)
    assert (two_more.allowed, two_more.reason) == (False, Reason.LIMIT_EXCEEDED)


def test_in_memory_client__track__counts_its_quantity_at_once(tk: InMemoryClient) -> None:
    tk.track("api_call", company="acme", quantity=600)
    tk.track("api_call", company="acme", quantity=400)

    full = tk.check("acme", "api_calls")

    assert full.usage is not None
    assert (full.usage.used, full.usage.remaining) == (1000, 0)
    assert (full.allowed, full.reason) == (False, Reason.LIMIT_EXCEEDED)


def test_in_memory_client__track_of_another_event__counts_nothing(tk: InMemoryClient) -> None:
    tk.track("page_view", company="acme", quantity=5)

    decision = tk.check("acme", "api_calls")

    assert decision.usage is not None
    assert decision.usage.used == 0


def test_in_memory_client__usage_of_last_period__reads_zero_in_the_next(
    tk: InMemoryClient, clock: SettableClock
) -> None:
    tk.set_usage("acme", "api_calls", 1000)
    assert tk.check("acme", "api_calls").allowed is False

    clock.now = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
    decision = tk.check("acme", "api_calls")

    assert decision.usage is not None
    assert (decision.allowed, decision.usage.used) == (True, 0)
    assert decision.usage.period_start == datetime(2026, 4, 1, tzinfo=UTC)


def test_in_memory_client__change_after_the_period_rolled_over__keeps_last_periods_usage_past(
    tk: InMemoryClient, clock: SettableClock
) -> None:
    # Given acme at its limit in March
    tk.set_usage("acme", "api_calls", 1000)

    # When April has come and something else about acme changes
    clock.now = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
    tk.set_override("acme", "sso", True)

    # Then March's usage is still not April's
    decision = tk.check("acme", "api_calls")
    assert decision.usage is not None
    assert (decision.allowed, decision.usage.used) == (True, 0)


def test_in_memory_client__track_after_the_period_rolled_over__counts_in_the_new_period(
    tk: InMemoryClient, clock: SettableClock
) -> None:
    # Given acme's usage set in March
    tk.set_usage("acme", "api_calls", 10)

    # When April has come and acme tracks 3 calls
    clock.now = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
    tk.track("api_call", company="acme", quantity=3)

    # Then April's usage is those 3 calls
    decision = tk.check("acme", "api_calls")
    assert decision.usage is not None
    assert decision.usage.used == 3


def test_in_memory_client__track_for_a_company_not_yet_defined__counts_on_its_plan(
    tk: InMemoryClient,
) -> None:
    # Given a company defined nowhere (tracking creates it, as the API does)
    # When it tracks 3 calls and is then checked
    tk.track("api_call", company="newco", quantity=3)
    decision = tk.check("newco", "api_calls")

    # Then the calls count on the default plan
    assert decision.usage is not None
    assert (decision.plan, decision.usage.used, decision.usage.remaining) == ("free", 3, 97)


def test_in_memory_client__consume__records_only_what_is_allowed(tk: InMemoryClient) -> None:
    # Given acme one call short of its limit
    tk.set_usage("acme", "api_calls", 999)

    # When it consumes one call, then one more
    first = tk.check("acme", "api_calls", consume=True)
    second = tk.check("acme", "api_calls", consume=True)

    # Then the first is allowed and recorded, the second denied and not recorded
    after = tk.check("acme", "api_calls")
    assert (first.allowed, second.allowed, second.reason) == (True, False, Reason.LIMIT_EXCEEDED)
    assert after.usage is not None
    assert after.usage.used == 1000


def test_in_memory_client__consume__replies_with_the_usage_after_consuming(
    tk: InMemoryClient,
) -> None:
    # Given acme with 10 calls used
    tk.set_usage("acme", "api_calls", 10)
    before = tk.check("acme", "api_calls", quantity=5)

    # When it consumes 5
    consumed = tk.check("acme", "api_calls", quantity=5, consume=True)

    # Then the reply reads as the server's consume reply does: the 5 units counted
    assert consumed.usage is not None
    assert (consumed.usage.used, consumed.usage.remaining) == (15, 985)
    assert decision_to_json(consumed) == decision_to_json(after_consuming(before, 5))


def test_in_memory_client__not_metered__consume_records_nothing(tk: InMemoryClient) -> None:
    decision = tk.check("acme", "seats", consume=True)

    assert (decision.allowed, decision.value, decision.usage) == (True, 5, None)


# Unknown companies and features


def test_in_memory_client__unknown_company__evaluates_on_the_default_plan_as_not_found(
    tk: InMemoryClient,
) -> None:
    decision = tk.check("nobody", "api_calls")

    assert decision.company_found is False
    assert (decision.allowed, decision.value, decision.plan) == (True, 100, "free")
    assert tk.check("acme", "api_calls").company_found is True


def test_in_memory_client__unknown_feature__error_feature_not_found(tk: InMemoryClient) -> None:
    decision = tk.check("acme", "no_such_feature")

    assert (decision.reason, decision.error_code) == (Reason.ERROR, "feature_not_found")
    assert (decision.allowed, decision.value) == (False, None)


# Credits


def test_in_memory_client__credits__insufficient_when_the_balance_is_short(
    tk: InMemoryClient,
) -> None:
    # Given acme with 12 ai credits, and image_gen costing 5 a use
    tk.grant_credits("acme", "ai", 12)

    # When it checks 2 uses, then 3
    two = tk.check("acme", "image_gen", quantity=2)
    three = tk.check("acme", "image_gen", quantity=3)

    # Then 2 uses (10) are covered, 3 (15) are not
    assert two.credits is not None
    assert three.credits is not None
    assert (two.allowed, two.reason) == (True, Reason.PLAN)
    assert (two.credits.credit, two.credits.balance, two.credits.cost) == ("ai", 12, 10)
    assert (three.allowed, three.reason) == (False, Reason.INSUFFICIENT_CREDITS)
    assert (three.credits.balance, three.credits.cost) == (12, 15)


def test_in_memory_client__credits_without_a_grant__insufficient(tk: InMemoryClient) -> None:
    decision = tk.check("acme", "image_gen")

    assert (decision.allowed, decision.reason) == (False, Reason.INSUFFICIENT_CREDITS)


def test_in_memory_client__expired_grant__no_longer_counts(
    tk: InMemoryClient, clock: SettableClock
) -> None:
    tk.grant_credits("acme", "ai", 100, expires_at=START + timedelta(hours=1))
    assert tk.check("acme", "image_gen").allowed is True

    clock.advance(hours=1)
    decision = tk.check("acme", "image_gen")

    assert decision.credits is not None
    assert (decision.allowed, decision.credits.balance) == (False, 0)


def test_in_memory_client__consume_a_credit_priced_feature__burns_its_credits(
    tk: InMemoryClient,
) -> None:
    # Given acme with 12 ai credits, and image_gen costing 5 a use
    tk.grant_credits("acme", "ai", 12)

    # When it consumes two uses, one at a time
    first = tk.check("acme", "image_gen", consume=True)
    second = tk.check("acme", "image_gen", consume=True)

    # Then 10 credits are burnt: 2 are left, not enough for a third use
    third = tk.check("acme", "image_gen")
    assert (first.allowed, second.allowed) == (True, True)
    assert third.credits is not None
    assert (third.allowed, third.reason, third.credits.balance) == (
        False,
        Reason.INSUFFICIENT_CREDITS,
        2,
    )


# Bulk checks and recorded events


def test_in_memory_client__check_bulk__covers_every_feature(tk: InMemoryClient) -> None:
    every = tk.check_bulk("acme")
    some = tk.check_bulk("acme", ["seats", "sso"])

    assert [d.feature for d in every] == sorted(f["key"] for f in FEATURES)
    assert [decision_to_json(d) for d in every] == [
        decision_to_json(tk.check("acme", d.feature)) for d in every
    ]
    assert [(d.feature, d.value) for d in some] == [("seats", 5), ("sso", False)]


def test_in_memory_client__check_bulk__skips_archived_features(tk: InMemoryClient) -> None:
    tk.add_feature("legacy", "boolean", status="archived")

    keys = [d.feature for d in tk.check_bulk("acme")]

    assert "legacy" not in keys
    assert len(keys) == len(FEATURES)


def test_in_memory_client__tracked__records_events_as_they_would_be_sent(
    tk: InMemoryClient,
) -> None:
    at = START - timedelta(minutes=5)

    sent = tk.track(
        "api_call",
        company="acme",
        user="u1",
        quantity=2,
        properties={"path": "/v1"},
        timestamp=at,
        idempotency_key="k1",
    )
    tk.identify(company={"key": "acme", "name": "Acme"}, user="u1")

    assert sent is True
    assert tk.tracked == [
        {
            "type": "track",
            "event": "api_call",
            "company": "acme",
            "user": "u1",
            "quantity": 2,
            "properties": {"path": "/v1"},
            "timestamp": format_time(at),
            "idempotency_key": "k1",
        },
        {"type": "identify", "company": {"key": "acme", "name": "Acme"}, "user": "u1"},
    ]
    assert tk.flush() is True


# The engine's own answers


def test_in_memory_client__decisions__are_the_engines_over_the_same_data(
    tk: InMemoryClient,
) -> None:
    # Given acme with add-ons, traits, an override, usage and credits, defined in the client
    tk.set_company("acme", plan="pro", add_ons={"extra_seats": 2}, traits={"tier": "gold"})
    tk.set_override("acme", "support", "email", expires_at=START + timedelta(days=3))
    tk.set_usage("acme", "api_calls", 420)
    tk.grant_credits("acme", "ai", 7)
    tk.set_user("u1", {"role": "admin"})

    # And the same data handed to the engine directly
    catalog = catalog_from_json(
        {"features": FEATURES, "plans": PLANS, "rules": RULES, "credits": [{"key": "ai"}]}
    )
    company = company_from_json(
        {
            "key": "acme",
            "traits": {"tier": "gold"},
            "subscriptions": [
                {"plan": "pro", "quantity": 1, "started_at": format_time(START)},
                {"plan": "extra_seats", "quantity": 2, "started_at": format_time(START)},
            ],
            "overrides": [
                {
                    "feature": "support",
                    "value": "email",
                    "expires_at": format_time(START + timedelta(days=3)),
                }
            ],
            "usage": {"api_calls": 420},
            "grants": [
                {
                    "id": "g1",
                    "credit": "ai",
                    "remaining": 7,
                    "created_at": format_time(START),
                    "expires_at": None,
                }
            ],
        },
        catalog,
    )
    user = user_from_json({"key": "u1", "traits": {"role": "admin"}})

    # When both decide the same checks
    checks: list[dict[str, Any]] = [
        {"feature": "seats"},
        {"feature": "sso"},
        {"feature": "beta"},
        {"feature": "beta", "context": {"tier": "silver"}},
        {"feature": "beta", "context": {"tier": "silver"}, "user": "u1"},
        {"feature": "support"},
        {"feature": "api_calls"},
        {"feature": "api_calls", "quantity": 581},
        {"feature": "image_gen"},
        {"feature": "image_gen", "quantity": 2},
    ]
    for check in checks:
        ours = tk.check(
            "acme",
            check["feature"],
            user=check.get("user"),
            quantity=check.get("quantity", 1),
            context=check.get("context"),
        )
        engines = evaluate(
            catalog,
            company,
            check["feature"],
            now=START,
            quantity=check.get("quantity", 1),
            user=user if check.get("user") else None,
            context=check.get("context"),
        )

        # Then they agree
        assert decision_to_json(ours) == decision_to_json(engines), check


def test_in_memory_client__timezone_trait__cuts_calendar_periods_in_that_zone(
    tk: InMemoryClient,
) -> None:
    # Given a daily limit, and acme in Auckland (UTC+13 in March)
    tk.add_plan("daily", [{"feature": "api_calls", "value": 10, "period": "day"}])
    tk.set_company("acme", plan="daily", traits={"timezone": "Pacific/Auckland"})

    # When acme checks at noon UTC (1 am the next day in Auckland)
    decision = tk.check("acme", "api_calls")

    # Then its day started at midnight in Auckland, as the server counts it
    auckland = ZoneInfo("Pacific/Auckland")
    assert decision.usage is not None
    assert decision.usage.period_start == datetime(2026, 3, 11, 0, 0, tzinfo=auckland)
    assert decision.usage.resets_at == datetime(2026, 3, 12, 0, 0, tzinfo=auckland)

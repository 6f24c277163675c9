"""Credits that plans and bundles issue, used as documented: `/v1/credit-bundles` (create, list,
purchase, errors), and plans' `credit_grants` (a grant per period from the first check or read,
anchored at the subscription's start or, for a default plan, at the company's creation; what is
left at a period's end rolls over up to `rollover_max`, once, and the rest expires), with the
ledger summing to the balance after every step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import SettableClock
from tests.support.api import create_feature, create_plan, error_of

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
PACK = {
    "key": "pack",
    "name": "Pack of 500",
    "credit": "ai",
    "amount": 500,
    "price": {"currency": "usd", "amount": 900},
    "expires_in_days": 30,
}


# Helpers


def create_credit(api: httpx.Client, key: str = "ai") -> None:
    response = api.post("/v1/credits", json={"key": key, "name": "AI credits"})
    assert response.status_code == 201, response.text


def create_company(api: httpx.Client, key: str = "acme") -> None:
    response = api.put(f"/v1/companies/{key}", json={})
    assert response.status_code == 201, response.text


def subscribe(api: httpx.Client, plan: str, company: str = "acme", **fields: Any) -> None:
    response = api.post(f"/v1/companies/{company}/subscriptions", json={"plan": plan, **fields})
    assert response.status_code == 201, response.text


def create_bundle(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/v1/credit-bundles", json=PACK | fields)
    assert response.status_code == 201, response.text
    bundle: dict[str, Any] = response.json()
    return bundle


def purchase(api: httpx.Client, bundle: str = "pack", company: str = "acme") -> dict[str, Any]:
    response = api.post(f"/v1/companies/{company}/credit-bundles/{bundle}/purchase")
    assert response.status_code == 201, response.text
    bought: dict[str, Any] = response.json()
    return bought


def balances(api: httpx.Client, company: str = "acme") -> list[dict[str, Any]]:
    response = api.get(f"/v1/companies/{company}/credits")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def ledger(api: httpx.Client, company: str = "acme") -> list[dict[str, Any]]:
    response = api.get(f"/v1/companies/{company}/credits/ledger", params={"limit": 500})
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def grants(api: httpx.Client, company: str = "acme") -> list[dict[str, Any]]:
    response = api.get(f"/v1/companies/{company}/credit-grants")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def entries(rows: list[dict[str, Any]]) -> list[tuple[str, float, str]]:
    """Each ledger row as (kind, amount, at)."""
    return [(row["kind"], row["amount"], row["at"]) for row in rows]


def ai_balance(api: httpx.Client) -> float:
    """acme's balance of `ai`, checked against the sum of its ledger."""
    (only,) = balances(api)
    assert only["credit"] == "ai"
    assert sum(row["amount"] for row in ledger(api)) == only["balance"]
    balance: float = only["balance"]
    return balance


def use_credits(api: httpx.Client, credits: int) -> dict[str, Any]:
    """Consume `image_gen` (10 credits each) for `credits` credits."""
    response = api.post(
        "/v1/check",
        json={
            "company": "acme",
            "feature": "image_gen",
            "consume": True,
            "quantity": credits // 10,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["allowed"] is True, response.text
    decision: dict[str, Any] = response.json()
    return decision


def create_granting_plan(
    api: httpx.Client, key: str = "pro", rollover_max: float | None = 30
) -> None:
    """Credit `ai`, feature `image_gen` (10 `ai` a use) and a plan granting 100 `ai` a month
    that roll over up to `rollover_max`."""
    create_credit(api)
    create_feature(api, "image_gen")
    create_plan(
        api,
        key,
        [{"feature": "image_gen", "value": True, "credit": "ai", "credit_cost": 10}],
        credit_grants=[
            {"credit": "ai", "amount": 100, "period": "month", "rollover_max": rollover_max}
        ],
    )


def acme_on_plan_since_jan_5(api: httpx.Client, clock: SettableClock, plan: str = "pro") -> None:
    """acme, created on Jan 10, subscribed to `plan` from Jan 5: its periods start on the 5th."""
    clock.now = NOW
    create_company(api)
    subscribe(api, plan, started_at="2026-01-05T00:00:00Z")


# Bundles


def test_bundle_create__valid__201_and_listed_by_key(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a credit type
    clock.now = NOW
    create_credit(api)

    # When two bundles are created, one without an expiry
    pack = create_bundle(api)
    big = create_bundle(
        api,
        key="big",
        name="Pack of 5,000",
        amount=5000,
        price={"currency": "eur", "amount": 7500},
        expires_in_days=None,
    )

    # Then each reply is the bundle as given
    assert pack["id"].startswith("bnd_")
    assert {key: value for key, value in pack.items() if key != "id"} == {
        "key": "pack",
        "name": "Pack of 500",
        "credit": "ai",
        "amount": 500,
        "price": {"currency": "usd", "amount": 900},
        "expires_in_days": 30,
        "created_at": "2026-01-10T12:00:00Z",
    }
    assert (big["price"], big["expires_in_days"]) == ({"currency": "eur", "amount": 7500}, None)
    # and the list holds both, by key
    response = api.get("/v1/credit-bundles")
    assert response.status_code == 200, response.text
    assert response.json() == {"data": [big, pack], "next_cursor": None}


def test_bundle_create__key_taken__409(api: httpx.Client) -> None:
    # Given a bundle `pack`
    create_credit(api)
    first = create_bundle(api)

    # When another bundle `pack` is created
    response = api.post("/v1/credit-bundles", json=PACK | {"amount": 1})

    # Then it is a conflict and the first is unchanged
    assert response.status_code == 409, response.text
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == ("conflict", "bundle_exists", "key")
    assert api.get("/v1/credit-bundles").json()["data"] == [first]


def test_bundle_create__unknown_credit__400(api: httpx.Client) -> None:
    # Given no credit type `gems`
    create_credit(api)

    # When a bundle of `gems` is created
    response = api.post("/v1/credit-bundles", json=PACK | {"credit": "gems"})

    # Then it is a 400 on `credit` and no bundle exists
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request",
        "credit_not_found",
        "credit",
    )
    assert api.get("/v1/credit-bundles").json()["data"] == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"amount": 0}, "amount"),
        ({"price": {"currency": "USD", "amount": 900}}, "price.currency"),
        ({"price": {"currency": "usd", "amount": -1}}, "price.amount"),
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"key": "Big Pack"}, "key"),
    ],
)
def test_bundle_create__bad_field__400_on_that_field(
    api: httpx.Client, fields: dict[str, Any], param: str
) -> None:
    # Given a credit type
    create_credit(api)

    # When a bundle with one bad field is created
    response = api.post("/v1/credit-bundles", json=PACK | fields)

    # Then it is a 400 naming that field, and nothing is created
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request"
    assert [d["param"] for d in error["details"]] == [param]
    assert api.get("/v1/credit-bundles").json()["data"] == []


def test_bundle_purchase__known_bundle__purchase_grant_expiring_after_its_days(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given the 500-credit pack at 9.00 that expires 30 days after purchase, and acme
    clock.now = NOW
    create_credit(api)
    bundle = create_bundle(api)
    create_company(api)

    # When acme buys it
    bought = purchase(api)

    # Then the reply names the bundle, what to charge and the grant made
    assert bought["bundle"] == bundle
    assert bought["charge"] == {"currency": "usd", "amount": 900}
    grant = bought["grant"]
    assert grant["id"].startswith("grt_")
    assert {key: value for key, value in grant.items() if key != "id"} == {
        "company": "acme",
        "credit": "ai",
        "amount": 500,
        "remaining": 500,
        "priority": 0,
        "source": "purchase",
        "note": "Bundle pack",
        "expires_at": "2026-02-09T12:00:00Z",
        "voided_at": None,
        "created_at": "2026-01-10T12:00:00Z",
        "status": "active",
    }
    # and acme has the credits, with a grant row in its ledger
    assert balances(api) == [
        {"credit": "ai", "balance": 500, "next_expiry": "2026-02-09T12:00:00Z"}
    ]
    assert entries(ledger(api)) == [("grant", 500, "2026-01-10T12:00:00Z")]
    assert grants(api) == [grant]


def test_bundle_purchase__bought_twice_then_expired__balance_and_ledger_follow(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme that bought the 30-day pack on Jan 10 and again on Jan 20
    clock.now = NOW
    create_credit(api)
    create_bundle(api)
    create_company(api)
    purchase(api)
    clock.now = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
    purchase(api)
    assert ai_balance(api) == 1000

    # When the first purchase's 30 days are over
    clock.now = datetime(2026, 2, 9, 12, 0, tzinfo=UTC)

    # Then only the second counts, and the ledger says the first expired
    assert ai_balance(api) == 500
    assert entries(ledger(api)) == [
        ("grant", 500, "2026-01-10T12:00:00Z"),
        ("grant", 500, "2026-01-20T12:00:00Z"),
        ("expiry", -500, "2026-02-09T12:00:00Z"),
    ]
    assert [g["status"] for g in grants(api)] == ["expired", "active"]


def test_bundle_purchase__bundle_without_expiry__grant_never_expires(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a bundle without `expires_in_days`, and acme
    clock.now = NOW
    create_credit(api)
    create_bundle(api, key="forever", expires_in_days=None)
    create_company(api)

    # When acme buys it
    bought = purchase(api, "forever")

    # Then its grant has no expiry and still counts years later
    assert (bought["grant"]["expires_at"], bought["grant"]["note"]) == (None, "Bundle forever")
    clock.now = datetime(2030, 1, 1, tzinfo=UTC)
    assert balances(api) == [{"credit": "ai", "balance": 500, "next_expiry": None}]


def test_bundle_purchase__unknown_bundle__404(api: httpx.Client) -> None:
    # Given acme and no bundle `mega`
    create_credit(api)
    create_company(api)

    # When acme buys `mega`
    response = api.post("/v1/companies/acme/credit-bundles/mega/purchase")

    # Then it is a 404 and acme has no credits
    assert response.status_code == 404, response.text
    error = error_of(response)
    assert (error["type"], error["code"]) == ("not_found", "bundle_not_found")
    assert balances(api) == []


def test_bundle_purchase__unknown_company__404(api: httpx.Client) -> None:
    # Given the pack and no company `ghost`
    create_credit(api)
    create_bundle(api)

    # When `ghost` buys it
    response = api.post("/v1/companies/ghost/credit-bundles/pack/purchase")

    # Then it is a 404 on the company
    assert response.status_code == 404, response.text
    error = error_of(response)
    assert (error["type"], error["code"]) == ("not_found", "company_not_found")


def test_bundle__other_environment__not_found(api: httpx.Client, production: httpx.Client) -> None:
    # Given the pack in development, and acme in production
    create_credit(api)
    create_bundle(api)
    create_company(production)

    # When production lists bundles and acme buys the pack there
    listed = production.get("/v1/credit-bundles")
    bought = production.post("/v1/companies/acme/credit-bundles/pack/purchase")

    # Then production has no such bundle
    assert listed.json() == {"data": [], "next_cursor": None}
    assert bought.status_code == 404, bought.text
    assert error_of(bought)["code"] == "bundle_not_found"


# Plan credit grants


def test_plan_credit_grants__plan_reply__lists_them(api: httpx.Client) -> None:
    # Given a credit type
    create_credit(api)

    # When a plan grants 100 a month rolling over up to 30, and 5 a day without rollover
    created = create_plan(
        api,
        "pro",
        credit_grants=[
            {"credit": "ai", "amount": 100, "period": "month", "rollover_max": 30},
            {"credit": "ai", "amount": 5, "period": "day"},
        ],
    )

    # Then the plan says so
    expected = [
        {"credit": "ai", "amount": 100, "period": "month", "rollover_max": 30},
        {"credit": "ai", "amount": 5, "period": "day", "rollover_max": None},
    ]
    assert created["credit_grants"] == expected
    assert api.get("/v1/plans/pro").json()["credit_grants"] == expected


def test_plan_credit_grant__first_check__issues_the_period_grant(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on pro (100 a month) since Jan 5
    create_granting_plan(api)
    acme_on_plan_since_jan_5(api, clock)

    # When acme is first checked on Jan 10
    response = api.post("/v1/check", json={"company": "acme", "feature": "image_gen"})

    # Then it has this period's 100 credits
    assert response.status_code == 200, response.text
    assert response.json()["allowed"] is True
    assert response.json()["credits"] == {"credit": "ai", "balance": 100, "cost": 10}
    # as one plan grant expiring at the end of the cycle anchored at Jan 5
    (grant,) = grants(api)
    assert {key: value for key, value in grant.items() if key != "id"} == {
        "company": "acme",
        "credit": "ai",
        "amount": 100,
        "remaining": 100,
        "priority": 0,
        "source": "plan",
        "note": "Plan pro",
        "expires_at": "2026-02-05T00:00:00Z",
        "voided_at": None,
        "created_at": "2026-01-10T12:00:00Z",
        "status": "active",
    }
    assert entries(ledger(api)) == [("grant", 100, "2026-01-10T12:00:00Z")]
    # and checking or reading again in the same period issues nothing more
    again = api.post("/v1/check", json={"company": "acme", "feature": "image_gen"})
    assert again.json()["credits"]["balance"] == 100
    assert ai_balance(api) == 100
    assert len(grants(api)) == 1


def test_plan_credit_grant__credits_read_first__issues_the_period_grant(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on pro since Jan 5, never checked
    create_granting_plan(api)
    acme_on_plan_since_jan_5(api, clock)

    # When its balances are read
    read = balances(api)

    # Then this period's grant is there
    assert read == [{"credit": "ai", "balance": 100, "next_expiry": "2026-02-05T00:00:00Z"}]
    assert entries(ledger(api)) == [("grant", 100, "2026-01-10T12:00:00Z")]


def test_plan_credit_grant__each_new_period__a_new_grant_and_the_rest_expires(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on basic (100 a month, no rollover) since Jan 5, having used 30 in January
    create_granting_plan(api, "basic", rollover_max=None)
    acme_on_plan_since_jan_5(api, clock, "basic")
    assert use_credits(api, 30)["credits"] == {"credit": "ai", "balance": 70, "cost": 30}
    assert ai_balance(api) == 70

    # When February's period starts
    clock.now = datetime(2026, 2, 5, tzinfo=UTC)

    # Then acme has February's 100; January's 70 expired at the period's end
    assert ai_balance(api) == 100
    assert entries(ledger(api)) == [
        ("grant", 100, "2026-01-10T12:00:00Z"),
        ("debit", -30, "2026-01-10T12:00:00Z"),
        ("expiry", -70, "2026-02-05T00:00:00Z"),
        ("grant", 100, "2026-02-05T00:00:00Z"),
    ]

    # When March's period is read on Mar 20, nothing having been used in February
    clock.now = datetime(2026, 3, 20, tzinfo=UTC)

    # Then acme has March's 100 and February's grant expired whole
    assert ai_balance(api) == 100
    assert entries(ledger(api))[4:] == [
        ("expiry", -100, "2026-03-05T00:00:00Z"),
        ("grant", 100, "2026-03-20T00:00:00Z"),
    ]
    assert [(g["status"], g["expires_at"]) for g in grants(api)] == [
        ("expired", "2026-02-05T00:00:00Z"),
        ("expired", "2026-03-05T00:00:00Z"),
        ("active", "2026-04-05T00:00:00Z"),
    ]


def test_plan_credit_grant__check_in_a_new_period__sees_the_new_grant(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on basic (100 a month, no rollover) since Jan 5, checked in January
    create_granting_plan(api, "basic", rollover_max=None)
    acme_on_plan_since_jan_5(api, clock, "basic")
    first = api.post("/v1/check", json={"company": "acme", "feature": "image_gen"})
    assert first.json()["credits"]["balance"] == 100

    # When acme is checked again once February's period has started
    clock.now = datetime(2026, 2, 6, tzinfo=UTC)
    response = api.post("/v1/check", json={"company": "acme", "feature": "image_gen"})

    # Then the check has February's grant
    assert response.json()["allowed"] is True, response.text
    assert response.json()["credits"] == {"credit": "ai", "balance": 100, "cost": 10}
    assert ai_balance(api) == 100


def test_plan_credit_grant__half_used__rollover_capped_at_rollover_max(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on pro (100 a month, up to 30 rolling over) since Jan 5, having used 50
    create_granting_plan(api)
    acme_on_plan_since_jan_5(api, clock)
    use_credits(api, 50)
    assert ai_balance(api) == 50

    # When February's period has started
    clock.now = datetime(2026, 2, 6, tzinfo=UTC)

    # Then acme has February's 100 plus 30 of January's 50; the other 20 expired
    assert ai_balance(api) == 130
    assert entries(ledger(api)) == [
        ("grant", 100, "2026-01-10T12:00:00Z"),
        ("debit", -50, "2026-01-10T12:00:00Z"),
        ("rollover", 30, "2026-02-05T00:00:00Z"),
        ("expiry", -50, "2026-02-05T00:00:00Z"),
        ("grant", 100, "2026-02-06T00:00:00Z"),
    ]
    # and the rolled-over credits are a plan grant of their own, ending with February's period
    january, rolled, february = grants(api)
    assert (january["status"], january["remaining"]) == ("expired", 0)
    assert {key: rolled[key] for key in ("amount", "remaining", "source", "note")} == {
        "amount": 30,
        "remaining": 30,
        "source": "plan",
        "note": f"Rolled over from {january['id']}",
    }
    assert (rolled["expires_at"], rolled["created_at"]) == (
        "2026-03-05T00:00:00Z",
        "2026-02-05T00:00:00Z",
    )
    assert (february["amount"], february["expires_at"]) == (100, "2026-03-05T00:00:00Z")


def test_plan_credit_grant__mostly_used__all_that_is_left_rolls_over(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on pro (up to 30 rolling over) since Jan 5, having used 90 of its 100
    create_granting_plan(api)
    acme_on_plan_since_jan_5(api, clock)
    use_credits(api, 90)
    assert ai_balance(api) == 10

    # When February's period has started
    clock.now = datetime(2026, 2, 6, tzinfo=UTC)

    # Then the 10 left roll over: 110
    assert ai_balance(api) == 110
    assert entries(ledger(api))[2:] == [
        ("rollover", 10, "2026-02-05T00:00:00Z"),
        ("expiry", -10, "2026-02-05T00:00:00Z"),
        ("grant", 100, "2026-02-06T00:00:00Z"),
    ]


def test_plan_credit_grant__all_used__nothing_rolls_over(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on pro (up to 30 rolling over) since Jan 5, having used all 100
    create_granting_plan(api)
    acme_on_plan_since_jan_5(api, clock)
    use_credits(api, 100)
    assert ai_balance(api) == 0

    # When February's period has started
    clock.now = datetime(2026, 2, 6, tzinfo=UTC)

    # Then there is February's grant alone, and nothing to roll over or expire
    assert ai_balance(api) == 100
    assert [row["kind"] for row in ledger(api)] == ["grant", "debit", "grant"]


def test_plan_credit_grant__rolled_over_credits__do_not_roll_again(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on pro (up to 30 rolling over) since Jan 5, that used 50 in January and so
    # holds February's 100 plus 30 rolled over, and uses nothing in February
    create_granting_plan(api)
    acme_on_plan_since_jan_5(api, clock)
    use_credits(api, 50)
    clock.now = datetime(2026, 2, 6, tzinfo=UTC)
    assert ai_balance(api) == 130

    # When March's period has started
    clock.now = datetime(2026, 3, 6, tzinfo=UTC)

    # Then 30 of February's 100 roll over, and the 30 rolled over from January expire
    assert ai_balance(api) == 130
    assert sorted(entries(ledger(api))[5:]) == [
        ("expiry", -100, "2026-03-05T00:00:00Z"),
        ("expiry", -30, "2026-03-05T00:00:00Z"),
        ("grant", 100, "2026-03-06T00:00:00Z"),
        ("rollover", 30, "2026-03-05T00:00:00Z"),
    ]
    assert [(g["note"][:17], g["status"], g["remaining"]) for g in grants(api)] == [
        ("Plan pro", "expired", 0),
        ("Rolled over from ", "expired", 0),
        ("Plan pro", "expired", 0),
        ("Rolled over from ", "active", 30),
        ("Plan pro", "active", 100),
    ]


def test_plan_credit_grant__rolled_over_credits__burn_before_the_new_grant(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme in February holding 100 of February's grant and 30 rolled over from January
    create_granting_plan(api)
    acme_on_plan_since_jan_5(api, clock)
    use_credits(api, 50)
    clock.now = datetime(2026, 2, 6, tzinfo=UTC)
    assert ai_balance(api) == 130

    # When acme uses 40 and March's period starts
    use_credits(api, 40)
    assert ai_balance(api) == 90
    clock.now = datetime(2026, 3, 6, tzinfo=UTC)

    # Then the 40 came from the 30 rolled over first (the older of two ending together) and
    # 10 of February's grant, whose 90 left roll over up to 30
    assert ai_balance(api) == 130
    debits = [(row["amount"], row["grant"]) for row in ledger(api) if row["kind"] == "debit"]
    _, rolled, february, *_ = grants(api)
    assert debits[1:] == [(-30, rolled["id"]), (-10, february["id"])]
    assert sorted(entries(ledger(api))[7:]) == [
        ("expiry", -90, "2026-03-05T00:00:00Z"),
        ("grant", 100, "2026-03-06T00:00:00Z"),
        ("rollover", 30, "2026-03-05T00:00:00Z"),
    ]


def test_plan_credit_grant__default_plan__anchored_at_the_companys_creation(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a default plan granting 20 a week, and acme created on Saturday Jan 10 at noon
    # with no subscription
    create_credit(api)
    create_plan(
        api,
        "free",
        is_default=True,
        credit_grants=[{"credit": "ai", "amount": 20, "period": "week"}],
    )
    clock.now = NOW
    create_company(api)

    # When acme's credits are read
    first = balances(api)

    # Then it has the week's 20, until a week after its creation
    assert first == [{"credit": "ai", "balance": 20, "next_expiry": "2026-01-17T12:00:00Z"}]

    # When that instant comes
    clock.now = datetime(2026, 1, 17, 12, 0, tzinfo=UTC)

    # Then the next week's 20 replace the first
    assert balances(api) == [{"credit": "ai", "balance": 20, "next_expiry": "2026-01-24T12:00:00Z"}]
    assert entries(ledger(api)) == [
        ("grant", 20, "2026-01-10T12:00:00Z"),
        ("expiry", -20, "2026-01-17T12:00:00Z"),
        ("grant", 20, "2026-01-17T12:00:00Z"),
    ]
    assert sum(row["amount"] for row in ledger(api)) == 20
    assert [g["note"] for g in grants(api)] == ["Plan free", "Plan free"]


def test_plan_credit_grant__default_plan_replaced_by_a_base_plan__its_grants_stop(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on the default plan (20 a week) since Jan 10, its first grant issued
    create_granting_plan(api)
    create_plan(
        api,
        "free",
        is_default=True,
        credit_grants=[{"credit": "ai", "amount": 20, "period": "week"}],
    )
    clock.now = NOW
    create_company(api)
    assert ai_balance(api) == 20

    # When acme subscribes to pro (100 a month) on Jan 12 and is read a week later
    clock.now = datetime(2026, 1, 12, tzinfo=UTC)
    subscribe(api, "pro")
    clock.now = datetime(2026, 1, 19, tzinfo=UTC)

    # Then it holds pro's 100 and no new weekly grant
    assert ai_balance(api) == 100
    assert [(g["note"], g["status"]) for g in grants(api)] == [
        ("Plan free", "expired"),
        ("Plan pro", "active"),
    ]


@pytest.mark.parametrize(
    ("credit_grants", "param"),
    [
        ([{"credit": "ai", "amount": 100, "period": "all_time"}], "credit_grants.0.period"),
        ([{"credit": "ai", "amount": 0}], "credit_grants.0.amount"),
        ([{"credit": "ai", "amount": 10, "rollover_max": -1}], "credit_grants.0.rollover_max"),
        ([{"credit": "ai", "amount": 10, "period": "hour"}], "credit_grants.0.period"),
        ([{"amount": 10}], "credit_grants.0.credit"),
    ],
)
def test_plan_credit_grants__bad_field__400_on_that_field(
    api: httpx.Client, credit_grants: list[dict[str, Any]], param: str
) -> None:
    # Given a credit type `ai`
    create_credit(api)

    # When a plan is created with a bad credit grant
    response = api.post(
        "/v1/plans", json={"key": "pro", "name": "Pro", "credit_grants": credit_grants}
    )

    # Then it is a 400 naming that field, and no plan exists
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request"
    assert [d["param"] for d in error["details"]] == [param]
    assert api.get("/v1/plans/pro").status_code == 404


def test_plan_credit_grants__unknown_credit__400_at_its_index(api: httpx.Client) -> None:
    # Given a credit type `ai` and none named `gems`
    create_credit(api)

    # When a plan grants `ai` and then `gems`
    response = api.post(
        "/v1/plans",
        json={
            "key": "pro",
            "name": "Pro",
            "credit_grants": [
                {"credit": "ai", "amount": 100},
                {"credit": "gems", "amount": 5, "period": "day"},
            ],
        },
    )

    # Then it is a 400 on the second grant's credit, and no plan exists
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request",
        "credit_not_found",
        "credit_grants.1.credit",
    )
    assert api.get("/v1/plans/pro").status_code == 404


def test_plan_credit_grants__unknown_credit_in_an_update__400_and_plan_unchanged(
    api: httpx.Client,
) -> None:
    # Given a plan granting 100 `ai` a month
    create_credit(api)
    before = create_plan(api, "pro", credit_grants=[{"credit": "ai", "amount": 100}])

    # When an update makes it grant `gems`
    response = api.patch("/v1/plans/pro", json={"credit_grants": [{"credit": "gems", "amount": 1}]})

    # Then it is a 400 on that grant's credit and the plan still grants `ai`
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["code"], error["param"]) == ("credit_not_found", "credit_grants.0.credit")
    assert api.get("/v1/plans/pro").json()["credit_grants"] == before["credit_grants"]

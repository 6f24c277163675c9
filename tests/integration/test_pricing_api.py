"""`/v1/pricing-table` and `/v1/companies/{key}/invoice-preview` used as documented: what a
pricing page shows (public active plans, base plans before add-ons, public features that some
shown plan entitles, display values of every kind, regional prices), and what a company's
current period costs to the cent (base plan, add-ons times quantity, intro discounts, overage,
trials), with prices' own trials and intro offers on the plan replies and on subscribing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory, SettableClock
from tests.support.api import create_feature, create_plan, error_of
from tierkit.server.services.api_keys import KeyKind

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

SUPPORT_LEVELS = [
    {"key": "email", "name": "Email support"},
    {"key": "chat", "name": "Chat support"},
]


# Helpers


def create_company(api: httpx.Client, key: str = "acme", **fields: Any) -> None:
    response = api.put(f"/v1/companies/{key}", json=fields)
    assert response.status_code == 201, response.text


def subscribe(api: httpx.Client, plan: str, company: str = "acme", **fields: Any) -> dict[str, Any]:
    response = api.post(f"/v1/companies/{company}/subscriptions", json={"plan": plan, **fields})
    assert response.status_code == 201, response.text
    subscription: dict[str, Any] = response.json()
    return subscription


def track(api: httpx.Client, event: str, quantity: float, company: str = "acme") -> None:
    response = api.post(
        "/v1/events", json={"event": event, "company": company, "quantity": quantity}
    )
    assert response.status_code == 202, response.text


def pricing_table(client: httpx.Client, **params: str) -> dict[str, Any]:
    response = client.get("/v1/pricing-table", params=params)
    assert response.status_code == 200, response.text
    table: dict[str, Any] = response.json()
    return table


def invoice_preview(api: httpx.Client, company: str = "acme", **params: str) -> dict[str, Any]:
    response = api.get(f"/v1/companies/{company}/invoice-preview", params=params)
    assert response.status_code == 200, response.text
    preview: dict[str, Any] = response.json()
    return preview


def column(table: dict[str, Any], plan: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in table["plans"] if p["key"] == plan]
    assert len(found) == 1, table
    return found[0]


def displays(table: dict[str, Any], plan: str) -> dict[str, str]:
    """The display value of each feature on `plan`, by feature key."""
    return {cell["feature"]: cell["display"] for cell in column(table, plan)["features"]}


def line(
    kind: str,
    description: str,
    quantity: float,
    unit_amount: int,
    amount: int,
    *,
    plan: str | None = None,
    feature: str | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "description": description,
        "plan": plan,
        "feature": feature,
        "quantity": quantity,
        "unit_amount": unit_amount,
        "amount": amount,
    }


# Pricing table


def create_pricing_page_catalog(api: httpx.Client) -> None:
    """Features of every type and display, some private or archived; base plans `free`
    (default), `pro` (regional eur price with an intro offer, a yearly price with its own
    trial), `team` (usd only); `enterprise` (private), `legacy` (archived); add-ons
    `extra_seats` and `priority_support` (yearly only), both with a lower sort_order than
    the base plans."""
    create_feature(
        api,
        "api_calls",
        "metered",
        name="API calls",
        unit="call",
        description="Requests to the API",
        meter={"event": "api_call", "aggregation": "count"},
    )
    create_feature(api, "projects", "numeric", name="Projects", unit="project")
    create_feature(api, "support", "enum", name="Support", options=SUPPORT_LEVELS)
    create_feature(
        api,
        "storage",
        "metered",
        name="Storage",
        unit="MB",
        meter={"event": "upload", "aggregation": "sum"},
    )
    create_feature(api, "sso", name="Single sign-on")
    create_feature(api, "seats", "numeric", name="Seats", unit="seat")
    create_feature(api, "audit_log", name="Audit log", status="coming_soon")
    create_feature(
        api, "exports", "metered", name="Exports", meter={"event": "export", "aggregation": "count"}
    )
    create_feature(api, "internal_tools", name="Internal tools", visibility="private")
    create_feature(api, "legacy_export", name="Legacy export")
    create_feature(api, "beta_lab", name="Beta lab")
    create_feature(api, "vault", name="Vault")
    create_plan(
        api,
        "free",
        [
            {"feature": "api_calls", "value": 1000},
            {"feature": "projects", "value": 3},
            {"feature": "support", "value": "email"},
            {"feature": "storage", "value": 500, "period": "all_time"},
            {"feature": "sso", "value": False},
        ],
        name="Free",
        is_default=True,
        sort_order=0,
        prices=[
            {
                "interval": "month",
                "currency": "usd",
                "amount": 0,
                "default": True,
                "regional": [{"currency": "eur", "amount": 0}],
            }
        ],
    )
    create_plan(
        api,
        "pro",
        [
            {"feature": "api_calls", "value": 10000, "period": "month"},
            {"feature": "projects", "value": 25},
            {"feature": "support", "value": "chat"},
            {"feature": "storage", "value": 5000, "period": "all_time"},
            {"feature": "sso", "value": True},
            {"feature": "seats", "unlimited": True},
            {"feature": "internal_tools", "value": True},
            {"feature": "legacy_export", "value": True},
            {"feature": "audit_log", "value": True},
        ],
        name="Pro",
        description="For growing teams",
        trial_days=14,
        sort_order=10,
        prices=[
            {
                "interval": "month",
                "currency": "usd",
                "amount": 2900,
                "default": True,
                "regional": [{"currency": "eur", "amount": 2700}],
                "intro": {"kind": "percent", "value": 20, "cycles": 3},
            },
            {
                "interval": "year",
                "currency": "usd",
                "amount": 29000,
                "regional": [{"currency": "eur", "amount": 27000}],
                "trial_days": 30,
            },
        ],
    )
    create_plan(
        api,
        "team",
        [
            {"feature": "api_calls", "unlimited": True},
            {"feature": "projects", "unlimited": True},
            {"feature": "support", "value": "chat"},
            {"feature": "sso", "value": True},
            {"feature": "seats", "value": 1500},
            {"feature": "exports", "value": 1234567, "period": "year"},
        ],
        name="Team",
        sort_order=10,
        prices=[{"interval": "month", "currency": "usd", "amount": 9900, "default": True}],
    )
    create_plan(
        api,
        "enterprise",
        [{"feature": "beta_lab", "value": True}],
        name="Enterprise",
        visibility="private",
        sort_order=30,
        prices=[{"interval": "month", "currency": "usd", "amount": 99900}],
    )
    create_plan(
        api,
        "legacy",
        [{"feature": "vault", "value": True}],
        name="Legacy",
        status="archived",
        sort_order=5,
        prices=[{"interval": "month", "currency": "usd", "amount": 1900}],
    )
    create_plan(
        api,
        "priority_support",
        [{"feature": "support", "value": "chat"}],
        name="Priority support",
        type="add_on",
        sort_order=-10,
        prices=[{"interval": "year", "currency": "usd", "amount": 12000}],
    )
    create_plan(
        api,
        "extra_seats",
        [{"feature": "seats", "value": 5}],
        name="Extra seats",
        type="add_on",
        sort_order=-10,
        prices=[
            {
                "interval": "month",
                "currency": "usd",
                "amount": 500,
                "regional": [{"currency": "eur", "amount": 450}],
            }
        ],
    )
    archived = api.patch("/v1/features/legacy_export", json={"status": "archived"})
    assert archived.status_code == 200, archived.text


SHOWN_FEATURES = [
    "api_calls",
    "projects",
    "support",
    "storage",
    "sso",
    "seats",
    "audit_log",
    "exports",
]


def test_pricing_table__eur_monthly__public_active_plans_base_first_with_regional_prices(
    api: httpx.Client,
) -> None:
    # Given a catalog with private, archived and add-on plans and private and archived features
    create_pricing_page_catalog(api)

    # When the pricing page asks for monthly prices in euros
    table = pricing_table(api, currency="eur", interval="month")

    # Then it shows the public active plans, base plans by sort_order then key, then add-ons
    assert table["currency"] == "eur"
    assert table["interval"] == "month"
    assert [p["key"] for p in table["plans"]] == [
        "free",
        "pro",
        "team",
        "extra_seats",
        "priority_support",
    ]
    # and the public, unarchived features that shown plans entitle, in order of appearance
    assert [f["key"] for f in table["features"]] == SHOWN_FEATURES
    assert table["features"][0] == {
        "key": "api_calls",
        "name": "API calls",
        "description": "Requests to the API",
        "type": "metered",
        "unit": "call",
        "status": "active",
    }
    assert table["features"][6] == {
        "key": "audit_log",
        "name": "Audit log",
        "description": "",
        "type": "boolean",
        "unit": None,
        "status": "coming_soon",
    }
    # and each plan's price in euros (regional where the plan has one, null where it has none)
    pro = column(table, "pro")
    assert {key: pro[key] for key in ("name", "description", "type", "trial_days")} == {
        "name": "Pro",
        "description": "For growing teams",
        "type": "base",
        "trial_days": 14,
    }
    assert pro["price"] == {
        "currency": "eur",
        "amount": 2700,
        "interval": "month",
        "intro": {"kind": "percent", "value": 20, "cycles": 3},
    }
    assert column(table, "free")["price"] == {
        "currency": "eur",
        "amount": 0,
        "interval": "month",
        "intro": None,
    }
    assert column(table, "team")["price"] is None
    extra_seats = column(table, "extra_seats")
    assert extra_seats["type"] == "add_on"
    assert extra_seats["price"] == {
        "currency": "eur",
        "amount": 450,
        "interval": "month",
        "intro": None,
    }
    assert column(table, "priority_support")["price"] is None


def test_pricing_table__usd_yearly__prices_and_trials_of_that_interval(api: httpx.Client) -> None:
    # Given the catalog, whose pro plan has a yearly price with its own 30-day trial
    create_pricing_page_catalog(api)

    # When the pricing page asks for yearly prices in dollars
    table = pricing_table(api, currency="usd", interval="year")

    # Then the plans are the same and each has its yearly dollar price, or none
    assert (table["currency"], table["interval"]) == ("usd", "year")
    assert [f["key"] for f in table["features"]] == SHOWN_FEATURES
    prices = {p["key"]: p["price"] for p in table["plans"]}
    assert prices == {
        "free": None,
        "pro": {"currency": "usd", "amount": 29000, "interval": "year", "intro": None},
        "team": None,
        "extra_seats": None,
        "priority_support": {"currency": "usd", "amount": 12000, "interval": "year", "intro": None},
    }
    # and the yearly price's trial replaces the plan's
    assert {p["key"]: p["trial_days"] for p in table["plans"]} == {
        "free": None,
        "pro": 30,
        "team": None,
        "extra_seats": None,
        "priority_support": None,
    }


def test_pricing_table__no_parameters__monthly_dollar_prices(api: httpx.Client) -> None:
    # Given the catalog
    create_pricing_page_catalog(api)

    # When the pricing page names no currency and no interval
    table = pricing_table(api)

    # Then it gets monthly prices in dollars, the main amounts rather than regional ones
    assert (table["currency"], table["interval"]) == ("usd", "month")
    assert [(p["key"], p["price"] and p["price"]["amount"]) for p in table["plans"]] == [
        ("free", 0),
        ("pro", 2900),
        ("team", 9900),
        ("extra_seats", 500),
        ("priority_support", None),
    ]


def test_pricing_table__every_kind_of_value__reads_as_a_person_would_say_it(
    api: httpx.Client,
) -> None:
    # Given the catalog
    create_pricing_page_catalog(api)

    # When the pricing table is read
    table = pricing_table(api, currency="eur")

    # Then booleans read Included / Not included (also where a plan does not entitle them),
    # numbers have thousands separators, metered limits their period (none for all_time),
    # enums the option's name, unlimited values "Unlimited" and missing values a dash
    assert displays(table, "free") == {
        "api_calls": "1,000 / month",
        "projects": "3",
        "support": "Email support",
        "storage": "500",
        "sso": "Not included",
        "seats": "—",
        "audit_log": "Not included",
        "exports": "—",
    }
    assert displays(table, "pro") == {
        "api_calls": "10,000 / month",
        "projects": "25",
        "support": "Chat support",
        "storage": "5,000",
        "sso": "Included",
        "seats": "Unlimited",
        "audit_log": "Included",
        "exports": "—",
    }
    assert displays(table, "team") == {
        "api_calls": "Unlimited",
        "projects": "Unlimited",
        "support": "Chat support",
        "storage": "—",
        "sso": "Included",
        "seats": "1,500",
        "audit_log": "Not included",
        "exports": "1,234,567 / year",
    }
    assert displays(table, "extra_seats") == {
        "api_calls": "—",
        "projects": "—",
        "support": "—",
        "storage": "—",
        "sso": "Not included",
        "seats": "5",
        "audit_log": "Not included",
        "exports": "—",
    }
    assert displays(table, "priority_support")["support"] == "Chat support"
    # and each cell carries the raw value: null when unlimited or not entitled
    cells = {c["feature"]: c for c in column(table, "pro")["features"]}
    assert cells["api_calls"] == {
        "feature": "api_calls",
        "value": 10000,
        "unlimited": False,
        "display": "10,000 / month",
    }
    assert cells["support"]["value"] == "chat"
    assert cells["seats"] == {
        "feature": "seats",
        "value": None,
        "unlimited": True,
        "display": "Unlimited",
    }
    assert cells["exports"] == {
        "feature": "exports",
        "value": None,
        "unlimited": False,
        "display": "—",
    }
    assert {c["feature"]: c["value"] for c in column(table, "free")["features"]}["sso"] is False


def test_pricing_table__publishable_key__allowed(
    api: httpx.Client, make_client: ClientFactory
) -> None:
    # Given the catalog and a browser holding a publishable key
    create_pricing_page_catalog(api)
    browser = make_client(kind=KeyKind.PUBLISHABLE)

    # When the browser reads the pricing table
    table = pricing_table(browser, currency="eur")

    # Then it gets the same table as a secret key does
    assert table == pricing_table(api, currency="eur")
    assert [p["key"] for p in table["plans"]][:2] == ["free", "pro"]


def test_pricing_table__other_environment__sees_only_its_own_plans(
    api: httpx.Client, production: httpx.Client
) -> None:
    # Given the catalog in development and one plan in production
    create_pricing_page_catalog(api)
    create_plan(
        production,
        "solo",
        name="Solo",
        prices=[{"interval": "month", "currency": "usd", "amount": 900}],
    )

    # When production's pricing table is read
    table = pricing_table(production)

    # Then it holds production's plan alone, with no features
    assert [p["key"] for p in table["plans"]] == ["solo"]
    assert table["features"] == []
    assert column(table, "solo")["features"] == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"currency": "EUR"}, "currency"),
        ({"currency": "euro"}, "currency"),
        ({"currency": "e1r"}, "currency"),
        ({"interval": "fortnight"}, "interval"),
    ],
)
def test_pricing_table__bad_currency_or_interval__400(
    api: httpx.Client, params: dict[str, str], param: str
) -> None:
    # Given the catalog
    create_pricing_page_catalog(api)

    # When the pricing table is asked for a malformed currency or an unknown interval
    response = api.get("/v1/pricing-table", params=params)

    # Then it is a 400 naming that parameter
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request"
    assert error["param"] == param


# Prices on plans


def test_plan_reply__price_trial_and_intro__shown_only_when_set(api: httpx.Client) -> None:
    # Given a plan with a monthly price that has a trial and an intro offer, and a yearly one
    # that has neither
    created = create_plan(
        api,
        "pro",
        prices=[
            {
                "interval": "month",
                "currency": "usd",
                "amount": 2900,
                "default": True,
                "trial_days": 30,
                "intro": {"kind": "fixed", "value": 1000, "cycles": 2},
            },
            {"interval": "year", "currency": "usd", "amount": 29000},
        ],
    )

    # When the plan is read back
    response = api.get("/v1/plans/pro")

    # Then the monthly price carries its trial and offer and the yearly one has no such keys
    assert response.status_code == 200, response.text
    expected = [
        {
            "interval": "month",
            "currency": "usd",
            "amount": 2900,
            "default": True,
            "regional": [],
            "trial_days": 30,
            "intro": {"kind": "fixed", "value": 1000, "cycles": 2},
        },
        {
            "interval": "year",
            "currency": "usd",
            "amount": 29000,
            "default": False,
            "regional": [],
        },
    ]
    assert response.json()["prices"] == expected
    assert created["prices"] == expected


def test_plan_intro__percent_over_100__400_and_100_accepted(api: httpx.Client) -> None:
    # Given a price whose intro offer takes 101 percent off
    def body(value: float) -> dict[str, Any]:
        return {
            "key": "pro",
            "name": "Pro",
            "prices": [
                {
                    "interval": "month",
                    "currency": "usd",
                    "amount": 2900,
                    "intro": {"kind": "percent", "value": value, "cycles": 1},
                }
            ],
        }

    # When the plan is created
    response = api.post("/v1/plans", json=body(101))

    # Then it is a 400 on that offer and no plan exists
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request"
    assert (error["code"], error["param"]) == ("validation_failed", "prices.0.intro"), error
    assert api.get("/v1/plans/pro").status_code == 404
    # but 100 percent off is a valid offer
    accepted = api.post("/v1/plans", json=body(100))
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["prices"][0]["intro"] == {"kind": "percent", "value": 100, "cycles": 1}


def test_subscribe__price_has_trial_days__that_trial_over_the_plans(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a plan with a 14-day trial whose monthly price has its own 30-day trial and whose
    # yearly price has none, and a plan without a trial whose monthly price has 7 days
    clock.now = NOW
    create_plan(
        api,
        "pro",
        trial_days=14,
        prices=[
            {"interval": "month", "currency": "usd", "amount": 2900, "trial_days": 30},
            {"interval": "year", "currency": "usd", "amount": 29000, "default": True},
        ],
    )
    create_plan(
        api,
        "basic",
        prices=[{"interval": "month", "currency": "usd", "amount": 900, "trial_days": 7}],
    )
    for company in ("monthly", "yearly", "basic"):
        create_company(api, company)

    # When companies subscribe at each interval
    monthly = subscribe(api, "pro", "monthly", price_interval="month")
    yearly = subscribe(api, "pro", "yearly", price_interval="year")
    basic = subscribe(api, "basic", "basic")

    # Then the monthly subscription gets its price's 30 days, the yearly one the plan's 14
    # and the plan without a trial its price's 7
    assert (monthly["status"], monthly["trial_ends_at"]) == ("trialing", "2026-04-09T12:00:00Z")
    assert (yearly["status"], yearly["trial_ends_at"]) == ("trialing", "2026-03-24T12:00:00Z")
    assert (basic["price_interval"], basic["trial_ends_at"]) == ("month", "2026-03-17T12:00:00Z")


# Invoice preview


def create_billing_catalog(api: httpx.Client) -> None:
    """`api_calls` (soft limit 10,000 on pro, 0.50 per 1,000 past it); base plan `pro`
    (29.00 usd or 27.00 eur a month, 12.34% off its first 3 months); add-on `extra_seats`
    (5.00 usd or 4.50 eur a month, 2.00 off its first 2 months)."""
    create_feature(
        api,
        "api_calls",
        "metered",
        name="API calls",
        unit="call",
        meter={"event": "api_call", "aggregation": "sum"},
    )
    create_plan(
        api,
        "pro",
        [
            {
                "feature": "api_calls",
                "value": 10000,
                "soft_limit": True,
                "overage": {"price": 50, "per": 1000},
            }
        ],
        name="Pro",
        prices=[
            {
                "interval": "month",
                "currency": "usd",
                "amount": 2900,
                "default": True,
                "regional": [{"currency": "eur", "amount": 2700}],
                "intro": {"kind": "percent", "value": 12.34, "cycles": 3},
            },
            {"interval": "year", "currency": "usd", "amount": 29000},
        ],
    )
    create_plan(
        api,
        "extra_seats",
        name="Extra seats",
        type="add_on",
        prices=[
            {
                "interval": "month",
                "currency": "usd",
                "amount": 500,
                "regional": [{"currency": "eur", "amount": 450}],
                "intro": {"kind": "fixed", "value": 200, "cycles": 2},
            }
        ],
    )


def test_invoice_preview__base_add_on_intros_and_overage__each_line_to_the_cent(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on pro since Feb 1 (its 2nd month now), with 3 extra seats since Mar 5 (their
    # 1st month), and 12,345 API calls this month against a soft limit of 10,000
    clock.now = NOW
    create_billing_catalog(api)
    create_company(api)
    subscribe(api, "pro", started_at="2026-02-01T00:00:00Z")
    subscribe(api, "extra_seats", quantity=3, started_at="2026-03-05T00:00:00Z")
    track(api, "api_call", 12345)

    # When the invoice is previewed
    preview = invoice_preview(api)

    # Then it is in the plan's currency for the base plan's current cycle
    assert preview["company"] == "acme"
    assert preview["currency"] == "usd"
    assert (preview["period_start"], preview["period_end"]) == (
        "2026-03-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
    )
    # and each line is exact: 12.34% of 29.00 is 3.5786, so 3.58 off; 3 x 2.00 off the
    # seats; 2,345 calls past the limit are 3 packages of 1,000 at 0.50
    assert preview["lines"] == [
        line("base", "Pro (month)", 1, 2900, 2900, plan="pro"),
        line("intro_discount", "Pro: intro offer, cycle 2 of 3", 1, -358, -358, plan="pro"),
        line("add_on", "Extra seats (month)", 3, 500, 1500, plan="extra_seats"),
        line(
            "intro_discount",
            "Extra seats: intro offer, cycle 1 of 2",
            3,
            -200,
            -600,
            plan="extra_seats",
        ),
        line("overage", "API calls: 3 x 1,000 past the limit", 3, 50, 150, feature="api_calls"),
    ]
    assert preview["total"] == 2900 - 358 + 1500 - 600 + 150 == 3592


def test_invoice_preview__usage_within_the_limit__no_overage_line(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on pro past its intro offer, with exactly its 10,000 calls used
    clock.now = NOW
    create_billing_catalog(api)
    create_company(api)
    subscribe(api, "pro", started_at="2025-10-01T00:00:00Z")
    track(api, "api_call", 10000)

    # When the invoice is previewed
    preview = invoice_preview(api)

    # Then only the plan's price is on it
    assert preview["lines"] == [line("base", "Pro (month)", 1, 2900, 2900, plan="pro")]
    assert preview["total"] == 2900


def test_invoice_preview__one_unit_past_the_limit__a_whole_package(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on pro past its intro offer, one call past its limit
    clock.now = NOW
    create_billing_catalog(api)
    create_company(api)
    subscribe(api, "pro", started_at="2025-10-01T00:00:00Z")
    track(api, "api_call", 10001)

    # When the invoice is previewed
    preview = invoice_preview(api)

    # Then that call costs a whole package of 1,000
    assert preview["lines"][1:] == [
        line("overage", "API calls: 1 x 1,000 past the limit", 1, 50, 50, feature="api_calls")
    ]
    assert preview["total"] == 2950


def test_invoice_preview__euros_asked__regional_amounts_and_discounts(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on pro in its 2nd month with 3 extra seats in their 1st
    clock.now = NOW
    create_billing_catalog(api)
    create_company(api)
    subscribe(api, "pro", started_at="2026-02-01T00:00:00Z")
    subscribe(api, "extra_seats", quantity=3, started_at="2026-03-05T00:00:00Z")

    # When the invoice is previewed in euros
    preview = invoice_preview(api, currency="eur")

    # Then the regional amounts are used: 12.34% of 27.00 is 3.3318, so 3.33 off
    assert preview["currency"] == "eur"
    assert [(ln["kind"], ln["unit_amount"], ln["amount"]) for ln in preview["lines"]] == [
        ("base", 2700, 2700),
        ("intro_discount", -333, -333),
        ("add_on", 450, 1350),
        ("intro_discount", -200, -600),
    ]
    assert preview["total"] == 2700 - 333 + 1350 - 600 == 3117


def test_invoice_preview__fixed_intro_over_the_price__capped_at_the_price(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given an add-on of 5.00 whose intro offer takes 8.00 off, held twice
    clock.now = NOW
    create_plan(
        api,
        "boost",
        name="Boost",
        type="add_on",
        prices=[
            {
                "interval": "month",
                "currency": "usd",
                "amount": 500,
                "intro": {"kind": "fixed", "value": 800, "cycles": 1},
            }
        ],
    )
    create_company(api)
    subscribe(api, "boost", quantity=2, started_at="2026-03-01T00:00:00Z")

    # When the invoice is previewed
    preview = invoice_preview(api)

    # Then the offer takes the whole price and no more
    assert preview["lines"] == [
        line("add_on", "Boost (month)", 2, 500, 1000, plan="boost"),
        line("intro_discount", "Boost: intro offer, cycle 1 of 1", 2, -500, -1000, plan="boost"),
    ]
    assert preview["total"] == 0


def test_invoice_preview__intro_cycles_over__full_price_from_the_next_cycle(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on pro since Dec 1, whose offer lasts 3 months
    clock.now = datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC)
    create_billing_catalog(api)
    create_company(api)
    subscribe(api, "pro", started_at="2025-12-01T00:00:00Z")

    # When the invoice is previewed in the last second of the 3rd month
    last = invoice_preview(api)

    # Then the offer still applies
    assert [ln["description"] for ln in last["lines"]] == [
        "Pro (month)",
        "Pro: intro offer, cycle 3 of 3",
    ]
    assert last["total"] == 2900 - 358

    # When the 4th month begins
    clock.now = datetime(2026, 3, 1, tzinfo=UTC)
    after = invoice_preview(api)

    # Then the full price is due
    assert after["lines"] == [line("base", "Pro (month)", 1, 2900, 2900, plan="pro")]
    assert after["total"] == 2900
    assert (after["period_start"], after["period_end"]) == (
        "2026-03-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
    )


def test_invoice_preview__trialing__plan_line_of_zero(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme trialing pro (a 14-day trial from Mar 5) with 3 paid extra seats
    clock.now = NOW
    create_billing_catalog(api)
    create_company(api)
    subscribe(api, "pro", started_at="2026-03-05T00:00:00Z", trial_ends_at="2026-03-19T00:00:00Z")
    subscribe(api, "extra_seats", quantity=3, started_at="2025-12-01T00:00:00Z")

    # When the invoice is previewed
    preview = invoice_preview(api)

    # Then the trialing plan is on it at 0 with no intro discount; the seats are charged
    assert preview["lines"] == [
        line("base", "Pro (month) - trial", 1, 2900, 0, plan="pro"),
        line("add_on", "Extra seats (month)", 3, 500, 1500, plan="extra_seats"),
    ]
    assert preview["total"] == 1500
    assert (preview["period_start"], preview["period_end"]) == (
        "2026-03-05T00:00:00Z",
        "2026-04-05T00:00:00Z",
    )

    # When the trial is over
    clock.now = datetime(2026, 3, 19, tzinfo=UTC)
    paid = invoice_preview(api)

    # Then the plan is charged, with its offer's first cycle
    assert paid["lines"][:2] == [
        line("base", "Pro (month)", 1, 2900, 2900, plan="pro"),
        line("intro_discount", "Pro: intro offer, cycle 1 of 3", 1, -358, -358, plan="pro"),
    ]
    assert paid["total"] == 2900 - 358 + 1500


def test_invoice_preview__yearly_subscription__yearly_price_and_cycle(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme on pro's yearly price since last June
    clock.now = NOW
    create_billing_catalog(api)
    create_company(api)
    subscribe(api, "pro", started_at="2025-06-15T00:00:00Z", price_interval="year")

    # When the invoice is previewed
    preview = invoice_preview(api)

    # Then the yearly price is charged for the yearly cycle
    assert preview["lines"] == [line("base", "Pro (year)", 1, 29000, 29000, plan="pro")]
    assert (preview["period_start"], preview["period_end"]) == (
        "2025-06-15T00:00:00Z",
        "2026-06-15T00:00:00Z",
    )
    assert preview["total"] == 29000


def test_invoice_preview__currency_trait__used_unless_asked_otherwise(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given acme, whose `currency` trait is eur, on pro past its offer
    clock.now = NOW
    create_billing_catalog(api)
    create_company(api, traits={"currency": "eur"})
    subscribe(api, "pro", started_at="2025-10-01T00:00:00Z")

    # When the invoice is previewed without a currency
    preview = invoice_preview(api)

    # Then it is in euros
    assert preview["currency"] == "eur"
    assert preview["lines"] == [line("base", "Pro (month)", 1, 2700, 2700, plan="pro")]
    assert preview["total"] == 2700

    # When it is previewed in dollars
    dollars = invoice_preview(api, currency="usd")

    # Then the asked currency wins over the trait
    assert dollars["currency"] == "usd"
    assert dollars["total"] == 2900


def test_invoice_preview__no_currency_given__base_plans_default_price_currency(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a plan priced in euros only, and acme on it with no currency trait
    clock.now = NOW
    create_plan(
        api,
        "euro",
        name="Euro",
        prices=[{"interval": "month", "currency": "eur", "amount": 1900, "default": True}],
    )
    create_company(api)
    subscribe(api, "euro", started_at="2026-03-01T00:00:00Z")

    # When the invoice is previewed
    preview = invoice_preview(api)

    # Then it is in the currency of the plan's default price
    assert preview["currency"] == "eur"
    assert preview["lines"] == [line("base", "Euro (month)", 1, 1900, 1900, plan="euro")]
    assert preview["total"] == 1900


def test_invoice_preview__unknown_company__404(api: httpx.Client) -> None:
    # Given no company `ghost`
    # When its invoice is previewed
    response = api.get("/v1/companies/ghost/invoice-preview")

    # Then it is a 404
    assert response.status_code == 404, response.text
    error = error_of(response)
    assert (error["type"], error["code"]) == ("not_found", "company_not_found")


def test_invoice_preview__publishable_key__403(
    api: httpx.Client, make_client: ClientFactory, clock: SettableClock
) -> None:
    # Given acme on pro and a browser holding a publishable key
    clock.now = NOW
    create_billing_catalog(api)
    create_company(api)
    subscribe(api, "pro")
    browser = make_client(kind=KeyKind.PUBLISHABLE)

    # When the browser asks for acme's invoice preview
    response = browser.get("/v1/companies/acme/invoice-preview")

    # Then it is refused
    assert response.status_code == 403, response.text
    assert error_of(response)["type"] == "permission"


def test_invoice_preview__bad_currency__400(api: httpx.Client, clock: SettableClock) -> None:
    # Given acme
    clock.now = NOW
    create_company(api)

    # When its invoice is previewed in a malformed currency
    response = api.get("/v1/companies/acme/invoice-preview", params={"currency": "US$"})

    # Then it is a 400 on `currency`
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["type"], error["param"]) == ("invalid_request", "currency")

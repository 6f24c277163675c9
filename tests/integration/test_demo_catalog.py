"""The demo catalog is realistic: every feature type, four tiers, two add-ons, two currencies."""

from __future__ import annotations

import httpx

from tierkit.server.demo import is_catalog_empty, load_demo_catalog
from tierkit.server.services.container import Services


def _development_id(services: Services) -> str:
    return services.environments.get_environment("development").id


def test_demo__loaded_into_an_empty_environment__covers_every_feature_type(
    services: Services, api: httpx.Client
) -> None:
    env = _development_id(services)
    assert is_catalog_empty(services, env)

    loaded = load_demo_catalog(services, env)

    features = api.get("/v1/features", params={"limit": 500}).json()["data"]
    assert loaded.features == len(features) >= 10
    assert {f["type"] for f in features} == {"boolean", "numeric", "enum", "metered"}
    aggregations = {f["meter"]["aggregation"] for f in features if f["type"] == "metered"}
    assert aggregations == {"count", "sum", "max", "unique_count", "latest"}
    assert not is_catalog_empty(services, env)


def test_demo__plans__are_the_four_tiers_and_two_add_ons_priced_in_usd_and_eur(
    services: Services, api: httpx.Client
) -> None:
    load_demo_catalog(services, _development_id(services))

    plans = api.get("/v1/plans").json()["data"]

    base = [p["key"] for p in plans if p["type"] == "base"]
    add_ons = [p["key"] for p in plans if p["type"] == "add_on"]
    assert base == ["free", "starter", "pro", "enterprise"]
    assert len(add_ons) == 2
    assert [p["key"] for p in plans if p["is_default"]] == ["free"]
    for plan in plans:
        if plan["key"] == "free":
            continue
        offered = {
            (price["interval"], currency)
            for price in plan["prices"]
            for currency in [price["currency"]] + [r["currency"] for r in price["regional"]]
        }
        assert offered >= {("month", "usd"), ("month", "eur"), ("year", "usd"), ("year", "eur")}


def test_demo__only_in_development__leaves_production_empty(services: Services) -> None:
    load_demo_catalog(services, _development_id(services))

    production = services.environments.get_environment("production").id

    assert is_catalog_empty(services, production)


def test_demo__customers__a_company_on_each_plan_with_users_an_add_on_and_an_override(
    services: Services, api: httpx.Client
) -> None:
    load_demo_catalog(services, _development_id(services))

    keys = [c["key"] for c in api.get("/v1/companies").json()["data"]]
    companies = [api.get(f"/v1/companies/{key}").json() for key in keys]

    assert {c["plan"] for c in companies} == {"free", "starter", "pro", "enterprise"}
    assert any(c["plan_is_default"] for c in companies)
    add_ons = [s for c in companies for s in c["subscriptions"] if s["plan_type"] == "add_on"]
    assert add_ons
    assert all(s["quantity"] >= 1 for s in add_ons)
    assert any(c["overrides"] for c in companies)
    assert any(c["users"] for c in companies)
    assert len(api.get("/v1/users").json()["data"]) >= 2

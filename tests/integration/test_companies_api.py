"""`/v1/companies` used as documented: upserts by external key with merged traits, the default
plan, the `plan` shortcut, list filters (plan, text, traits), deletion of a company with all
that belongs to it, and environments that do not see each other's companies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx

from tests.conftest import SettableClock
from tests.support.api import create_customer_catalog as create_catalog
from tests.support.api import create_plan, error_of, parse_utc, rfc3339

ClientFactory = Callable[..., httpx.Client]


# Catalog and customers through the API


def put_company(
    api: httpx.Client, key: str, body: dict[str, Any], status: int | None = None
) -> dict[str, Any]:
    response = api.put(f"/v1/companies/{quote(key, safe='')}", json=body)
    assert response.status_code in ((status,) if status else (200, 201)), response.text
    company: dict[str, Any] = response.json()
    return company


def get_company(api: httpx.Client, key: str) -> dict[str, Any]:
    response = api.get(f"/v1/companies/{quote(key, safe='')}")
    assert response.status_code == 200, response.text
    company: dict[str, Any] = response.json()
    return company


def subscribe(api: httpx.Client, company: str, plan: str, **fields: Any) -> dict[str, Any]:
    response = api.post(f"/v1/companies/{company}/subscriptions", json={"plan": plan, **fields})
    assert response.status_code == 201, response.text
    subscription: dict[str, Any] = response.json()
    return subscription


def list_company_keys(api: httpx.Client, params: dict[str, Any] | str) -> list[str]:
    response = api.get("/v1/companies", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [company["key"] for company in response.json()["data"]]


# Upserts


def test_put_company__new_key__201_with_default_plan_and_nothing_else(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)

    response = api.put("/v1/companies/acme", json={"name": "Acme Inc.", "traits": {"tier": "gold"}})

    assert response.status_code == 201, response.text
    created = response.json()
    assert {k: v for k, v in created.items() if k != "id"} == {
        "key": "acme",
        "name": "Acme Inc.",
        "traits": {"tier": "gold"},
        "plan": "free",
        "plan_is_default": True,
        "subscriptions": [],
        "overrides": [],
        "users": [],
        "created_at": rfc3339(clock.now),
        "updated_at": rfc3339(clock.now),
    }
    assert created["id"].startswith("co")
    assert get_company(api, "acme") == created


def test_put_company__existing_key__200_keeps_omitted_fields(
    api: httpx.Client, clock: SettableClock
) -> None:
    created = put_company(api, "acme", {"name": "Acme", "traits": {"tier": "gold"}}, 201)
    clock.advance(minutes=5)

    response = api.put("/v1/companies/acme", json={"traits": {"seats": 3}})

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["id"] == created["id"]
    assert updated["name"] == "Acme"
    assert updated["traits"] == {"tier": "gold", "seats": 3}
    assert parse_utc(updated["created_at"]) == parse_utc(created["created_at"])
    assert parse_utc(updated["updated_at"]) == clock.now
    assert get_company(api, "acme") == updated


def test_put_company__traits_with_null__merge_key_by_key_and_remove_the_nulls(
    api: httpx.Client,
) -> None:
    put_company(api, "acme", {"traits": {"tier": "gold", "seats": 5, "beta": True, "region": "us"}})

    updated = put_company(
        api, "acme", {"traits": {"seats": 10, "beta": None, "region": "eu", "nope": None}}, 200
    )

    assert updated["traits"] == {"tier": "gold", "seats": 10, "region": "eu"}
    assert get_company(api, "acme")["traits"] == {"tier": "gold", "seats": 10, "region": "eu"}
    assert list_company_keys(api, "trait.beta=true") == []
    assert list_company_keys(api, "trait.seats=10") == ["acme"]
    assert list_company_keys(api, "trait.seats=5") == []


def test_put_company__name_null__clears_the_name(api: httpx.Client) -> None:
    put_company(api, "acme", {"name": "Acme", "traits": {"tier": "gold"}})

    updated = put_company(api, "acme", {"name": None}, 200)

    assert (updated["name"], updated["traits"]) == (None, {"tier": "gold"})


def test_put_company__key_with_spaces_slash_and_accents__round_trips_url_encoded(
    api: httpx.Client,
) -> None:
    key = "Acme Inc./EU #1 é?"

    created = put_company(api, key, {"name": "Acme EU"}, 201)

    assert created["key"] == key
    assert get_company(api, key)["name"] == "Acme EU"
    assert list_company_keys(api, {}) == [key]


# The default plan and the `plan` shortcut


def test_get_company__no_default_plan_in_catalog__plan_null_and_not_default(
    api: httpx.Client,
) -> None:
    create_plan(api, "pro")
    put_company(api, "acme", {})

    company = get_company(api, "acme")

    assert (company["plan"], company["plan_is_default"]) == (None, False)


def test_put_company__plan_shortcut__subscribes_to_that_base_plan_now(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)

    created = put_company(api, "acme", {"name": "Acme", "plan": "pro"}, 201)

    assert (created["plan"], created["plan_is_default"]) == ("pro", False)
    [subscription] = created["subscriptions"]
    assert subscription["plan"] == "pro"
    assert subscription["status"] == "active"
    assert parse_utc(subscription["started_at"]) == clock.now
    assert subscription["ends_at"] is None
    assert get_company(api, "acme") == created


def test_put_company__plan_it_is_already_on__keeps_the_one_subscription(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    first = put_company(api, "acme", {"plan": "pro"})["subscriptions"][0]
    clock.advance(days=3)

    again = put_company(api, "acme", {"plan": "pro", "traits": {"seats": 2}}, 200)

    assert [s["id"] for s in again["subscriptions"]] == [first["id"]]
    history = api.get("/v1/companies/acme/subscriptions").json()["data"]
    assert [(s["id"], s["status"], s["ends_at"]) for s in history] == [
        (first["id"], "active", None)
    ]
    assert again["traits"] == {"seats": 2}


def test_put_company__plan_shortcut_to_another_base_plan__ends_the_previous_one_now(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    put_company(api, "acme", {"plan": "pro"})
    clock.advance(days=10)

    switched = put_company(api, "acme", {"plan": "starter"}, 200)

    assert switched["plan"] == "starter"
    assert [s["plan"] for s in switched["subscriptions"]] == ["starter"]
    history = api.get("/v1/companies/acme/subscriptions").json()["data"]
    assert [(s["plan"], s["status"]) for s in history] == [
        ("pro", "ended"),
        ("starter", "trialing"),
    ]
    assert parse_utc(history[0]["ends_at"]) == clock.now
    assert parse_utc(history[1]["started_at"]) == clock.now


def test_put_company__add_on_as_plan__400_plan_not_base_and_nothing_stored(
    api: httpx.Client,
) -> None:
    create_catalog(api)

    response = api.put(
        "/v1/companies/acme", json={"name": "Acme", "traits": {"a": 1}, "plan": "extra_seats"}
    )

    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request",
        "plan_not_base",
        "plan",
    )
    assert api.get("/v1/companies/acme").status_code == 404
    assert list_company_keys(api, {}) == []


def test_put_company__add_on_as_plan_on_existing_company__400_and_name_kept(
    api: httpx.Client,
) -> None:
    create_catalog(api)
    put_company(api, "acme", {"name": "Acme", "plan": "pro"})

    response = api.put("/v1/companies/acme", json={"name": "Renamed", "plan": "extra_seats"})

    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "plan_not_base"
    company = get_company(api, "acme")
    assert (company["name"], company["plan"]) == ("Acme", "pro")
    assert [s["plan"] for s in company["subscriptions"]] == ["pro"]


def test_put_company__base_plan_of_another_group__keeps_the_default_group_plan(
    api: httpx.Client,
) -> None:
    create_catalog(api)
    put_company(api, "acme", {"plan": "pro"})

    company = put_company(api, "acme", {"plan": "team"}, 200)

    assert company["plan"] == "pro"
    assert sorted((s["plan"], s["group"], s["status"]) for s in company["subscriptions"]) == [
        ("pro", "default", "active"),
        ("team", "seats", "active"),
    ]


def test_get_company__unknown_key__404_company_not_found(api: httpx.Client) -> None:
    response = api.get("/v1/companies/nobody")

    assert response.status_code == 404
    error = error_of(response)
    assert (error["type"], error["code"]) == ("not_found", "company_not_found")


# Lists and their filters


def test_list_companies__plan_free__includes_companies_without_a_base_plan_and_excludes_pro(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    put_company(api, "bare", {})
    put_company(api, "on_pro", {"plan": "pro"})
    put_company(api, "on_starter", {"plan": "starter"})
    put_company(api, "explicit_free", {"plan": "free"})
    put_company(api, "only_team", {"plan": "team"})
    put_company(api, "add_on_only", {})
    subscribe(api, "add_on_only", "extra_seats")
    put_company(api, "pro_later", {})
    subscribe(api, "pro_later", "pro", started_at=rfc3339(clock.now + timedelta(days=2)))
    put_company(api, "pro_ended", {})
    subscribe(api, "pro_ended", "pro", ends_at=rfc3339(clock.now + timedelta(days=1)))

    on_free_now = list_company_keys(api, {"plan": "free"})
    clock.advance(days=3)
    on_free_later = list_company_keys(api, {"plan": "free"})

    assert on_free_now == ["add_on_only", "bare", "explicit_free", "only_team", "pro_later"]
    assert on_free_later == ["add_on_only", "bare", "explicit_free", "only_team", "pro_ended"]


def test_list_companies__plan_pro_or_add_on__only_companies_holding_it_now(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    put_company(api, "bare", {})
    put_company(api, "on_pro", {"plan": "pro"})
    put_company(api, "on_starter", {"plan": "starter"})
    put_company(api, "pro_later", {})
    subscribe(api, "pro_later", "pro", started_at=rfc3339(clock.now + timedelta(days=2)))
    subscribe(api, "on_starter", "extra_seats", quantity=2)

    assert list_company_keys(api, {"plan": "pro"}) == ["on_pro"]
    assert list_company_keys(api, {"plan": "starter"}) == ["on_starter"]
    assert list_company_keys(api, {"plan": "extra_seats"}) == ["on_starter"]
    assert list_company_keys(api, {"plan": "team"}) == []
    clock.advance(days=2)
    assert list_company_keys(api, {"plan": "pro"}) == ["on_pro", "pro_later"]


def test_list_companies__unknown_plan__404_plan_not_found(api: httpx.Client) -> None:
    put_company(api, "acme", {})

    response = api.get("/v1/companies", params={"plan": "gold"})

    assert response.status_code == 404
    assert error_of(response)["code"] == "plan_not_found"


def test_list_companies__q__matches_key_or_name_ignoring_case(api: httpx.Client) -> None:
    put_company(api, "acme", {"name": "Acme Rockets"})
    put_company(api, "globex", {"name": "Globex Corporation"})
    put_company(api, "initech", {"name": "Initech"})
    put_company(api, "zeta-ROCKETS", {})

    assert list_company_keys(api, {"q": "rocket"}) == ["acme", "zeta-ROCKETS"]
    assert list_company_keys(api, {"q": "CORP"}) == ["globex"]
    assert list_company_keys(api, {"q": "InItEcH"}) == ["initech"]
    assert list_company_keys(api, {"q": "nothing"}) == []


def test_list_companies__q_with_percent_and_underscore__matches_them_literally(
    api: httpx.Client,
) -> None:
    put_company(api, "a_b", {"name": "Under score"})
    put_company(api, "axb", {"name": "Fifty percent"})
    put_company(api, "c", {"name": "100% real"})
    put_company(api, "d", {"name": "1000 real"})

    assert list_company_keys(api, {"q": "a_b"}) == ["a_b"]
    assert list_company_keys(api, {"q": "_"}) == ["a_b"]
    assert list_company_keys(api, {"q": "0%"}) == ["c"]
    assert list_company_keys(api, {"q": "%"}) == ["c"]
    assert list_company_keys(api, {"q": "\\"}) == []


def test_list_companies__trait_filters_with_number_and_boolean__match_their_json_text(
    api: httpx.Client,
) -> None:
    put_company(api, "acme", {"traits": {"seats": 5, "beta": True, "tier": "gold"}})
    put_company(api, "globex", {"traits": {"seats": 50, "beta": False, "tier": "gold"}})
    put_company(api, "initech", {"traits": {"seats": 5, "tier": "silver"}})
    put_company(api, "hooli", {})

    assert list_company_keys(api, "trait.seats=5") == ["acme", "initech"]
    assert list_company_keys(api, "trait.beta=true") == ["acme"]
    assert list_company_keys(api, "trait.beta=false") == ["globex"]
    assert list_company_keys(api, "trait.tier=gold") == ["acme", "globex"]
    assert list_company_keys(api, "trait.tier=gold&trait.seats=5") == ["acme"]
    assert list_company_keys(api, "trait.tier=GOLD") == []
    assert list_company_keys(api, "trait.missing=1") == []


def test_list_companies__all_filters_together__intersect(api: httpx.Client) -> None:
    create_catalog(api)
    put_company(api, "acme", {"name": "Acme", "traits": {"seats": 5}, "plan": "pro"})
    put_company(api, "acme-eu", {"name": "Acme EU", "traits": {"seats": 5}})
    put_company(api, "acme-us", {"name": "Acme US", "traits": {"seats": 6}})
    put_company(api, "globex", {"traits": {"seats": 5}})

    assert list_company_keys(api, "plan=free&q=acme&trait.seats=5") == ["acme-eu"]


def test_list_companies__limit__pages_by_key_with_a_cursor(api: httpx.Client) -> None:
    for key in ["delta", "alpha", "echo", "charlie", "bravo"]:
        put_company(api, key, {})

    pages: list[list[str]] = []
    cursor: str | None = None
    while len(pages) < 5:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = api.get("/v1/companies", params=params).json()
        pages.append([company["key"] for company in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == [["alpha", "bravo"], ["charlie", "delta"], ["echo"]]


def test_list_companies__summary__has_no_detail_fields(api: httpx.Client) -> None:
    created = put_company(api, "acme", {"name": "Acme", "traits": {"tier": "gold"}})

    [listed] = api.get("/v1/companies").json()["data"]

    assert listed == {
        k: created[k] for k in ("id", "key", "name", "traits", "created_at", "updated_at")
    }


# Deletion


def test_delete_company__with_subscriptions_overrides_and_members__removes_them_keeps_users(
    api: httpx.Client,
) -> None:
    create_catalog(api)
    put_company(api, "acme", {"name": "Acme", "traits": {"tier": "gold"}, "plan": "pro"})
    subscribe(api, "acme", "extra_seats", quantity=3)
    override = api.put("/v1/companies/acme/overrides/projects", json={"value": 50})
    assert override.status_code == 200, override.text
    put_company(api, "globex", {})
    user = api.put("/v1/users/u1", json={"name": "Ada", "companies": ["acme", "globex"]})
    assert user.json()["companies"] == ["acme", "globex"]

    response = api.delete("/v1/companies/acme")

    assert response.status_code == 204
    assert response.content == b""
    assert api.get("/v1/companies/acme").status_code == 404
    assert api.get("/v1/companies/acme/subscriptions").status_code == 404
    assert api.get("/v1/companies/acme/overrides").status_code == 404
    assert list_company_keys(api, {}) == ["globex"]
    assert list_company_keys(api, "trait.tier=gold") == []
    kept_user = api.get("/v1/users/u1").json()
    assert (kept_user["name"], kept_user["companies"]) == ("Ada", ["globex"])
    assert get_company(api, "globex")["users"] == ["u1"]
    # Nothing of the old company's is left to keep its plans and features in use.
    assert api.delete("/v1/plans/extra_seats").status_code == 204
    recreated = put_company(api, "acme", {}, 201)
    assert (recreated["traits"], recreated["plan"], recreated["plan_is_default"]) == (
        {},
        "free",
        True,
    )
    assert (recreated["subscriptions"], recreated["overrides"], recreated["users"]) == ([], [], [])
    assert api.delete("/v1/plans/pro").status_code == 204


def test_delete_company__unknown_key__404_company_not_found(api: httpx.Client) -> None:
    response = api.delete("/v1/companies/nobody")

    assert response.status_code == 404
    assert error_of(response)["code"] == "company_not_found"


def test_delete_company__twice__second_is_404(api: httpx.Client) -> None:
    put_company(api, "acme", {})

    first = api.delete("/v1/companies/acme")
    second = api.delete("/v1/companies/acme")

    assert (first.status_code, second.status_code) == (204, 404)


# Environments


def test_companies__of_development__invisible_to_a_production_key(
    api: httpx.Client, production: httpx.Client
) -> None:
    create_catalog(api)
    put_company(api, "acme", {"name": "Acme", "traits": {"seats": 5}, "plan": "pro"})

    got = production.get("/v1/companies/acme")
    listed = production.get("/v1/companies")
    filtered = production.get("/v1/companies", params={"q": "acme"})
    by_trait = production.get("/v1/companies", params={"trait.seats": "5"})
    deleted = production.delete("/v1/companies/acme")

    assert (got.status_code, error_of(got)["code"]) == (404, "company_not_found")
    assert (listed.status_code, listed.json()) == (200, {"data": [], "next_cursor": None})
    assert filtered.json()["data"] == []
    assert by_trait.json()["data"] == []
    assert deleted.status_code == 404
    assert production.get("/v1/companies", params={"plan": "pro"}).status_code == 404
    assert get_company(api, "acme")["name"] == "Acme"


def test_put_company__same_key_in_production__is_a_separate_company(
    api: httpx.Client, production: httpx.Client
) -> None:
    put_company(api, "acme", {"name": "Acme dev", "traits": {"env": "dev"}}, 201)

    created = put_company(production, "acme", {"name": "Acme prod"}, 201)

    assert created["traits"] == {}
    assert get_company(api, "acme")["name"] == "Acme dev"
    assert get_company(production, "acme")["name"] == "Acme prod"
    assert production.delete("/v1/companies/acme").status_code == 204
    assert get_company(api, "acme")["traits"] == {"env": "dev"}

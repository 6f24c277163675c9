"""Overrides (`/v1/companies/{key}/overrides`) and users (`/v1/users`) used as documented:
entitlement-shaped overrides that stop applying the instant they expire, features in use,
users with merged traits and memberships, and environments that do not see each other's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from tests.conftest import SettableClock
from tests.support.api import create_customer_catalog as create_catalog
from tests.support.api import error_of, parse_utc, rfc3339

ClientFactory = Callable[..., httpx.Client]


# Catalog and customers through the API


def put_company(api: httpx.Client, key: str = "acme", **fields: Any) -> dict[str, Any]:
    response = api.put(f"/v1/companies/{key}", json=fields)
    assert response.status_code in (200, 201), response.text
    company: dict[str, Any] = response.json()
    return company


def get_company(api: httpx.Client, key: str = "acme") -> dict[str, Any]:
    response = api.get(f"/v1/companies/{key}")
    assert response.status_code == 200, response.text
    company: dict[str, Any] = response.json()
    return company


def put_override(
    api: httpx.Client, feature: str, body: dict[str, Any], company: str = "acme"
) -> dict[str, Any]:
    response = api.put(f"/v1/companies/{company}/overrides/{feature}", json=body)
    assert response.status_code == 200, response.text
    override: dict[str, Any] = response.json()
    return override


def list_overrides(
    api: httpx.Client, company: str = "acme", *, include_expired: bool = False
) -> list[dict[str, Any]]:
    params = {"include_expired": "true"} if include_expired else {}
    response = api.get(f"/v1/companies/{company}/overrides", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    overrides: list[dict[str, Any]] = response.json()["data"]
    return overrides


def put_user(api: httpx.Client, key: str, body: dict[str, Any], status: int) -> dict[str, Any]:
    response = api.put(f"/v1/users/{key}", json=body)
    assert response.status_code == status, response.text
    user: dict[str, Any] = response.json()
    return user


def get_user(api: httpx.Client, key: str) -> dict[str, Any]:
    response = api.get(f"/v1/users/{key}")
    assert response.status_code == 200, response.text
    user: dict[str, Any] = response.json()
    return user


def list_user_keys(api: httpx.Client, params: dict[str, Any]) -> list[str]:
    response = api.get("/v1/users", params=params)
    assert response.status_code == 200, response.text
    return [user["key"] for user in response.json()["data"]]


def without_times(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("created_at", "updated_at")}


# Overrides


def test_put_override__numeric_with_expiry_and_note__read_back_everywhere(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    put_company(api, plan="pro")
    expires = clock.now + timedelta(days=30)

    created = put_override(
        api, "projects", {"value": 50, "expires_at": rfc3339(expires), "note": "Deal #42"}
    )

    assert without_times(created) == {
        "feature": "projects",
        "value": 50,
        "unlimited": False,
        "period": None,
        "reset": None,
        "soft_limit": False,
        "expires_at": rfc3339(expires),
        "note": "Deal #42",
    }
    assert parse_utc(created["created_at"]) == clock.now
    assert list_overrides(api) == [created]
    assert get_company(api)["overrides"] == [created]


def test_put_override__metered_with_period_reset_and_soft_limit__kept_as_given(
    api: httpx.Client,
) -> None:
    create_catalog(api)
    put_company(api)

    created = put_override(
        api,
        "api_calls",
        {"value": 500, "period": "day", "reset": "billing_cycle", "soft_limit": True},
    )

    assert (created["value"], created["period"], created["reset"], created["soft_limit"]) == (
        500,
        "day",
        "billing_cycle",
        True,
    )
    assert (created["expires_at"], created["note"]) == (None, "")
    assert list_overrides(api) == [created]


def test_put_override__metered_without_period__gets_month_and_calendar(
    api: httpx.Client,
) -> None:
    create_catalog(api)
    put_company(api)

    created = put_override(api, "api_calls", {"value": 100})

    assert (created["period"], created["reset"]) == ("month", "calendar")


def test_put_override__unlimited_boolean_and_enum__read_back_typed(api: httpx.Client) -> None:
    create_catalog(api)
    put_company(api)

    put_override(api, "projects", {"unlimited": True})
    put_override(api, "sso", {"value": False})
    put_override(api, "support", {"value": "chat"})

    assert [(o["feature"], o["value"], o["unlimited"]) for o in list_overrides(api)] == [
        ("projects", None, True),
        ("sso", False, False),
        ("support", "chat", False),
    ]


def test_put_override__same_feature_again__replaces_the_override(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    put_company(api)
    first = put_override(api, "projects", {"value": 50, "note": "first"})
    clock.advance(hours=1)

    second = put_override(api, "projects", {"value": 70})

    assert (second["value"], second["note"]) == (70, "")
    assert second["created_at"] == first["created_at"]
    assert parse_utc(second["updated_at"]) == clock.now
    assert list_overrides(api, include_expired=True) == [second]


def test_override__clock_passes_expires_at__stops_applying_between_two_reads(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    put_company(api)
    expires = clock.now + timedelta(hours=2)
    override = put_override(api, "projects", {"value": 50, "expires_at": rfc3339(expires)})
    put_override(api, "sso", {"value": True})
    before_company = get_company(api)
    before_list = list_overrides(api)

    clock.advance(hours=2)

    assert [o["feature"] for o in before_company["overrides"]] == ["projects", "sso"]
    assert [o["feature"] for o in before_list] == ["projects", "sso"]
    assert [o["feature"] for o in get_company(api)["overrides"]] == ["sso"]
    assert [o["feature"] for o in list_overrides(api)] == ["sso"]
    assert [o["feature"] for o in list_overrides(api, include_expired=True)] == ["projects", "sso"]
    assert list_overrides(api, include_expired=True)[0] == override


def test_put_override__expired_one_for_the_same_feature__applies_again(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    put_company(api)
    put_override(api, "projects", {"value": 50, "expires_at": rfc3339(clock.now + timedelta(1))})
    clock.advance(days=2)

    renewed = put_override(api, "projects", {"value": 60})

    assert list_overrides(api) == [renewed]
    assert (renewed["value"], renewed["expires_at"]) == (60, None)


def test_put_override__expires_at_in_the_past_or_now__400_expires_in_past_nothing_stored(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    put_company(api)
    kept = put_override(api, "projects", {"value": 10})

    past = api.put(
        "/v1/companies/acme/overrides/projects",
        json={"value": 50, "expires_at": rfc3339(clock.now - timedelta(seconds=1))},
    )
    now = api.put(
        "/v1/companies/acme/overrides/sso",
        json={"value": True, "expires_at": rfc3339(clock.now)},
    )

    for response in (past, now):
        assert response.status_code == 400, response.text
        error = error_of(response)
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request",
            "expires_in_past",
            "expires_at",
        )
    assert list_overrides(api, include_expired=True) == [kept]


def test_put_override__unknown_feature__404_feature_not_found(api: httpx.Client) -> None:
    create_catalog(api)
    put_company(api)

    response = api.put("/v1/companies/acme/overrides/teleport", json={"value": True})

    assert response.status_code == 404
    assert error_of(response)["code"] == "feature_not_found"
    assert list_overrides(api) == []


def test_put_override__unknown_company__404_and_no_company_created(api: httpx.Client) -> None:
    create_catalog(api)

    response = api.put("/v1/companies/nobody/overrides/sso", json={"value": True})

    assert response.status_code == 404
    assert error_of(response)["code"] == "company_not_found"
    assert api.get("/v1/companies/nobody").status_code == 404


def test_delete_override__existing__gone_and_second_delete_404(api: httpx.Client) -> None:
    create_catalog(api)
    put_company(api)
    put_override(api, "projects", {"value": 50})
    kept = put_override(api, "sso", {"value": True})

    first = api.delete("/v1/companies/acme/overrides/projects")
    second = api.delete("/v1/companies/acme/overrides/projects")

    assert first.status_code == 204
    assert (second.status_code, error_of(second)["code"]) == (404, "override_not_found")
    assert list_overrides(api, include_expired=True) == [kept]
    assert get_company(api)["overrides"] == [kept]


def test_delete_feature__with_an_override__409_feature_in_use_until_the_override_goes(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    put_company(api)
    put_override(api, "beta", {"value": True, "expires_at": rfc3339(clock.now + timedelta(1))})
    clock.advance(days=2)

    refused = api.delete("/v1/features/beta")

    assert refused.status_code == 409, refused.text
    error = error_of(refused)
    assert (error["type"], error["code"]) == ("conflict", "feature_in_use")
    assert [d["param"] for d in error["details"]] == ["companies.acme"]
    assert api.get("/v1/features/beta").status_code == 200
    assert api.delete("/v1/companies/acme/overrides/beta").status_code == 204
    assert api.delete("/v1/features/beta").status_code == 204


def test_overrides__of_development__invisible_to_a_production_key(
    api: httpx.Client, production: httpx.Client
) -> None:
    create_catalog(api)
    create_catalog(production)
    put_company(api)
    kept = put_override(api, "projects", {"value": 50})

    responses = [
        production.get("/v1/companies/acme/overrides"),
        production.put("/v1/companies/acme/overrides/projects", json={"value": 1}),
        production.delete("/v1/companies/acme/overrides/projects"),
    ]
    put_company(production)
    own = production.get("/v1/companies/acme/overrides")
    deleted = production.delete("/v1/companies/acme/overrides/projects")

    assert [(r.status_code, error_of(r)["code"]) for r in responses] == [
        (404, "company_not_found")
    ] * 3
    assert own.json()["data"] == []
    assert (deleted.status_code, error_of(deleted)["code"]) == (404, "override_not_found")
    assert list_overrides(api) == [kept]


def test_put_override__feature_of_development_only__404_in_production(
    api: httpx.Client, production: httpx.Client
) -> None:
    create_catalog(api)
    put_company(production)

    response = production.put("/v1/companies/acme/overrides/sso", json={"value": True})

    assert (response.status_code, error_of(response)["code"]) == (404, "feature_not_found")


# Users


def test_put_user__new_key__201_then_200_when_updated(
    api: httpx.Client, clock: SettableClock
) -> None:
    created = put_user(api, "u1", {"name": "Ada", "traits": {"role": "admin"}}, 201)
    clock.advance(minutes=1)

    updated = put_user(api, "u1", {"traits": {"lang": "en"}}, 200)

    assert without_times(created) == {
        "id": created["id"],
        "key": "u1",
        "name": "Ada",
        "traits": {"role": "admin"},
        "companies": [],
    }
    assert (updated["id"], updated["name"]) == (created["id"], "Ada")
    assert updated["traits"] == {"role": "admin", "lang": "en"}
    assert parse_utc(updated["created_at"]) == parse_utc(created["created_at"])
    assert parse_utc(updated["updated_at"]) == clock.now
    assert get_user(api, "u1") == updated


def test_put_user__traits_with_null__merge_and_remove(api: httpx.Client) -> None:
    put_user(api, "u1", {"traits": {"role": "admin", "age": 40, "beta": True}}, 201)

    updated = put_user(api, "u1", {"traits": {"age": 41, "beta": None, "gone": None}}, 200)

    assert updated["traits"] == {"role": "admin", "age": 41}
    assert get_user(api, "u1")["traits"] == {"role": "admin", "age": 41}


def test_put_user__companies__replaces_the_whole_set(api: httpx.Client) -> None:
    for key in ["acme", "globex", "initech"]:
        put_company(api, key)
    put_user(api, "u1", {"companies": ["globex", "acme"]}, 201)

    updated = put_user(api, "u1", {"companies": ["initech", "globex"]}, 200)

    assert updated["companies"] == ["globex", "initech"]
    assert get_user(api, "u1")["companies"] == ["globex", "initech"]
    assert [get_company(api, k)["users"] for k in ["acme", "globex", "initech"]] == [
        [],
        ["u1"],
        ["u1"],
    ]


def test_put_user__companies_omitted__keeps_memberships_and_empty_list_clears_them(
    api: httpx.Client,
) -> None:
    put_company(api, "acme")
    put_user(api, "u1", {"companies": ["acme"]}, 201)

    renamed = put_user(api, "u1", {"name": "Ada"}, 200)
    cleared = put_user(api, "u1", {"companies": []}, 200)

    assert renamed["companies"] == ["acme"]
    assert cleared["companies"] == []
    assert get_company(api, "acme")["users"] == []


def test_put_user__same_company_twice__one_membership(api: httpx.Client) -> None:
    put_company(api, "acme")

    created = put_user(api, "u1", {"companies": ["acme", "acme"]}, 201)

    assert created["companies"] == ["acme"]
    assert get_company(api, "acme")["users"] == ["u1"]


def test_get_company__several_members__lists_their_keys(api: httpx.Client) -> None:
    put_company(api, "acme")
    for key in ["zoe", "ada", "max"]:
        put_user(api, key, {"companies": ["acme"]}, 201)

    assert get_company(api, "acme")["users"] == ["ada", "max", "zoe"]


def test_put_user__unknown_company__400_company_not_found_and_nothing_stored(
    api: httpx.Client,
) -> None:
    put_company(api, "acme")

    response = api.put("/v1/users/u1", json={"name": "Ada", "companies": ["nope", "acme"]})

    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request",
        "company_not_found",
        "companies.0",
    )
    assert [d["param"] for d in error["details"]] == ["companies.0"]
    assert api.get("/v1/users/u1").status_code == 404
    assert list_user_keys(api, {}) == []
    assert get_company(api, "acme")["users"] == []


def test_put_user__existing_user_with_an_unknown_company__400_and_user_unchanged(
    api: httpx.Client,
) -> None:
    put_company(api, "acme")
    before = put_user(api, "u1", {"name": "Ada", "traits": {"a": 1}, "companies": ["acme"]}, 201)

    response = api.put(
        "/v1/users/u1",
        json={"name": "Grace", "traits": {"a": 2}, "companies": ["acme", "x", "y"]},
    )

    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["code"], error["param"]) == ("company_not_found", "companies.1")
    assert [d["param"] for d in error["details"]] == ["companies.1", "companies.2"]
    assert get_user(api, "u1") == before


def test_get_user__unknown_key__404_user_not_found(api: httpx.Client) -> None:
    response = api.get("/v1/users/nobody")

    assert response.status_code == 404
    assert (error_of(response)["type"], error_of(response)["code"]) == (
        "not_found",
        "user_not_found",
    )


def test_delete_user__member__gone_and_companies_no_longer_list_it(api: httpx.Client) -> None:
    put_company(api, "acme")
    put_user(api, "u1", {"companies": ["acme"]}, 201)
    put_user(api, "u2", {"companies": ["acme"]}, 201)

    first = api.delete("/v1/users/u1")
    second = api.delete("/v1/users/u1")

    assert (first.status_code, second.status_code) == (204, 404)
    assert api.get("/v1/users/u1").status_code == 404
    assert get_company(api, "acme")["users"] == ["u2"]
    assert put_user(api, "u1", {}, 201)["companies"] == []


def test_delete_company__member_users__stay_without_that_membership(api: httpx.Client) -> None:
    put_company(api, "acme")
    put_company(api, "globex")
    put_user(api, "u1", {"name": "Ada", "companies": ["acme", "globex"]}, 201)
    put_user(api, "u2", {"companies": ["acme"]}, 201)

    assert api.delete("/v1/companies/acme").status_code == 204

    assert (get_user(api, "u1")["name"], get_user(api, "u1")["companies"]) == ("Ada", ["globex"])
    assert get_user(api, "u2")["companies"] == []
    assert list_user_keys(api, {}) == ["u1", "u2"]


def test_list_users__company_and_q_filters__match_members_and_text(api: httpx.Client) -> None:
    put_company(api, "acme")
    put_company(api, "globex")
    put_user(api, "ada", {"name": "Ada Lovelace", "companies": ["acme"]}, 201)
    put_user(api, "grace", {"name": "Grace Hopper", "companies": ["acme", "globex"]}, 201)
    put_user(api, "alan", {"name": "Alan Turing"}, 201)

    assert list_user_keys(api, {}) == ["ada", "alan", "grace"]
    assert list_user_keys(api, {"company": "acme"}) == ["ada", "grace"]
    assert list_user_keys(api, {"company": "globex"}) == ["grace"]
    assert list_user_keys(api, {"company": "nobody"}) == []
    assert list_user_keys(api, {"q": "HOPPER"}) == ["grace"]
    assert list_user_keys(api, {"q": "a"}) == ["ada", "alan", "grace"]
    assert list_user_keys(api, {"q": "_"}) == []


def test_users__of_development__invisible_to_a_production_key(
    api: httpx.Client, production: httpx.Client
) -> None:
    put_company(api, "acme")
    put_user(api, "u1", {"name": "Ada", "companies": ["acme"]}, 201)

    got = production.get("/v1/users/u1")
    listed = production.get("/v1/users")
    by_company = production.get("/v1/users", params={"company": "acme"})
    deleted = production.delete("/v1/users/u1")
    joined = production.put("/v1/users/u2", json={"companies": ["acme"]})

    assert (got.status_code, error_of(got)["code"]) == (404, "user_not_found")
    assert listed.json() == {"data": [], "next_cursor": None}
    assert by_company.json()["data"] == []
    assert deleted.status_code == 404
    assert (joined.status_code, error_of(joined)["code"]) == (400, "company_not_found")
    assert production.get("/v1/users/u2").status_code == 404
    assert get_user(api, "u1")["name"] == "Ada"
    assert get_company(api, "acme")["users"] == ["u1"]


def test_put_user__same_key_in_production__is_a_separate_user(
    api: httpx.Client, production: httpx.Client
) -> None:
    put_company(api, "acme")
    put_user(api, "u1", {"name": "Ada", "companies": ["acme"]}, 201)

    created = put_user(production, "u1", {"name": "Prod Ada"}, 201)

    assert (created["name"], created["companies"]) == ("Prod Ada", [])
    assert get_user(api, "u1")["name"] == "Ada"

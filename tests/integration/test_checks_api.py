"""POST /v1/check and /v1/check/bulk, and feature rules, over real HTTP on both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.api import create_feature, create_plan, error_of
from tierkit.server.services.api_keys import KeyKind

ClientFactory = Callable[..., httpx.Client]


def _catalog(api: httpx.Client) -> None:
    create_feature(api, "sso")
    create_feature(api, "beta")
    create_feature(api, "projects", "numeric", default=1)
    create_feature(api, "support", "enum", default="email")
    create_feature(api, "api_calls", "metered")
    create_plan(
        api,
        "free",
        [{"feature": "api_calls", "value": 100}],
        is_default=True,
    )
    create_plan(
        api,
        "pro",
        [
            {"feature": "sso", "value": True},
            {"feature": "projects", "value": 10},
            {"feature": "api_calls", "value": 1000},
        ],
    )
    create_plan(api, "pack", [{"feature": "projects", "value": 5}], type="add_on")


def _check(client: httpx.Client, company: str, feature: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/check", json={"company": company, "feature": feature, **fields})
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()
    return decision


@pytest.fixture
def catalog(api: httpx.Client) -> httpx.Client:
    _catalog(api)
    api.put("/v1/companies/acme", json={"plan": "pro", "traits": {"tier": "gold"}})
    return api


def test_check__company_on_a_plan__allowed_by_the_plan(catalog: httpx.Client) -> None:
    decision = _check(catalog, "acme", "sso")

    assert decision == {
        "feature": "sso",
        "company": "acme",
        "company_found": True,
        "allowed": True,
        "value": True,
        "unlimited": False,
        "reason": "plan",
        "plan": "pro",
        "rule": None,
        "override_expires_at": None,
        "usage": None,
        "credits": None,
    }


def test_check__with_a_publishable_key__is_allowed(
    catalog: httpx.Client, make_client: ClientFactory
) -> None:
    browser = make_client(kind=KeyKind.PUBLISHABLE)

    decision = _check(browser, "acme", "projects")

    assert (decision["value"], decision["reason"]) == (10, "plan")


def test_check__unknown_company__evaluates_on_the_default_plan(catalog: httpx.Client) -> None:
    decision = _check(catalog, "nobody", "api_calls")

    assert decision["company_found"] is False
    assert (decision["plan"], decision["value"], decision["reason"]) == ("free", 100, "plan")
    assert decision["usage"]["remaining"] == 100


def test_check__unknown_feature__404_feature_not_found(catalog: httpx.Client) -> None:
    response = catalog.post("/v1/check", json={"company": "acme", "feature": "nope"})

    assert response.status_code == 404
    assert (error_of(response)["code"], error_of(response)["param"]) == (
        "feature_not_found",
        "feature",
    )


def test_check__add_on__adds_its_quantity_times_value(catalog: httpx.Client) -> None:
    added = catalog.post("/v1/companies/acme/subscriptions", json={"plan": "pack", "quantity": 2})
    assert added.status_code == 201

    decision = _check(catalog, "acme", "projects")

    assert (decision["value"], decision["plan"]) == (20, "pro")


def test_check__override__beats_the_plan_and_says_when_it_expires(catalog: httpx.Client) -> None:
    catalog.put(
        "/v1/companies/acme/overrides/projects",
        json={"value": 3, "expires_at": "2099-01-01T00:00:00Z"},
    ).raise_for_status()

    decision = _check(catalog, "acme", "projects")

    assert (decision["value"], decision["reason"]) == (3, "override")
    assert decision["override_expires_at"] == "2099-01-01T00:00:00Z"


def test_check__global_value__beats_everything(catalog: httpx.Client) -> None:
    catalog.patch("/v1/features/sso", json={"global_value": False}).raise_for_status()

    decision = _check(catalog, "acme", "sso")

    assert (decision["allowed"], decision["reason"]) == (False, "global_override")


def test_check__after_a_plan_change__answers_from_the_new_catalog(catalog: httpx.Client) -> None:
    assert _check(catalog, "acme", "projects")["value"] == 10

    catalog.put("/v1/plans/pro/entitlements/projects", json={"value": 50}).raise_for_status()

    # acme keeps its plan version (grandfathered) until migrated onto the new one
    assert _check(catalog, "acme", "projects")["value"] == 10
    body = {"from_version": 1, "to_version": 2}
    catalog.post("/v1/plans/pro/migrations", json=body).raise_for_status()
    assert _check(catalog, "acme", "projects")["value"] == 50


def test_check__quantity_over_a_hard_limit__limit_exceeded(catalog: httpx.Client) -> None:
    decision = _check(catalog, "acme", "api_calls", quantity=1001)

    assert (decision["allowed"], decision["reason"]) == (False, "limit_exceeded")
    assert decision["usage"]["limit"] == 1000


def test_rules__matching_trait__decides_where_no_plan_does(catalog: httpx.Client) -> None:
    rules = [
        {
            "name": "gold",
            "value": True,
            "conditions": [[{"type": "trait", "trait": "tier", "op": "eq", "value": "gold"}]],
        }
    ]

    stored = catalog.put("/v1/features/beta/rules", json=rules)

    assert stored.status_code == 200, stored.text
    assert catalog.get("/v1/features/beta/rules").json()["data"][0]["name"] == "gold"
    gold = _check(catalog, "acme", "beta")
    other = _check(catalog, "nobody", "beta")
    assert (gold["allowed"], gold["reason"], gold["rule"]) == (True, "rule", "gold")
    assert (other["allowed"], other["reason"]) == (False, "default")


def test_rules__context_traits__are_used_for_this_check_only(catalog: httpx.Client) -> None:
    rule = {
        "name": "eu",
        "value": True,
        "conditions": [[{"type": "trait", "trait": "region", "op": "in", "value": ["eu"]}]],
    }
    catalog.put("/v1/features/beta/rules", json=[rule]).raise_for_status()

    with_context = _check(catalog, "acme", "beta", context={"traits": {"region": "eu"}})
    without = _check(catalog, "acme", "beta")

    assert (with_context["allowed"], without["allowed"]) == (True, False)


def _when(**condition: Any) -> list[dict[str, Any]]:
    """A rule list with one rule that has one condition."""
    return [{"name": "x", "value": True, "conditions": [[condition]]}]


@pytest.mark.parametrize(
    ("rules", "param", "code"),
    [
        ([{"name": "x", "value": 3}], "0.value", "invalid_value"),
        ([{"name": "x"}], "0.value", "value_required"),
        (_when(type="plan", op="eq", value="zz"), "0.conditions.0.0.value", "plan_not_found"),
        (_when(type="trait", op="in", value="a"), "0.conditions.0.0.trait", "trait_required"),
        (
            [{"name": "x", "value": True, "rollout": {"percent": 101}}],
            "0.rollout.percent",
            "less_than_equal",
        ),
        (
            _when(type="usage", feature="sso", op="gt", value=1),
            "0.conditions.0.0.feature",
            "metered_feature_required",
        ),
        (
            _when(type="trait", trait="d", op="before", value="soon"),
            "0.conditions.0.0.value",
            "date_required",
        ),
        (
            [{"name": "x", "value": True, "conditions": [[]]}],
            "0.conditions.0",
            "empty_condition_group",
        ),
    ],
    ids=[
        "value_type",
        "no_value",
        "unknown_plan",
        "no_trait",
        "percent",
        "usage_of_boolean",
        "before_not_a_date",
        "empty_group",
    ],
)
def test_rules__bad_rule__400_naming_the_field_and_nothing_stored(
    catalog: httpx.Client, rules: list[dict[str, Any]], param: str, code: str
) -> None:
    response = catalog.put("/v1/features/beta/rules", json=rules)

    assert response.status_code == 400, response.text
    details = error_of(response)["details"]
    assert any(d["param"] == param and d.get("code") == code for d in details), details
    assert catalog.get("/v1/features/beta/rules").json()["data"] == []


def test_check_bulk__equals_the_single_checks(catalog: httpx.Client) -> None:
    bulk = catalog.post("/v1/check/bulk", json={"company": "acme"})

    assert bulk.status_code == 200
    decisions = bulk.json()["data"]
    assert [d["feature"] for d in decisions] == ["api_calls", "beta", "projects", "sso", "support"]
    assert decisions == [_check(catalog, "acme", d["feature"]) for d in decisions]


def test_check__production_key__sees_none_of_developments_catalog(
    catalog: httpx.Client, production: httpx.Client
) -> None:
    response = production.post("/v1/check", json={"company": "acme", "feature": "sso"})

    assert response.status_code == 404


def test_check__after_each_kind_of_customer_change__answers_from_fresh_state(
    catalog: httpx.Client,
) -> None:
    rule = {
        "name": "silver",
        "value": True,
        "conditions": [[{"type": "trait", "trait": "tier", "op": "eq", "value": "silver"}]],
    }
    catalog.put("/v1/features/beta/rules", json=[rule]).raise_for_status()
    assert _check(catalog, "acme", "projects")["value"] == 10  # cached from here on

    catalog.post("/v1/companies/acme/subscriptions", json={"plan": "pack"}).raise_for_status()
    assert _check(catalog, "acme", "projects")["value"] == 15

    catalog.put("/v1/companies/acme/overrides/projects", json={"value": 2}).raise_for_status()
    assert _check(catalog, "acme", "projects")["value"] == 2

    catalog.delete("/v1/companies/acme/overrides/projects").raise_for_status()
    assert _check(catalog, "acme", "projects")["value"] == 15

    catalog.put("/v1/companies/acme", json={"traits": {"tier": "silver"}}).raise_for_status()
    assert _check(catalog, "acme", "beta")["rule"] == "silver"

    catalog.delete("/v1/companies/acme").raise_for_status()
    assert _check(catalog, "acme", "projects")["company_found"] is False


def test_check__user_traits__are_fresh_after_the_user_changes(catalog: httpx.Client) -> None:
    rule = {
        "name": "admins",
        "value": True,
        "conditions": [
            [{"type": "trait", "entity": "user", "trait": "role", "op": "eq", "value": "admin"}]
        ],
    }
    catalog.put("/v1/features/beta/rules", json=[rule]).raise_for_status()
    catalog.put("/v1/users/u1", json={"traits": {"role": "member"}}).raise_for_status()
    assert _check(catalog, "acme", "beta", user="u1")["allowed"] is False

    catalog.put("/v1/users/u1", json={"traits": {"role": "admin"}}).raise_for_status()

    assert _check(catalog, "acme", "beta", user="u1")["allowed"] is True

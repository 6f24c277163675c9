"""`/v1/plans` used as documented: defaults, order and filters, changes that replace lists,
one default per group, single entitlements, the features a plan offers, deletion."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.api import create_feature, create_plan, parse_utc

MONTHLY_USD: dict[str, Any] = {
    "interval": "month",
    "currency": "usd",
    "amount": 2900,
    "default": True,
    "regional": [{"currency": "eur", "amount": 2700}],
}


def create_catalog_features(api: httpx.Client) -> None:
    """`sso` (boolean), `projects` (numeric), `support` (enum), `api_calls` (metered)."""
    create_feature(api, "sso")
    create_feature(api, "projects", "numeric")
    create_feature(api, "support", "enum")
    create_feature(api, "api_calls", "metered")


def patch_plan(api: httpx.Client, key: str, changes: dict[str, Any]) -> dict[str, Any]:
    response = api.patch(f"/v1/plans/{key}", json=changes)
    assert response.status_code == 200, response.text
    changed: dict[str, Any] = response.json()
    assert api.get(f"/v1/plans/{key}").json() == changed
    return changed


def get_plan(api: httpx.Client, key: str) -> dict[str, Any]:
    response = api.get(f"/v1/plans/{key}")
    assert response.status_code == 200, response.text
    plan: dict[str, Any] = response.json()
    return plan


def list_plan_keys(api: httpx.Client, query: str = "") -> list[str]:
    response = api.get(f"/v1/plans?{query}")
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [plan["key"] for plan in response.json()["data"]]


def entitled(plan: dict[str, Any]) -> list[tuple[str, Any]]:
    """The plan's entitlements as (feature, value) pairs, in order."""
    return [(e["feature"], e["value"]) for e in plan["entitlements"]]


def test_create_plan__only_key_and_name__gets_the_documented_defaults(api: httpx.Client) -> None:
    created = create_plan(api, "free")

    assert {k: v for k, v in created.items() if k not in ("id", "created_at", "updated_at")} == {
        "key": "free",
        "name": "Free",
        "description": "",
        "type": "base",
        "group": "default",
        "status": "active",
        "visibility": "public",
        "is_default": False,
        "trial_days": None,
        "sort_order": 0,
        "metadata": {},
        "entitlements": [],
        "prices": [],
        "credit_grants": [],
        "version": 1,
    }
    assert get_plan(api, "free") == created


def test_create_plan__reply__has_rfc3339_utc_timestamps(api: httpx.Client) -> None:
    created = create_plan(api, "free")

    listed = api.get("/v1/plans").json()["data"][0]

    assert parse_utc(created["created_at"]) == parse_utc(created["updated_at"])
    assert listed["created_at"] == created["created_at"]
    assert parse_utc(listed["updated_at"]) == parse_utc(created["updated_at"])


def test_create_plan__metered_entitlement_without_period__gets_month_and_calendar(
    api: httpx.Client,
) -> None:
    create_feature(api, "api_calls", "metered")

    created = create_plan(api, "pro", entitlements=[{"feature": "api_calls", "value": 1000}])

    assert created["entitlements"] == [
        {
            "feature": "api_calls",
            "value": 1000,
            "unlimited": False,
            "period": "month",
            "reset": "calendar",
            "soft_limit": False,
            "overage": None,
        }
    ]
    assert get_plan(api, "pro")["entitlements"] == created["entitlements"]


def test_create_plan__unlimited_numeric_and_metered__read_back_with_null_value(
    api: httpx.Client,
) -> None:
    create_feature(api, "projects", "numeric")
    create_feature(api, "api_calls", "metered")

    created = create_plan(
        api,
        "enterprise",
        entitlements=[
            {"feature": "projects", "unlimited": True},
            {"feature": "api_calls", "unlimited": True, "period": "day"},
        ],
    )

    got = get_plan(api, "enterprise")
    assert got["entitlements"] == created["entitlements"]
    assert [(e["feature"], e["value"], e["unlimited"]) for e in got["entitlements"]] == [
        ("projects", None, True),
        ("api_calls", None, True),
    ]
    assert got["entitlements"][1]["period"] == "day"
    assert got["entitlements"][1]["reset"] == "calendar"


def test_list_plans__mixed_sort_orders__sorted_by_sort_order_then_key(api: httpx.Client) -> None:
    for key, sort_order in [("d", 30), ("c", 10), ("b", 20), ("a", 10)]:
        create_plan(api, key, sort_order=sort_order)

    listed = api.get("/v1/plans").json()

    assert [(p["sort_order"], p["key"]) for p in listed["data"]] == [
        (10, "a"),
        (10, "c"),
        (20, "b"),
        (30, "d"),
    ]


def test_list_plans__limit_2__pages_follow_sort_order_then_key(api: httpx.Client) -> None:
    for key, sort_order in [("d", 30), ("c", 10), ("b", 20), ("a", 10), ("e", -5)]:
        create_plan(api, key, sort_order=sort_order)

    pages: list[list[str]] = []
    cursors: list[str | None] = []
    cursor: str | None = None
    while len(pages) < 10:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = api.get("/v1/plans", params=params)
        assert response.status_code == 200, response.text
        pages.append([plan["key"] for plan in response.json()["data"]])
        cursor = response.json()["next_cursor"]
        cursors.append(cursor)
        if cursor is None:
            break

    assert pages == [["e", "a"], ["c", "b"], ["d"]]
    assert [c is None for c in cursors] == [False, False, True]


def test_list_plans__type_group_and_status_filters__return_only_matching_plans(
    api: httpx.Client,
) -> None:
    create_plan(api, "basic")
    create_plan(api, "pro", status="archived")
    create_plan(api, "extra_seats", type="add_on", group="seats")
    create_plan(api, "seats_base", group="seats")
    create_plan(api, "storage_pack", type="add_on")

    assert list_plan_keys(api, "type=add_on") == ["extra_seats", "storage_pack"]
    assert list_plan_keys(api, "type=base") == ["basic", "pro", "seats_base"]
    assert list_plan_keys(api, "group=seats") == ["extra_seats", "seats_base"]
    assert list_plan_keys(api, "group=nothing") == []
    assert list_plan_keys(api, "status=archived") == ["pro"]
    assert list_plan_keys(api, "status=active&type=base&group=default") == ["basic"]


def test_patch_plan__name_only__keeps_entitlements_and_prices(api: httpx.Client) -> None:
    create_catalog_features(api)
    before = create_plan(
        api,
        "pro",
        trial_days=14,
        sort_order=20,
        metadata={"badge": "Popular"},
        entitlements=[
            {"feature": "sso", "value": True},
            {"feature": "api_calls", "value": 100, "soft_limit": True, "overage": {"price": 5}},
        ],
        prices=[MONTHLY_USD, {"interval": "year", "currency": "usd", "amount": 29000}],
    )

    after = patch_plan(api, "pro", {"name": "Professional"})

    assert after["name"] == "Professional"
    unchanged = {k: v for k, v in before.items() if k not in ("name", "updated_at")}
    assert {k: after[k] for k in unchanged} == unchanged
    assert parse_utc(after["updated_at"]) >= parse_utc(before["updated_at"])


def test_patch_plan__entitlements__replace_the_list_whole(api: httpx.Client) -> None:
    create_catalog_features(api)
    create_plan(
        api,
        "pro",
        entitlements=[
            {"feature": "sso", "value": True},
            {"feature": "projects", "value": 10},
            {"feature": "support", "value": "email"},
        ],
        prices=[MONTHLY_USD],
    )

    after = patch_plan(
        api,
        "pro",
        {
            "entitlements": [
                {"feature": "api_calls", "value": 500},
                {"feature": "projects", "value": 25},
            ]
        },
    )

    assert entitled(after) == [("api_calls", 500), ("projects", 25)]
    assert after["entitlements"][0]["period"] == "month"
    assert after["prices"] == [MONTHLY_USD]
    # The features it dropped are free again: no plan references them.
    assert api.delete("/v1/features/sso").status_code == 204
    assert api.delete("/v1/features/projects").status_code == 409


def test_patch_plan__same_entitlements_with_new_values__replaced_in_the_given_order(
    api: httpx.Client,
) -> None:
    create_catalog_features(api)
    create_plan(
        api,
        "pro",
        entitlements=[{"feature": "projects", "value": 10}, {"feature": "sso", "value": True}],
    )

    after = patch_plan(
        api,
        "pro",
        {"entitlements": [{"feature": "sso", "value": False}, {"feature": "projects", "value": 3}]},
    )
    again = patch_plan(
        api,
        "pro",
        {"entitlements": [{"feature": "sso", "value": False}, {"feature": "projects", "value": 4}]},
    )

    assert entitled(after) == [("sso", False), ("projects", 3)]
    assert entitled(again) == [("sso", False), ("projects", 4)]


def test_patch_plan__empty_prices__removes_every_price(api: httpx.Client) -> None:
    create_feature(api, "sso")
    create_plan(
        api,
        "pro",
        entitlements=[{"feature": "sso", "value": True}],
        prices=[MONTHLY_USD, {"interval": "year", "currency": "usd", "amount": 29000}],
    )

    after = patch_plan(api, "pro", {"prices": []})

    assert after["prices"] == []
    assert entitled(after) == [("sso", True)]


def test_patch_plan__trial_days_null__clears_the_trial(api: httpx.Client) -> None:
    create_plan(api, "pro", trial_days=14, sort_order=5)

    after = patch_plan(api, "pro", {"trial_days": None})

    assert after["trial_days"] is None
    assert after["sort_order"] == 5


def test_create_plan__defaults_in_two_groups__both_are_default(api: httpx.Client) -> None:
    create_plan(api, "free", is_default=True)

    seats = api.post(
        "/v1/plans",
        json={"key": "seats_free", "name": "Seats", "group": "seats", "is_default": True},
    )

    assert seats.status_code == 201, seats.text
    assert [
        (p["key"], p["group"], p["is_default"]) for p in api.get("/v1/plans").json()["data"]
    ] == [
        ("free", "default", True),
        ("seats_free", "seats", True),
    ]


def test_patch_plan__default_after_the_old_default_is_archived__becomes_the_default(
    api: httpx.Client,
) -> None:
    create_plan(api, "free", is_default=True)
    create_plan(api, "starter")

    archived = patch_plan(api, "free", {"status": "archived"})
    promoted = patch_plan(api, "starter", {"is_default": True})

    assert (archived["status"], archived["is_default"]) == ("archived", True)
    assert (promoted["status"], promoted["is_default"]) == ("active", True)
    assert list_plan_keys(api, "status=active") == ["starter"]


def test_put_plan_entitlement__new_feature__returned_normalized_and_appended(
    api: httpx.Client,
) -> None:
    create_catalog_features(api)
    create_plan(
        api,
        "pro",
        entitlements=[{"feature": "sso", "value": True}, {"feature": "projects", "value": 10}],
    )

    response = api.put("/v1/plans/pro/entitlements/api_calls", json={"value": 1000})

    assert response.status_code == 200, response.text
    expected = {
        "feature": "api_calls",
        "value": 1000,
        "unlimited": False,
        "period": "month",
        "reset": "calendar",
        "soft_limit": False,
        "overage": None,
    }
    assert response.json() == expected
    plan = get_plan(api, "pro")
    assert entitled(plan) == [("sso", True), ("projects", 10), ("api_calls", 1000)]
    assert plan["entitlements"][-1] == expected


def test_put_plan_entitlement__existing_feature__replaced_in_place(api: httpx.Client) -> None:
    create_catalog_features(api)
    before = create_plan(
        api,
        "pro",
        entitlements=[
            {"feature": "sso", "value": True},
            {"feature": "projects", "value": 10},
            {"feature": "support", "value": "email"},
        ],
    )

    response = api.put("/v1/plans/pro/entitlements/projects", json={"unlimited": True})

    assert response.status_code == 200, response.text
    assert (response.json()["value"], response.json()["unlimited"]) == (None, True)
    plan = get_plan(api, "pro")
    assert [(e["feature"], e["value"], e["unlimited"]) for e in plan["entitlements"]] == [
        ("sso", True, False),
        ("projects", None, True),
        ("support", "email", False),
    ]
    assert plan["created_at"] == before["created_at"]
    assert parse_utc(plan["updated_at"]) >= parse_utc(before["updated_at"])


def test_delete_plan_entitlement__present__204_and_gone(api: httpx.Client) -> None:
    create_catalog_features(api)
    create_plan(
        api,
        "pro",
        entitlements=[
            {"feature": "sso", "value": True},
            {"feature": "projects", "value": 10},
            {"feature": "support", "value": "chat"},
        ],
    )

    response = api.delete("/v1/plans/pro/entitlements/projects")

    assert response.status_code == 204
    assert response.content == b""
    assert entitled(get_plan(api, "pro")) == [("sso", True), ("support", "chat")]
    assert api.delete("/v1/features/projects").status_code == 204


def test_delete_plan_entitlement__then_put_one__appended_after_the_rest(
    api: httpx.Client,
) -> None:
    create_catalog_features(api)
    create_plan(
        api,
        "pro",
        entitlements=[{"feature": "sso", "value": True}, {"feature": "projects", "value": 10}],
    )
    api.delete("/v1/plans/pro/entitlements/sso").raise_for_status()

    response = api.put("/v1/plans/pro/entitlements/sso", json={"value": False})

    assert response.status_code == 200, response.text
    assert entitled(get_plan(api, "pro")) == [("projects", 10), ("sso", False)]


def test_delete_plan_entitlement__feature_not_on_plan__404_entitlement_not_found(
    api: httpx.Client,
) -> None:
    create_catalog_features(api)
    create_plan(api, "pro", entitlements=[{"feature": "sso", "value": True}])

    response = api.delete("/v1/plans/pro/entitlements/projects")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert response.json()["error"]["code"] == "entitlement_not_found"
    assert entitled(get_plan(api, "pro")) == [("sso", True)]


def test_list_plan_features__mixed_catalog__plan_entitlements_first_then_fallbacks(
    api: httpx.Client,
) -> None:
    create_feature(api, "analytics")
    create_feature(api, "api_calls", "metered")
    create_feature(api, "audit_log", default=True)
    create_feature(api, "legacy", status="archived")
    create_feature(api, "projects", "numeric")
    create_feature(api, "seats", "numeric", default=5)
    create_feature(api, "sso")
    create_feature(api, "storage", "metered", default=10)
    create_feature(api, "support", "enum")
    create_feature(api, "tier", "enum", default="chat")
    create_plan(
        api,
        "pro",
        entitlements=[
            {"feature": "sso", "value": True},
            {"feature": "projects", "unlimited": True},
            {"feature": "api_calls", "value": 1000, "soft_limit": True},
        ],
    )

    response = api.get("/v1/plans/pro/features")

    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    offered = response.json()["data"]
    assert [(f["feature"], f["included"], f["value"], f["unlimited"]) for f in offered] == [
        ("sso", True, True, False),
        ("projects", True, None, True),
        ("api_calls", True, 1000, False),
        ("analytics", False, False, False),
        ("audit_log", False, True, False),
        ("seats", False, 5, False),
        ("storage", False, 10, False),
        ("support", False, None, False),
        ("tier", False, "chat", False),
    ]
    assert (offered[2]["period"], offered[2]["soft_limit"]) == ("month", True)
    assert (offered[6]["period"], offered[6]["soft_limit"]) == (None, False)
    assert offered[0] | {"included": None} == {
        "feature": "sso",
        "name": "Sso",
        "description": "",
        "type": "boolean",
        "unit": None,
        "visibility": "public",
        "included": None,
        "value": True,
        "unlimited": False,
        "period": None,
        "soft_limit": False,
    }


def test_list_plan_features__metered_feature_without_default__falls_back_to_zero(
    api: httpx.Client,
) -> None:
    create_feature(api, "api_calls", "metered")
    create_feature(api, "projects", "numeric")
    create_plan(api, "free")

    offered = api.get("/v1/plans/free/features").json()["data"]

    assert [(f["feature"], f["included"], f["value"]) for f in offered] == [
        ("api_calls", False, 0),
        ("projects", False, 0),
    ]


def test_delete_plan__in_use_features__204_then_features_can_be_deleted(
    api: httpx.Client,
) -> None:
    create_catalog_features(api)
    create_plan(
        api,
        "pro",
        entitlements=[
            {"feature": "sso", "value": True},
            {"feature": "api_calls", "value": 10},
        ],
        prices=[MONTHLY_USD],
    )
    assert api.delete("/v1/features/sso").status_code == 409

    deleted = api.delete("/v1/plans/pro")

    assert deleted.status_code == 204
    assert deleted.content == b""
    got = api.get("/v1/plans/pro")
    assert got.status_code == 404
    assert got.json()["error"]["code"] == "plan_not_found"
    assert api.delete("/v1/features/sso").status_code == 204
    assert api.delete("/v1/features/api_calls").status_code == 204
    assert list_plan_keys(api) == []

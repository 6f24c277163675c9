"""`/v1/features` used as documented: changes, archiving, deletion, filters, pages; and the
OpenAPI document that describes the whole API."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.routing import APIRoute

from tests.support.api import SUPPORT_OPTIONS, create_feature, create_plan, parse_utc
from tierkit.server.api.routes import features as feature_routes
from tierkit.server.api.routes import plans as plan_routes


def patch_feature(api: httpx.Client, key: str, changes: dict[str, Any]) -> dict[str, Any]:
    response = api.patch(f"/v1/features/{key}", json=changes)
    assert response.status_code == 200, response.text
    changed: dict[str, Any] = response.json()
    return changed


def list_keys(api: httpx.Client, query: str) -> list[str]:
    response = api.get(f"/v1/features?{query}")
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [feature["key"] for feature in response.json()["data"]]


def test_create_feature__reply__has_rfc3339_utc_timestamps(api: httpx.Client) -> None:
    created = create_feature(api, "sso")

    got = api.get("/v1/features/sso").json()

    assert parse_utc(created["created_at"]) == parse_utc(created["updated_at"])
    assert got["created_at"] == created["created_at"]
    assert parse_utc(got["updated_at"]).tzinfo is not None


def test_patch_feature__name_only__changes_only_name_and_bumps_updated_at(
    api: httpx.Client,
) -> None:
    before = create_feature(
        api,
        "projects",
        "numeric",
        description="Projects you can create.",
        unit="project",
        visibility="private",
        status="deprecated",
        default=3,
    )

    after = patch_feature(api, "projects", {"name": "Workspaces"})

    assert after["name"] == "Workspaces"
    unchanged = {k: v for k, v in before.items() if k not in ("name", "updated_at")}
    assert {k: after[k] for k in unchanged} == unchanged
    assert after["created_at"] == before["created_at"]
    assert parse_utc(after["updated_at"]) >= parse_utc(before["updated_at"])
    assert api.get("/v1/features/projects").json() == after


def test_patch_feature__global_value_then_null__sets_then_clears_it(api: httpx.Client) -> None:
    create_feature(api, "maintenance", default=False)

    switched_on = patch_feature(api, "maintenance", {"global_value": True})
    cleared = patch_feature(api, "maintenance", {"global_value": None})

    assert switched_on["global_value"] is True
    assert cleared["global_value"] is None
    assert cleared["default"] is False
    assert api.get("/v1/features/maintenance").json()["global_value"] is None


def test_patch_feature__options_with_one_added__keeps_plans_and_offers_the_new_option(
    api: httpx.Client,
) -> None:
    create_feature(api, "support", "enum", default="email")
    plan = create_plan(api, "pro", [{"feature": "support", "value": "chat"}])
    options = [*SUPPORT_OPTIONS, {"key": "phone", "name": "Phone"}]

    changed = patch_feature(api, "support", {"options": options})
    plan_after = api.get("/v1/plans/pro").json()
    put = api.put("/v1/plans/pro/entitlements/support", json={"value": "phone"})

    assert changed["options"] == options
    assert changed["default"] == "email"
    assert plan_after["entitlements"] == plan["entitlements"]
    assert put.status_code == 200, put.text
    assert api.get("/v1/plans/pro").json()["entitlements"][0]["value"] == "phone"


def test_patch_feature__boolean_to_numeric_unused_with_fitting_default__changes_type(
    api: httpx.Client,
) -> None:
    create_feature(api, "seats", "boolean", default=False)

    changed = patch_feature(api, "seats", {"type": "numeric", "default": 5, "unit": "seat"})

    assert (changed["type"], changed["default"], changed["unit"]) == ("numeric", 5, "seat")
    got = api.get("/v1/features/seats").json()
    assert (got["type"], got["default"]) == ("numeric", 5)


def test_patch_feature__numeric_to_metered_while_used__plan_gets_metered_defaults(
    api: httpx.Client,
) -> None:
    create_feature(api, "builds", "numeric")
    create_plan(api, "pro", [{"feature": "builds", "value": 100}])

    changed = patch_feature(
        api, "builds", {"type": "metered", "meter": {"event": "build", "aggregation": "count"}}
    )

    assert changed["type"] == "metered"
    assert api.get("/v1/plans/pro").json()["entitlements"] == [
        {
            "feature": "builds",
            "value": 100,
            "unlimited": False,
            "period": "month",
            "reset": "calendar",
            "soft_limit": False,
            "overage": None,
        }
    ]


def test_patch_feature__archive_while_a_plan_uses_it__plan_still_reads_it_back(
    api: httpx.Client,
) -> None:
    create_feature(api, "sso")
    plan = create_plan(api, "pro", [{"feature": "sso", "value": True}])

    archived = patch_feature(api, "sso", {"status": "archived"})

    assert archived["status"] == "archived"
    got = api.get("/v1/plans/pro")
    assert got.status_code == 200
    assert got.json()["entitlements"] == plan["entitlements"]
    assert got.json()["entitlements"][0]["value"] is True


def test_archived_feature__added_to_another_plan__is_rejected_as_archived(
    api: httpx.Client,
) -> None:
    create_feature(api, "sso")
    create_feature(api, "projects", "numeric")
    create_plan(api, "pro", [{"feature": "sso", "value": True}])
    create_plan(api, "basic", [{"feature": "projects", "value": 1}])
    patch_feature(api, "sso", {"status": "archived"})

    new_plan = api.post(
        "/v1/plans",
        json={"key": "team", "name": "Team", "entitlements": [{"feature": "sso", "value": True}]},
    )
    patched = api.patch(
        "/v1/plans/basic",
        json={
            "entitlements": [
                {"feature": "projects", "value": 1},
                {"feature": "sso", "value": True},
            ]
        },
    )
    put = api.put("/v1/plans/basic/entitlements/sso", json={"value": True})

    for response in (new_plan, patched, put):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "feature_archived"
    assert api.get("/v1/plans/team").status_code == 404
    assert [e["feature"] for e in api.get("/v1/plans/basic").json()["entitlements"]] == ["projects"]


def test_archived_feature__plan_that_had_it_patched_unchanged__keeps_it(
    api: httpx.Client,
) -> None:
    create_feature(api, "sso")
    create_feature(api, "projects", "numeric")
    entitlements = [{"feature": "sso", "value": True}, {"feature": "projects", "value": 5}]
    plan = create_plan(api, "pro", entitlements)
    patch_feature(api, "sso", {"status": "archived"})

    patched = api.patch("/v1/plans/pro", json={"entitlements": entitlements, "name": "Pro 2"})
    put = api.put("/v1/plans/pro/entitlements/sso", json={"value": False})

    assert patched.status_code == 200, patched.text
    assert patched.json()["entitlements"] == plan["entitlements"]
    assert patched.json()["name"] == "Pro 2"
    assert put.status_code == 200, put.text
    assert api.get("/v1/plans/pro").json()["entitlements"][0] == {
        **plan["entitlements"][0],
        "value": False,
    }


def test_delete_feature__unused__204_then_get_is_404(api: httpx.Client) -> None:
    create_feature(api, "sso")

    deleted = api.delete("/v1/features/sso")
    got = api.get("/v1/features/sso")

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert got.status_code == 404
    assert got.json()["error"]["code"] == "feature_not_found"
    assert list_keys(api, "") == []


def test_list_features__status_filter__returns_only_that_status(api: httpx.Client) -> None:
    create_feature(api, "a_active")
    create_feature(api, "b_beta", status="coming_soon")
    create_feature(api, "c_old", status="deprecated")
    create_feature(api, "d_gone", status="archived")
    create_feature(api, "e_active")

    assert list_keys(api, "status=active") == ["a_active", "e_active"]
    assert list_keys(api, "status=coming_soon") == ["b_beta"]
    assert list_keys(api, "status=deprecated") == ["c_old"]
    assert list_keys(api, "status=archived") == ["d_gone"]
    assert list_keys(api, "") == ["a_active", "b_beta", "c_old", "d_gone", "e_active"]


def test_list_features__type_filter__returns_only_that_type(api: httpx.Client) -> None:
    create_feature(api, "calls", "metered")
    create_feature(api, "projects", "numeric")
    create_feature(api, "sso", "boolean")
    create_feature(api, "storage", "metered")
    create_feature(api, "support", "enum")

    assert list_keys(api, "type=metered") == ["calls", "storage"]
    assert list_keys(api, "type=numeric") == ["projects"]
    assert list_keys(api, "type=boolean") == ["sso"]
    assert list_keys(api, "type=enum") == ["support"]
    assert list_keys(api, "type=metered&status=active") == ["calls", "storage"]
    assert list_keys(api, "type=metered&status=archived") == []


def test_list_features__seven_with_limit_3__three_pages_in_key_order(api: httpx.Client) -> None:
    keys = ["g7", "c3", "a1", "f6", "b2", "e5", "d4"]
    for key in keys:
        create_feature(api, key)

    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(pages) < 10:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        response = api.get("/v1/features", params=params)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break

    assert [len(page["data"]) for page in pages] == [3, 3, 1]
    assert [page["next_cursor"] is None for page in pages] == [False, False, True]
    listed = [feature["key"] for page in pages for feature in page["data"]]
    assert listed == sorted(keys)


# The OpenAPI document

SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in methods
    ]


def test_openapi__every_operation__has_a_unique_snake_case_operation_id(
    api: httpx.Client,
) -> None:
    response = api.get("/openapi.json")

    assert response.status_code == 200
    ids = [operation.get("operationId", "") for _, _, operation in _operations(response.json())]
    assert len(ids) >= 15
    assert [op_id for op_id in ids if not SNAKE_CASE.fullmatch(op_id)] == []
    assert sorted(op_id for op_id in set(ids) if ids.count(op_id) > 1) == []


def test_openapi__catalog_operations__are_named_after_their_route_functions(
    api: httpx.Client,
) -> None:
    spec = api.get("/openapi.json").json()

    by_route = {(path, method): op["operationId"] for path, method, op in _operations(spec)}
    expected = {
        (route.path, method.lower()): route.endpoint.__name__
        for router in (feature_routes.router, plan_routes.router)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert len(expected) == 17
    assert {route: by_route.get(route) for route in expected} == expected
    assert {
        "create_feature",
        "list_features",
        "get_feature",
        "update_feature",
        "delete_feature",
        "create_plan",
        "list_plans",
        "get_plan",
        "update_plan",
        "delete_plan",
        "put_plan_entitlement",
        "delete_plan_entitlement",
        "list_plan_features",
        "list_plan_versions",
        "migrate_plan_version",
        "get_feature_rules",
        "put_feature_rules",
    } <= set(by_route.values())


def test_openapi__every_v1_operation__declares_the_bearer_scheme(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()

    schemes = spec["components"]["securitySchemes"]
    bearer = [
        name for name, s in schemes.items() if (s["type"], s.get("scheme")) == ("http", "bearer")
    ]
    assert len(bearer) == 1
    v1 = [(path, method, op) for path, method, op in _operations(spec) if path.startswith("/v1/")]
    assert len(v1) >= 13
    missing = [
        f"{method} {path}"
        for path, method, op in v1
        if {bearer[0]: []} not in op.get("security", [])
    ]
    assert missing == []


def test_docs__get__is_an_html_page(api: httpx.Client) -> None:
    response = api.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text

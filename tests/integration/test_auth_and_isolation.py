"""Who may call what: keys, their kinds and environments, over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.support.api import error_of
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.container import Services

ClientFactory = Callable[..., httpx.Client]

SSO: dict[str, Any] = {"key": "sso", "name": "Single sign-on", "type": "boolean"}
PRO: dict[str, Any] = {
    "key": "pro",
    "name": "Pro",
    "entitlements": [{"feature": "sso", "value": True}],
    "prices": [{"interval": "month", "currency": "usd", "amount": 2900}],
}

SECRET_ROUTES = [
    ("GET", "/v1/features"),
    ("POST", "/v1/features"),
    ("GET", "/v1/plans"),
    ("GET", "/v1/api-keys"),
    ("GET", "/v1/environment"),
]


def seed_development(api: httpx.Client) -> None:
    api.post("/v1/features", json=SSO).raise_for_status()
    api.post("/v1/plans", json=PRO).raise_for_status()


# Authentication


@pytest.mark.parametrize(("method", "path"), SECRET_ROUTES)
def test_request__without_a_key__401_missing_api_key(
    anonymous: httpx.Client, method: str, path: str
) -> None:
    response = anonymous.request(method, path, json=SSO if method == "POST" else None)

    assert response.status_code == 401
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == (
        "authentication",
        "missing_api_key",
        None,
    )
    assert "Authorization: Bearer" in error["message"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Authorization": "Bearer tk_sec_" + "x" * 40}, "invalid_api_key"),
        ({"Authorization": "Bearer tk_pub_" + "x" * 40}, "invalid_api_key"),
        ({"Authorization": "Bearer sk_live_not_ours"}, "invalid_api_key"),
        ({"X-Api-Key": "tk_sec_" + "x" * 40}, "invalid_api_key"),
        ({"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}, "missing_api_key"),
        ({"Authorization": "Bearer"}, "missing_api_key"),
        ({"Authorization": "tk_sec_" + "x" * 40}, "missing_api_key"),
        ({"X-Api-Key": ""}, "missing_api_key"),
    ],
    ids=[
        "unknown_secret_key",
        "unknown_publishable_key",
        "foreign_key_format",
        "unknown_key_in_x_api_key",
        "basic_auth",
        "bearer_without_key",
        "key_without_scheme",
        "empty_x_api_key",
    ],
)
def test_request__with_a_key_that_is_not_ours__401(
    anonymous: httpx.Client, headers: dict[str, str], code: str
) -> None:
    response = anonymous.get("/v1/features", headers=headers)

    assert response.status_code == 401
    error = error_of(response)
    assert (error["type"], error["code"]) == ("authentication", code)


def test_request__with_a_revoked_key__401_and_other_keys_keep_working(
    api: httpx.Client, make_client: ClientFactory
) -> None:
    created = api.post("/v1/api-keys", json={"kind": "secret", "name": "ci"}).json()
    doomed = make_client(key=created["key"])
    assert doomed.get("/v1/features").status_code == 200

    revoked = api.delete(f"/v1/api-keys/{created['id']}")

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = doomed.get("/v1/features")
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_api_key"
    assert api.get("/v1/features").status_code == 200


def test_revoke__twice__keeps_the_first_revocation_time(api: httpx.Client) -> None:
    created = api.post("/v1/api-keys", json={"kind": "publishable"}).json()
    first = api.delete(f"/v1/api-keys/{created['id']}").json()

    second = api.delete(f"/v1/api-keys/{created['id']}")

    assert second.status_code == 200
    assert second.json()["revoked_at"] == first["revoked_at"]


def test_revoke__key_of_another_environment__404_and_it_keeps_working(
    api: httpx.Client, production: httpx.Client, make_client: ClientFactory
) -> None:
    created = production.post("/v1/api-keys", json={"kind": "secret"}).json()

    response = api.delete(f"/v1/api-keys/{created['id']}")

    assert response.status_code == 404
    assert error_of(response)["code"] == "api_key_not_found"
    assert make_client(key=created["key"]).get("/v1/environment").status_code == 200


def test_x_api_key_header__holding_a_secret_key__works_like_bearer(
    server_url: str, make_key: Callable[..., str], api: httpx.Client
) -> None:
    seed_development(api)
    key = make_key("development", KeyKind.SECRET)

    with httpx.Client(base_url=server_url, headers={"X-Api-Key": key}, timeout=30) as client:
        by_header = client.get("/v1/plans/pro")
        environment = client.get("/v1/environment")

    assert by_header.status_code == 200
    assert by_header.json() == api.get("/v1/plans/pro").json()
    assert environment.json()["name"] == "development"


# Publishable keys


@pytest.mark.parametrize(("method", "path"), SECRET_ROUTES)
def test_publishable_key__on_a_secret_route__403_permission(
    make_client: ClientFactory, api: httpx.Client, method: str, path: str
) -> None:
    publishable = make_client(kind=KeyKind.PUBLISHABLE)

    response = publishable.request(method, path, json=SSO if method == "POST" else None)

    assert response.status_code == 403
    error = error_of(response)
    assert (error["type"], error["code"]) == ("permission", "secret_key_required")
    assert api.get("/v1/features").json()["data"] == []


# Environments


def test_environment__of_each_key__is_named_by_the_key(
    api: httpx.Client, production: httpx.Client
) -> None:
    development = api.get("/v1/environment")
    prod = production.get("/v1/environment")

    assert development.status_code == prod.status_code == 200
    assert development.json()["name"] == "development"
    assert prod.json()["name"] == "production"
    assert development.json()["id"] != prod.json()["id"]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (("GET", "/v1/features/sso", None), "feature_not_found"),
        (("PATCH", "/v1/features/sso", {"name": "Taken over"}), "feature_not_found"),
        (("DELETE", "/v1/features/sso", None), "feature_not_found"),
        (("GET", "/v1/plans/pro", None), "plan_not_found"),
        (("PATCH", "/v1/plans/pro", {"name": "Taken over"}), "plan_not_found"),
        (("DELETE", "/v1/plans/pro", None), "plan_not_found"),
        (("GET", "/v1/plans/pro/features", None), "plan_not_found"),
        (("PUT", "/v1/plans/pro/entitlements/sso", {"value": False}), "plan_not_found"),
        (("DELETE", "/v1/plans/pro/entitlements/sso", None), "plan_not_found"),
    ],
    ids=[
        "get_feature",
        "patch_feature",
        "delete_feature",
        "get_plan",
        "patch_plan",
        "delete_plan",
        "plan_features",
        "put_entitlement",
        "delete_entitlement",
    ],
)
def test_production_key__on_a_development_object__404_and_it_is_untouched(
    api: httpx.Client,
    production: httpx.Client,
    call: tuple[str, str, dict[str, Any] | None],
    code: str,
) -> None:
    seed_development(api)
    before = (api.get("/v1/features").json(), api.get("/v1/plans").json())
    method, path, body = call

    response = production.request(method, path, json=body)

    assert response.status_code == 404
    error = error_of(response)
    assert (error["type"], error["code"]) == ("not_found", code)
    assert (api.get("/v1/features").json(), api.get("/v1/plans").json()) == before


def test_production_key__on_a_plan_naming_a_development_feature__feature_not_found(
    api: httpx.Client, production: httpx.Client
) -> None:
    seed_development(api)

    response = production.post("/v1/plans", json=PRO)

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("feature_not_found", "entitlements.0.feature")
    assert production.get("/v1/plans").json()["data"] == []


def test_production_key__lists__show_none_of_developments_objects(
    api: httpx.Client, production: httpx.Client
) -> None:
    seed_development(api)
    api.post("/v1/api-keys", json={"kind": "publishable", "name": "web"}).raise_for_status()

    features = production.get("/v1/features").json()
    plans = production.get("/v1/plans").json()
    keys = production.get("/v1/api-keys").json()

    assert features == {"data": [], "next_cursor": None}
    assert plans == {"data": [], "next_cursor": None}
    assert {key["environment"] for key in keys["data"]} == {"production"}
    assert "web" not in {key["name"] for key in keys["data"]}
    assert [f["key"] for f in api.get("/v1/features").json()["data"]] == ["sso"]


def test_same_keys__in_development_and_production__are_independent_objects(
    api: httpx.Client, production: httpx.Client
) -> None:
    seed_development(api)
    numeric_sso = {"key": "sso", "name": "SSO seats", "type": "numeric", "default": 2}
    prod_pro = {**PRO, "entitlements": [{"feature": "sso", "value": 5}], "is_default": True}

    created_feature = production.post("/v1/features", json=numeric_sso)
    created_plan = production.post("/v1/plans", json=prod_pro)
    renamed = production.patch("/v1/features/sso", json={"name": "Seats with SSO"})

    assert (created_feature.status_code, created_plan.status_code) == (201, 201)
    assert renamed.status_code == 200
    development_sso = api.get("/v1/features/sso").json()
    assert (development_sso["type"], development_sso["name"]) == ("boolean", "Single sign-on")
    assert development_sso["id"] != created_feature.json()["id"]
    assert api.get("/v1/plans/pro").json()["entitlements"][0]["value"] is True
    assert api.get("/v1/plans/pro").json()["is_default"] is False
    assert production.get("/v1/plans/pro").json()["entitlements"][0]["value"] == 5

    assert production.delete("/v1/plans/pro").status_code == 204
    assert production.delete("/v1/features/sso").status_code == 204
    assert api.get("/v1/features/sso").status_code == 200
    assert api.get("/v1/plans/pro").status_code == 200


# API keys


@pytest.mark.parametrize(("kind", "prefix"), [("secret", "tk_sec_"), ("publishable", "tk_pub_")])
def test_create_api_key__returns_the_key_once_and_lists_it_without_the_secret(
    api: httpx.Client, kind: str, prefix: str
) -> None:
    response = api.post("/v1/api-keys", json={"kind": kind, "name": "checkout"})

    assert response.status_code == 201
    created = response.json()
    secret = created["key"]
    assert secret.startswith(prefix)
    assert len(secret) > len(prefix) + 30
    assert (created["kind"], created["name"], created["environment"]) == (
        kind,
        "checkout",
        "development",
    )
    assert created["hint"].startswith(prefix)
    assert created["hint"].endswith(secret[-4:])
    assert created["revoked_at"] is None
    listed = {key["id"]: key for key in api.get("/v1/api-keys").json()["data"]}
    assert listed[created["id"]] == {k: v for k, v in created.items() if k != "key"}
    assert secret not in api.get("/v1/api-keys").text


def test_create_api_key__new_secret_key__opens_its_environment(
    api: httpx.Client, make_client: ClientFactory
) -> None:
    seed_development(api)
    secret = api.post("/v1/api-keys", json={"kind": "secret"}).json()["key"]

    client = make_client(key=secret)

    assert client.get("/v1/environment").json()["name"] == "development"
    assert client.get("/v1/plans/pro").json()["key"] == "pro"


def test_create_api_key__new_publishable_key__is_known_but_limited(
    api: httpx.Client, make_client: ClientFactory
) -> None:
    secret = api.post("/v1/api-keys", json={"kind": "publishable"}).json()["key"]

    response = make_client(key=secret).get("/v1/features")

    assert response.status_code == 403
    assert error_of(response)["code"] == "secret_key_required"


def test_api_keys__in_the_database__are_stored_hashed_never_in_plain_text(
    api: httpx.Client, services: Services
) -> None:
    secrets = [
        api.post("/v1/api-keys", json={"kind": kind}).json()["key"]
        for kind in ("secret", "publishable")
    ]

    with services.database.read() as session:
        rows = [tuple(row) for row in session.execute(text("select * from api_keys"))]
        hashes = set(session.scalars(text("select key_hash from api_keys")))

    stored = " ".join(str(value) for row in rows for value in row)
    for secret in secrets:
        assert secret not in stored
        assert secret[len("tk_sec_") :] not in stored
        assert hashlib.sha256(secret.encode()).hexdigest() in hashes


# Health


@pytest.mark.parametrize(
    ("path", "status"), [("/healthz", "ok"), ("/readyz", "ready")], ids=["healthz", "readyz"]
)
def test_health__without_a_key__200(anonymous: httpx.Client, path: str, status: str) -> None:
    response = anonymous.get(path)

    assert response.status_code == 200
    assert response.json()["status"] == status

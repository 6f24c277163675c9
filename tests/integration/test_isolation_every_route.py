"""Isolation over every route the app serves: a secret key of another environment gets a 404
for each object of this one (and a PUT creates its own object instead of touching ours), lists
and documents show it none of ours, and nothing of ours changes; a publishable key gets a 403
everywhere but checks, OFREP and the pricing table. The routes come from the app's OpenAPI, so
a new route joins the matrix by itself (and needs a path value below to be reachable)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tierkit.server.app import create_app
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.container import Services
from tierkit.server.settings import Settings

MARKER = "zz_"
"""Every key of the development world starts with it (ids never hold it); no reply to the
other environment may contain it unless the request did."""

PUBLISHABLE_ROUTES = {
    ("POST", "/v1/check"),
    ("POST", "/v1/check/bulk"),
    ("POST", "/ofrep/v1/evaluate/flags/{key}"),
    ("POST", "/ofrep/v1/evaluate/flags"),
    ("POST", "/api/features/{key}/resolve"),
    ("POST", "/api/features/resolve"),
    ("GET", "/v1/pricing-table"),
    ("POST", "/compat/schematic/flags/{key}/check"),
    ("POST", "/compat/schematic/flags/check"),
}
NO_KEY_ROUTES = {("GET", "/healthz"), ("GET", "/readyz")}
STREAMS = {("GET", "/v1/sdk/stream")}  # endless; its isolation is the change feed's filter
UPSERTS = {
    ("PUT", "/v1/companies/{key}"): 201,
    ("PUT", "/v1/users/{key}"): 201,
    ("PUT", "/api/accounts/{key}"): 200,  # Kickplan's upsert answers 200 either way
    # Compatibility routes that create by the keys of their body
    ("POST", "/compat/schematic/companies"): 200,
    ("POST", "/compat/schematic/users"): 200,
    ("POST", "/compat/schematic/batch"): 200,
    ("POST", "/compat/commet/api/v1/plans"): 201,
    ("POST", "/compat/commet/api/v1/plans/manage"): 201,
}
"""PUT by key creates the other environment's own object, and ours is untouched (these run
last, so that the other routes meet no object of that key there)."""
FOUND_FALSE = {("GET", "/v1/sdk/companies/{key}"), ("GET", "/v1/sdk/users/{key}")}
"""The SDK reads a company or user it does not know as an empty one (as checks do)."""


@dataclass(frozen=True)
class World:
    """The development objects, by path parameter."""

    ids: dict[str, str]

    def path(self, template: str) -> str:
        """`template` with this world's object for each parameter."""
        if template.startswith("/compat/commet/api/v1/feature-access"):
            template += "?customerId=zz_acme"
        # /v1/<resource>/..., /api/<resource>/..., /compat/<service>[/api/v1]/<resource>/...
        native = template.replace("/compat/commet/api/v1/", "/compat/commet/")
        native = native.removeprefix("/compat")
        resource = native.split("/")[2]
        key_of = {"plans": "zz_pro", "companies": "zz_acme", "users": "zz_user", "credits": "zz_ai"}
        key = key_of.get(resource, "zz_sso")  # features, OFREP flags, Kickplan features
        if resource in {"accounts", "sdk"}:
            key = "zz_user" if template.startswith("/v1/sdk/users") else "zz_acme"
        feature = "zz_calls" if "/usage/" in template else "zz_sso"
        values = {
            "key": key,
            "code": "zz_sso",
            "feature": feature,
            "bundle": "zz_boost",
            **self.ids,
        }
        return template.format(**values)


BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/v1/features/{key}"): {"name": "Other"},
    ("PUT", "/v1/features/{key}/rules"): [],
    ("PATCH", "/v1/plans/{key}"): {"name": "Other"},
    ("PUT", "/v1/plans/{key}/entitlements/{feature}"): {"value": True},
    ("PUT", "/v1/companies/{key}"): {"name": "Other"},
    ("POST", "/v1/companies/{key}/subscriptions"): {"plan": "zz_pro"},
    ("PATCH", "/v1/companies/{key}/subscriptions/{subscription_id}"): {"quantity": 2},
    ("PUT", "/v1/companies/{key}/overrides/{feature}"): {"value": True},
    ("PUT", "/v1/users/{key}"): {"name": "Other"},
    ("PUT", "/api/accounts/{key}"): {"name": "Other"},
    ("POST", "/api/features/{key}/resolve"): {"context": {"account_key": "zz_acme"}},
    ("POST", "/ofrep/v1/evaluate/flags/{key}"): {"context": {"targetingKey": "zz_acme"}},
    ("POST", "/v1/companies/{key}/credit-grants"): {"credit": "zz_ai", "amount": 1},
    ("PATCH", "/v1/webhooks/{endpoint_id}"): {"description": "other"},
    ("POST", "/v1/plans/{key}/migrations"): {"from_version": 1, "to_version": 2},
    ("POST", "/compat/schematic/flags/{key}/check"): {"company": {"id": "zz_acme"}},
    ("POST", "/compat/schematic/companies"): {"keys": {"id": "zz_acme"}, "name": "Other"},
    ("POST", "/compat/schematic/users"): {"keys": {"id": "zz_user"}, "name": "Other"},
    ("POST", "/compat/schematic/batch"): {
        "events": [{"type": "track", "body": {"event": "zz_call", "company": {"id": "zz_acme"}}}]
    },
    ("POST", "/compat/commet/api/v1/usage/check"): {
        "customerId": "zz_acme",
        "featureCode": "zz_calls",
    },
    ("POST", "/compat/commet/api/v1/usage/events"): {
        "customerId": "zz_acme",
        "featureCode": "zz_calls",
    },
    ("POST", "/compat/commet/api/v1/plans"): {"name": "zz Team", "code": "zz_team"},
    ("POST", "/compat/commet/api/v1/plans/manage"): {"name": "zz Team", "code": "zz_team2"},
    # routes without path parameters, for the publishable matrix
    ("POST", "/compat/schematic/flags/check"): {"company": {"id": "zz_acme"}},
    ("POST", "/v1/check"): {"company": "zz_acme", "feature": "zz_sso"},
    ("POST", "/v1/check/bulk"): {"company": "zz_acme"},
    ("POST", "/ofrep/v1/evaluate/flags"): {"context": {"targetingKey": "zz_acme"}},
    ("POST", "/api/features/resolve"): {"context": {"account_key": "zz_acme"}},
}


def served_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite://"))
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return sorted((method.upper(), path) for path, ops in paths.items() for method in ops)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    body: dict[str, Any] = response.json() if response.content else {}
    return body


def build_world(api: httpx.Client, services: Services) -> World:
    """One of everything in development, keyed and named with the marker."""
    ok(api.post("/v1/credits", json={"key": "zz_ai", "name": "zz AI"}))
    ok(api.post("/v1/features", json={"key": "zz_sso", "name": "zz SSO", "type": "boolean"}))
    meter = {"event": "zz_call", "aggregation": "count"}
    calls = {"key": "zz_calls", "name": "zz calls", "type": "metered", "meter": meter}
    ok(api.post("/v1/features", json=calls))
    rule = [{"name": "zz all", "value": True}]
    ok(api.put("/v1/features/zz_sso/rules", json=rule))
    plan = {
        "key": "zz_pro",
        "name": "zz Pro",
        "entitlements": [{"feature": "zz_sso", "value": True}, {"feature": "zz_calls", "value": 9}],
        "prices": [{"interval": "month", "currency": "usd", "amount": 2900, "default": True}],
    }
    ok(api.post("/v1/plans", json=plan))
    bundle = {"key": "zz_boost", "name": "zz Boost", "credit": "zz_ai", "amount": 100}
    ok(api.post("/v1/credit-bundles", json=bundle | {"price": {"currency": "usd", "amount": 9}}))
    ok(api.put("/v1/companies/zz_acme", json={"name": "zz Acme", "plan": "zz_pro"}))
    ok(api.put("/v1/users/zz_user", json={"name": "zz User", "companies": ["zz_acme"]}))
    ok(api.put("/v1/companies/zz_acme/overrides/zz_sso", json={"value": False}))
    grant = ok(
        api.post("/v1/companies/zz_acme/credit-grants", json={"credit": "zz_ai", "amount": 5})
    )
    event = {"event": "zz_call", "company": "zz_acme", "idempotency_key": "zz-1"}
    assert api.post("/v1/events", json=event).status_code == 202
    endpoint = ok(api.post("/v1/webhooks", json={"url": "https://example.com/zz"}))
    services.webhooks.fan_out()
    deliveries = ok(api.get(f"/v1/webhooks/{endpoint['id']}/deliveries"))["data"]
    subscriptions = ok(api.get("/v1/companies/zz_acme/subscriptions"))["data"]
    events = ok(api.get("/v1/events", params={"company": "zz_acme"}))["data"]
    key = ok(api.post("/v1/api-keys", json={"kind": "publishable", "name": "zz site"}))
    return World(
        {
            "subscription_id": subscriptions[0]["id"],
            "grant_id": grant["id"],
            "endpoint_id": endpoint["id"],
            "delivery_id": deliveries[0]["id"],
            "event_id": events[0]["id"],
            "key_id": key["id"],
        }
    )


def snapshot(api: httpx.Client, world: World) -> dict[str, Any]:
    """Every GET of the development world, as read with its own key (which finds each
    object: the paths name real ones, so the other environment's 404s mean something)."""
    reads = {}
    for method, template in served_routes():
        if method == "GET" and (method, template) not in STREAMS | NO_KEY_ROUTES:
            path = world.path(template)
            reply = api.get(path)
            assert reply.status_code == 200, (path, reply.text)
            reads[path] = reply.text
    return reads


def test_isolation__another_environments_secret_key__404_or_its_own_and_ours_unchanged(
    api: httpx.Client, production: httpx.Client, services: Services
) -> None:
    # Given one of everything in development
    world = build_world(api, services)
    before = snapshot(api, world)

    # When production's secret key calls every route with development's keys and ids
    wrong = []
    routes = sorted(
        served_routes(), key=lambda r: (r in UPSERTS, r[1].startswith(("/api/", "/compat/")))
    )
    for method, template in routes:
        if (method, template) in STREAMS | NO_KEY_ROUTES:
            continue
        path = world.path(template)
        body = BODIES.get((method, template))
        reply = production.request(method, path, json=body)
        sent = path + json.dumps(body)
        if (method, template) in FOUND_FALSE:
            found = reply.json().get("found", False), reply.json().get("traits")
            if reply.status_code != 200 or found != (False, {}):
                wrong.append((method, template, reply.status_code, reply.text[:200]))
        elif (method, template) in UPSERTS:
            if reply.status_code != UPSERTS[(method, template)]:
                wrong.append((method, template, reply.status_code, "did not create its own"))
        elif "{" in template:
            # Then each object of development is not found there
            if reply.status_code != 404:
                wrong.append((method, template, reply.status_code, reply.text[:200]))
        elif method == "GET" and MARKER in reply.text and MARKER not in sent:
            # and no list or document shows any of development's objects
            wrong.append((method, template, reply.status_code, reply.text[:200]))
    assert wrong == [], "\n".join(map(str, wrong))

    # and development reads exactly as before, its publishable key still valid
    assert snapshot(api, world) == before


def test_isolation__publishable_key__403_everywhere_but_checks_ofrep_and_pricing(
    make_client: Any, api: httpx.Client, services: Services
) -> None:
    # Given development's world and a publishable key of it
    world = build_world(api, services)
    browser = make_client(kind=KeyKind.PUBLISHABLE)

    # When it calls every route
    wrong = []
    for method, template in served_routes():
        if (method, template) in STREAMS | NO_KEY_ROUTES:
            continue
        body = BODIES.get((method, template), {} if method in ("POST", "PUT", "PATCH") else None)
        reply = browser.request(method, world.path(template), json=body)
        allowed = (method, template) in PUBLISHABLE_ROUTES
        # Then only the browser-safe routes answer; every other one is a 403
        if allowed and reply.status_code != 200:
            wrong.append((method, template, reply.status_code, reply.text[:200]))
        if not allowed and reply.status_code != 403:
            wrong.append((method, template, reply.status_code, reply.text[:200]))
        if not allowed and reply.status_code == 403 and template.startswith("/v1/"):
            assert reply.json()["error"]["code"] in {"secret_key_required"}, reply.text
    assert wrong == []


@pytest.mark.parametrize("route", sorted(STREAMS))
def test_isolation__streams__need_a_secret_key(make_client: Any, route: tuple[str, str]) -> None:
    browser = make_client(kind=KeyKind.PUBLISHABLE)
    method, path = route
    assert browser.request(method, path).status_code == 403

"""Every mutating route of the API leaves an audit entry with the key as actor and the resource
before and after. The table below names each route; a route the app serves that is neither in
it nor exempt (with the reason) fails the coverage test, so a new route cannot skip the log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.api import create_customer_catalog, create_feature, create_plan
from tierkit.server.app import create_app
from tierkit.server.services.container import Services
from tierkit.server.settings import Settings

MUTATING = ("POST", "PUT", "PATCH", "DELETE")

EXEMPT: dict[tuple[str, str], str] = {
    ("POST", "/v1/check"): "a check reads; a consume is usage, kept in the events table",
    ("POST", "/v1/check/bulk"): "reads",
    ("POST", "/ofrep/v1/evaluate/flags/{key}"): "reads",
    ("POST", "/ofrep/v1/evaluate/flags"): "reads",
    ("POST", "/api/features/{key}/resolve"): "reads",
    ("POST", "/api/features/resolve"): "reads",
    ("POST", "/v1/events"): "usage, kept whole in the events table (GET /v1/events)",
    ("POST", "/v1/metrics/set"): "usage, kept whole in the events table",
    ("POST", "/api/metrics/set"): "usage, kept whole in the events table",
    ("POST", "/compat/schematic/flags/{key}/check"): "reads",
    ("POST", "/compat/schematic/flags/check"): "reads",
    ("POST", "/compat/schematic/batch"): "usage, kept whole in the events table",
    ("POST", "/compat/commet/api/v1/usage/check"): "reads",
    ("POST", "/compat/commet/api/v1/usage/events"): "usage, kept whole in the events table",
    ("POST", "/v1/webhooks/{endpoint_id}/test"): "a delivery, kept in the deliveries list",
    (
        "POST",
        "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry",
    ): "a delivery attempt, kept in the deliveries list",
}


@dataclass(frozen=True)
class Expected:
    action: str
    resource_type: str
    resource_key: str

    @property
    def has_before(self) -> bool:
        # A rotated secret is recorded without before and after: secrets never enter the log.
        return not self.action.endswith((".created", ".secret_rotated"))

    @property
    def has_after(self) -> bool:
        return not self.action.endswith((".deleted", ".secret_rotated"))


Act = Callable[[httpx.Client], Expected]


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    body: dict[str, Any] = response.json() if response.content else {}
    return body


def created_company(api: httpx.Client, plan: str | None = None) -> None:
    create_customer_catalog(api)
    ok(api.put("/v1/companies/acme", json={"name": "Acme"} | ({"plan": plan} if plan else {})))


def created_subscription(api: httpx.Client) -> str:
    created_company(api)
    return str(ok(api.post("/v1/companies/acme/subscriptions", json={"plan": "pro"}))["id"])


def created_credit(api: httpx.Client) -> None:
    ok(api.post("/v1/credits", json={"key": "ai", "name": "AI credits"}))


def created_grant(api: httpx.Client) -> str:
    created_credit(api)
    ok(api.put("/v1/companies/acme", json={}))
    body = {"credit": "ai", "amount": 10}
    return str(ok(api.post("/v1/companies/acme/credit-grants", json=body))["id"])


def created_bundle(api: httpx.Client) -> None:
    created_credit(api)
    bundle = {"key": "boost", "name": "Boost", "credit": "ai", "amount": 100}
    ok(api.post("/v1/credit-bundles", json=bundle | {"price": {"currency": "usd", "amount": 900}}))


def created_endpoint(api: httpx.Client) -> str:
    return str(ok(api.post("/v1/webhooks", json={"url": "https://example.com/hooks"}))["id"])


def act_api_key_create(api: httpx.Client) -> Expected:
    body = ok(api.post("/v1/api-keys", json={"kind": "publishable", "name": "site"}))
    return Expected("api_key.created", "api_key", body["id"])


def act_api_key_revoke(api: httpx.Client) -> Expected:
    key_id = ok(api.post("/v1/api-keys", json={"kind": "publishable", "name": "site"}))["id"]
    ok(api.delete(f"/v1/api-keys/{key_id}"))
    return Expected("api_key.revoked", "api_key", key_id)


def act_feature_create(api: httpx.Client) -> Expected:
    create_feature(api, "sso")
    return Expected("feature.created", "feature", "sso")


def act_feature_patch(api: httpx.Client) -> Expected:
    create_feature(api, "sso")
    ok(api.patch("/v1/features/sso", json={"name": "SAML"}))
    return Expected("feature.updated", "feature", "sso")


def act_feature_delete(api: httpx.Client) -> Expected:
    create_feature(api, "sso")
    ok(api.delete("/v1/features/sso"))
    return Expected("feature.deleted", "feature", "sso")


def act_rules_put(api: httpx.Client) -> Expected:
    create_feature(api, "beta")
    ok(api.put("/v1/features/beta/rules", json=[{"name": "all", "value": True}]))
    return Expected("feature.updated", "feature", "beta")


def act_plan_create(api: httpx.Client) -> Expected:
    create_plan(api, "pro")
    return Expected("plan.created", "plan", "pro")


def act_plan_patch(api: httpx.Client) -> Expected:
    create_plan(api, "pro")
    ok(api.patch("/v1/plans/pro", json={"name": "Pro+"}))
    return Expected("plan.updated", "plan", "pro")


def act_plan_delete(api: httpx.Client) -> Expected:
    create_plan(api, "pro")
    ok(api.delete("/v1/plans/pro"))
    return Expected("plan.deleted", "plan", "pro")


def act_entitlement_put(api: httpx.Client) -> Expected:
    create_feature(api, "sso")
    create_plan(api, "pro")
    ok(api.put("/v1/plans/pro/entitlements/sso", json={"value": True}))
    return Expected("plan.updated", "plan", "pro")


def act_entitlement_delete(api: httpx.Client) -> Expected:
    create_feature(api, "sso")
    create_plan(api, "pro", [{"feature": "sso", "value": True}])
    ok(api.delete("/v1/plans/pro/entitlements/sso"))
    return Expected("plan.updated", "plan", "pro")


def act_company_put(api: httpx.Client) -> Expected:
    ok(api.put("/v1/companies/acme", json={"name": "Acme"}))
    return Expected("company.created", "company", "acme")


def act_company_delete(api: httpx.Client) -> Expected:
    ok(api.put("/v1/companies/acme", json={"name": "Acme"}))
    ok(api.delete("/v1/companies/acme"))
    return Expected("company.deleted", "company", "acme")


def act_subscription_create(api: httpx.Client) -> Expected:
    return Expected("subscription.created", "subscription", created_subscription(api))


def act_subscription_patch(api: httpx.Client) -> Expected:
    subscription = created_subscription(api)
    ok(api.patch(f"/v1/companies/acme/subscriptions/{subscription}", json={"quantity": 2}))
    return Expected("subscription.updated", "subscription", subscription)


def act_subscription_cancel(api: httpx.Client) -> Expected:
    subscription = created_subscription(api)
    ok(api.delete(f"/v1/companies/acme/subscriptions/{subscription}", params={"at": "now"}))
    return Expected("subscription.canceled", "subscription", subscription)


def act_override_put(api: httpx.Client) -> Expected:
    created_company(api)
    ok(api.put("/v1/companies/acme/overrides/sso", json={"value": True}))
    return Expected("override.created", "override", "acme/sso")


def act_override_delete(api: httpx.Client) -> Expected:
    created_company(api)
    ok(api.put("/v1/companies/acme/overrides/sso", json={"value": True}))
    ok(api.delete("/v1/companies/acme/overrides/sso"))
    return Expected("override.deleted", "override", "acme/sso")


def act_user_put(api: httpx.Client) -> Expected:
    ok(api.put("/v1/users/u1", json={"name": "Ada"}))
    return Expected("user.created", "user", "u1")


def act_user_delete(api: httpx.Client) -> Expected:
    ok(api.put("/v1/users/u1", json={"name": "Ada"}))
    ok(api.delete("/v1/users/u1"))
    return Expected("user.deleted", "user", "u1")


def act_kickplan_account_create(api: httpx.Client) -> Expected:
    ok(api.post("/api/accounts", json={"key": "acme", "name": "Acme"}))
    return Expected("company.created", "company", "acme")


def act_kickplan_account_update(api: httpx.Client) -> Expected:
    ok(api.post("/api/accounts", json={"key": "acme", "name": "Acme"}))
    ok(api.put("/api/accounts/acme", json={"name": "Acme Inc."}))
    return Expected("company.updated", "company", "acme")


def act_schematic_company_upsert(api: httpx.Client) -> Expected:
    ok(api.post("/compat/schematic/companies", json={"keys": {"id": "acme"}, "name": "Acme"}))
    return Expected("company.created", "company", "acme")


def act_schematic_user_upsert(api: httpx.Client) -> Expected:
    ok(api.post("/compat/schematic/users", json={"keys": {"email": "a@acme.test"}}))
    return Expected("user.created", "user", "a@acme.test")


def act_commet_plan_create(api: httpx.Client) -> Expected:
    ok(api.post("/compat/commet/api/v1/plans", json={"name": "Team", "code": "team"}))
    return Expected("plan.created", "plan", "team")


def act_commet_plan_manage_create(api: httpx.Client) -> Expected:
    ok(api.post("/compat/commet/api/v1/plans/manage", json={"name": "Team", "code": "team"}))
    return Expected("plan.created", "plan", "team")


def act_credit_type_create(api: httpx.Client) -> Expected:
    created_credit(api)
    return Expected("credit_type.created", "credit_type", "ai")


def act_grant_create(api: httpx.Client) -> Expected:
    return Expected("credit_grant.created", "credit_grant", created_grant(api))


def act_grant_void(api: httpx.Client) -> Expected:
    grant = created_grant(api)
    ok(api.post(f"/v1/companies/acme/credit-grants/{grant}/void"))
    return Expected("credit_grant.voided", "credit_grant", grant)


def act_bundle_create(api: httpx.Client) -> Expected:
    created_bundle(api)
    return Expected("credit_bundle.created", "credit_bundle", "boost")


def act_bundle_purchase(api: httpx.Client) -> Expected:
    created_bundle(api)
    ok(api.put("/v1/companies/acme", json={}))
    body = ok(api.post("/v1/companies/acme/credit-bundles/boost/purchase"))
    return Expected("credit_grant.created", "credit_grant", body["grant"]["id"])


def act_webhook_create(api: httpx.Client) -> Expected:
    return Expected("webhook_endpoint.created", "webhook_endpoint", created_endpoint(api))


def act_webhook_patch(api: httpx.Client) -> Expected:
    endpoint = created_endpoint(api)
    ok(api.patch(f"/v1/webhooks/{endpoint}", json={"description": "billing"}))
    return Expected("webhook_endpoint.updated", "webhook_endpoint", endpoint)


def act_webhook_delete(api: httpx.Client) -> Expected:
    endpoint = created_endpoint(api)
    ok(api.delete(f"/v1/webhooks/{endpoint}"))
    return Expected("webhook_endpoint.deleted", "webhook_endpoint", endpoint)


def act_webhook_rotate(api: httpx.Client) -> Expected:
    endpoint = created_endpoint(api)
    ok(api.post(f"/v1/webhooks/{endpoint}/rotate-secret"))
    return Expected("webhook_endpoint.secret_rotated", "webhook_endpoint", endpoint)


def act_catalog_apply(api: httpx.Client) -> Expected:
    feature = {"key": "sso", "name": "SSO", "type": "boolean"}
    ok(api.post("/v1/catalog/apply", json={"catalog": {"features": [feature]}}))
    return Expected("feature.created", "feature", "sso")


def act_plan_migration(api: httpx.Client) -> Expected:
    subscription = created_subscription(api)  # on pro, version 1
    ok(api.put("/v1/plans/pro/entitlements/projects", json={"value": 20}))  # version 2
    body = {"from_version": 1, "to_version": 2, "dry_run": False}
    ok(api.post("/v1/plans/pro/migrations", json=body))
    return Expected("subscription.updated", "subscription", subscription)


AUDITED: dict[tuple[str, str], Act] = {
    ("POST", "/v1/api-keys"): act_api_key_create,
    ("DELETE", "/v1/api-keys/{key_id}"): act_api_key_revoke,
    ("POST", "/v1/features"): act_feature_create,
    ("PATCH", "/v1/features/{key}"): act_feature_patch,
    ("DELETE", "/v1/features/{key}"): act_feature_delete,
    ("PUT", "/v1/features/{key}/rules"): act_rules_put,
    ("POST", "/v1/plans"): act_plan_create,
    ("PATCH", "/v1/plans/{key}"): act_plan_patch,
    ("DELETE", "/v1/plans/{key}"): act_plan_delete,
    ("PUT", "/v1/plans/{key}/entitlements/{feature}"): act_entitlement_put,
    ("DELETE", "/v1/plans/{key}/entitlements/{feature}"): act_entitlement_delete,
    ("PUT", "/v1/companies/{key}"): act_company_put,
    ("DELETE", "/v1/companies/{key}"): act_company_delete,
    ("POST", "/v1/companies/{key}/subscriptions"): act_subscription_create,
    ("PATCH", "/v1/companies/{key}/subscriptions/{subscription_id}"): act_subscription_patch,
    ("DELETE", "/v1/companies/{key}/subscriptions/{subscription_id}"): act_subscription_cancel,
    ("PUT", "/v1/companies/{key}/overrides/{feature}"): act_override_put,
    ("DELETE", "/v1/companies/{key}/overrides/{feature}"): act_override_delete,
    ("PUT", "/v1/users/{key}"): act_user_put,
    ("DELETE", "/v1/users/{key}"): act_user_delete,
    ("POST", "/api/accounts"): act_kickplan_account_create,
    ("PUT", "/api/accounts/{key}"): act_kickplan_account_update,
    ("POST", "/compat/schematic/companies"): act_schematic_company_upsert,
    ("POST", "/compat/schematic/users"): act_schematic_user_upsert,
    ("POST", "/compat/commet/api/v1/plans"): act_commet_plan_create,
    ("POST", "/compat/commet/api/v1/plans/manage"): act_commet_plan_manage_create,
    ("POST", "/v1/credits"): act_credit_type_create,
    ("POST", "/v1/companies/{key}/credit-grants"): act_grant_create,
    ("POST", "/v1/companies/{key}/credit-grants/{grant_id}/void"): act_grant_void,
    ("POST", "/v1/credit-bundles"): act_bundle_create,
    ("POST", "/v1/companies/{key}/credit-bundles/{bundle}/purchase"): act_bundle_purchase,
    ("POST", "/v1/webhooks"): act_webhook_create,
    ("PATCH", "/v1/webhooks/{endpoint_id}"): act_webhook_patch,
    ("DELETE", "/v1/webhooks/{endpoint_id}"): act_webhook_delete,
    ("POST", "/v1/webhooks/{endpoint_id}/rotate-secret"): act_webhook_rotate,
    ("POST", "/v1/catalog/apply"): act_catalog_apply,
    ("POST", "/v1/plans/{key}/migrations"): act_plan_migration,
}


def served_mutating_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite://"))
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method.upper() in MUTATING
    }


def test_audit_routes__every_mutating_route__audited_or_exempt_with_a_reason() -> None:
    served = served_mutating_routes()
    assert sorted(served - AUDITED.keys() - EXEMPT.keys()) == []
    assert sorted((AUDITED.keys() | EXEMPT.keys()) - served) == []


@pytest.mark.parametrize("route", sorted(AUDITED), ids=" ".join)
def test_audit_routes__a_mutation__entry_with_actor_and_before_and_after(
    api: httpx.Client, services: Services, route: tuple[str, str]
) -> None:
    # When the route changes something
    expected = AUDITED[route](api)

    # Then its entry names the resource and the key, with the resource before and after
    reply = api.get(
        "/v1/audit-log",
        params={"action": expected.action, "resource_type": expected.resource_type, "limit": 500},
    )
    assert reply.status_code == 200, reply.text
    mine = [e for e in reply.json()["data"] if e["resource_key"] == expected.resource_key]
    assert mine, f"no {expected} in {reply.json()['data']}"
    entry = mine[0]  # the newest
    secret = api.headers["Authorization"].removeprefix("Bearer ")
    assert entry["actor"] == f"key:{services.api_keys.authenticate(secret).key_id}"
    assert (entry["before"] is not None, entry["after"] is not None) == (
        expected.has_before,
        expected.has_after,
    ), entry

"""Catalog as code through the API: `GET /v1/catalog` exports, `POST /v1/catalog/apply` diffs
and applies a whole file in one transaction; every kind of change, refusals, failures and dry
runs that change nothing, idempotence, and the demo as a catalog file."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from tests.support.api import error_of
from tierkit.cli.catalog_files import to_yaml
from tierkit.server.api.schemas.catalog import catalog_schema
from tierkit.server.demo import load_demo_catalog
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.container import Services

DOCS_SCHEMA = Path(__file__).parents[2] / "docs" / "catalog.schema.json"
DEMO_SCHEMA_URL = "../../../../docs/catalog.schema.json"

BASE: dict[str, Any] = {
    "credits": [
        {"key": "ai_credits", "name": "AI credits", "unit": "credit"},
        {"key": "old_credits", "name": "Old credits"},
    ],
    "features": [
        {"key": "api_calls", "name": "API calls", "type": "metered",
         "meter": {"event": "api_call", "aggregation": "count"}},
        {"key": "beta", "name": "Beta", "type": "boolean",
         "rules": [{"name": "gold", "value": True,
                    "conditions": [[{"type": "trait", "trait": "tier", "op": "eq",
                                     "value": "gold"}]]}]},
        {"key": "legacy", "name": "Legacy", "type": "boolean"},
        {"key": "projects", "name": "Projects", "type": "numeric", "default": 1},
    ],
    "plans": [
        {"key": "free", "name": "Free", "is_default": True,
         "entitlements": [{"feature": "projects", "value": 1},
                          {"feature": "api_calls", "value": 100}]},
        {"key": "pro", "name": "Pro", "sort_order": 10,
         "entitlements": [{"feature": "projects", "value": 10},
                          {"feature": "api_calls", "value": 1000},
                          {"feature": "legacy", "value": True}],
         "prices": [{"interval": "month", "currency": "usd", "amount": 2900, "default": True}],
         "credit_grants": [{"credit": "ai_credits", "amount": 100}]},
        {"key": "team", "name": "Team", "sort_order": 20},
    ],
    "bundles": [
        {"key": "boost", "name": "Boost", "credit": "ai_credits", "amount": 500,
         "price": {"currency": "usd", "amount": 500}},
    ],
}  # fmt: skip


def edited() -> dict[str, Any]:
    """BASE with one change of every kind: creates, updates, archives (legacy, team)."""
    catalog = copy.deepcopy(BASE)
    catalog["credits"][0]["name"] = "AI credits (v2)"
    catalog["credits"].pop()  # old_credits: unmanaged, left as it is
    catalog["credits"].append({"key": "gpu_minutes", "name": "GPU minutes"})
    features = catalog["features"]
    features[1]["rules"][0]["value"] = False
    features[3]["default"] = 2
    del features[2]  # legacy
    features.append({"key": "sso", "name": "SSO", "type": "boolean"})
    pro = catalog["plans"][1]
    pro["entitlements"] = [
        {"feature": "projects", "value": 20},
        {"feature": "api_calls", "value": 1000},
        {"feature": "sso", "value": True},
    ]
    pro["prices"][0]["amount"] = 3900
    pro["prices"].append({"interval": "year", "currency": "usd", "amount": 39000})
    catalog["plans"][0]["credit_grants"] = [{"credit": "gpu_minutes", "amount": 10}]
    pro["credit_grants"][0]["amount"] = 200
    catalog["plans"][2] = {"key": "scale", "name": "Scale", "sort_order": 30}
    catalog["bundles"][0]["price"]["amount"] = 700
    catalog["bundles"].append(
        {"key": "gpu_pack", "name": "GPU pack", "credit": "gpu_minutes", "amount": 60,
         "price": {"currency": "usd", "amount": 1000}}
    )  # fmt: skip
    return catalog


def apply(api: httpx.Client, catalog: dict[str, Any], **flags: bool) -> httpx.Response:
    return api.post("/v1/catalog/apply", json={"catalog": catalog, **flags})


def applied(api: httpx.Client, catalog: dict[str, Any], **flags: bool) -> dict[str, Any]:
    response = apply(api, catalog, **flags)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def export(api: httpx.Client) -> dict[str, Any]:
    response = api.get("/v1/catalog")
    assert response.status_code == 200, response.text
    catalog: dict[str, Any] = response.json()
    return catalog


def snapshot(api: httpx.Client) -> tuple[dict[str, Any], int]:
    """The catalog and the number of audit entries: what a failed apply must not move."""
    entries = api.get("/v1/audit-log", params={"limit": 500}).json()["data"]
    return export(api), len(entries)


def actions(reply: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(c["action"], c["kind"], c["key"]) for c in reply["changes"]}


def fields_of(reply: dict[str, Any], kind: str, key: str) -> dict[str, tuple[Any, Any]]:
    change = next(c for c in reply["changes"] if (c["kind"], c["key"]) == (kind, key))
    return {f["field"]: (f["before"], f["after"]) for f in change["fields"]}


def test_catalog__demo_exported_and_applied_to_an_empty_environment__exports_the_same(
    services: Services, api: httpx.Client, production: httpx.Client
) -> None:
    # Given the demo in development, exported
    load_demo_catalog(services, services.environments.get_environment("development").id)
    demo = export(api)

    # When it is applied to the empty production environment, then applied again
    first = applied(production, demo)
    second = applied(production, demo)

    # Then production exports exactly the same file; the second apply changes nothing
    assert export(production) == demo
    assert first["summary"] == {"create": len(actions(first)), "update": 0, "archive": 0}
    assert len(actions(first)) == sum(len(items) for items in demo.values()) == 24
    assert (second["changes"], second["applied"]) == ([], False)
    # And the demo file shipped is that export, as `tierkit catalog export` writes it
    shipped = resources.files("tierkit.server.demo").joinpath("catalog.yaml").read_text()
    written = to_yaml(demo, DEMO_SCHEMA_URL)
    assert _body(shipped) == _body(written)


def _body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("#")).strip()


def test_catalog_apply__one_change_of_every_kind__diffed_refused_then_applied(
    api: httpx.Client,
) -> None:
    # Given the base catalog applied
    assert applied(api, BASE)["summary"] == {"create": 10, "update": 0, "archive": 0}
    put = api.put("/v1/companies/acme", json={"plan": "pro"})
    assert put.status_code in (200, 201), put.text
    check = api.post("/v1/check", json={"company": "acme", "feature": "projects"}).json()
    assert check["value"] == 10  # and the catalog is now cached
    before = snapshot(api)

    # When the edited file is diffed (a dry run)
    plan = applied(api, edited(), dry_run=True)

    # Then it names each change, with the plan's fields before and after, and writes nothing
    assert actions(plan) == {
        ("update", "credits", "ai_credits"),
        ("create", "credits", "gpu_minutes"),
        ("update", "features", "beta"),
        ("update", "features", "projects"),
        ("create", "features", "sso"),
        ("archive", "features", "legacy"),
        ("update", "plans", "free"),
        ("update", "plans", "pro"),
        ("create", "plans", "scale"),
        ("archive", "plans", "team"),
        ("update", "bundles", "boost"),
        ("create", "bundles", "gpu_pack"),
    }
    assert plan["unmanaged"] == [{"kind": "credits", "key": "old_credits"}]
    assert fields_of(plan, "plans", "pro") == {
        "entitlements.projects": ({"feature": "projects", "value": 10},
                                  {"feature": "projects", "value": 20}),
        "entitlements.sso": (None, {"feature": "sso", "value": True}),
        "entitlements.legacy": ({"feature": "legacy", "value": True}, None),
        "prices.0": ({"interval": "month", "currency": "usd", "amount": 2900, "default": True},
                     {"interval": "month", "currency": "usd", "amount": 3900, "default": True}),
        "prices.1": (None, {"interval": "year", "currency": "usd", "amount": 39000}),
        "credit_grants.0": ({"credit": "ai_credits", "amount": 100, "period": "month"},
                            {"credit": "ai_credits", "amount": 200, "period": "month"}),
    }  # fmt: skip
    assert fields_of(plan, "plans", "free") == {
        "credit_grants.0": (None, {"credit": "gpu_minutes", "amount": 10, "period": "month"})
    }
    assert fields_of(plan, "features", "projects") == {"default": (1, 2)}
    assert list(fields_of(plan, "features", "beta")) == ["rules"]
    assert fields_of(plan, "bundles", "boost") == {"price": (500, 700)}
    assert fields_of(plan, "plans", "team") == {"status": ("active", "archived")}
    assert (plan["dry_run"], plan["applied"]) == (True, False)
    assert snapshot(api) == before

    # When it is applied without allowing archives: 409, naming them, nothing written
    refused = apply(api, edited())
    error = error_of(refused)
    assert (refused.status_code, error["code"]) == (409, "destructive_change")
    assert [d["param"] for d in error["details"]] == ["features.legacy", "plans.team"]
    assert snapshot(api) == before

    # When it is applied with archives allowed
    done = applied(api, edited(), allow_archive=True)
    assert actions(done) == actions(plan)

    # Then the environment is the file, plus what it archived and the unmanaged credit type;
    # checks see the change at once
    file = edited()
    legacy, team = BASE["features"][2], BASE["plans"][2]
    assert export(api) == {
        "credits": sorted([*file["credits"], BASE["credits"][1]], key=lambda c: c["key"]),
        "features": sorted(
            [*file["features"], {**legacy, "status": "archived"}], key=lambda f: f["key"]
        ),
        "plans": [*file["plans"][:2], {**team, "status": "archived"}, file["plans"][2]],
        "bundles": file["bundles"],
    }
    # (acme, subscribed before, keeps pro's version 1; a new subscriber gets version 2)
    check = api.post("/v1/check", json={"company": "acme", "feature": "projects"}).json()
    assert (check["value"], check["plan"]) == (10, "pro")
    assert api.put("/v1/companies/globex", json={"plan": "pro"}).status_code == 201
    check = api.post("/v1/check", json={"company": "globex", "feature": "projects"}).json()
    assert (check["value"], check["plan"]) == (20, "pro")
    audit = api.get("/v1/audit-log", params={"limit": 500}).json()["data"]
    audited = {(e["action"], e["resource_key"]) for e in audit[: len(audit) - before[1]]}
    assert {
        ("plan.updated", "pro"),
        ("plan.created", "scale"),
        ("feature.created", "sso"),
        ("credit_bundle.updated", "boost"),
        ("credit_type.updated", "ai_credits"),
    } <= audited
    # And applying it again changes nothing
    assert applied(api, edited(), allow_archive=True)["changes"] == []


def test_catalog_apply__invalid_entitlement_in_the_last_plan__400_at_its_path_nothing_written(
    api: httpx.Client,
) -> None:
    applied(api, BASE)
    before = snapshot(api)
    catalog = edited()
    catalog["plans"].append(
        {"key": "broken", "name": "Broken", "entitlements": [{"feature": "sso", "value": "yes"}]}
    )

    for flags in ({"allow_archive": True}, {"dry_run": True}):
        response = apply(api, catalog, **flags)
        error = error_of(response)
        assert (response.status_code, error["param"]) == (400, "plans.3.entitlements.0.value")
        assert "broken" in error["message"]
        assert snapshot(api) == before


def test_catalog_apply__malformed_file__400_naming_each_path_in_the_file(
    api: httpx.Client,
) -> None:
    catalog = copy.deepcopy(BASE)
    del catalog["plans"][1]["name"]
    catalog["features"][0]["meter"]["aggregation"] = "median"
    catalog["plans"].append(dict(catalog["plans"][0]))

    response = apply(api, catalog)

    error = error_of(response)
    assert response.status_code == 400
    assert {d["param"] for d in error["details"]} == {
        "plans.1.name",
        "features.0.meter.aggregation",
    }
    duplicate = apply(api, {**BASE, "plans": [*BASE["plans"], BASE["plans"][0]]})
    assert (duplicate.status_code, error_of(duplicate)["param"]) == (400, "plans.3.key")
    assert export(api) == {"credits": [], "features": [], "plans": [], "bundles": []}


def test_catalog_apply__archived_feature_a_plan_still_entitles__round_trips(
    api: httpx.Client, production: httpx.Client
) -> None:
    # Given a plan entitling a feature that was archived later
    catalog = copy.deepcopy(BASE)
    applied(api, catalog)
    catalog["features"][2]["status"] = "archived"
    assert fields_of(applied(api, catalog), "features", "legacy") == {
        "status": ("active", "archived")
    }

    # When its export is applied to an empty environment
    exported = export(api)
    applied(production, exported)

    # Then that environment exports the same
    assert export(production) == exported


def test_catalog_apply__default_plan_moves_to_a_plan_earlier_in_the_file__applied(
    api: httpx.Client,
) -> None:
    # Given `team` is the default plan
    catalog = copy.deepcopy(BASE)
    catalog["plans"][0]["is_default"] = False
    catalog["plans"][2]["is_default"] = True
    applied(api, catalog)

    # When the file makes `free` (before it) the default instead
    reply = applied(api, BASE)

    # Then both changes are made in one apply (one default per group at every step)
    assert fields_of(reply, "plans", "free") == {"is_default": (False, True)}
    assert fields_of(reply, "plans", "team") == {"is_default": (True, False)}
    defaults = [p["key"] for p in api.get("/v1/plans").json()["data"] if p["is_default"]]
    assert defaults == ["free"]


def test_catalog_schema__served_to_editors_without_a_key_and_committed_as_docs(
    anonymous: httpx.Client, api: httpx.Client, make_client: Callable[..., httpx.Client]
) -> None:
    public = anonymous.get("/catalog.schema.json")
    keyed = api.get("/v1/catalog/schema")

    assert (public.status_code, keyed.status_code) == (200, 200)
    assert public.json() == keyed.json() == catalog_schema()
    assert anonymous.get("/v1/catalog/schema").status_code == 401
    assert make_client(kind=KeyKind.PUBLISHABLE).get("/v1/catalog/schema").status_code == 403
    committed = json.loads(DOCS_SCHEMA.read_text(encoding="utf-8"))
    assert committed == catalog_schema(), (
        "docs/catalog.schema.json is stale: tierkit catalog schema > docs/catalog.schema.json"
    )
    assert set(committed["properties"]) == {"credits", "features", "plans", "bundles"}

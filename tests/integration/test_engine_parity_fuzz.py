"""Engine fuzzing with parity, on both databases: for hypothesis-generated catalogs (features
of every type, plans and add-ons, targeting rules with rollouts), customer states (traits,
subscriptions, overrides, usage) and checks, the server's check (through its services, on the
test database) never fails, and the SDK's local evaluation, fed the server's own snapshot and
company state, decides exactly the same.

`test_engine_properties.py` feeds the engine arbitrary (even invalid) data; this one feeds it
what the API accepts, through the real write path, so any drift between what the server stores
and what it sends the SDK shows. Seeded and bounded so CI replays it."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import SettableClock
from tierkit.client.local import LocalEvaluation
from tierkit.engine.codec import decision_to_json
from tierkit.engine.evaluate import Decision
from tierkit.server.api.schemas.catalog import CatalogFile
from tierkit.server.api.schemas.customers import CompanyUpsert, OverrideBody, SubscriptionCreate
from tierkit.server.api.schemas.usage import TrackEvent
from tierkit.server.db import Database
from tierkit.server.services.checks import CheckRequest
from tierkit.server.services.container import Services

OPTIONS = ["a", "b", "c"]
TIERS = ["gold", "silver", "bronze"]
_environments = itertools.count()


def value_of(kind: str) -> st.SearchStrategy[Any]:
    return {
        "boolean": st.booleans(),
        "numeric": st.integers(0, 100),
        "enum": st.sampled_from(OPTIONS),
        "metered": st.integers(0, 12),
    }[kind]


@st.composite
def features(draw: st.DrawFn, index: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["boolean", "numeric", "enum", "metered"]))
    feature: dict[str, Any] = {"key": f"f{index}", "name": f"F{index}", "type": kind}
    if kind == "enum":
        feature["options"] = [{"key": key, "name": key.upper()} for key in OPTIONS]
    if kind == "metered":
        aggregation = draw(st.sampled_from(["count", "sum"]))
        feature["meter"] = {"event": f"e{index}", "aggregation": aggregation}
    if kind in ("numeric", "enum") and draw(st.booleans()):
        feature["default"] = draw(value_of(kind))
    if draw(st.integers(0, 2)) == 0:
        feature["rules"] = draw(st.lists(rules(kind), min_size=1, max_size=2))
    return feature


@st.composite
def rules(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": "r"}
    if kind == "metered" and draw(st.booleans()):
        rule["unlimited"] = True
    else:
        rule["value"] = draw(value_of(kind))
    condition = draw(
        st.sampled_from(
            [
                {
                    "type": "trait",
                    "trait": "tier",
                    "op": "eq",
                    "value": draw(st.sampled_from(TIERS)),
                },
                {
                    "type": "trait",
                    "trait": "employees",
                    "op": "gt",
                    "value": draw(st.integers(0, 500)),
                },
                {"type": "trait", "trait": "tier", "op": "in", "value": TIERS[:2]},
            ]
        )
    )
    if draw(st.booleans()):
        rule["conditions"] = [[condition]]
    if draw(st.booleans()):
        rule["rollout"] = {"percent": draw(st.sampled_from([0, 10, 50, 90, 100]))}
    return rule


@st.composite
def entitlements(draw: st.DrawFn, feature: dict[str, Any]) -> dict[str, Any]:
    entitlement: dict[str, Any] = {"feature": feature["key"]}
    if feature["type"] in ("numeric", "metered") and draw(st.integers(0, 4)) == 0:
        entitlement["unlimited"] = True
    else:
        entitlement["value"] = draw(value_of(feature["type"]))
    if feature["type"] == "metered":
        entitlement["period"] = draw(st.sampled_from(["month", "day", "all_time"]))
        entitlement["soft_limit"] = draw(st.booleans())
    return entitlement


@st.composite
def catalogs(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 4))
    catalog_features = [draw(features(index)) for index in range(count)]
    plans = []
    for index in range(draw(st.integers(0, 3))):
        chosen = draw(st.lists(st.sampled_from(catalog_features), unique_by=lambda f: f["key"]))
        addon = index > 0 and draw(st.booleans())
        plan: dict[str, Any] = {
            "key": f"p{index}",
            "name": f"P{index}",
            "entitlements": [draw(entitlements(feature)) for feature in chosen],
        }
        if addon:
            plan["type"] = "add_on"
        elif index == 0 and draw(st.booleans()):
            plan["is_default"] = True
        plans.append(plan)
    return {"features": catalog_features, "plans": plans}


@st.composite
def companies(draw: st.DrawFn, catalog: dict[str, Any]) -> dict[str, Any]:
    traits: dict[str, Any] = {}
    if draw(st.booleans()):
        traits["tier"] = draw(st.sampled_from(TIERS))
    if draw(st.booleans()):
        traits["employees"] = draw(st.integers(0, 1000))
    plans = [plan for plan in catalog["plans"] if plan.get("type") != "add_on"]
    addons = [plan for plan in catalog["plans"] if plan.get("type") == "add_on"]
    subscriptions = []
    if plans and draw(st.booleans()):
        subscriptions.append({"plan": draw(st.sampled_from(plans))["key"]})
    for addon in (
        draw(st.lists(st.sampled_from(addons), unique_by=lambda p: p["key"])) if addons else []
    ):
        subscriptions.append({"plan": addon["key"], "quantity": draw(st.integers(1, 3))})
    overrides = []
    for feature in draw(
        st.lists(st.sampled_from(catalog["features"]), unique_by=lambda f: f["key"], max_size=2)
    ):
        overrides.append({"feature": feature["key"], "value": draw(value_of(feature["type"]))})
    usage = []
    for feature in catalog["features"]:
        if feature["type"] == "metered":
            for _ in range(draw(st.integers(0, 4))):
                usage.append(
                    {"event": feature["meter"]["event"], "quantity": draw(st.integers(1, 5))}
                )
    return {
        "traits": traits,
        "subscriptions": subscriptions,
        "overrides": overrides,
        "usage": usage,
    }


@st.composite
def worlds(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], list[float]]:
    catalog = draw(catalogs())
    return (
        catalog,
        draw(companies(catalog)),
        draw(st.lists(st.sampled_from([1, 2, 7]), min_size=1, max_size=2, unique=True)),
    )


def write_world(
    services: Services, environment_id: str, catalog: dict[str, Any], company: dict[str, Any]
) -> None:
    """Through the services, as the API writes them (the API's body models validate first)."""
    services.catalog.apply(environment_id, CatalogFile.model_validate(catalog).to_document())
    upsert = CompanyUpsert.model_validate({"name": "Acme", "traits": company["traits"]})
    services.customers.upsert_company(environment_id, "acme", upsert.provided())
    for body in company["subscriptions"]:
        request = SubscriptionCreate.model_validate(body).to_request()
        services.subscriptions.create_subscription(environment_id, "acme", request)
    for item in company["overrides"]:
        override = OverrideBody.model_validate({"value": item["value"]}).to_override(
            item["feature"]
        )
        services.overrides.put_override(environment_id, "acme", override)
    events = [
        TrackEvent.model_validate(
            {"company": "acme", "idempotency_key": f"u{i}", **event}
        ).to_new_event()
        for i, event in enumerate(company["usage"])
    ]
    if events:
        services.events.ingest(environment_id, events)


def local_decisions(  # noqa: PLR0917 - a test helper, called once
    services: Services,
    clock: SettableClock,
    environment_id: str,
    company: str,
    features: list[str],
    quantity: float,
) -> list[Decision]:
    """The SDK's local evaluation, fed what the server sends it (snapshot, company state)."""
    local = LocalEvaluation(clock=clock)
    snapshot = services.sdk.snapshot(environment_id)
    local.set_catalog(orjson.loads(snapshot.body)["catalog"], snapshot.etag)
    local.put_company(
        orjson.loads(orjson.dumps(services.sdk.company_state(environment_id, company)))
    )
    decisions = []
    for feature in features:
        decision = local.decide(company, feature, quantity=quantity)
        assert isinstance(decision, Decision), decision
        decisions.append(decision)
    local.close()
    return decisions


@pytest.fixture
def fuzz_services(database: Database, clock: SettableClock) -> Services:
    return Services.build(database, clock, cache_seconds=0)


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_generated_catalogs_and_customers__server_check_equals_sdk_local_evaluation(
    fuzz_services: Services,
    clock: SettableClock,
    world: tuple[dict[str, Any], dict[str, Any], list[float]],
) -> None:
    catalog, company, quantities = world
    services = fuzz_services
    environment = services.environments.create_environment(f"fuzz-{next(_environments)}")
    write_world(services, environment.id, catalog, company)
    features = [feature["key"] for feature in catalog["features"]]

    for key in ("acme", "unknown-co"):
        for quantity in quantities:
            # When the server checks every feature, and a local SDK evaluates the same
            server = services.checks.check(
                environment.id, CheckRequest(key, features, quantity=quantity), fresh=True
            )
            local = local_decisions(services, clock, environment.id, key, features, quantity)

            for decision in server:  # --hypothesis-show-statistics shows what was reached
                event(f"{decision.reason}, allowed={decision.allowed}")
            # Then they decide the same, to the last field
            assert [decision_to_json(d) for d in local] == [decision_to_json(d) for d in server], (
                key,
                quantity,
            )

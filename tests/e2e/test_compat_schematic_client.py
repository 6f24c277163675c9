"""The real `schematichq` client, pointed at Tierkit (`base_url` and `event_capture_url` at
`/compat/schematic`), checks flags, reads entitlement details and sends identify and track
events that Tierkit meters, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from schematic.client import CheckFlagOptions, Schematic, SchematicConfig

from tests.support.api import create_feature, create_plan, used_of

KeyFactory = Callable[..., str]


@pytest.fixture
def catalog(api: httpx.Client) -> httpx.Client:
    create_feature(api, "sso")
    create_feature(api, "projects", "numeric")
    create_feature(api, "api_calls", "metered", meter={"event": "api_call", "aggregation": "sum"})
    create_plan(
        api,
        "pro",
        [
            {"feature": "sso", "value": True},
            {"feature": "projects", "value": 10},
            {"feature": "api_calls", "value": 100},
        ],
    )
    api.put("/v1/companies/acme", json={"name": "Acme", "plan": "pro"}).raise_for_status()
    return api


@pytest.fixture
def schematic(server_url: str, make_key: KeyFactory, catalog: httpx.Client) -> Iterator[Schematic]:
    compat = f"{server_url}/compat/schematic"
    config = SchematicConfig(base_url=compat, event_capture_url=compat, cache_providers=[])
    client = Schematic(make_key(), config)
    yield client
    client.shutdown()


def test_schematic_client__check_flag_and_check_flags__answer_from_the_company_plan(
    schematic: Schematic,
) -> None:
    on_pro = schematic.check_flag_with_entitlement("sso", company={"id": "acme"})
    unknown = schematic.check_flag_with_entitlement("sso", company={"id": "nobody"})
    flags = schematic.check_flags(company={"id": "acme"})
    chosen = schematic.check_flags(["sso", "nope"], company={"id": "acme"})

    assert (on_pro.value, on_pro.reason, on_pro.rule_type) == (
        True,
        "Matched plan entitlement (pro)",
        "plan_entitlement",
    )
    assert on_pro.company_id == "acme"
    assert (unknown.value, unknown.company_id, unknown.rule_type) == (False, None, "default")
    assert {f.flag: f.value for f in flags} == {"sso": True, "projects": True, "api_calls": True}
    assert [(f.flag, f.value) for f in chosen] == [("sso", True), ("nope", False)]
    assert chosen[1].reason.startswith("Flag not found")


def test_schematic_client__check_flag_with_entitlement__reads_allocation_and_usage(
    schematic: Schematic, catalog: httpx.Client
) -> None:
    event = {"event": "api_call", "company": "acme", "quantity": 30}
    catalog.post("/v1/events", json=event).raise_for_status()

    checked = schematic.check_flag_with_entitlement("api_calls", company={"id": "acme"})

    assert checked.value is True
    entitlement = checked.entitlement
    assert entitlement is not None
    assert (entitlement.feature_key, entitlement.value_type) == ("api_calls", "numeric")
    assert (entitlement.allocation, entitlement.usage) == (100, 30)
    assert (entitlement.event_name, entitlement.metric_period) == ("api_call", "current_month")
    assert entitlement.metric_reset_at is not None
    assert entitlement.month_reset == "first_of_month"
    assert (checked.feature_allocation, checked.feature_usage) == (100, 30)


def test_schematic_client__over_the_limit__flag_is_off_as_usage_exceeded(
    schematic: Schematic, catalog: httpx.Client
) -> None:
    event = {"event": "api_call", "company": "acme", "quantity": 100}
    catalog.post("/v1/events", json=event).raise_for_status()

    checked = schematic.check_flag_with_entitlement("api_calls", company={"id": "acme"})
    preflight = schematic.check_flag_with_entitlement(
        "projects", company={"id": "acme"}, options=CheckFlagOptions(usage=11)
    )

    assert (checked.value, checked.rule_type) == (False, "plan_entitlement_usage_exceeded")
    assert checked.entitlement is not None
    assert checked.entitlement.usage == 100
    assert preflight.value is False


def test_schematic_client__identify_and_track__tierkit_meters_and_upserts(
    schematic: Schematic, catalog: httpx.Client
) -> None:
    schematic.identify(
        keys={"id": "u1"},
        company={"keys": {"id": "newco"}, "name": "New Co", "traits": {"tier": "gold"}},
        name="Ursula",
    )
    schematic.track("api_call", company={"id": "acme"}, user={"id": "u1"}, quantity=7)
    schematic.track("api_call", company={"id": "acme"})
    schematic.event_buffer.flush()

    assert used_of(catalog, "acme", "api_calls") == 8
    company = catalog.get("/v1/companies/newco").json()
    assert (company["name"], company["traits"]) == ("New Co", {"tier": "gold"})
    user = catalog.get("/v1/users/u1").json()
    assert (user["name"], user["companies"]) == ("Ursula", ["newco"])
    checked = schematic.check_flag_with_entitlement("api_calls", company={"id": "acme"})
    assert checked.entitlement is not None
    assert checked.entitlement.usage == 8


def test_schematic_client__upserts_and_catalog_reads__parse_in_its_models(
    schematic: Schematic, catalog: httpx.Client
) -> None:
    company = schematic.companies.upsert_company(
        keys={"id": "beta"}, name="Beta", traits={"seats": 3}
    )
    user = schematic.companies.upsert_user(
        keys={"email": "b@beta.test"}, name="Bea", company={"id": "beta"}
    )
    plans = schematic.plans.list_plans()
    features = schematic.features.list_features()

    assert (company.data.id, company.data.name, company.data.traits) == (
        "beta",
        "Beta",
        {"seats": 3},
    )
    assert catalog.get("/v1/users/b@beta.test").json()["companies"] == ["beta"]
    assert [m.company_id for m in user.data.company_memberships] == ["beta"]
    (pro,) = plans.data
    assert (pro.id, pro.plan_type) == ("pro", "plan")
    assert sorted(f.id for f in pro.features) == ["api_calls", "projects", "sso"]
    assert {f.id: [p.id for p in f.plans] for f in features.data} == {
        "api_calls": ["pro"],
        "projects": ["pro"],
        "sso": ["pro"],
    }

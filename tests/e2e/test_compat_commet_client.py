"""The real `commet-sdk` client, pointed at Tierkit's `/compat/commet/api/v1` with a Tierkit
key behind its `ck_` prefix, checks feature access, checks and records usage, and creates a
plan, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from commet import Commet, CommetAPIError, CommetValidationError

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
            {"feature": "api_calls", "value": 100, "soft_limit": False},
        ],
    )
    api.put("/v1/companies/acme", json={"name": "Acme", "plan": "pro"}).raise_for_status()
    return api


@pytest.fixture
def commet(server_url: str, make_key: KeyFactory, catalog: httpx.Client) -> Iterator[Commet]:
    client = Commet(f"ck_{make_key()}", retries=0, telemetry=False)
    # The SDK has no base URL option: its httpx client's is set, as the migration guide says.
    client._http._client.base_url = httpx.URL(f"{server_url}/compat/commet/api/v1")
    yield client
    client.close()


def test_commet_client__feature_access__boolean_quota_and_usage_one_or_all(
    commet: Commet,
) -> None:
    sso = commet.feature_access.get("sso", customer_id="acme")
    projects = commet.feature_access.get("projects", customer_id="acme")
    calls = commet.feature_access.get("api_calls", customer_id="acme")
    nobody = commet.feature_access.get("sso", customer_id="nobody")

    assert (sso.type, sso.allowed, sso.enabled) == ("boolean", True, True)
    assert (projects.type, projects.usage.included_units) == ("quota", 10)
    assert (calls.type, calls.allowed) == ("usage", True)
    assert calls.consumption.included_units == 100
    assert calls.consumption.units_used == 0
    assert (nobody.allowed, nobody.enabled) == (False, False)
    listed = commet.feature_access.list(customer_id="acme")
    assert {a.code: a.allowed for a in listed.data} == {
        "sso": True,
        "projects": True,
        "api_calls": True,
    }


def test_commet_client__track_usage__tierkit_meters_it_once_per_event_id(
    commet: Commet, catalog: httpx.Client
) -> None:
    first = commet.usage.track(feature_code="api_calls", customer_id="acme", value=5)
    commet.usage.track(feature_code="api_calls", customer_id="acme", event_id="e-1", value=20)
    commet.usage.track(feature_code="api_calls", customer_id="acme", event_id="e-1", value=20)

    assert (first.feature_code, first.customer_id, first.value) == ("api_calls", "acme", 5)
    assert used_of(catalog, "acme", "api_calls") == 25
    access = commet.feature_access.get("api_calls", customer_id="acme")
    assert access.consumption.units_used == 25


def test_commet_client__usage_check__denies_past_the_hard_limit(
    commet: Commet, catalog: httpx.Client
) -> None:
    commet.usage.track(feature_code="api_calls", customer_id="acme", value=95)

    fits = commet.usage.check(customer_id="acme", feature_code="api_calls", quantity=5)
    over = commet.usage.check(customer_id="acme", feature_code="api_calls", quantity=6)

    assert _field(fits, "allowed") is True
    assert _field(over, "allowed") is False
    assert (_field(over, "current"), _field(over, "included")) == (95, 100)


def _field(reply: object, name: str) -> object:
    # The SDK selects the usage check's variant by `consumptionModel` after converting keys
    # to snake case, so it hands back the converted dict: read either.
    return reply[name] if isinstance(reply, dict) else getattr(reply, name)


def test_commet_client__create_plan__a_tierkit_plan(commet: Commet, catalog: httpx.Client) -> None:
    plan = commet.plans.create(name="Team", code="team", description="For teams")

    assert (plan.code, plan.name, plan.object) == ("team", "Team", "plan")
    stored = catalog.get("/v1/plans/team").json()
    assert (stored["name"], stored["description"]) == ("Team", "For teams")


def test_commet_client__errors__raise_its_error_classes(commet: Commet) -> None:
    with pytest.raises(CommetAPIError) as missing:
        commet.feature_access.get("nope", customer_id="acme")
    with pytest.raises(CommetValidationError) as invalid:
        commet.plans.create(name="Bad", code="Not A Key")
    with pytest.raises(CommetAPIError) as not_metered:
        commet.usage.track(feature_code="sso", customer_id="acme")

    assert (missing.value.status_code, missing.value.code) == (404, "feature_not_found")
    assert "code" in invalid.value.validation_errors
    assert (not_metered.value.status_code, not_metered.value.code) == (400, "feature_not_metered")

"""Plan versions through the codec: the SDK snapshot and company states carry them, so local
evaluation resolves a subscription's plan at its version as the server does."""

from __future__ import annotations

from datetime import UTC, datetime

from tierkit.engine.catalog import Entitlement, Feature, FeatureType, Plan, PlanType
from tierkit.engine.codec import (
    catalog_from_json,
    catalog_to_json,
    company_from_json,
    company_to_json,
)
from tierkit.engine.customers import Subscription
from tierkit.engine.evaluate import Catalog, CompanyState, evaluate

NOW = datetime(2026, 11, 22, tzinfo=UTC)
PRO = Plan("pro", "Pro", entitlements=(Entitlement("seats", 20),))
CATALOG = Catalog(
    features={"seats": Feature("seats", "Seats", FeatureType.NUMERIC)},
    plans={"pro": PRO},
    plan_versions={"pro": {1: Plan("pro", "Pro", entitlements=(Entitlement("seats", 10),))}},
)


def _company(version: int | None) -> CompanyState:
    sub = Subscription("sub_1", "pro", PlanType.BASE, "default", 1, NOW, plan_version=version)
    return CompanyState("acme", subscriptions=(sub,))


def test_catalog_json__with_older_versions__round_trips() -> None:
    document = catalog_to_json(CATALOG)

    assert document["plan_versions"]["pro"][0]["version"] == 1
    assert catalog_from_json(document) == CATALOG


def test_catalog_json__no_older_versions__has_no_plan_versions_key() -> None:
    document = catalog_to_json(Catalog(features=CATALOG.features, plans=CATALOG.plans))

    assert "plan_versions" not in document


def test_company_json__subscription_version__round_trips_and_decides_the_same() -> None:
    for version, seats in ((1, 10), (2, 20), (None, 20)):
        company = company_from_json(company_to_json(_company(version)), CATALOG)

        assert company.subscriptions[0].plan_version == version
        assert evaluate(CATALOG, company, "seats", now=NOW).value == seats

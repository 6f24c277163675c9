"""Two processes on one database: a write reaches the other's checks once its cached state
expires (TIERKIT_CACHE_SECONDS), and at once in the process that made it."""

from __future__ import annotations

from tierkit.engine.catalog import Entitlement, Feature, FeatureType, Plan
from tierkit.engine.customers import Override
from tierkit.server.db import Database
from tierkit.server.services.checks import CheckRequest
from tierkit.server.services.container import Services


def _value(services: Services, environment_id: str) -> object:
    (decision,) = services.checks.check(environment_id, CheckRequest("acme", ["projects"]))
    return decision.value


def _setup(services: Services) -> str:
    environment_id = services.environments.get_environment("development").id
    feature = Feature("projects", "Projects", FeatureType.NUMERIC)
    services.features.create_feature(environment_id, feature)
    plan = Plan("pro", "Pro", entitlements=(Entitlement("projects", value=10),))
    services.plans.create_plan(environment_id, plan)
    services.customers.upsert_company(environment_id, "acme", {"plan": "pro"})
    return environment_id


def test_check_cache__write_in_one_process__seen_at_once_there_and_after_expiry_elsewhere(
    database: Database,
) -> None:
    writer = Services.build(database, cache_seconds=3600)
    trusting = Services.build(database, cache_seconds=3600)
    expiring = Services.build(database, cache_seconds=0)
    environment_id = _setup(writer)
    assert [_value(s, environment_id) for s in (writer, trusting, expiring)] == [10, 10, 10]

    override = Override(Entitlement("projects", value=99))
    writer.overrides.put_override(environment_id, "acme", override)

    assert _value(writer, environment_id) == 99  # its own write: at once
    assert _value(expiring, environment_id) == 99  # cache expired: reads the database
    assert _value(trusting, environment_id) == 10  # within its bound: may still be stale

"""Kickplan-compatible accounts and feature resolution under `/api`: point a Kickplan client
at Tierkit. Same keys as the native API; errors in Kickplan's shape (`api/errors.py`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from tierkit.engine.catalog import FeatureType
from tierkit.engine.codec import json_number
from tierkit.engine.evaluate import Catalog, Decision
from tierkit.server.api.dependencies import AnyKey, SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.checks import decide
from tierkit.server.api.routes.companies import CompanyKey
from tierkit.server.api.routes.ofrep import FlagKey
from tierkit.server.api.schemas.kickplan import (
    AccountCreate,
    AccountOut,
    AccountUpdate,
    KickplanMetricSet,
    ResolvedFeature,
    ResolveRequest,
)
from tierkit.server.services.checks import CheckRequest

router = APIRouter(prefix="/api", tags=["kickplan"], route_class=StrictJSONRoute)


@router.post("/accounts", response_model=AccountOut)
def kickplan_upsert_account(
    body: AccountCreate, principal: SecretKey, services: ServicesDep
) -> AccountOut:
    """Create or update an account (a company). `account_plans` and `feature_overrides`,
    when given, become the account's whole set of plans and overrides."""
    return _sync(body.key, body, principal.environment_id, services)


@router.put("/accounts/{key}", response_model=AccountOut)
def kickplan_update_account(
    key: CompanyKey, body: AccountUpdate, principal: SecretKey, services: ServicesDep
) -> AccountOut:
    """Update (or create) the account `key`."""
    return _sync(key, body, principal.environment_id, services)


def _sync(key: str, body: AccountUpdate, environment_id: str, services: ServicesDep) -> AccountOut:
    account = services.accounts.sync_account(
        environment_id, key, body.to_fields(), body.plan_keys(), body.variants()
    )
    return AccountOut.of(account)


def _resolved(catalog: Catalog, decision: Decision, *, detailed: bool) -> dict[str, Any]:
    """A decision as Kickplan resolves it: booleans and limits as `value`, a string `variant`."""
    feature = catalog.features[decision.feature]
    if feature.type is FeatureType.METERED:
        value: Any = decision.allowed
    else:
        value = json_number(decision.value)
    if not detailed:
        return {"value": value, "key": decision.feature}
    variant: str | None
    if decision.unlimited:
        variant = "unlimited"
    elif isinstance(value, bool):
        variant = "true" if value else "false"
    else:
        variant = None if value is None else str(value)
    return {
        "value": value,
        "metadata": {"name": feature.name},
        "key": decision.feature,
        "error_code": None,
        "variant": variant,
    }


@router.post("/features/{key}/resolve", response_model=ResolvedFeature)
async def kickplan_resolve_feature(
    key: FlagKey, body: ResolveRequest, principal: AnyKey, services: ServicesDep
) -> dict[str, Any]:
    """Resolve one feature for `context.account_key` (globally, on the default plan, without)."""
    request = CheckRequest(company=body.account_key, features=[key])
    (decision,) = await decide(services, principal.environment_id, request)
    catalog = services.checks.catalog(principal.environment_id)
    return _resolved(catalog, decision, detailed=True)


@router.post(
    "/features/resolve", response_model=list[ResolvedFeature], response_model_exclude_unset=True
)
async def kickplan_resolve_features(
    body: ResolveRequest, principal: AnyKey, services: ServicesDep
) -> list[dict[str, Any]]:
    """Resolve every feature for `context.account_key`: `value` and `key`, or everything with
    `detailed`."""
    decisions = await decide(
        services, principal.environment_id, CheckRequest(company=body.account_key)
    )
    catalog = services.checks.catalog(principal.environment_id)
    return [_resolved(catalog, d, detailed=body.detailed) for d in decisions]


@router.post("/metrics/set", status_code=202, response_class=Response)
def kickplan_set_metric(
    body: KickplanMetricSet, principal: SecretKey, services: ServicesDep
) -> Response:
    """Set a metric (a gauge such as seats) for an account: 202 with no body, as Kickplan.
    `key` is a `latest`-metered feature's key or its event name."""
    services.events.set_gauge(
        principal.environment_id,
        body.key,
        body.account_key,
        body.value,
        at=body.time,
        idempotency_key=body.idempotency_key,
    )
    return Response(status_code=202)

"""`/v1/plans`, their entitlements and the features they offer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from tierkit.engine.catalog import KEY_PATTERN, PlanStatus, PlanType
from tierkit.server.api.dependencies import SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.environment import Cursor, Limit
from tierkit.server.api.routes.features import FeatureKey
from tierkit.server.api.schemas.common import ListResponse
from tierkit.server.api.schemas.plan_versions import (
    MigrationBatchOut,
    MigrationBody,
    MigrationReportOut,
    PlanVersionOut,
)
from tierkit.server.api.schemas.plans import (
    EntitlementOut,
    EntitlementValue,
    PlanCreate,
    PlanFeatureOut,
    PlanOut,
    PlanUpdate,
)
from tierkit.server.services.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/plans", tags=["plans"], route_class=StrictJSONRoute)

PlanKey = Annotated[str, Path(pattern=KEY_PATTERN, description="The plan's key.")]


@router.get("", response_model=ListResponse[PlanOut])
def list_plans(
    principal: SecretKey,
    services: ServicesDep,
    type: PlanType | None = None,
    status: PlanStatus | None = None,
    group: Annotated[str | None, Query(pattern=KEY_PATTERN)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[PlanOut]:
    """Plans in display order: `sort_order`, then key."""
    page = services.plans.list_plans(
        principal.environment_id, type=type, status=status, group=group, cursor=cursor, limit=limit
    )
    return ListResponse(data=[PlanOut.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.post("", response_model=PlanOut, status_code=201)
def create_plan(body: PlanCreate, principal: SecretKey, services: ServicesDep) -> PlanOut:
    """Create a plan with its entitlements and prices, validated against the features."""
    return PlanOut.of(services.plans.create_plan(principal.environment_id, body.to_plan()))


@router.get("/{key}", response_model=PlanOut)
def get_plan(key: PlanKey, principal: SecretKey, services: ServicesDep) -> PlanOut:
    return PlanOut.of(services.plans.get_plan(principal.environment_id, key))


@router.patch("/{key}", response_model=PlanOut)
def update_plan(
    key: PlanKey, body: PlanUpdate, principal: SecretKey, services: ServicesDep
) -> PlanOut:
    """Change a plan; `entitlements` and `prices`, when given, replace the lists whole."""
    record = services.plans.update_plan(principal.environment_id, key, body.to_changes())
    return PlanOut.of(record)


@router.delete("/{key}", status_code=204, response_class=Response)
def delete_plan(key: PlanKey, principal: SecretKey, services: ServicesDep) -> Response:
    services.plans.delete_plan(principal.environment_id, key)
    return Response(status_code=204)


@router.put("/{key}/entitlements/{feature}", response_model=EntitlementOut)
def put_plan_entitlement(
    key: PlanKey,
    feature: FeatureKey,
    body: EntitlementValue,
    principal: SecretKey,
    services: ServicesDep,
) -> EntitlementOut:
    """Add or replace the plan's entitlement for one feature."""
    entitlement = services.plans.put_entitlement(
        principal.environment_id, key, body.to_entitlement(feature)
    )
    return EntitlementOut.of(entitlement)


@router.delete("/{key}/entitlements/{feature}", status_code=204, response_class=Response)
def delete_plan_entitlement(
    key: PlanKey, feature: FeatureKey, principal: SecretKey, services: ServicesDep
) -> Response:
    services.plans.delete_entitlement(principal.environment_id, key, feature)
    return Response(status_code=204)


@router.get("/{key}/features", response_model=ListResponse[PlanFeatureOut])
def list_plan_features(
    key: PlanKey, principal: SecretKey, services: ServicesDep
) -> ListResponse[PlanFeatureOut]:
    """Every feature with its value on this plan (the plan's own first), for pricing pages."""
    offered = services.plans.list_plan_features(principal.environment_id, key)
    return ListResponse(data=[PlanFeatureOut.of(o) for o in offered], next_cursor=None)


@router.get("/{key}/versions", response_model=ListResponse[PlanVersionOut])
def list_plan_versions(
    key: PlanKey,
    principal: SecretKey,
    services: ServicesDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[PlanVersionOut]:
    """The plan's versions, newest first, each with its subscriber count."""
    page = services.plan_versions.list_versions(
        principal.environment_id, key, cursor=cursor, limit=limit
    )
    return ListResponse(
        data=[PlanVersionOut.of(v) for v in page.items], next_cursor=page.next_cursor
    )


@router.post("/{key}/migrations", response_model=MigrationReportOut | MigrationBatchOut)
def migrate_plan_version(
    key: PlanKey, body: MigrationBody, principal: SecretKey, services: ServicesDep
) -> MigrationReportOut | MigrationBatchOut:
    """Move subscriptions from one version of the plan to another. A dry run reports the
    impact per company; a real run moves up to `batch_size` subscriptions per call (call
    again until `done`: an interrupted migration resumes where it stopped)."""
    versions = services.plan_versions
    environment_id = principal.environment_id
    if body.dry_run:
        report = versions.preview(environment_id, key, body.from_version, body.to_version)
        return MigrationReportOut.of(report)
    batch = versions.migrate_batch(
        environment_id, key, body.from_version, body.to_version, batch_size=body.batch_size
    )
    return MigrationBatchOut.of(batch)

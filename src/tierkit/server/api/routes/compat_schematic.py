"""Schematic-compatible routes under `/compat/schematic`: point Schematic's SDK (`base_url`
and `event_capture_url`) at Tierkit and keep its calls. Thin: checks, events, customers and
the catalog are Tierkit's own services; errors in Schematic's shape (`api/errors.py`)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from tierkit.server.api.compat_keys import SchematicAnyKey, SchematicSecretKey
from tierkit.server.api.dependencies import ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.checks import decide
from tierkit.server.api.routes.features import FeatureKey
from tierkit.server.api.schemas.compat_schematic import (
    CaptureBatch,
    CaptureOut,
    CompanyUpsertBody,
    FlagCheckBody,
    UserUpsertBody,
    key_of,
)
from tierkit.server.api.schemas.compat_schematic_replies import (
    check_reply,
    company_of,
    feature_of,
    flag_of,
    flags_reply,
    plan_of,
    user_of,
)
from tierkit.server.services.checks import CheckRequest

router = APIRouter(
    prefix="/compat/schematic", tags=["compat: schematic"], route_class=StrictJSONRoute
)

Limit = Annotated[int, Query(ge=1, le=500, description="At most this many (first page only).")]


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _request(body: FlagCheckBody, features: list[str] | None) -> CheckRequest:
    return CheckRequest(
        company=body.company_key, features=features, user=body.user_key, quantity=body.quantity
    )


@router.post("/flags/{key}/check", response_model=None)
async def schematic_check_flag(
    key: FeatureKey, body: FlagCheckBody, principal: SchematicAnyKey, services: ServicesDep
) -> Response:
    """Check one flag (a Tierkit feature) for a company and user given by Schematic key maps:
    `{"data": {"flag", "value", "reason", "entitlement", ...}, "params": {...}}`."""
    (decision,) = await decide(services, principal.environment_id, _request(body, [key]))
    catalog = services.checks.catalog(principal.environment_id)
    return _json(check_reply(flag_of(catalog, decision), body))


@router.post("/flags/check", response_model=None)
async def schematic_check_flags(
    body: FlagCheckBody, principal: SchematicAnyKey, services: ServicesDep
) -> Response:
    """Check every flag: `{"data": {"flags": [...], "credit_spend_policies": []}}`."""
    decisions = await decide(services, principal.environment_id, _request(body, None))
    catalog = services.checks.catalog(principal.environment_id)
    return _json(flags_reply(catalog, decisions, body))


@router.post("/batch", response_model=CaptureOut)
def schematic_capture_batch(
    body: CaptureBatch, principal: SchematicSecretKey, services: ServicesDep
) -> CaptureOut:
    """The event capture endpoint (`event_capture_url` + `/batch`): `track` events are usage,
    `identify` events upsert the user and its company; stored in one transaction."""
    events = [e.to_new_event() for e in body.events]
    kept = [e for e in events if e is not None]
    result = services.events.ingest(principal.environment_id, kept) if kept else None
    return CaptureOut(
        accepted=result.accepted if result else 0,
        duplicates=result.duplicates if result else 0,
        ignored=len(events) - len(kept),
    )


@router.post("/companies", response_model=None)
def schematic_upsert_company(
    body: CompanyUpsertBody, principal: SchematicSecretKey, services: ServicesDep
) -> Response:
    """Create or update the company its `keys` name (see the key rule), with name and traits."""
    environment_id = principal.environment_id
    key = key_of(body.keys)
    detail, _ = services.customers.upsert_company(environment_id, key, body.fields())
    key_name = "id" if "id" in body.keys else min(body.keys)
    return _json({"data": company_of(detail, environment_id, key_name), "params": {}})


@router.post("/users", response_model=None)
def schematic_upsert_user(
    body: UserUpsertBody, principal: SchematicSecretKey, services: ServicesDep
) -> Response:
    """Create or update the user its `keys` name; `company`/`companies` set its memberships."""
    environment_id = principal.environment_id
    record, _ = services.users.upsert_user(environment_id, key_of(body.keys), body.fields())
    key_name = "id" if "id" in body.keys else min(body.keys)
    return _json({"data": user_of(record, environment_id, key_name), "params": {}})


@router.get("/plans", response_model=None)
async def schematic_list_plans(
    principal: SchematicSecretKey, services: ServicesDep, limit: Limit = 100
) -> Response:
    """Plans in display order, with the features they entitle."""
    page = await run_in_threadpool(services.plans.list_plans, principal.environment_id, limit=limit)
    catalog = services.checks.catalog(principal.environment_id)
    data = [plan_of(record, catalog) for record in page.items]
    return _json({"data": data, "params": {"limit": limit}})


@router.get("/features", response_model=None)
async def schematic_list_features(
    principal: SchematicSecretKey, services: ServicesDep, limit: Limit = 100
) -> Response:
    """Features (each one flag of the same key), with the plans that entitle them."""
    page = await run_in_threadpool(
        services.features.list_features, principal.environment_id, limit=limit
    )
    catalog = services.checks.catalog(principal.environment_id)
    data = []
    for record in page.items:
        plans = [
            {"id": plan.key, "name": plan.name}
            for plan in catalog.plans.values()
            if plan.entitlement_for(record.feature.key) is not None
        ]
        data.append(feature_of(record, plans))
    return _json({"data": data, "params": {"limit": limit}})

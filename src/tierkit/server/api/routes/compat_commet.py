"""Commet-compatible routes under `/compat/commet/api/v1`: feature access, usage checks and
usage events as Commet's SDK calls them, and the plan create route. Thin: Tierkit's checks,
events and plans; replies in `{"success": true, "data"}`, errors in Commet's envelope
(`api/errors.py`). A customer id is a Tierkit company key; a feature code a feature key."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import uuid4

import orjson
from fastapi import APIRouter, Header, Query, Response
from fastapi.concurrency import run_in_threadpool

from tierkit.engine.catalog import FeatureType
from tierkit.server.api.compat_keys import CommetSecretKey
from tierkit.server.api.dependencies import ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.checks import decide
from tierkit.server.api.routes.features import FeatureKey
from tierkit.server.api.schemas.common import ExternalKey
from tierkit.server.api.schemas.compat_commet import (
    PlanCreateBody,
    UsageCheckBody,
    UsageEventBody,
    feature_access_of,
    ok,
    plan_out,
    usage_check_of,
    usage_event_of,
)
from tierkit.server.services.checks import CheckRequest
from tierkit.server.services.container import Services
from tierkit.server.services.errors import InvalidRequest
from tierkit.server.services.events import NewEvent
from tierkit.server.services.features import feature_not_found

router = APIRouter(
    prefix="/compat/commet/api/v1", tags=["compat: commet"], route_class=StrictJSONRoute
)

CustomerId = Annotated[ExternalKey, Query(alias="customerId", description="A company key.")]
IdempotencyKey = Annotated[
    ExternalKey | None,
    Header(alias="Idempotency-Key", description="A retried request with it counts once."),
]


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


@router.get("/feature-access/{code}", response_model=None)
async def commet_feature_access(
    code: FeatureKey, customer_id: CustomerId, principal: CommetSecretKey, services: ServicesDep
) -> Response:
    """One feature's access and current usage for a customer."""
    request = CheckRequest(company=customer_id, features=[code])
    (decision,) = await decide(services, principal.environment_id, request)
    catalog = services.checks.catalog(principal.environment_id)
    return _json(ok(feature_access_of(catalog, decision)))


@router.get("/feature-access", response_model=None)
async def commet_list_feature_access(
    customer_id: CustomerId, principal: CommetSecretKey, services: ServicesDep
) -> Response:
    """Every feature's access and current usage for a customer."""
    decisions = await decide(services, principal.environment_id, CheckRequest(customer_id))
    catalog = services.checks.catalog(principal.environment_id)
    data = [feature_access_of(catalog, d) for d in decisions]
    return _json(ok({"object": "list", "data": data, "hasMore": False, "nextCursor": None}))


@router.post("/usage/check", response_model=None)
async def commet_usage_check(
    body: UsageCheckBody, principal: CommetSecretKey, services: ServicesDep
) -> Response:
    """May the customer consume `quantity` more of the feature now (nothing is recorded)."""
    request = CheckRequest(
        company=body.customer_id, features=[body.feature_code], quantity=body.quantity
    )
    (decision,) = await decide(services, principal.environment_id, request)
    catalog = services.checks.catalog(principal.environment_id)
    return _json(ok(usage_check_of(catalog, decision, body.quantity)))


def _meter_event(services: Services, environment_id: str, feature_key: str) -> str:
    feature = services.checks.catalog(environment_id).features.get(feature_key)
    if feature is None:
        raise feature_not_found(feature_key, param="featureCode")
    if feature.type is not FeatureType.METERED or feature.meter is None:
        raise InvalidRequest(
            f"The feature {feature_key!r} is not metered: only metered features take usage.",
            code="feature_not_metered",
            param="featureCode",
        )
    return feature.meter.event


@router.post("/usage/events", status_code=201, response_model=None)
def commet_track_usage(
    body: UsageEventBody,
    principal: CommetSecretKey,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Record `value` units (1 by default) of a metered feature as its meter's event. `eventId`
    (or the `Idempotency-Key` header) makes a retry count once."""
    environment_id = principal.environment_id
    quantity = 1.0 if body.value is None else body.value
    key = body.event_id or idempotency_key
    event = NewEvent(
        type="track",
        event=_meter_event(services, environment_id, body.feature_code),
        company=body.customer_id,
        quantity=quantity,
        properties={p.property: p.value for p in body.properties or []},
        timestamp=body.timestamp,
        idempotency_key=key,
    )
    services.events.ingest(environment_id, [event], batch=False)
    received = services.clock()
    data = usage_event_of(body, key or f"evt_{uuid4().hex}", quantity, received)
    return _json(ok(data), 201)


async def _create_plan(body: PlanCreateBody, environment_id: str, services: Services) -> Response:
    record = await run_in_threadpool(services.plans.create_plan, environment_id, body.to_plan())
    return _json(ok(plan_out(record, body)), 201)


@router.post("/plans", status_code=201, response_model=None)
async def commet_create_plan(
    body: PlanCreateBody, principal: CommetSecretKey, services: ServicesDep
) -> Response:
    """Create a plan (the SDK's `plans.create`): `code` is its Tierkit key."""
    return await _create_plan(body, principal.environment_id, services)


@router.post("/plans/manage", status_code=201, response_model=None)
async def commet_create_plan_manage(
    body: PlanCreateBody, principal: CommetSecretKey, services: ServicesDep
) -> Response:
    """Create a plan (the path of Commet's API reference); the same as `POST /plans`."""
    return await _create_plan(body, principal.environment_id, services)

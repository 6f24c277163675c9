"""`/v1/check`: the hot path. Replies are built as plain data and serialized with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from tierkit.engine.codec import decision_to_json
from tierkit.engine.evaluate import Decision
from tierkit.server.api.dependencies import Access, AnyKey, ServicesDep, authorize
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.schemas.checks import CheckBody, CheckBulkBody, CheckBulkOut, CheckOut
from tierkit.server.services.api_keys import Principal
from tierkit.server.services.checks import CheckRequest
from tierkit.server.services.container import Services

router = APIRouter(prefix="/v1", tags=["checks"], route_class=StrictJSONRoute)


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


async def decide(services: Services, environment_id: str, request: CheckRequest) -> list[Decision]:
    """Decisions from memory inline; when state must be read, in a worker thread (the event
    loop never waits on the database)."""
    decisions = services.checks.check_from_memory(environment_id, request)
    if decisions is None:
        decisions = await run_in_threadpool(services.checks.check, environment_id, request)
    return decisions


async def answer_check(services: Services, principal: Principal, body: CheckBody) -> Decision:
    """The `/v1/check` answer (the JSON-RPC `check` method's too)."""
    request = CheckRequest(
        company=body.company,
        features=[body.feature],
        user=body.user,
        quantity=body.quantity,
        context=body.context.traits if body.context else {},
    )
    if body.consume:
        # Recording usage is a write: a browser's publishable key may check, not consume.
        authorize(principal, Access.SECRET)
        return await run_in_threadpool(
            services.checks.consume, principal.environment_id, request, body.idempotency_key
        )
    (decision,) = await decide(services, principal.environment_id, request)
    return decision


async def answer_check_bulk(
    services: Services, principal: Principal, body: CheckBulkBody
) -> list[Decision]:
    request = CheckRequest(
        company=body.company,
        features=body.features,
        user=body.user,
        context=body.context.traits if body.context else {},
    )
    return await decide(services, principal.environment_id, request)


@router.post("/check", response_model=None, responses={200: {"model": CheckOut}})
async def check(body: CheckBody, principal: AnyKey, services: ServicesDep) -> Response:
    """May the company use `quantity` more of the feature now, and why. Publishable keys allowed.

    Unknown companies evaluate as a company with no traits on the default plan
    (`company_found: false`); an unknown feature is 404 `feature_not_found`."""
    return _json(decision_to_json(await answer_check(services, principal, body)))


@router.post("/check/bulk", response_model=None, responses={200: {"model": CheckBulkOut}})
async def check_bulk(body: CheckBulkBody, principal: AnyKey, services: ServicesDep) -> Response:
    """Several features (every feature not archived when `features` is omitted) at once."""
    decisions = await answer_check_bulk(services, principal, body)
    return _json({"data": [decision_to_json(d) for d in decisions]})

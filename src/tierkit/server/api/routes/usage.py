"""`/v1/events`, `/v1/metrics/set` and `/v1/companies/{key}/usage`: recording usage and
reading it back."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Query, Response
from fastapi.exceptions import RequestValidationError

from tierkit.server.api.dependencies import SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.companies import CompanyKey
from tierkit.server.api.routes.environment import Cursor, Limit
from tierkit.server.api.routes.features import FeatureKey
from tierkit.server.api.schemas.common import EventName, ExternalKey, ListResponse, Timestamp
from tierkit.server.api.schemas.usage import (
    CompanyUsageOut,
    EventOut,
    FeatureUsageOut,
    IngestOut,
    MetricSet,
    SeriesOut,
    parse_events,
)
from tierkit.server.services.container import Services
from tierkit.server.services.events import IngestResult
from tierkit.server.services.pagination import DEFAULT_LIMIT
from tierkit.server.services.usage import Granularity

router = APIRouter(prefix="/v1", tags=["usage"], route_class=StrictJSONRoute)


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def _accepted(accepted: int, duplicates: int) -> Response:
    return _json({"accepted": accepted, "duplicates": duplicates}, 202)


@router.post(
    "/events",
    status_code=202,
    response_model=None,
    responses={202: {"model": IngestOut, "description": "Stored durably."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventsIn"}}},
        }
    },
)
def ingest_events(
    body: Annotated[Any, Body()], principal: SecretKey, services: ServicesDep
) -> Response:
    """Record one event, or a batch `{"events": [...]}` of up to 1000, in one transaction.

    The reply comes once the events are stored. A batch with any invalid event stores nothing,
    and `details` names each bad one (`events.<index>.<field>`). An `idempotency_key` stored
    before (in this batch or any other) is counted once: the reply's `duplicates`."""
    result = record_events(services, principal.environment_id, body)
    return _accepted(result.accepted, result.duplicates)


def record_events(services: Services, environment_id: str, body: Any) -> IngestResult:
    """Validate and store one event or a batch (the JSON-RPC `track` method's too)."""
    events, batch, errors = parse_events(body)
    if errors:
        raise RequestValidationError(errors)
    return services.events.ingest(environment_id, events, batch=batch)


@router.post(
    "/metrics/set",
    status_code=202,
    response_model=None,
    responses={202: {"model": IngestOut, "description": "Stored durably."}},
)
def set_metric(body: MetricSet, principal: SecretKey, services: ServicesDep) -> Response:
    """Set a gauge (a `latest` meter, such as seats) for a company: the feature's usage is
    the value last set, by `time`."""
    result = services.events.set_gauge(
        principal.environment_id,
        body.key,
        body.company,
        float(body.value),
        at=body.time,
        idempotency_key=body.idempotency_key,
    )
    return _accepted(result.accepted, result.duplicates)


EventId = Annotated[str, Path(max_length=64, description="The event's id (`evt_...`).")]


@router.get("/events", response_model=None, responses={200: {"model": ListResponse[EventOut]}})
def list_events(
    principal: SecretKey,
    services: ServicesDep,
    company: Annotated[ExternalKey | None, Query(description="Events of this company.")] = None,
    event: Annotated[EventName | None, Query(description="Events of this name.")] = None,
    from_: Annotated[
        Timestamp | None, Query(alias="from", description="Timestamps at or after.")
    ] = None,
    to: Annotated[Timestamp | None, Query(description="Timestamps before.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """The events as they were stored, newest first: `{"data": [...], "next_cursor"}`."""
    page = services.events.list_events(
        principal.environment_id,
        company=company,
        event=event,
        start=from_,
        end=to,
        cursor=cursor,
        limit=limit,
    )
    return _json({"data": [EventOut.of(r) for r in page.items], "next_cursor": page.next_cursor})


@router.get("/events/{event_id}", response_model=None, responses={200: {"model": EventOut}})
def get_event(event_id: EventId, principal: SecretKey, services: ServicesDep) -> Response:
    return _json(EventOut.of(services.events.get_event(principal.environment_id, event_id)))


@router.get(
    "/companies/{key}/usage", response_model=None, responses={200: {"model": CompanyUsageOut}}
)
def get_company_usage(key: CompanyKey, principal: SecretKey, services: ServicesDep) -> Response:
    """Each metered feature's usage in its current period, with its limit and reset time."""
    decisions = services.usage.company_usage(principal.environment_id, key)
    return _json({"data": [FeatureUsageOut.of(d) for d in decisions]})


@router.get(
    "/companies/{key}/usage/{feature}",
    response_model=None,
    responses={200: {"model": SeriesOut}},
)
def get_usage_series(
    key: CompanyKey,
    feature: FeatureKey,
    principal: SecretKey,
    services: ServicesDep,
    from_: Annotated[
        Timestamp | None,
        Query(alias="from", description="Start (default: 24 hours or 30 days before `to`)."),
    ] = None,
    to: Annotated[Timestamp | None, Query(description="End (default: now).")] = None,
    granularity: Annotated[
        Granularity, Query(description="`hour` (UTC) or `day` (the company's time zone).")
    ] = Granularity.DAY,
) -> Response:
    """The feature's usage per bucket, from the raw events (at most 1000 buckets)."""
    series = services.usage.series(
        principal.environment_id, key, feature, start=from_, end=to, granularity=granularity
    )
    return _json(SeriesOut.of(series))

"""`/v1/webhooks` (endpoints, their deliveries, retries and tests) and `/v1/audit-log`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from tierkit.server.api.dependencies import SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.environment import Cursor, Limit
from tierkit.server.api.schemas.common import ListResponse, Timestamp
from tierkit.server.api.schemas.webhooks import (
    AuditEntryOut,
    DeliveryOut,
    EndpointCreate,
    EndpointOut,
    EndpointUpdate,
    EndpointWithSecret,
)
from tierkit.server.services.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=StrictJSONRoute)

EndpointId = Annotated[str, Path(max_length=64, description="The endpoint's id (`whe_...`).")]
DeliveryId = Annotated[str, Path(max_length=64, description="The delivery's id (`whd_...`).")]


@router.post("/webhooks", status_code=201, response_model=EndpointWithSecret)
def create_webhook(
    body: EndpointCreate, principal: SecretKey, services: ServicesDep
) -> EndpointWithSecret:
    """A new endpoint. The reply holds its signing secret (`whsec_...`), the only time it is
    shown."""
    endpoint = services.webhooks.create_endpoint(
        principal.environment_id,
        url=body.url,
        event_types=[t.value for t in body.event_types],
        description=body.description,
        enabled=body.enabled,
    )
    return EndpointWithSecret.of(endpoint)


@router.get("/webhooks", response_model=ListResponse[EndpointOut])
def list_webhooks(principal: SecretKey, services: ServicesDep) -> ListResponse[EndpointOut]:
    endpoints = services.webhooks.list_endpoints(principal.environment_id)
    return ListResponse(data=[EndpointOut.of(e) for e in endpoints], next_cursor=None)


@router.get("/webhooks/{endpoint_id}", response_model=EndpointOut)
def get_webhook(
    endpoint_id: EndpointId, principal: SecretKey, services: ServicesDep
) -> EndpointOut:
    return EndpointOut.of(services.webhooks.get_endpoint(principal.environment_id, endpoint_id))


@router.patch("/webhooks/{endpoint_id}", response_model=EndpointOut)
def update_webhook(
    endpoint_id: EndpointId, body: EndpointUpdate, principal: SecretKey, services: ServicesDep
) -> EndpointOut:
    """Change what was sent; `enabled: true` re-enables a disabled endpoint."""
    changes = body.provided()
    if "event_types" in changes:
        changes["event_types"] = [t.value for t in changes["event_types"]]
    endpoint = services.webhooks.update_endpoint(principal.environment_id, endpoint_id, changes)
    return EndpointOut.of(endpoint)


@router.delete("/webhooks/{endpoint_id}", status_code=204, response_class=Response)
def delete_webhook(
    endpoint_id: EndpointId, principal: SecretKey, services: ServicesDep
) -> Response:
    services.webhooks.delete_endpoint(principal.environment_id, endpoint_id)
    return Response(status_code=204)


@router.post("/webhooks/{endpoint_id}/rotate-secret", response_model=EndpointWithSecret)
def rotate_webhook_secret(
    endpoint_id: EndpointId, principal: SecretKey, services: ServicesDep
) -> EndpointWithSecret:
    """A new signing secret, used from the next delivery on; shown only in this reply."""
    endpoint = services.webhooks.rotate_secret(principal.environment_id, endpoint_id)
    return EndpointWithSecret.of(endpoint)


@router.post("/webhooks/{endpoint_id}/test", status_code=202, response_model=DeliveryOut)
def test_webhook(
    endpoint_id: EndpointId, principal: SecretKey, services: ServicesDep
) -> DeliveryOut:
    """Send a `webhook.test` event to this endpoint; follow it in its deliveries."""
    return DeliveryOut.of(services.webhooks.send_test(principal.environment_id, endpoint_id))


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=ListResponse[DeliveryOut])
def list_webhook_deliveries(
    endpoint_id: EndpointId,
    principal: SecretKey,
    services: ServicesDep,
    status: Annotated[
        Literal["pending", "succeeded", "failed"] | None, Query(description="Only these.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[DeliveryOut]:
    """Deliveries to the endpoint, newest first, each with every attempt (status, latency,
    the start of the reply)."""
    page = services.webhooks.list_deliveries(
        principal.environment_id, endpoint_id, status=status, cursor=cursor, limit=limit
    )
    return ListResponse(data=[DeliveryOut.of(d) for d in page.items], next_cursor=page.next_cursor)


@router.post(
    "/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryOut,
)
def retry_webhook_delivery(
    endpoint_id: EndpointId, delivery_id: DeliveryId, principal: SecretKey, services: ServicesDep
) -> DeliveryOut:
    """Send a delivery again now, whatever its status (same `webhook-id`)."""
    delivery = services.webhooks.retry_delivery(principal.environment_id, endpoint_id, delivery_id)
    return DeliveryOut.of(delivery)


@router.get("/audit-log", response_model=ListResponse[AuditEntryOut], tags=["audit"])
def list_audit_log(
    principal: SecretKey,
    services: ServicesDep,
    actor: Annotated[
        str | None, Query(max_length=255, description="Changes by this actor.")
    ] = None,
    action: Annotated[str | None, Query(max_length=64, description="e.g. `plan.updated`.")] = None,
    resource_type: Annotated[str | None, Query(max_length=32, description="e.g. `plan`.")] = None,
    resource_key: Annotated[str | None, Query(max_length=255)] = None,
    from_: Annotated[Timestamp | None, Query(alias="from", description="At or after.")] = None,
    to: Annotated[Timestamp | None, Query(description="Before.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[AuditEntryOut]:
    """Every change made through the API or the CLI, newest first, with who made it and the
    resource before and after."""
    page = services.audit.list_entries(
        principal.environment_id,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_key=resource_key,
        start=from_,
        end=to,
        cursor=cursor,
        limit=limit,
    )
    return ListResponse(
        data=[AuditEntryOut.of(e) for e in page.items], next_cursor=page.next_cursor
    )

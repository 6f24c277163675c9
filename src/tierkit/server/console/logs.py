"""The audit log and the webhooks, to read."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from tierkit.server.api.dependencies import ServicesDep
from tierkit.server.console.web import PREFIX, ConsoleRoute, SessionDep, page
from tierkit.server.services.errors import NotFound

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("/audit")
def audit_log(
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    actor: str = Query(default="", max_length=255),
    action: str = Query(default="", max_length=64),
    resource_type: str = Query(default="", max_length=32),
    resource_key: str = Query(default="", max_length=255),
    cursor: str | None = Query(default=None, max_length=500),
) -> Response:
    found = services.audit.list_entries(
        session.environment_id,
        actor=actor or None,
        action=action or None,
        resource_type=resource_type or None,
        resource_key=resource_key or None,
        cursor=cursor,
        limit=50,
    )
    return page(
        request,
        session,
        "audit.html",
        {
            "section": "audit",
            "entries": found.items,
            "next": found.next_cursor,
            "actor": actor,
            "action": action,
            "resource_type": resource_type,
            "resource_key": resource_key,
        },
    )


@router.get("/webhooks")
def webhooks(request: Request, session: SessionDep, services: ServicesDep) -> Response:
    endpoints = services.webhooks.list_endpoints(session.environment_id)
    deliveries = {
        endpoint.id: services.webhooks.list_deliveries(
            session.environment_id, endpoint.id, limit=10
        ).items
        for endpoint in endpoints
    }
    return page(
        request,
        session,
        "webhooks.html",
        {"section": "webhooks", "endpoints": endpoints, "deliveries": deliveries},
    )


@router.api_route("/{anything:path}", methods=["GET", "POST"])
def not_found(anything: str) -> Response:
    """Any other console address: the console's own 404 page, not the API's JSON."""
    raise NotFound("There is no such page in the console: check the address.")

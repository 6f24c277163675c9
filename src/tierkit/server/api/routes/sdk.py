"""SDK sync for local evaluation: `/v1/sdk/snapshot` (the catalog, with an ETag),
`/v1/sdk/companies/{key}` and `/v1/sdk/users/{key}` (states in the engine's terms), and
`/v1/sdk/stream` (server-sent events naming what changed). Secret keys only: the snapshot holds
private features and every rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from tierkit.server.api.dependencies import SecretKey, ServicesDep
from tierkit.server.api.etags import etag_matches
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.companies import CompanyKey
from tierkit.server.api.schemas.usage import IdempotencyKey
from tierkit.server.services.changes import Change

router = APIRouter(prefix="/v1/sdk", tags=["sdk"], route_class=StrictJSONRoute)

_MAX_PENDING = 100
"""Pending events a state read may ask about."""

_QUEUED_CHANGES = 10_000
"""A stream that falls this far behind gets `reset` (read everything again) instead."""


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "/snapshot",
    response_model=None,
    responses={
        200: {"description": '`{"etag", "catalog"}`: features, plans, rules, credit types.'},
        304: {"description": "Not modified (`If-None-Match` holds the current ETag)."},
    },
)
def sdk_snapshot(
    principal: SecretKey,
    services: ServicesDep,
    if_none_match: str | None = Header(default=None),
) -> Response:
    """The environment's catalog as the SDK's local evaluation reads it."""
    snapshot = services.sdk.snapshot(principal.environment_id)
    headers = {"ETag": snapshot.etag, "Cache-Control": "no-cache"}
    if etag_matches(snapshot.etag, if_none_match):
        return Response(status_code=304, headers=headers)
    return Response(snapshot.body, media_type="application/json", headers=headers)


@router.get("/companies/{key}", response_model=None)
def sdk_company(
    key: CompanyKey,
    principal: SecretKey,
    services: ServicesDep,
    pending: Annotated[
        list[IdempotencyKey],
        Query(
            max_length=_MAX_PENDING,
            description="Idempotency keys of events the reader tracked and has not seen "
            "acknowledged; `stored` in the reply names those this state already counts.",
        ),
    ] = [],  # noqa: B006 - FastAPI copies query defaults
) -> Response:
    """A company's state: traits, subscriptions, overrides, credit grants, and its usage in
    each metered feature's current window. `refresh_at` is when to read it again at the
    latest. An unknown company is `found: false` (it evaluates on the default plan)."""
    return _json(services.sdk.company_state(principal.environment_id, key, pending))


@router.get("/users/{key}", response_model=None)
def sdk_user(key: CompanyKey, principal: SecretKey, services: ServicesDep) -> Response:
    """A user's traits, for rules on user traits."""
    return _json(services.sdk.user_state(principal.environment_id, key))


def _event(name: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"


def _change_event(change: Change) -> bytes:
    data: dict[str, Any] = {"kind": change.kind.value}
    if change.company is not None:
        data["company"] = change.company
    if change.user is not None:
        data["user"] = change.user
    return _event(change.kind.value, data, change.seq)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}},
)
async def sdk_stream(request: Request, principal: SecretKey, services: ServicesDep) -> Response:
    """What changes in the environment, as it happens: first `hello` with the catalog's
    `etag`, then one event per change, named by its kind (`catalog`, `company`,
    `subscription`, `override`, `usage`, `credits`, `user`) with the `company` or `user` it
    concerns. A client re-reads what it holds of that. `reset` means changes were missed: read
    everything again. Comments keep an idle stream alive."""
    environment_id = principal.environment_id
    keepalive: float = request.app.state.settings.stream_keepalive_seconds
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Change] = asyncio.Queue(maxsize=_QUEUED_CHANGES)
    missed = asyncio.Event()

    def offer(change: Change) -> None:
        try:
            queue.put_nowait(change)
        except asyncio.QueueFull:
            missed.set()

    def on_change(change: Change) -> None:
        if change.concerns(environment_id) and not loop.is_closed():
            loop.call_soon_threadsafe(offer, change)

    async def events() -> AsyncIterator[bytes]:
        # Listening starts before the snapshot is read, so no change falls between them; and
        # inside the generator, so that whatever ends it stops the listening.
        stop = services.changes.listen(on_change)
        try:
            snapshot = await run_in_threadpool(services.sdk.snapshot, environment_id)
            yield _event("hello", {"etag": snapshot.etag})
            while True:
                try:
                    change = await asyncio.wait_for(queue.get(), keepalive)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if missed.is_set():
                    missed.clear()
                    while not queue.empty():
                        queue.get_nowait()
                    yield _event("reset", {})
                    continue
                yield _change_event(change)
        finally:
            stop()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

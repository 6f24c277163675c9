"""JSON-RPC 2.0 over WebSocket at `/v1/rpc`: `check`, `check_bulk`, `track`, `identify`,
`subscribe` and `unsubscribe`, with the REST routes' validation and answers.

The key comes in the `Authorization: Bearer` or `X-Api-Key` header, or (for browsers, which
cannot set headers on a WebSocket) the `api_key` query parameter; an unknown key closes the
socket with code 4401. Errors carry the REST error envelope's `error` object in `data`, and a
code by its HTTP status: 400 -32602 (invalid params), 401 -32001, 403 -32003, 404 -32004,
409 -32009, anything else -32603. After `subscribe {"company"}` the server sends
`entitlements.changed` notifications `{"company", "entitlements": [<check reply>...]}` when
what the company is entitled to (its decisions, usage included) changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from tierkit.engine.codec import decision_to_json
from tierkit.server.api.dependencies import Access, authorize
from tierkit.server.api.errors import envelope_of
from tierkit.server.api.routes.checks import answer_check, answer_check_bulk
from tierkit.server.api.routes.usage import record_events
from tierkit.server.api.schemas.checks import CheckBody, CheckBulkBody
from tierkit.server.api.schemas.common import ExternalKey, InputModel
from tierkit.server.rate_limits import RateLimiter
from tierkit.server.services.api_keys import Principal
from tierkit.server.services.changes import Change, ChangeKind
from tierkit.server.services.checks import CheckRequest
from tierkit.server.services.container import Services
from tierkit.server.services.errors import AuthenticationFailed, DomainError, NotFound, RateLimited

logger = logging.getLogger("tierkit.rpc")

router = APIRouter(tags=["rpc"])

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
_CODE_OF_STATUS = {
    400: INVALID_PARAMS,
    401: -32001,
    403: -32003,
    404: -32004,
    409: -32009,
    429: -32029,
}
_MAX_BATCH = 100


class SubscribeParams(InputModel):
    company: ExternalKey


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def _result(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _params(model: type[BaseModel], params: Any) -> Any:
    try:
        return model.model_validate(params if params is not None else {})
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("params", *item["loc"])} for item in error.errors()]
        ) from None


class _Session:
    """One socket: its principal, its subscriptions, and one writer at a time."""

    def __init__(self, websocket: WebSocket, services: Services, principal: Principal) -> None:
        self.websocket = websocket
        self.services = services
        self.principal = principal
        self.limiter: RateLimiter = websocket.app.state.rate_limiter
        self.subscribed: dict[str, bytes | None] = {}  # company -> last entitlements sent
        self.changed: asyncio.Queue[str | None] = asyncio.Queue(maxsize=10_000)
        self._send_lock = asyncio.Lock()
        self._methods: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "check": self.check,
            "check_bulk": self.check_bulk,
            "track": self.track,
            "identify": self.identify,
            "subscribe": self.subscribe,
            "unsubscribe": self.unsubscribe,
        }

    async def send(self, message: Any) -> None:
        async with self._send_lock:
            await self.websocket.send_text(orjson.dumps(message).decode())

    async def check(self, params: Any) -> Any:
        decision = await answer_check(self.services, self.principal, _params(CheckBody, params))
        return decision_to_json(decision)

    async def check_bulk(self, params: Any) -> Any:
        body = _params(CheckBulkBody, params)
        decisions = await answer_check_bulk(self.services, self.principal, body)
        return {"data": [decision_to_json(d) for d in decisions]}

    async def track(self, params: Any) -> Any:
        authorize(self.principal, Access.SECRET)
        result = await run_in_threadpool(
            record_events, self.services, self.principal.environment_id, params
        )
        return {"accepted": result.accepted, "duplicates": result.duplicates}

    async def identify(self, params: Any) -> Any:
        event = {**params, "type": "identify"} if isinstance(params, dict) else params
        return await self.track(event)

    async def subscribe(self, params: Any) -> Any:
        company = _params(SubscribeParams, params).company
        # Subscribed before its entitlements are read: a change while they are read is
        # notified (against no baseline), never missed.
        self.subscribed.setdefault(company, None)
        entitlements = await self.entitlements(company)
        if self.subscribed.get(company, b"") is None:
            self.subscribed[company] = entitlements
        return {"subscribed": company}

    async def unsubscribe(self, params: Any) -> Any:
        company = _params(SubscribeParams, params).company
        if self.subscribed.pop(company, 0) == 0:
            raise NotFound(f"Not subscribed to {company!r}.", code="not_subscribed")
        return {"unsubscribed": company}

    async def entitlements(self, company: str) -> bytes:
        request = CheckRequest(company=company)
        environment_id = self.principal.environment_id
        decisions = await run_in_threadpool(self.services.checks.check, environment_id, request)
        return orjson.dumps([decision_to_json(d) for d in decisions])

    async def answer(self, message: Any) -> dict[str, Any] | None:
        """The response to one request (None for a notification)."""
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return _error(None, INVALID_REQUEST, "Not a JSON-RPC 2.0 request object.")
        request_id = message.get("id")
        method = message.get("method")
        is_notification = "id" not in message
        if not isinstance(method, str) or not isinstance(request_id, str | int | None):
            return _error(
                None, INVALID_REQUEST, "`method` must be a string, `id` a string or number."
            )
        handler = self._methods.get(method)
        if handler is None:
            names = ", ".join(sorted(self._methods))
            response = _error(request_id, METHOD_NOT_FOUND, f"No method {method!r}; try {names}.")
            return None if is_notification else response
        try:
            await self._count_request()
            result = await handler(message.get("params"))
        except (DomainError, RequestValidationError) as error:
            status, envelope = envelope_of(error)
            code = _CODE_OF_STATUS.get(status, INTERNAL_ERROR)
            response = _error(request_id, code, envelope["error"]["message"], envelope["error"])
        except Exception:
            logger.exception("JSON-RPC method %s failed", method)
            response = _error(request_id, INTERNAL_ERROR, "Internal error.")
        else:
            response = _result(request_id, result)
        return None if is_notification else response

    async def _count_request(self) -> None:
        """Each JSON-RPC request counts as one request of the key (its rate limit)."""
        wait = await self.limiter.wait_time(self.principal)
        if wait > 0:
            raise RateLimited(
                f"This key made more requests than its limit allows; retry in {wait:.2f} s.",
                retry_after=wait,
            )

    async def notify_changes(self) -> None:
        """Send `entitlements.changed` for each subscribed company whose decisions moved."""
        while (company := await self.changed.get()) is not None:
            if company not in self.subscribed:
                continue
            try:
                entitlements = await self.entitlements(company)
            except DomainError:
                continue
            if entitlements == self.subscribed.get(company):
                continue
            self.subscribed[company] = entitlements
            await self.send(
                {
                    "jsonrpc": "2.0",
                    "method": "entitlements.changed",
                    "params": {"company": company, "entitlements": orjson.loads(entitlements)},
                }
            )

    def on_change(self, change: Change) -> None:
        """From the writer's thread: queue the companies the change may concern."""
        if not change.concerns(self.principal.environment_id):
            return
        if change.kind in (ChangeKind.CATALOG, ChangeKind.RESET):
            companies = list(self.subscribed)
        elif change.company in self.subscribed:
            companies = [change.company]
        else:
            return
        for company in companies:
            with contextlib.suppress(asyncio.QueueFull):
                self.changed.put_nowait(company)


async def _principal(websocket: WebSocket, services: Services) -> Principal:
    header = websocket.headers.get("authorization", "")
    secret = (
        header.removeprefix("Bearer ").strip()
        if header.startswith("Bearer ")
        else websocket.headers.get("x-api-key") or websocket.query_params.get("api_key")
    )
    if not secret:
        raise AuthenticationFailed("No API key.", code="missing_api_key")
    trusted = services.api_keys.trusted(secret)
    if trusted is not None:
        return trusted
    return await run_in_threadpool(services.api_keys.authenticate, secret)


@router.websocket("/v1/rpc")
async def rpc(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    await websocket.accept()
    try:
        principal = await _principal(websocket, services)
    except AuthenticationFailed as error:
        await websocket.close(code=4401, reason=error.message[:120])
        return
    session = _Session(websocket, services, principal)
    loop = asyncio.get_running_loop()

    def on_change(change: Change) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(session.on_change, change)

    stop = services.changes.listen(on_change)
    notifier = asyncio.create_task(session.notify_changes())
    try:
        while True:
            raw = await websocket.receive()
            if raw["type"] == "websocket.disconnect":
                break
            text = raw.get("text") if raw.get("text") is not None else raw.get("bytes")
            await _answer_message(session, text)
    except WebSocketDisconnect:
        pass
    finally:
        stop()
        notifier.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await notifier


async def _answer_message(session: _Session, text: str | bytes | None) -> None:
    try:
        message = orjson.loads(text or b"")
    except orjson.JSONDecodeError:
        await session.send(_error(None, PARSE_ERROR, "The message is not valid JSON."))
        return
    if isinstance(message, list):
        if not message or len(message) > _MAX_BATCH:
            await session.send(
                _error(None, INVALID_REQUEST, f"A batch holds 1 to {_MAX_BATCH} requests.")
            )
            return
        responses = [r for r in [await session.answer(m) for m in message] if r is not None]
        if responses:
            await session.send(responses)
        return
    response = await session.answer(message)
    if response is not None:
        await session.send(response)

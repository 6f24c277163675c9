"""Request ids: each request gets the `X-Request-Id` it came with (when it is a sane token) or a
new one; the reply carries it back, and every log line written for the request names it."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-Id"
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request being answered in this context (None outside requests)."""

# What a proxy or client may set: no spaces or control characters that could forge log lines.
_SANE = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def _id_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given: str = value.decode("latin-1")
            if _SANE.fullmatch(given):
                return given
            break
    return secrets.token_hex(16)


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        current = _id_of(scope)
        token = request_id.set(current)
        header = (b"x-request-id", current.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)

"""Our route class: request bodies parsed by orjson (strict JSON: no NaN or Infinity, 64-bit
integers, valid UTF-8, bounded nesting, so hostile bodies become 400s at the door), and path
parameters that may hold an encoded slash (company keys are external ids: `org%2F42`)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

# Servers decode %2F before routing, which would split a key in two. Matching runs on the raw
# path with %2F held as NUL, a character no key may contain, and put back in the parameters.
_SLASH_HOLDER = "\x00"


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw_path = scope.get("raw_path")
        if scope.get("type") != "http" or not raw_path:
            return super().matches(scope)
        raw = raw_path.decode("latin-1").split("?", 1)[0]
        if "%2f" not in raw.lower() or "%00" in raw:
            return super().matches(scope)
        held = unquote(raw.replace("%2F", "%00").replace("%2f", "%00"))
        match, child = super().matches({**scope, "path": held})
        if match is not Match.NONE:
            child["path_params"] = {
                name: value.replace(_SLASH_HOLDER, "/") if isinstance(value, str) else value
                for name, value in child["path_params"].items()
            }
        return match, child

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict_handler

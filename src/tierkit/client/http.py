"""One API call as data (`Call`), and sending it, with retries, from sync or async code.

Retried: 429 and 5xx replies (the server did not do it), waiting `Retry-After` when given; and
transport failures, when repeating cannot do the thing twice (the request never reached the
server, or the method is idempotent, or the body carries an idempotency key).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from tierkit.client.errors import TransportError, error_of
from tierkit.client.options import ClientOptions

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def segment(key: str) -> str:
    """A key as one URL path segment (company and user keys may hold any printable text; `.`
    and `..` are escaped too, or they would be read as relative paths)."""
    quoted = quote(key, safe="")
    return quoted.replace(".", "%2E") if quoted in {".", ".."} else quoted


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)
    safe_to_repeat: bool = False
    """Repeating it cannot do it twice (the body carries idempotency keys)."""

    def query(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if v is not None}


def _request(call: Call) -> dict[str, Any]:
    """The arguments of `httpx.Client.request` for `call` (JSON by orjson: datetimes, UUIDs and
    dataclasses encode as the server reads them)."""
    arguments: dict[str, Any] = {"params": call.query()}
    if call.json is not None:
        arguments["content"] = orjson.dumps(call.json)
        arguments["headers"] = {"Content-Type": "application/json"}
    return arguments


def _parse(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        body: Any = None
    else:
        try:
            body = response.json()
        except ValueError:
            body = None
    if response.status_code >= 400:
        raise error_of(response.status_code, body, response.headers)
    return body


def retry_delay(attempt: int, options: ClientOptions, retry_after: str | None = None) -> float:
    """Seconds before retry number `attempt` (0-based): the server's `Retry-After` if given,
    else exponential backoff with full jitter."""
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), options.max_backoff)
        except ValueError:
            pass
    ceiling = min(options.backoff * 2**attempt, options.max_backoff)
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def _retryable(call: Call, error: httpx.TransportError) -> bool:
    return (
        isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
        or call.method in _IDEMPOTENT
        or call.safe_to_repeat
    )


def _should_retry_status(status: int) -> bool:
    return status == 429 or status >= 500


def send(
    client: httpx.Client, call: Call, options: ClientOptions, retries: int | None = None
) -> Any:
    """Send `call`, retrying as the module says; the reply's JSON, or an `ApiError`."""
    retries = options.max_retries if retries is None else retries
    for attempt in range(retries + 1):
        last = attempt == retries
        try:
            response = client.request(call.method, call.path, **_request(call))
        except httpx.TransportError as error:
            if last or not _retryable(call, error):
                raise TransportError(f"{call.method} {call.path}: {error!r}") from error
            time.sleep(retry_delay(attempt, options))
            continue
        if _should_retry_status(response.status_code) and not last:
            time.sleep(retry_delay(attempt, options, response.headers.get("retry-after")))
            continue
        return _parse(response)
    raise AssertionError("unreachable")  # pragma: no cover


async def send_async(
    client: httpx.AsyncClient, call: Call, options: ClientOptions, retries: int | None = None
) -> Any:
    """`send`, awaiting."""
    retries = options.max_retries if retries is None else retries
    for attempt in range(retries + 1):
        last = attempt == retries
        try:
            response = await client.request(call.method, call.path, **_request(call))
        except httpx.TransportError as error:
            if last or not _retryable(call, error):
                raise TransportError(f"{call.method} {call.path}: {error!r}") from error
            await asyncio.sleep(retry_delay(attempt, options))
            continue
        if _should_retry_status(response.status_code) and not last:
            await asyncio.sleep(retry_delay(attempt, options, response.headers.get("retry-after")))
            continue
        return _parse(response)
    raise AssertionError("unreachable")  # pragma: no cover

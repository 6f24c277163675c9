"""`AsyncClient`: the SDK's methods as coroutines (`httpx.AsyncClient`). Local evaluation,
its sync threads and the event worker are the sync client's: a local check awaits only when it
must fetch a company it has not seen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from tierkit.client.core import (
    ClientCore,
    bulk_body,
    check_body,
    error_code_of,
)
from tierkit.client.errors import NotFoundError, TierkitError
from tierkit.client.event_worker import WorkerStats
from tierkit.client.http import Call, segment, send_async
from tierkit.client.local import FETCHES as _FETCHES
from tierkit.client.local import Need
from tierkit.client.options import ClientOptions, headers_of, resolve_options
from tierkit.client.resources import Api, Json
from tierkit.client.syncer import company_state_call
from tierkit.engine.catalog import Scalar
from tierkit.engine.evaluate import Decision


class AsyncClient(ClientCore, Api[Awaitable[Json]]):
    """`Client`'s twin: the same arguments, the same methods, awaited."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        local: bool | None = None,
        options: ClientOptions | None = None,
        **changes: Any,
    ) -> None:
        resolved = resolve_options(
            options, api_key=api_key, base_url=base_url, local=local, **changes
        )
        self._http = httpx.AsyncClient(
            base_url=resolved.base_url,
            headers=headers_of(resolved),
            timeout=resolved.timeout,
            transport=resolved.async_transport,
        )
        ClientCore.__init__(self, resolved)
        Api.__init__(self, self.request)

    def request(self, call: Call) -> Awaitable[Any]:
        return send_async(self._http, call, self.options)

    async def check(
        self,
        company: str,
        feature: str,
        *,
        user: str | None = None,
        quantity: float = 1,
        context: Mapping[str, Scalar] | None = None,
        consume: bool = False,
        idempotency_key: str | None = None,
    ) -> Decision:
        """As `Client.check`."""
        local = self._local
        if local is not None and not consume and not self._closed:
            if quantity == 1 and user is None and not context:
                # The hot path, inlined: a kept decision (closing empties the table).
                kept = local.kept.get((company, feature))
                if kept is not None and local.seconds() < local.kept_until and not local.stale:
                    return kept
            result = local.decide(company, feature, user, quantity, context)
            if type(result) is Decision and result.error_code is None:
                return result
            return await self._settle(
                result, company, feature, user=user, quantity=quantity, context=context
            )
        if self._closed:
            return self.fallback(company, feature, "closed")
        body = check_body(
            company,
            feature,
            user=user,
            quantity=quantity,
            context=context,
            consume=consume,
            idempotency_key=idempotency_key,
        )
        safe = not consume or idempotency_key is not None
        try:
            reply = await self.request(Call("POST", "/v1/check", body, safe_to_repeat=safe))
        except TierkitError as error:
            return self.fallback(company, feature, error_code_of(error))
        return self.remote_decision(reply, company, feature, consume)

    async def check_bulk(
        self,
        company: str,
        features: Sequence[str] | None = None,
        *,
        user: str | None = None,
        context: Mapping[str, Scalar] | None = None,
    ) -> list[Decision]:
        """As `Client.check_bulk`."""
        if self._closed:
            return [self.fallback(company, f, "closed") for f in features or ()]
        local = self._local
        if local is not None:
            if local.catalog is None and await self._fetch(Need.CATALOG, company, user):
                return [self.fallback(company, f, "not_ready") for f in features or ()]
            keys = features if features is not None else local.feature_keys()
            return [await self.check(company, key, user=user, context=context) for key in keys]
        body = bulk_body(company, features, user, context)
        try:
            reply = await self.request(Call("POST", "/v1/check/bulk", body, safe_to_repeat=True))
        except TierkitError as error:
            return [self.fallback(company, f, error_code_of(error)) for f in features or ()]
        return self.remote_decisions(reply, company, features)

    async def _settle(
        self,
        result: Decision | Need,
        company: str,
        feature: str,
        *,
        user: str | None,
        quantity: float,
        context: Mapping[str, Scalar] | None,
    ) -> Decision:
        """A local check that lacks something: fetch it (each need once) and decide again."""
        local = self._local
        assert local is not None  # noqa: S101 - local mode
        for _ in _FETCHES:
            if isinstance(result, Decision):
                return self.local_decision(result, company, feature)
            error = await self._fetch(result, company, user)
            if error is not None:
                return self.fallback(company, feature, error)
            result = local.decide(company, feature, user, quantity, context)
        return self.fallback(company, feature, "not_ready")

    async def _fetch(self, need: Need, company: str, user: str | None) -> str | None:
        local, syncer = self._local, self._syncer
        assert local is not None  # noqa: S101 - local mode
        assert syncer is not None  # noqa: S101
        try:
            if need is Need.CATALOG:
                ready = await asyncio.to_thread(syncer.wait_until_ready, self.options.ready_timeout)
                return None if ready else "not_ready"
            if need is Need.COMPANY:
                marker = local.tracked_marker(company)
                call = company_state_call(company, marker)
                local.put_company(await send_async(self._http, call, self.options, 1), marker)
            elif user is not None:
                path = f"/v1/sdk/users/{segment(user)}"
                try:
                    data = await send_async(self._http, Call("GET", path), self.options, 1)
                except NotFoundError:
                    data = {"key": user, "traits": {}}
                local.put_user(data)
        except TierkitError as error:
            return error_code_of(error)
        return None

    async def flush(self, timeout: float | None = None) -> bool:
        timeout = self.options.flush_timeout if timeout is None else timeout
        return await asyncio.to_thread(self._worker.flush, timeout)

    async def close(self) -> WorkerStats:
        stats = await asyncio.to_thread(self._close_core)
        await self._http.aclose()
        return stats

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

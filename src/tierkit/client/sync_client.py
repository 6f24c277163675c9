"""`Client`: the SDK over blocking HTTP (`httpx.Client`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from tierkit.client.core import (
    ClientCore,
    bulk_body,
    check_body,
    error_code_of,
)
from tierkit.client.errors import TierkitError
from tierkit.client.event_worker import WorkerStats
from tierkit.client.http import Call, send
from tierkit.client.local import FETCHES as _FETCHES
from tierkit.client.local import Need
from tierkit.client.options import ClientOptions, headers_of, resolve_options
from tierkit.client.resources import Api, Json
from tierkit.engine.catalog import Scalar
from tierkit.engine.evaluate import Decision


class Client(ClientCore, Api[Json]):
    """`Client(api_key=..., base_url=..., local=False)`; any `ClientOptions` field may be given
    by keyword, or all of them as `options`. Checks never raise; other calls raise `ApiError`
    or `TransportError`. Close it (or use `with`) to send what `track` queued."""

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
        self._http = httpx.Client(
            base_url=resolved.base_url,
            headers=headers_of(resolved),
            timeout=resolved.timeout,
            transport=resolved.transport,
        )
        ClientCore.__init__(self, resolved)
        Api.__init__(self, self.request)

    def request(self, call: Call) -> Any:
        """Send one API call (what every resource method does)."""
        return send(self._http, call, self.options)

    def check(
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
        """May `company` use `quantity` more of `feature` now. Never raises: on failure, the
        configured fallback with `reason="error"` and an `error_code`. `consume` always goes
        to the server (it records atomically there)."""
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
            return self._settle(
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
        try:
            reply = self.request(
                Call(
                    "POST",
                    "/v1/check",
                    body,
                    safe_to_repeat=not consume or idempotency_key is not None,
                )
            )
        except TierkitError as error:
            return self.fallback(company, feature, error_code_of(error))
        return self.remote_decision(reply, company, feature, consume)

    def check_bulk(
        self,
        company: str,
        features: Sequence[str] | None = None,
        *,
        user: str | None = None,
        context: Mapping[str, Scalar] | None = None,
    ) -> list[Decision]:
        """Several features (every feature not archived when `features` is None)."""
        if self._closed:
            return [self.fallback(company, f, "closed") for f in features or ()]
        local = self._local
        if local is not None:
            if local.catalog is None and self._fetch(Need.CATALOG, company, user) is not None:
                return [self.fallback(company, f, "not_ready") for f in features or ()]
            keys = features if features is not None else local.feature_keys()
            return [self.check(company, key, user=user, context=context) for key in keys]
        try:
            reply = self.request(
                Call(
                    "POST",
                    "/v1/check/bulk",
                    bulk_body(company, features, user, context),
                    safe_to_repeat=True,
                )
            )
        except TierkitError as error:
            return [self.fallback(company, f, error_code_of(error)) for f in features or ()]
        return self.remote_decisions(reply, company, features)

    def _settle(
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
            error = self._fetch(result, company, user)
            if error is not None:
                return self.fallback(company, feature, error)
            result = local.decide(company, feature, user, quantity, context)
        return self.fallback(company, feature, "not_ready")

    def _fetch(self, need: Need, company: str, user: str | None) -> str | None:
        """Fetch what a local check lacks; an error code when it could not."""
        syncer = self._syncer
        assert syncer is not None  # noqa: S101 - local mode
        try:
            if need is Need.CATALOG:
                if not syncer.wait_until_ready(self.options.ready_timeout):
                    return "not_ready"
            elif need is Need.COMPANY:
                syncer.read_company(company)
            elif user is not None:
                syncer.read_user(user)
        except TierkitError as error:
            return error_code_of(error)
        return None

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the events tracked so far are stored; False on timeout."""
        return self._worker.flush(self.options.flush_timeout if timeout is None else timeout)

    def close(self) -> WorkerStats:
        """Send what is queued (within `flush_timeout`), stop background threads, close
        connections. Returns the event worker's final counts."""
        stats = self._close_core()
        self._http.close()
        return stats

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

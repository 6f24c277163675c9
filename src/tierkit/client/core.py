"""What `Client` and `AsyncClient` share: options, local evaluation and its sync threads, the
event worker, and turning failures into fallback decisions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from tierkit.client.errors import ApiError, TierkitError, TransportError
from tierkit.client.event_worker import EventWorker, WorkerStats, new_idempotency_key
from tierkit.client.http import Call, send
from tierkit.client.local import LocalEvaluation, fallback_decision
from tierkit.client.options import ClientOptions, blocking_http
from tierkit.client.syncer import Syncer
from tierkit.engine.catalog import Scalar
from tierkit.engine.codec import decision_from_json, format_time
from tierkit.engine.evaluate import Catalog, Decision

logger = logging.getLogger("tierkit.client")


def check_body(
    company: str,
    feature: str,
    *,
    user: str | None,
    quantity: float,
    context: Mapping[str, Scalar] | None,
    consume: bool,
    idempotency_key: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"company": company, "feature": feature, "quantity": quantity}
    if user is not None:
        body["user"] = user
    if context:
        body["context"] = {"traits": dict(context)}
    if consume:
        body["consume"] = True
    if idempotency_key is not None:
        body["idempotency_key"] = idempotency_key
    return body


def bulk_body(
    company: str,
    features: Sequence[str] | None,
    user: str | None,
    context: Mapping[str, Scalar] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"company": company}
    if features is not None:
        body["features"] = list(features)
    if user is not None:
        body["user"] = user
    if context:
        body["context"] = {"traits": dict(context)}
    return body


def decisions_of(reply: Any) -> list[Decision]:
    return [decision_from_json(item) for item in reply["data"]]


def error_code_of(error: Exception) -> str:
    if isinstance(error, ApiError):
        return error.code
    if isinstance(error, TransportError):
        return "unavailable"
    return "internal"


class ClientCore:
    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        self._local: LocalEvaluation | None = None
        self._syncer: Syncer | None = None
        if options.local:
            self._local = LocalEvaluation(options.clock)
            self._syncer = Syncer(self._local, options)
            self._syncer.start()
        self._events_http: httpx.Client | None = None
        self._worker = EventWorker(self._deliver, options, self._delivered)
        self._closed = False

    def _delivered(self, marks: list[int]) -> None:
        """Tracked events are stored: stop counting them on top, and read their companies
        again (a state read while they were in flight may already hold them)."""
        if self._local is None or self._syncer is None:
            return
        for company in self._local.delivered(marks):
            self._syncer.refresh_company(company)

    # -- fallbacks ---------------------------------------------------------------------------

    def local_decision(self, decision: Decision, company: str, feature: str) -> Decision:
        """A local decision as the caller gets it: one the engine could not make (an unknown
        feature) becomes the configured fallback."""
        if decision.error_code is not None:
            return self.fallback(company, feature, decision.error_code)
        return decision

    def remote_decision(self, reply: Any, company: str, feature: str, consumed: bool) -> Decision:
        """The server's reply as a decision; a reply that is not one gives the fallback."""
        try:
            decision = decision_from_json(reply)
        except (KeyError, TypeError, ValueError, AttributeError):
            return self.fallback(company, feature, "invalid_reply")
        if consumed and self._syncer is not None:
            self._syncer.refresh_company(company)
        return decision

    def remote_decisions(
        self, reply: Any, company: str, features: Sequence[str] | None
    ) -> list[Decision]:
        try:
            return decisions_of(reply)
        except (KeyError, TypeError, ValueError, AttributeError):
            return [self.fallback(company, f, "invalid_reply") for f in features or ()]

    def fallback(self, company: str, feature: str, error_code: str) -> Decision:
        """The configured answer when a check cannot be decided."""
        value = self.options.fallback_values.get(feature)
        allowed = (
            bool(value)
            if feature in self.options.fallback_values
            else (self.options.fallback_allowed)
        )
        stale = self._local is not None and self._local.stale
        return fallback_decision(
            company, feature, error_code, allowed=allowed, value=value, stale=stale
        )

    # -- local evaluation --------------------------------------------------------------------

    @property
    def stale(self) -> bool:
        """Local mode: the stream to the server is down; answers come from the last good state."""
        return self._local is not None and self._local.stale

    @property
    def catalog(self) -> Catalog | None:
        """Local mode: the synchronised catalog (None before the first snapshot, or remote)."""
        return self._local.catalog if self._local is not None else None

    def on_sync(self, listener: Callable[[str], None]) -> None:
        """Local mode: call `listener` with `connected`, `stale` or `catalog` as the sync with
        the server changes (from its background thread)."""
        if self._syncer is not None:
            self._syncer.listeners.append(listener)

    def wait_until_ready(self, timeout: float | None = None) -> None:
        """Local mode: wait for the first snapshot (raises `NotReadyError` on timeout)."""
        from tierkit.client.errors import NotReadyError

        if self._syncer is None:
            return
        timeout = self.options.ready_timeout if timeout is None else timeout
        if not self._syncer.wait_until_ready(timeout):
            raise NotReadyError(f"no snapshot from {self.options.base_url} within {timeout:g}s")

    # -- events ------------------------------------------------------------------------------

    def track(
        self,
        event: str,
        *,
        company: str,
        user: str | None = None,
        quantity: float = 1,
        properties: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> bool:
        """Queue a usage event (never blocks, never raises). In local mode it counts at once.
        False when it had to be dropped (the queue is full); `event_stats()` counts those."""
        body: dict[str, Any] = {"type": "track", "event": event, "company": company}
        if user is not None:
            body["user"] = user
        if quantity != 1:
            body["quantity"] = quantity
        if properties:
            body["properties"] = dict(properties)
        if timestamp is not None:
            body["timestamp"] = format_time(timestamp)
        # The key is given here, not by the worker: local evaluation asks the server about it.
        body["idempotency_key"] = idempotency_key or new_idempotency_key()
        mark = None
        if self._local is not None:
            mark = self._local.track(
                company, event, quantity, properties or {}, timestamp, key=body["idempotency_key"]
            )
        queued = self._worker.submit(body, mark)
        if not queued and mark is not None:
            self._delivered([mark])  # dropped: it must not stay counted
        return queued

    def identify(
        self,
        *,
        company: str | Mapping[str, Any] | None = None,
        user: str | Mapping[str, Any] | None = None,
    ) -> bool:
        """Queue an identify event: `company`/`user` as a key or `{"key", "name", "traits"}`."""
        body: dict[str, Any] = {"type": "identify"}
        if company is not None:
            body["company"] = {"key": company} if isinstance(company, str) else dict(company)
        if user is not None:
            body["user"] = {"key": user} if isinstance(user, str) else dict(user)
        return self._worker.submit(body)

    def event_stats(self) -> WorkerStats:
        """What the event worker queued, delivered, dropped and retried."""
        return self._worker.stats()

    def _deliver(self, events: Sequence[Mapping[str, Any]]) -> None:
        if self._events_http is None:
            self._events_http = blocking_http(self.options)
        call = Call("POST", "/v1/events", {"events": list(events)}, safe_to_repeat=True)
        send(self._events_http, call, self.options, retries=0)

    def _close_core(self) -> WorkerStats:
        if self._closed:
            return self._worker.stats()
        self._closed = True
        if self._local is not None:
            self._local.close()
        stats = self._worker.close()
        if self._syncer is not None:
            self._syncer.stop()
        if self._events_http is not None:
            self._events_http.close()
        if stats.dropped:
            logger.warning("tierkit client closed; %d tracked event(s) were dropped", stats.dropped)
        return stats


__all__ = ["ClientCore", "TierkitError"]

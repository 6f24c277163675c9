"""Prometheus metrics at `/metrics`: requests per route, check decisions, events, cache reads
and the webhook backlog. Each app owns its registry (no global one): two apps in one process
(tests) count apart, and a served process exposes its own counts."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tierkit.engine.evaluate import Decision
from tierkit.server.api.errors import error_response
from tierkit.server.services.telemetry import CacheRead
from tierkit.server.services.webhooks import WebhookService
from tierkit.server.settings import Settings

logger = logging.getLogger("tierkit.metrics")

# Checks answer in well under a millisecond from memory; ingestion batches take tens.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_UNMATCHED = "unmatched"
"""The route label of requests no route matched (404s): raw paths would be unbounded."""
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods kept as labels; any other a client sends is `other` (labels must stay few)."""


class Metrics:
    """The app's metrics, and the `Telemetry` its services report to."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "tierkit_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "tierkit_http_request_duration_seconds",
            "Time from a request's arrival to the end of its reply, by route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_progress = Gauge(
            "tierkit_http_requests_in_progress",
            "Requests being answered now.",
            ["method"],
            registry=registry,
        )
        self.decisions = Counter(
            "tierkit_check_decisions",
            "Check decisions (one per feature checked), by reason and outcome.",
            ["reason", "allowed"],
            registry=registry,
        )
        self.events = Counter("tierkit_events_ingested", "Usage events stored.", registry=registry)
        self.duplicates = Counter(
            "tierkit_events_duplicate",
            "Usage events not stored again: their idempotency key was seen before.",
            registry=registry,
        )
        self.cache = Counter(
            "tierkit_cache_reads",
            "Reads of the per-process caches checks use (catalog, company, user): hit or miss.",
            ["cache", "result"],
            registry=registry,
        )

    # -- Telemetry -------------------------------------------------------------------------

    def cache_reads(self, cache: str) -> CacheRead:
        hit = self.cache.labels(cache, "hit")
        miss = self.cache.labels(cache, "miss")

        def read(found: bool) -> None:
            (hit if found else miss).inc()

        return read

    def decided(self, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            self.decisions.labels(decision.reason.value, str(decision.allowed).lower()).inc()

    def ingested(self, accepted: int, duplicates: int) -> None:
        self.events.inc(accepted)
        if duplicates:
            self.duplicates.inc(duplicates)

    def watch_webhooks(self, webhooks: WebhookService) -> None:
        self.registry.register(_WebhookBacklog(webhooks))


class _WebhookBacklog(Collector):
    """The webhook backlog, read from the database at each scrape (it is shared by every
    process, so every process reports the same)."""

    def __init__(self, webhooks: WebhookService) -> None:
        self._webhooks = webhooks

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only, never while registering

    def collect(self) -> Iterator[Metric]:
        try:
            backlog = self._webhooks.backlog()
        except Exception:  # a scrape must answer even when the database does not
            logger.exception("the webhook backlog could not be read")
            return
        yield GaugeMetricFamily(
            "tierkit_webhook_pending_deliveries",
            "Webhook deliveries not yet succeeded nor given up (due or awaiting a retry).",
            value=backlog.pending_deliveries,
        )
        yield GaugeMetricFamily(
            "tierkit_webhook_unsent_events",
            "Outbox events not yet turned into deliveries.",
            value=backlog.unsent_events,
        )


class RequestMetrics:
    """Counts and times each HTTP request under its route's template (`/v1/features/{key}`),
    known once the router has matched it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Each `labels()` call costs a lock and a lookup: the children are kept at hand.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}
        self._in_progress: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        method = scope["method"] if scope["method"] in _METHODS else "other"
        status = 500  # an exception with nothing sent is answered 500 by the server

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_progress = self._in_progress.get(method)
        if in_progress is None:
            in_progress = self._in_progress[method] = self.metrics.in_progress.labels(method)
        in_progress.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            in_progress.dec()
            route = getattr(scope.get("route"), "path", None) or _UNMATCHED
            counted = self._counted.get((method, route, status))
            if counted is None:
                counted = self.metrics.requests.labels(method, route, str(status))
                self._counted[method, route, status] = counted
            counted.inc()
            timed = self._timed.get((method, route))
            if timed is None:
                timed = self._timed[method, route] = self.metrics.latency.labels(method, route)
            timed.observe(time.perf_counter() - start)


def install_metrics(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    """`/metrics` (not in the OpenAPI: it is Prometheus's text, not the API) and the request
    counting around every route."""
    app.add_middleware(RequestMetrics, metrics=metrics)
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None

    async def serve_metrics(request: Request) -> Response:
        if token is not None and not _bears(request, token):
            return error_response(
                401,
                "metrics_token_required",
                "Send `Authorization: Bearer <TIERKIT_METRICS_TOKEN>` to read the metrics.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        body = await run_in_threadpool(generate_latest, metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", serve_metrics, methods=["GET"], include_in_schema=False)


def _bears(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())

"""`create_app(settings)`: the ASGI app. The only place that wires storage, services and HTTP."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from tierkit import __version__
from tierkit.server.api.errors import BodySizeLimit, install_error_handlers
from tierkit.server.api.routes import (
    catalog,
    checks,
    companies,
    compat_commet,
    compat_salable,
    compat_schematic,
    credits,
    environment,
    features,
    health,
    kickplan,
    ofrep,
    plans,
    pricing,
    rpc,
    sdk,
    usage,
    users,
    webhooks,
)
from tierkit.server.api.schemas import usage as usage_schemas
from tierkit.server.console import install_console
from tierkit.server.db import Database
from tierkit.server.db.database import describe_database_url
from tierkit.server.db.migrate import current_revision, head_revision
from tierkit.server.logs import configure_logging
from tierkit.server.metrics import Metrics, install_metrics
from tierkit.server.rate_limits import build_rate_limiter
from tierkit.server.request_ids import HEADER, RequestIds
from tierkit.server.secret_keys import secret_box
from tierkit.server.services.audit import wrote_outbox
from tierkit.server.services.change_relay import build_relay
from tierkit.server.services.clock import Clock, system_clock
from tierkit.server.services.container import Services
from tierkit.server.services.timed_events import time_driven_jobs
from tierkit.server.settings import Settings
from tierkit.server.workers.change_listener import start_change_listener
from tierkit.server.workers.jobs import JobRunner
from tierkit.server.workers.webhooks import WebhookDispatcher

logger = logging.getLogger("tierkit.server")

_DESCRIPTION = """\
Tierkit answers "may this customer do this, and how much is left?".

Authenticate with `Authorization: Bearer <key>` (or `X-Api-Key`). Secret keys (`tk_sec_...`) have
full access to their environment; publishable keys (`tk_pub_...`) reach checks, OFREP and the
pricing table only. Errors share one envelope:
`{"error": {"type", "code", "message", "param", "details"}}`. When rate limits are set
(`TIERKIT_RATE_LIMIT_PER_SECOND`), a key over its limit gets `429` (`rate_limited`) with
`Retry-After`. Every reply carries an `X-Request-Id` (the request's, or a new one).
"""


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(settings: Settings, *, clock: Clock = system_clock) -> FastAPI:
    box = secret_box(settings)
    box.check()  # no key, no server: webhook secrets could be neither sealed nor opened
    database = Database(settings.database_url)
    metrics = Metrics() if settings.metrics else None
    relay = build_relay(database, settings.redis_url)
    services = Services.build(
        database,
        clock,
        cache_seconds=settings.cache_seconds,
        telemetry=metrics,
        secret_box=box,
        relay=relay,
    )
    rate_limiter = build_rate_limiter(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        _log_startup(database)
        _reseal_secrets(services)
        listener = start_change_listener(services, settings.redis_url)
        dispatcher = _webhook_dispatcher(settings, services, database, clock)
        jobs = _job_runner(settings, services, dispatcher)
        yield
        if jobs is not None:
            jobs.stop()
        if dispatcher is not None:
            dispatcher.stop()
        await rate_limiter.close()
        if listener is not None:
            listener.stop()
        if relay is not None:
            relay.close()
        database.dispose()

    app = FastAPI(
        title="Tierkit",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.services = services
    app.state.settings = settings
    app.state.rate_limiter = rate_limiter
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["Authorization", "X-Api-Key", "Content-Type", "If-None-Match", HEADER],
        expose_headers=["ETag", "Retry-After", HEADER],
    )
    if metrics is not None:
        metrics.watch_webhooks(services.webhooks)
        install_metrics(app, settings, metrics)
    app.add_middleware(RequestIds)  # outermost: every log line of the request names it
    routers = (
        health.router,
        environment.router,
        features.router,
        plans.router,
        catalog.router,
        catalog.public,
        companies.router,
        users.router,
        kickplan.router,
        compat_schematic.router,
        compat_commet.router,
        compat_salable.router,
        checks.router,
        usage.router,
        credits.router,
        pricing.router,
        ofrep.router,
        sdk.router,
        rpc.router,
        webhooks.router,
    )
    for router in routers:
        app.include_router(router)
    install_console(app)
    _add_schemas(app, usage_schemas.openapi_schemas)
    return app


def _add_schemas(app: FastAPI, schemas: Callable[[], dict[str, Any]]) -> None:
    """Add component schemas that routes refer to without FastAPI seeing them (bodies that a
    route validates itself)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("components", {}).setdefault("schemas", {}).update(schemas())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _webhook_dispatcher(
    settings: Settings, services: Services, database: Database, clock: Clock
) -> WebhookDispatcher | None:
    if not settings.webhook_dispatch:
        logger.info("webhook delivery is off in this process (TIERKIT_WEBHOOK_DISPATCH)")
        return None
    dispatcher = WebhookDispatcher(
        services.webhooks,
        clock,
        poll_seconds=settings.webhook_poll_seconds,
        timeout_seconds=settings.webhook_timeout_seconds,
        retry_seconds=settings.webhook_retry_seconds,
    )

    # Woken by a commit that put webhook events in the outbox, and only then: ingestion's
    # thousands of commits a minute write none. (Another process's commit wakes its own.)
    def wake_on_outbox(session: Session) -> None:
        if wrote_outbox(session):
            dispatcher.wake()

    def forget(session: Session) -> None:
        wrote_outbox(session)

    database.on_write_commit(after=wake_on_outbox, rolled_back=forget)
    dispatcher.start()
    return dispatcher


def _job_runner(
    settings: Settings, services: Services, dispatcher: WebhookDispatcher | None
) -> JobRunner | None:
    if not settings.jobs:
        logger.info("time-driven jobs are off in this process (TIERKIT_JOBS)")
        return None
    every = timedelta(seconds=settings.job_interval_seconds)
    runner = JobRunner(
        services.jobs,
        time_driven_jobs(every),
        tick_seconds=min(settings.job_interval_seconds, 5.0),
        after_run=dispatcher.wake if dispatcher is not None else lambda: None,
    )
    runner.start()
    return runner


def _log_startup(database: Database) -> None:
    revision = current_revision(database)
    head = head_revision()
    logger.info("database %s (schema %s)", describe_database_url(str(database.url)), revision)
    if revision != head:
        logger.warning(
            "the database schema is at %s, this version needs %s: run `tierkit migrate`",
            revision,
            head,
        )


def _reseal_secrets(services: Services) -> None:
    if current_revision(services.database) != head_revision():
        return  # the tables may not be there yet; `tierkit migrate` first
    sealed = services.webhooks.reseal_secrets()
    if sealed:
        logger.info("sealed %d webhook signing secrets with the current secret key", sealed)


def create_app_from_environment() -> FastAPI:
    """ASGI factory for `uvicorn --factory` and multi-worker serving: settings from TIERKIT_*."""
    settings = Settings()
    configure_logging(settings)
    app = create_app(settings)
    # A served process holds one app for its lifetime: what is built by now (modules, routes,
    # schemas, the catalog's compiled state) is never garbage, so the collector stops walking
    # it. Each full collection walked all of it; ingestion allocates enough to run one every
    # few batches, and this takes about a fifth off a batch of 1000 events.
    gc.freeze()
    return app

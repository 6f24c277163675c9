"""The SDK's event worker against a real `tierkit serve` process that crashes (SIGKILL) and
comes back on the same port while events are tracked: every event is stored exactly once (the
worker resends unacknowledged batches with the idempotency keys it gave them when queued, so a
batch stored just before the crash counts once), and nothing is dropped or rejected. Runs on
SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ServerProcess
from tests.support.api import create_feature
from tierkit import Client

pytestmark = pytest.mark.e2e

StartServer = Callable[..., ServerProcess]
KeyFactory = Callable[..., str]

EVENTS = 10_000
BEFORE_CRASH = 4_000


def wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    """Poll `predicate` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {predicate}")
        time.sleep(0.005)


class CrashingTransport(httpx.HTTPTransport):
    """The real network, except for the reply to the `crash_at`-th batch of events: the server
    stores that batch, then `crash` kills it before the client reads the reply (what a crash
    mid-request looks like to the client). Keeps the replies the client did read."""

    def __init__(self, crash_at: int, crash: Callable[[], None]) -> None:
        super().__init__()
        self.crash_at = crash_at
        self.crash = crash
        self.crashed = threading.Event()
        self.batches = 0
        self.replies: list[dict[str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path != "/v1/events":
            return response
        response.read()
        self.batches += 1
        if self.batches == self.crash_at:
            assert response.status_code == 202, response.text
            self.crash()
            self.crashed.set()
            raise httpx.ReadError("the server died before its reply was read", request=request)
        if response.status_code == 202:
            self.replies.append(response.json())
        return response


def stored_events(api: httpx.Client, company: str) -> list[dict[str, Any]]:
    """Every stored `api_call` event of `company`, page after page."""
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"company": company, "event": "api_call", "limit": "500"}
        if cursor is not None:
            params["cursor"] = cursor
        response = api.get("/v1/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        events += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events


def test_client_track__10000_events_across_a_server_crash_and_restart__stored_exactly_once(
    database_url: str, make_key: KeyFactory, start_server: StartServer
) -> None:
    # Given a served database (at the current schema: the shared fixture's faster equivalent
    # of `tierkit migrate`) with a metered feature counting `api_call` events
    url = database_url
    key = make_key()
    server = start_server("serve", database_url=url)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        create_feature(
            api, "api_calls", "metered", meter={"event": "api_call", "aggregation": "count"}
        )
    transport = CrashingTransport(crash_at=3, crash=server.kill)
    client = Client(
        api_key=key,
        base_url=server.url,
        transport=transport,
        event_batch_size=200,
        flush_interval=0.05,
        backoff=0.05,
        max_backoff=0.2,
        max_queued_events=20_000,
    )

    # When 10,000 events are tracked, the server being killed (SIGKILL) once it stored a
    # third batch, before it replied, and restarted on the same port while the rest are tracked
    try:
        accepted = [client.track("api_call", company="acme") for _ in range(BEFORE_CRASH)]
        assert transport.crashed.wait(30)
        delivered_before_restart = client.event_stats().delivered
        accepted += [client.track("api_call", company="acme") for _ in range(EVENTS - BEFORE_CRASH)]
        restarted = start_server("serve", database_url=url, port=server.port)
        flushed = client.flush(timeout=60)
    finally:
        stats = client.close()

    # Then the client delivered each event, after retrying through the outage
    assert accepted == [True] * EVENTS
    assert flushed is True
    assert delivered_before_restart == 2 * 200
    assert (stats.queued, stats.delivered, stats.dropped, stats.rejected, stats.pending) == (
        EVENTS,
        EVENTS,
        0,
        0,
        0,
    )
    assert stats.retries >= 1
    # And the batch stored before the crash was sent again and counted once, as a duplicate
    assert sum(reply["accepted"] for reply in transport.replies) == EVENTS - 200
    assert sum(reply["duplicates"] for reply in transport.replies) == 200
    # And the server holds each exactly once: no duplicate and no loss
    with httpx.Client(base_url=restarted.url, headers=headers, timeout=30) as api:
        events = stored_events(api, "acme")
        usage = api.get("/v1/companies/acme/usage")
    assert len(events) == EVENTS
    assert len({event["idempotency_key"] for event in events}) == EVENTS
    assert len({event["id"] for event in events}) == EVENTS
    assert usage.status_code == 200, usage.text
    used = {item["feature"]: item["used"] for item in usage.json()["data"]}
    assert used == {"api_calls": EVENTS}

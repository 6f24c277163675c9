"""Two `tierkit serve` processes on one database: each webhook event is delivered once, and
each time-driven job runs in one of them at a time."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import httpx

from tests.e2e.conftest import ServerProcess, run_tierkit
from tests.support.receiver import Receiver, receiver  # noqa: F401 - the fixture

StartServer = Callable[..., ServerProcess]
CHANGES = 60


def test_webhooks__two_server_processes__each_event_delivered_once(
    empty_database_url: str,
    start_server: StartServer,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    # Given two server processes on one database, and an endpoint taking every event
    run_tierkit("migrate", database_url=empty_database_url)
    first = start_server("serve", database_url=empty_database_url)
    second = start_server("serve", database_url=empty_database_url)
    key = run_tierkit(
        "keys", "create", "-e", "development", database_url=empty_database_url
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {key}"}
    reply = httpx.post(f"{first.url}/v1/webhooks", json={"url": receiver.url}, headers=headers)
    assert reply.status_code == 201, reply.text

    # When companies are created through both, alternately
    for number in range(CHANGES):
        server = first if number % 2 == 0 else second
        reply = httpx.put(
            f"{server.url}/v1/companies/co{number:03d}", json={}, headers=headers, timeout=10
        )
        assert reply.status_code == 201, reply.text

    # Then each company.created arrives once: one webhook-id each, and each id once
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(receiver.snapshot()) < CHANGES:
        time.sleep(0.1)
    time.sleep(1.5)  # a duplicate would come within a poll interval or two
    delivered = receiver.snapshot()
    assert len(delivered) == CHANGES
    assert all(len(ids) == 1 for ids in delivered.values())
    assert max(Counter(receiver.requests).values()) == 1

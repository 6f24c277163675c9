"""Crash safety of webhooks: the server is killed (SIGKILL) while 500 changes are being made;
after a restart, every committed change is delivered, once by `webhook-id`, and nothing is
delivered for a change that did not commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from tests.e2e.conftest import ServerProcess, run_tierkit
from tests.support.receiver import Receiver, receiver  # noqa: F401 - the fixture

StartServer = Callable[..., ServerProcess]
CHANGES = 500
KILL_AFTER = 150
CLIENTS = 4


def existing_companies(url: str, key: str) -> set[str]:
    found: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        reply = httpx.get(
            f"{url}/v1/companies", params=params, headers={"Authorization": f"Bearer {key}"}
        )
        assert reply.status_code == 200, reply.text
        found |= {c["key"] for c in reply.json()["data"]}
        cursor = reply.json()["next_cursor"]
        if cursor is None:
            return found


def test_webhooks__server_killed_mid_changes__each_committed_change_delivered_once(
    empty_database_url: str,
    start_server: StartServer,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    # Given a server with an endpoint taking every event
    run_tierkit("migrate", database_url=empty_database_url)
    server = start_server("serve", database_url=empty_database_url)
    key = run_tierkit(
        "keys", "create", "-e", "development", database_url=empty_database_url
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {key}"}
    endpoint = httpx.post(f"{server.url}/v1/webhooks", json={"url": receiver.url}, headers=headers)
    assert endpoint.status_code == 201, endpoint.text

    # When 500 companies are created by 4 concurrent clients, and the server is killed with
    # SIGKILL (requests in flight) once 150 are acknowledged, then restarted for the rest
    numbers = iter(range(CHANGES))
    lock = threading.Lock()
    acknowledged: set[str] = set()
    restarted = threading.Event()
    killing = threading.Event()

    def create_companies() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=5) as client:
            while True:
                with lock:
                    number = next(numbers, None)
                if number is None:
                    return
                if killing.is_set():
                    restarted.wait(60)
                company = f"co{number:03d}"
                try:
                    reply = client.put(f"/v1/companies/{company}", json={"name": company})
                except httpx.TransportError:
                    continue  # unknown: it may or may not have committed
                if reply.status_code == 201:
                    with lock:
                        acknowledged.add(company)

    clients = [threading.Thread(target=create_companies) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < KILL_AFTER and time.monotonic() < deadline:
        time.sleep(0.01)
    killing.set()
    server.kill()
    server = start_server("serve", database_url=empty_database_url, port=server.port)
    restarted.set()
    for client in clients:
        client.join()

    # Then, once the dispatcher has caught up, every company that exists was announced
    committed = existing_companies(server.url, key)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and set(receiver.snapshot()) != committed:
        time.sleep(0.2)
    delivered = receiver.snapshot()
    assert acknowledged <= committed
    assert len(acknowledged) >= CHANGES - 2 * CLIENTS  # in flight at the kill, or on a dead
    # keep-alive connection right after it
    assert set(delivered) == committed  # none lost, none for a change that did not commit
    assert all(len(ids) == 1 for ids in delivered.values())  # one webhook-id per change

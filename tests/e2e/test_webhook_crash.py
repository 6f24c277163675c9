"""Crash safety of webhooks: the server is killed (SIGKILL) while 500 changes are being made;
after a restart, every committed change is delivered, once by `webhook-id`, and nothing is
delivered for a change that did not commit."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.e2e.conftest import ServerProcess, run_tierkit

StartServer = Callable[..., ServerProcess]
CHANGES = 500
KILL_AFTER = 150


class Receiver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.created: dict[str, set[str]] = defaultdict(set)  # company -> webhook ids
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if body["type"] == "company.created":
                    with receiver.lock:
                        receiver.created[body["data"]["company"]].add(self.headers["webhook-id"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hooks"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def snapshot(self) -> dict[str, set[str]]:
        with self.lock:
            return {k: set(v) for k, v in self.created.items()}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


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
    empty_database_url: str, start_server: StartServer, receiver: Receiver
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

    # When 500 companies are created, one request at a time, and the server is killed with
    # SIGKILL after 150 of them, then restarted for the rest
    acknowledged: set[str] = set()
    with httpx.Client(base_url=server.url, headers=headers, timeout=5) as client:
        for number in range(CHANGES):
            company = f"co{number:03d}"
            if number == KILL_AFTER:
                server.kill()
                server = start_server("serve", database_url=empty_database_url, port=server.port)
            try:
                reply = client.put(f"/v1/companies/{company}", json={"name": company})
            except httpx.TransportError:
                continue  # unknown: it may or may not have committed
            if reply.status_code == 201:
                acknowledged.add(company)

    # Then, once the dispatcher has caught up, every company that exists was announced
    committed = existing_companies(server.url, key)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and set(receiver.snapshot()) != committed:
        time.sleep(0.2)
    delivered = receiver.snapshot()
    assert acknowledged <= committed
    assert len(acknowledged) >= CHANGES - 5
    assert set(delivered) == committed  # none lost, none for a change that did not commit
    assert all(len(ids) == 1 for ids in delivered.values())  # one webhook-id per change

"""`tierkit webhooks test` against a real server process and a real receiver."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.e2e.conftest import ServerProcess, run_tierkit

StartServer = Callable[..., ServerProcess]


class Receiver:
    """A loopback HTTP server answering `status` to every POST, recording bodies."""

    def __init__(self) -> None:
        self.status = 200
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"received")

            def log_message(self, *args: object) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hooks"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def endpoint_and_key(server: ServerProcess, url: str) -> tuple[str, str]:
    key = run_tierkit(
        "keys", "create", "-e", "development", database_url=server.database_url
    ).stdout.strip()
    reply = httpx.post(
        f"{server.url}/v1/webhooks",
        json={"url": url},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert reply.status_code == 201, reply.text
    endpoint_id: str = reply.json()["id"]
    return endpoint_id, key


def test_webhooks_test__receiver_answers_200__reports_it_and_exits_0(
    empty_database_url: str, start_server: StartServer, receiver: Receiver
) -> None:
    # Given a server with webhook delivery on and an endpoint at the receiver
    run_tierkit("migrate", database_url=empty_database_url)
    server = start_server("serve", database_url=empty_database_url)
    endpoint_id, key = endpoint_and_key(server, receiver.url)

    # When the CLI sends it a test event
    result = run_tierkit(
        "webhooks", "test", endpoint_id, "--url", server.url, "--key", key, "--wait", "20"
    )

    # Then the receiver got a `webhook.test` event and the CLI says what it answered
    assert b'"type":"webhook.test"' in b"".join(receiver.bodies)
    assert "HTTP 200" in result.stdout
    assert "received" in result.stdout


def test_webhooks_test__receiver_answers_500__reports_it_and_exits_1(
    empty_database_url: str, start_server: StartServer, receiver: Receiver
) -> None:
    run_tierkit("migrate", database_url=empty_database_url)
    server = start_server("serve", database_url=empty_database_url)
    endpoint_id, key = endpoint_and_key(server, receiver.url)
    receiver.status = 500

    result = run_tierkit(
        "webhooks",
        "test",
        endpoint_id,
        "--url",
        server.url,
        "--key",
        key,
        "--wait",
        "20",
        check=False,
    )

    assert (result.returncode, "HTTP 500" in result.stdout) == (1, True)


def test_webhooks_test__unknown_endpoint__the_servers_message_and_exit_1(
    empty_database_url: str, start_server: StartServer
) -> None:
    run_tierkit("migrate", database_url=empty_database_url)
    server = start_server("serve", database_url=empty_database_url)
    _, key = endpoint_and_key(server, "http://127.0.0.1:9/never")

    result = run_tierkit(
        "webhooks", "test", "whe_nope", "--url", server.url, "--key", key, check=False
    )

    assert result.returncode == 1
    assert "404" in result.stderr
    assert "whe_nope" in result.stderr

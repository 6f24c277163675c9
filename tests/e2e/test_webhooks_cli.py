"""`tierkit webhooks test` against a real server process and a real receiver."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.e2e.conftest import ServerProcess, run_tierkit
from tests.support.receiver import Receiver, receiver  # noqa: F401 - the fixture

StartServer = Callable[..., ServerProcess]


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
    empty_database_url: str,
    start_server: StartServer,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    # Given a server with webhook delivery on and an endpoint at the receiver
    run_tierkit("migrate", database_url=empty_database_url)
    server = start_server("serve", database_url=empty_database_url)
    endpoint_id, key = endpoint_and_key(server, receiver.url)
    receiver.status = 200

    # When the CLI sends it a test event
    result = run_tierkit(
        "webhooks", "test", endpoint_id, "--url", server.url, "--key", key, "--wait", "20"
    )

    # Then the receiver got a `webhook.test` event and the CLI says what it answered
    assert b'"type":"webhook.test"' in b"".join(receiver.bodies)
    assert "HTTP 200" in result.stdout
    assert "received" in result.stdout


def test_webhooks_test__receiver_answers_500__reports_it_and_exits_1(
    empty_database_url: str,
    start_server: StartServer,
    receiver: Receiver,  # noqa: F811 - the fixture
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

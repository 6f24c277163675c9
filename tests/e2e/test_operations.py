"""Operations of a real `tierkit serve` process: JSON logs naming each request's id, and a
SIGTERM that lets a request in flight finish before the process exits."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import KeyFactory
from tests.e2e.conftest import ServerProcess
from tierkit.server.services.container import Services

pytestmark = pytest.mark.e2e

StartServer = Callable[..., ServerProcess]


def _log_entries(server: ServerProcess) -> list[dict[str, Any]]:
    """The server's log lines, each of which must be one JSON object."""
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def test_serve__json_logs__every_line_of_a_request_names_its_request_id(
    start_server: StartServer, database_url: str, make_key: KeyFactory
) -> None:
    # Given `tierkit serve` writing JSON logs
    key = make_key()
    server = start_server("serve", database_url=database_url, env={"TIERKIT_LOG_FORMAT": "json"})
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        # When a request comes with an X-Request-Id, and another without one
        given = api.get("/v1/environment", headers={"X-Request-Id": "trace-4f2a.1"})
        made = api.get("/v1/plans")
        # (one with an id that could forge log lines is given a new one)
        forged = api.get("/v1/plans", headers={"X-Request-Id": "a b\tc"})
    server.stop()

    # Then the replies carry the given id, or a new one
    assert given.headers["X-Request-Id"] == "trace-4f2a.1"
    generated = made.headers["X-Request-Id"]
    assert len(generated) == 32
    assert int(generated, 16) >= 0
    assert forged.headers["X-Request-Id"] not in ("a b\tc", generated)
    # And every log line is a JSON object, the request's access line naming its id
    entries = _log_entries(server)
    by_id = {e["request_id"]: e for e in entries if "request_id" in e}
    assert "/v1/environment" in by_id["trace-4f2a.1"]["message"]
    assert "/v1/plans" in by_id[generated]["message"]
    assert by_id[generated]["logger"] == "uvicorn.access"
    assert {"time", "level", "logger", "message"} <= set(by_id[generated])
    # And lines written outside any request name none
    startup = [e for e in entries if "Application startup complete" in e["message"]]
    assert startup
    assert "request_id" not in startup[0]


def _in_progress(server: ServerProcess, method: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tierkit_http_requests_in_progress" and sample.labels == {
                "method": method
            }:
                return sample.value
    return 0.0


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _refuses_connections(server: ServerProcess) -> bool:
    try:
        httpx.get(f"{server.url}/healthz", timeout=1)
    except httpx.TransportError:
        return True
    return False


def test_serve__sigterm_during_a_slow_request__it_finishes_then_the_process_exits(
    start_server: StartServer, database_url: str, make_key: KeyFactory, services: Services
) -> None:
    # Given `tierkit serve`, and a batch of events whose body is still being sent
    key = make_key()
    server = start_server("serve", database_url=database_url)
    events = [
        {"event": "api_call", "company": "acme", "idempotency_key": f"e{i}"} for i in range(3)
    ]
    body = json.dumps({"events": events}).encode()
    rest_may_go = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield body[:10]
        rest_may_go.wait(30)
        yield body[10:]

    answers: list[httpx.Response | BaseException] = []

    def send() -> None:
        try:
            answers.append(
                httpx.post(
                    f"{server.url}/v1/events",
                    content=slow_body(),
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                    timeout=60,
                )
            )
        except BaseException as error:  # reported below
            answers.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        _wait_for(lambda: _in_progress(server, "POST") == 1, 10, "the request in flight")

        # When the server gets SIGTERM while the request is in flight
        server.process.send_signal(signal.SIGTERM)
        # (it stops taking new connections at once)
        _wait_for(lambda: _refuses_connections(server), 10, "the server to stop listening")
        assert server.process.poll() is None  # still finishing the request
    finally:
        rest_may_go.set()
        sender.join(60)

    # Then the request in flight is answered in full, and its events are stored
    [answer] = answers
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"accepted": 3, "duplicates": 0}
    environment = services.environments.get_environment("development")
    stored = services.events.list_events(environment.id, company="acme")
    assert len(stored.items) == 3
    # And then the process exits cleanly
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    log = server.log.read_text()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log

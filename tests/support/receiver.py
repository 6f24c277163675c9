"""A webhook receiver for end-to-end tests: a threaded HTTP server on a free loopback port
that records what it is sent and answers `status`."""

from __future__ import annotations

import http.server
import json
import threading
from collections import defaultdict
from collections.abc import Iterator

import pytest


class Receiver:
    def __init__(self) -> None:
        self.status = 204
        self.lock = threading.Lock()
        self.bodies: list[bytes] = []
        self.requests: list[str] = []
        """The `webhook-id` of every request, in arrival order (duplicates included)."""
        self.created: dict[str, set[str]] = defaultdict(set)
        """`company.created`: company -> the webhook ids that announced it."""
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["content-length"]))
                body = json.loads(raw)
                with receiver.lock:
                    receiver.bodies.append(raw)
                    receiver.requests.append(self.headers["webhook-id"])
                    if body["type"] == "company.created":
                        receiver.created[body["data"]["company"]].add(self.headers["webhook-id"])
                self.send_response(receiver.status)
                self.end_headers()
                if receiver.status != 204:
                    self.wfile.write(b"received")

            def log_message(self, *args: object) -> None:
                return None

        server_class = type(
            "Server", (http.server.ThreadingHTTPServer,), {"request_queue_size": 128}
        )
        self._server = server_class(("127.0.0.1", 0), Handler)  # a backlog as a real server has
        self.url = f"http://127.0.0.1:{self._server.server_port}/hooks"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def snapshot(self) -> dict[str, set[str]]:
        """`created`, copied."""
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

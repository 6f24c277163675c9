"""A real uvicorn server on loopback, started once, serving whichever app a test mounts.

Tests talk real HTTP to their own `create_app(settings)` (own database, own services) without
paying a server start per test.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

# How long a test's SDK client waits for the live server. The SDK's own default (5 s) is a
# product choice; on a loaded two-core CI machine one request of a functional test has taken
# longer (a `ReadTimeout` on SQLite), and such tests are not timing tests. The HTTP test
# clients wait as long.
PATIENT_TIMEOUT = 30.0


class _Switchboard:
    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if self.app is None:
            raise RuntimeError("no app mounted on the live server")
        await self.app(scope, receive, send)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    def __init__(self) -> None:
        self._switchboard = _Switchboard()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self._switchboard,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,  # an SDK stream a test left open must not hang the run
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the live test server did not start")
            time.sleep(0.01)

    def mount(self, app: Any) -> None:
        self._switchboard.app = app

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

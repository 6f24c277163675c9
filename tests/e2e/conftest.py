"""End-to-end helpers: the installed `tierkit` command and real server processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import free_port
from tests.support.secret_key import TEST_SECRET_KEY

TIERKIT = str(Path(sys.executable).parent / "tierkit")


def run_tierkit(
    *args: str,
    database_url: str | None = None,
    cwd: Path | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`tierkit <args>` with the test's secret key, and `env` added to its environment."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TIERKIT_")}
    env = inherited | {"TIERKIT_SECRET_KEY": TEST_SECRET_KEY} | (env or {})
    if database_url is not None:
        env["TIERKIT_DATABASE_URL"] = database_url
    result = subprocess.run(
        [TIERKIT, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"tierkit {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


class ServerProcess:
    def __init__(
        self,
        args: list[str],
        database_url: str,
        cwd: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.args = args
        self.database_url = database_url
        self.cwd = cwd
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("TIERKIT_")}
        env = (
            inherited
            | {"TIERKIT_DATABASE_URL": database_url, "TIERKIT_SECRET_KEY": TEST_SECRET_KEY}
            | (env or {})
        )
        self.log = cwd / f"server-{self.port}.log"
        self._log_file = self.log.open("a")  # a restart on the same port adds to it
        self.process = subprocess.Popen(
            [TIERKIT, *args, "--port", str(self.port)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

    def wait_until_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the server did not become healthy:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as in a crash."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log_file.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[object]:
    started: list[ServerProcess] = []

    def start(
        *args: str, database_url: str, port: int | None = None, env: dict[str, str] | None = None
    ) -> ServerProcess:
        """`tierkit <args> --port <port>` (a free port unless given: pass a stopped server's
        port to restart it where its clients look), with `env` added to its environment."""
        server = ServerProcess(list(args), database_url, tmp_path, port, env)
        started.append(server)
        server.wait_until_healthy()
        return server

    yield start
    for server in started:
        server.stop()

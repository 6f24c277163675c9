"""What the benchmarks share: a throwaway PostgreSQL schema, a seeded environment, and a
uvicorn server of one worker (or `tierkit serve --workers N`) running in its own process."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tierkit.server.db import Database
from tierkit.server.db.migrate import upgrade
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.container import Services
from tierkit.server.services.secret_box import generate_key

BENCH = Path(__file__).parent
UVICORN = str(Path(sys.executable).parent / "uvicorn")
TIERKIT = str(Path(sys.executable).parent / "tierkit")


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A database URL on a new schema of the PostgreSQL at `url`, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    base = make_url(url).set(drivername="postgresql+psycopg")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        scoped = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def open_environment(database_url: str) -> tuple[Database, Services, str, str]:
    """Migrate the database; return it, its services, the `development` environment's id and
    a secret key of it."""
    database = Database(database_url)
    upgrade(database)
    services = Services.build(database)
    services.environments.ensure_default_environments()
    environment = services.environments.get_environment("development")
    _, key = services.api_keys.create_key("development", KeyKind.SECRET, "bench")
    return database, services, environment.id, key


def server_environment(database_url: str, settings: dict[str, str]) -> dict[str, str]:
    """The environment of a server process: the database, quiet logs, `settings` as
    `TIERKIT_*`, and a secret key of this run unless one is set (PostgreSQL needs one)."""
    env = os.environ | {"TIERKIT_DATABASE_URL": database_url, "TIERKIT_LOG_LEVEL": "warning"}
    env.setdefault("TIERKIT_SECRET_KEY", _run_secret_key())
    return env | {f"TIERKIT_{name.upper()}": value for name, value in settings.items()}


@functools.cache
def _run_secret_key() -> str:
    return generate_key()


@contextmanager
def serve(app: str, database_url: str, port: int, **settings: str) -> Iterator[str]:
    """Run `app` (a factory, `module:function`, found in bench/ or installed) with one uvicorn
    worker on `port`; yield its URL once it answers."""
    env = server_environment(database_url, settings)
    server = subprocess.Popen(
        [UVICORN, app, "--factory", "--app-dir", str(BENCH), "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url)
        yield url
    finally:
        server.terminate()
        server.wait()


@contextmanager
def serve_workers(database_url: str, port: int, workers: int, **settings: str) -> Iterator[str]:
    """`tierkit serve --workers N`, as in production; yield its URL once it answers."""
    env = server_environment(database_url, settings)
    server = subprocess.Popen(
        [TIERKIT, "serve", "--workers", str(workers), "--port", str(port),
         "--log-level", "warning"],
        env=env,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url)
        time.sleep(1.0 if workers > 1 else 0)  # the other workers start beside the first
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()


def wait_until_healthy(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(f"{url}/healthz").raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)

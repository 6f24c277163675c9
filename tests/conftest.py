"""Fixtures: every storage and API test runs on SQLite and, when TIERKIT_TEST_DATABASE_URL is
set, on PostgreSQL too, each test in its own database (SQLite file) or schema (PostgreSQL)."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from tests.support.live_server import LiveServer
from tests.support.secret_key import TEST_SECRET_KEY
from tierkit.server.app import create_app
from tierkit.server.db import Database, normalize_database_url
from tierkit.server.db.migrate import create_schema
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.container import Services
from tierkit.server.settings import Settings

POSTGRES_URL = os.environ.get("TIERKIT_TEST_DATABASE_URL")
# Every app, services container and CLI of a test seals webhook secrets with this key (the
# e2e helpers hand it to the processes they start); tests of the key's absence set their own.
os.environ["TIERKIT_SECRET_KEY"] = TEST_SECRET_KEY
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine | None]:
    if not POSTGRES_URL:
        yield None
        return
    engine = create_engine(normalize_database_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def postgres_schema_url(admin: Engine) -> tuple[str, str]:
    """A new, empty schema and a URL whose connections use it."""
    assert POSTGRES_URL is not None
    schema = f"tk_test_{secrets.token_hex(6)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(normalize_database_url(POSTGRES_URL)).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    return schema, url.render_as_string(hide_password=False)


def drop_postgres_schema(admin: Engine, schema: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=BACKENDS)
def empty_database_url(
    request: pytest.FixtureRequest, tmp_path: object, postgres_admin: Engine | None
) -> Iterator[str]:
    """The URL of an empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/tierkit.db"
        return
    assert postgres_admin is not None
    schema, url = postgres_schema_url(postgres_admin)
    try:
        yield url
    finally:
        drop_postgres_schema(postgres_admin, schema)


def _new_database(url: str) -> Database:
    """A database at `url` at the current schema, with the default environments."""
    database = Database(url)
    create_schema(database)
    Services.build(database).environments.ensure_default_environments()
    return database


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file made once per test process, that each test copies (a copy costs a
    thousandth of making the tables)."""
    path = tmp_path_factory.mktemp("template") / "tierkit.db"
    _new_database(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def database(empty_database_url: str, sqlite_template: Path) -> Iterator[Database]:
    """A database at the current schema with the default environments."""
    url = make_url(empty_database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        shutil.copyfile(sqlite_template, url.database)
        database = Database(empty_database_url)
    else:
        database = _new_database(empty_database_url)
    yield database
    database.dispose()


@pytest.fixture
def database_url(database: Database) -> str:
    return database.url.render_as_string(hide_password=False)


class SettableClock:
    """A clock tests move by hand; it starts at the real time, so 'now' defaults stay sane."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> SettableClock:
    """The time the test's services and server see: `clock.advance(days=1)` moves it."""
    return SettableClock()


@pytest.fixture
def services(database: Database, clock: SettableClock) -> Services:
    return Services.build(database, clock)


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    server = LiveServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server_url(live_server: LiveServer, database_url: str, clock: SettableClock) -> Iterator[str]:
    """The base URL of a real HTTP server running `create_app` on this test's database, with
    the test's clock."""
    app = create_app(Settings(database_url=database_url), clock=clock)
    live_server.mount(app)
    yield live_server.url
    live_server.mount(None)
    app.state.services.database.dispose()


KeyFactory = Callable[..., str]


@pytest.fixture
def make_key(services: Services) -> KeyFactory:
    """`make_key(environment="development", kind=KeyKind.SECRET)` -> a new key."""

    def make(environment: str = "development", kind: KeyKind = KeyKind.SECRET) -> str:
        return services.api_keys.create_key(environment, kind, "test")[1]

    return make


ClientFactory = Callable[..., httpx.Client]


@pytest.fixture
def make_client(server_url: str, make_key: KeyFactory) -> Iterator[ClientFactory]:
    """`make_client(environment=..., kind=..., key=...)` -> an HTTP client holding that key."""
    clients: list[httpx.Client] = []

    def make(
        environment: str = "development",
        kind: KeyKind = KeyKind.SECRET,
        key: str | None = None,
    ) -> httpx.Client:
        headers = {}
        key = key if key is not None else make_key(environment, kind)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        client = httpx.Client(base_url=server_url, headers=headers, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def api(make_client: ClientFactory) -> httpx.Client:
    """An HTTP client with a secret key of `development`."""
    return make_client()


@pytest.fixture
def production(make_client: ClientFactory) -> httpx.Client:
    """An HTTP client with a secret key of `production`."""
    return make_client(environment="production")


@pytest.fixture
def anonymous(server_url: str) -> Iterator[httpx.Client]:
    """An HTTP client with no key."""
    with httpx.Client(base_url=server_url, timeout=30) as client:
        yield client


@pytest.fixture
def fixed_now() -> datetime:
    return datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

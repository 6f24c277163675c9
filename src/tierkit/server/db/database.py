"""The database handle: one engine, read and write transactions, SQLite tuned for concurrency."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

_SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_database_url(url: str) -> str:
    """Accept the URLs people write (`postgres://`, `postgresql://`) and pick psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def describe_database_url(url: str) -> str:
    """The URL with its password hidden, for logs."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """Opens sessions on one engine. `read()` and `write()` are whole transactions.

    On SQLite, a write transaction starts with `BEGIN IMMEDIATE` so two writers queue on the
    busy timeout instead of failing half-way when one upgrades its read lock; WAL lets readers
    run beside a writer.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url: URL = make_url(normalize_database_url(url))
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine: Engine = create_engine(self.url, echo=echo, **self._engine_options())
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        writer = self.engine.execution_options(tierkit_write=True)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(writer, expire_on_commit=False)

    def _engine_options(self) -> dict[str, Any]:
        if self.is_sqlite:
            return {"connect_args": {"check_same_thread": False, "timeout": 30}}
        return {"pool_size": 10, "max_overflow": 20, "pool_pre_ping": True, "pool_use_lifo": True}

    @property
    def dialect_name(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (rolled back at the end)."""
        with self._read() as session, session.begin():
            yield session
            session.rollback()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction committed when the block ends, rolled back if it raises."""
        with self._write() as session, session.begin():
            yield session

    def on_write_commit(
        self,
        before: Callable[[Session], None] | None = None,
        after: Callable[[Session], None] | None = None,
        rolled_back: Callable[[Session], None] | None = None,
    ) -> None:
        """Call `before` in each write transaction just before it commits (what it does joins
        the transaction), `after` once it has committed, `rolled_back` if it did not."""
        for name, listener in (
            ("before_commit", before),
            ("after_commit", after),
            ("after_rollback", rolled_back),
        ):
            if listener is not None:
                event.listen(self._write, name, listener)

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below start transactions, not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()
        # SQLite's own lower() folds ASCII only; searches fold case as PostgreSQL does.
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("tierkit_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

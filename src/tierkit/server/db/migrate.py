"""Alembic, driven from code: upgrade to head, report revisions, stamp test schemas."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_mock_engine

from tierkit.server.db.database import Database
from tierkit.server.db.tables import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def created_here(dialect: str) -> Callable[..., bool]:
    """Alembic's `include_object` for comparing the tables with a `dialect` database: an
    object the tables create on another database alone (`tables.only_on`) is not expected."""

    def include(item: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
        only_on = getattr(item, "info", {}).get("only_on")
        return only_on is None or only_on == dialect

    return include


def _config(database: Database | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database is not None:
        config.attributes["database"] = database
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError("no migrations found")
    return head


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def pending_revisions(database: Database) -> list[str]:
    """Revisions not yet applied, oldest first."""
    current = current_revision(database)
    return [rev.revision for rev in reversed(list(_scripts().iterate_revisions("heads", current)))]


def upgrade(database: Database, on_step: Callable[[str], None] | None = None) -> list[str]:
    """Apply every pending migration, one revision at a time; returns those applied."""
    steps = pending_revisions(database)
    config = _config(database)
    for step in steps:
        command.upgrade(config, step)
        if on_step is not None:
            on_step(step)
    return steps


def create_schema(database: Database) -> None:
    """Create the tables at head in one go and stamp them (tests: faster than replaying).

    The statements `create_all` would run go to the database as one script, in one round
    trip. A test compares this with what the migrations build, so the two cannot drift.
    """
    script = _schema_script(database.engine.dialect.name)
    with database.engine.begin() as connection:
        if database.is_sqlite:  # one transaction: the driver's scripts run outside its own
            driver = connection.connection.driver_connection
            driver.executescript(f"BEGIN;\n{script}\nCOMMIT;")  # type: ignore[union-attr]
        else:
            connection.exec_driver_sql(script)


@functools.cache
def _schema_script(dialect: str) -> str:
    """The DDL of every table at head for `dialect`, and the stamp of the head revision."""
    statements: list[str] = []

    def keep(sql: Any, *multiparams: Any, **params: Any) -> None:
        statements.append(str(sql.compile(dialect=mock.dialect)).strip())

    mock = create_mock_engine(f"{dialect}://", keep)
    Base.metadata.create_all(mock, checkfirst=False)
    head = head_revision()  # our own migration id, not input
    version = f"INSERT INTO alembic_version (version_num) VALUES ('{head}')"  # noqa: S608
    stamp = [
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))",
        version,
    ]
    return ";\n".join([*statements, *stamp]) + ";"

"""Alembic, driven from code: upgrade to head, report revisions, stamp test schemas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tierkit.server.db.database import Database
from tierkit.server.db.tables import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


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

    A test compares this with what the migrations build, so the two cannot drift.
    """
    Base.metadata.create_all(database.engine)
    with database.engine.begin() as connection:
        MigrationContext.configure(connection).stamp(_scripts(), head_revision())

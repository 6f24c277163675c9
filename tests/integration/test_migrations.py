"""The migrations build exactly the schema the tables describe, on both databases."""

from __future__ import annotations

import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from tierkit.server.db import Database
from tierkit.server.db.migrate import (
    created_here,
    current_revision,
    head_revision,
    pending_revisions,
    upgrade,
)
from tierkit.server.db.tables import Base
from tierkit.server.services.container import Services


def test_migrations__on_an_empty_database__match_the_tables(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        assert current_revision(database) is None
        pending = pending_revisions(database)

        applied = upgrade(database)

        assert applied == pending
        assert current_revision(database) == head_revision()
        with database.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_object": created_here(connection.dialect.name)}
            )
            with warnings.catch_warnings():
                # Alembic warns about PostgreSQL's expression index before `created_here`
                # leaves it out on SQLite, where the tables never create it.
                warnings.filterwarnings(
                    "ignore", message=".*expression-based index 'ix_events_company_event_hashes'"
                )
                diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        database.dispose()


def test_migrations__run_twice__apply_nothing_the_second_time(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        first = upgrade(database)
        second = upgrade(database)

        assert first[-1] == head_revision()
        assert second == []
    finally:
        database.dispose()


def test_fresh_database__after_migrating__has_development_and_production(
    empty_database_url: str,
) -> None:
    database = Database(empty_database_url)
    try:
        upgrade(database)
        services = Services.build(database)
        created = services.environments.ensure_default_environments()
        again = services.environments.ensure_default_environments()

        names = [env.name for env in services.environments.list_environments()]
        assert sorted(names) == ["development", "production"]
        assert [env.name for env in created] == ["development", "production"]
        assert again == []
    finally:
        database.dispose()


def _reloptions(database: Database, table: str) -> list[str] | None:
    with database.read() as session:
        options: list[str] | None = session.scalar(
            text("SELECT reloptions FROM pg_class WHERE oid = CAST(:table AS regclass)"),
            {"table": table},
        )
    return options


def test_usage_counters__migrated__keep_room_for_updates_on_postgresql(
    empty_database_url: str,
) -> None:
    database = Database(empty_database_url)
    try:
        if database.is_sqlite:
            pytest.skip("fillfactor is PostgreSQL's")
        upgrade(database)
        assert _reloptions(database, "usage_counters") == ["fillfactor=30"]
    finally:
        database.dispose()


def test_usage_counters__created_from_the_tables__keep_room_for_updates_on_postgresql(
    database: Database,
) -> None:
    if database.is_sqlite:
        pytest.skip("fillfactor is PostgreSQL's")
    assert _reloptions(database, "usage_counters") == ["fillfactor=30"]

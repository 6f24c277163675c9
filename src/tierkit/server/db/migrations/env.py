"""Alembic environment: runs on the connection of the `Database` handed in by `migrate.py`."""

from __future__ import annotations

from alembic import context

from tierkit.server.db.migrate import created_here
from tierkit.server.db.tables import Base

database = context.config.attributes["database"]

with database.engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=database.is_sqlite,  # SQLite alters tables by copying them
        compare_type=True,
        include_object=created_here(database.engine.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()

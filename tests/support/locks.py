"""Waiting, in a test, until a transaction of the test's database waits for a row lock."""

from __future__ import annotations

import time

from sqlalchemy import text

from tierkit.server.db import Database

_WAITING = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'"
)


def wait_for_a_row_lock_wait(database: Database, timeout: float = 30) -> None:
    """Until a `FOR UPDATE` of this PostgreSQL database waits for a lock another holds."""
    deadline = time.monotonic() + timeout
    while True:
        with database.engine.connect() as connection:
            if connection.execute(_WAITING).scalar_one():
                return
        assert time.monotonic() < deadline, f"no FOR UPDATE waited for a lock within {timeout}s"
        time.sleep(0.01)

"""Waiting out the transactions writing to a table, for readers that follow it by sequence
number.

On PostgreSQL a transaction draws its sequence numbers as it inserts, and they become visible
when it commits, so commits land out of order: a reader that has seen number 12 may not yet
see 11. A transaction that inserts holds the table's `RowExclusiveLock` from before it draws
a number until it ends. So once the transactions holding that lock after a reader read its
newest number have ended, every lower number is visible or never will be. Other tables,
schemas and databases do not hold the reader up.

On SQLite a write transaction holds the whole database, so there is nothing to wait for.
"""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.orm import Session

from tierkit.server.db.upserts import is_postgres

# Each transaction is named by its virtual id (backend and local number): a backend moving on
# to its next transaction is a new name.
_WRITING = """
SELECT virtualtransaction FROM pg_locks
WHERE locktype = 'relation' AND relation = CAST(:table AS regclass)
  AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid()
"""
_STILL_WRITING = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'relation' AND relation = CAST(:table AS regclass)
  AND mode = 'RowExclusiveLock' AND virtualtransaction = ANY(:names)
"""
_FIRST_PAUSE = 0.002
_LONGEST_PAUSE = 0.05


def wait_for_writers(session: Session, table: str, timeout: float) -> bool:
    """Wait until every other transaction writing to `table` now has ended (committed or
    rolled back); whether they all did within `timeout` seconds."""
    if not is_postgres(session):
        return True
    names = list(session.scalars(text(_WRITING), {"table": table}))
    deadline = time.monotonic() + timeout
    pause = _FIRST_PAUSE
    while names:
        if not session.scalar(text(_STILL_WRITING), {"table": table, "names": names}):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
    return True

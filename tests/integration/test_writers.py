"""`wait_for_writers`: a reader following a table by sequence number waits for the
transactions writing to that table, and for no others."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tierkit.server.db import Database
from tierkit.server.db.tables import EventRow
from tierkit.server.db.writers import wait_for_writers

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def an_event() -> EventRow:
    return EventRow(
        environment_id="env_x",
        type="track",
        event="api_call",
        company_id="cmp_x",
        quantity=1.0,
        properties={},
        timestamp=NOW,
        received_at=NOW,
    )


def test_wait_for_writers__an_insert_open__waits_for_it_and_only_on_its_table(
    database: Database,
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite runs one write transaction at a time: there is none to wait for")
    # Given a transaction that inserted an event and has not ended
    with database.write() as writing:
        writing.add(an_event())
        writing.flush()

        # When another waits for the writers of events, and of the credit ledger
        with database.read() as reader:
            events_settled = wait_for_writers(reader, "events", timeout=0.1)
            ledger_settled = wait_for_writers(reader, "credit_ledger", timeout=0.1)

    # Then it waits out the events' writer alone; and once that committed, nothing holds it up
    with database.read() as reader:
        after_commit = wait_for_writers(reader, "events", timeout=0.1)
    assert (events_settled, ledger_settled, after_commit) == (False, True, True)


def test_wait_for_writers__sqlite__settled_at_once(database: Database) -> None:
    if not database.is_sqlite:
        pytest.skip("the SQLite case")
    with database.write() as session:
        session.add(an_event())
        session.flush()
        assert wait_for_writers(session, "events", timeout=0)

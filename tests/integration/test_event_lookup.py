"""A company's events are found through each database's index of them: on PostgreSQL the
index of hashes, which the queries must name exactly as it is defined."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import Select, delete, select, text

from tierkit.server.db import Database
from tierkit.server.db.event_lookup import company_events
from tierkit.server.db.tables import EventRow

_INDEX = {"postgresql": "ix_events_company_event_hashes", "sqlite": "ix_events_company_event_time"}


def _searched_by_company(database: Database, plan: str) -> bool:
    """Whether `plan` looks the company up in its index (not merely walks the whole index)."""
    index = _INDEX[database.engine.dialect.name]
    if database.is_sqlite:
        return (
            re.search(rf"SEARCH events USING (COVERING )?INDEX {index} \(company_id=\?", plan)
            is not None
        )
    return (
        index in plan and re.search(r"Index Cond: \(\(?hashtext\(\(company_id\)", plan) is not None
    )


def _plan(database: Database, query: Select[tuple[int]] | object) -> str:
    with database.read() as session:
        dialect = session.get_bind().dialect
        compiled = query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
        if database.is_sqlite:
            rows = session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
            return "\n".join(str(row[-1]) for row in rows)
        # A small table: forbid the sequential scan, so the plan shows whether the index can
        # serve the conditions at all.
        session.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(session.scalars(text(f"EXPLAIN {compiled}")))


@pytest.mark.parametrize("event", ["api_call", None])
def test_company_events__select__uses_the_company_index(
    database: Database, event: str | None
) -> None:
    with database.read() as session:
        where = company_events(session, "co_test", event)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    query = select(EventRow.seq).where(*where, EventRow.timestamp >= since)

    assert _searched_by_company(database, _plan(database, query))


def test_company_events__delete__uses_the_company_index(database: Database) -> None:
    with database.read() as session:
        where = company_events(session, "co_test")

    assert _searched_by_company(database, _plan(database, delete(EventRow).where(*where)))

"""How to find a company's events, so that each database uses its index of them: PostgreSQL's
is on the hashes of the company and the event (`ix_events_company_event_hashes`), SQLite's on
the columns themselves."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func
from sqlalchemy.orm import Session

from tierkit.server.db.tables import EventRow
from tierkit.server.db.upserts import is_postgres


def company_events(
    session: Session, company_id: str, event: str | None = None
) -> list[ColumnElement[bool]]:
    """The conditions of the events of `company_id` (of name `event`, if given). Hashes may
    collide: the columns themselves are always compared too."""
    conditions = [EventRow.company_id == company_id]
    if event is not None:
        conditions.append(EventRow.event == event)
    if is_postgres(session):
        conditions.append(func.hashtext(EventRow.company_id) == func.hashtext(company_id))
        if event is not None:
            conditions.append(func.hashtext(EventRow.event) == func.hashtext(event))
    return conditions

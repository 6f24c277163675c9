"""How to find a company's events, so that each database uses its index of them: PostgreSQL's
is on the hashes of the company and the event (`ix_events_company_event_hashes`), SQLite's on
the columns themselves. Both index the time after the company and the event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from tierkit.server.db.tables import EventRow
from tierkit.server.db.upserts import is_postgres

MOST_NAMES_MERGED = 100
"""Past this many event names, a company's listing is sorted whole instead of merged."""

_NO_NAME = object()
"""Every name (the company's events are not read one name at a time)."""

Position = tuple[datetime, int]
"""Where a listing stopped: the last event's timestamp and number."""


def company_events(
    session: Session, company_id: str, event: str | None = None, *, events: Any = EventRow
) -> list[ColumnElement[bool]]:
    """The conditions of the events of `company_id` (of name `event`, if given), on `events`
    (the table's entity or an alias of it). Hashes may collide: the columns themselves are
    always compared too."""
    conditions = [events.company_id == company_id]
    if event is not None:
        conditions.append(events.event == event)
    if is_postgres(session):
        conditions.append(func.hashtext(events.company_id) == func.hashtext(company_id))
        if event is not None:
            conditions.append(func.hashtext(events.event) == func.hashtext(event))
    return conditions


def in_window(
    start: datetime | None,
    end: datetime | None,
    before: Position | None,
    *,
    events: Any = EventRow,
) -> list[ColumnElement[bool]]:
    """Events stamped in `[start, end)` and listed after `before` (newest first: an earlier
    timestamp, or the same one and a lower number)."""
    conditions: list[ColumnElement[bool]] = []
    if start is not None:
        conditions.append(events.timestamp >= start)
    if end is not None:
        conditions.append(events.timestamp < end)
    if before is not None:
        moment, seq = before
        conditions.append(events.timestamp <= moment)
        conditions.append(or_(events.timestamp < moment, events.seq < seq))
    return conditions


def newest_of_company(
    session: Session,
    company_id: str,
    event: str | None,
    window: tuple[datetime | None, datetime | None, Position | None],
    limit: int,
) -> Select[int]:
    """The numbers of the company's `limit` newest events in `window` (`in_window`'s
    arguments), by timestamp then number.

    The index orders a company's events by name, then time. So without a name, each name's
    newest are read in time order and merged, and the cost is the number of names times
    `limit`, not the company's number of events."""
    names = [] if event is not None else _event_names(session, company_id)
    if not names or len(names) > MOST_NAMES_MERGED:
        names = [_NO_NAME]
    pages = [_newest(session, company_id, event, window, limit, name=n).subquery() for n in names]
    merged = union_all(*(select(page.c.seq, page.c.timestamp) for page in pages)).subquery()
    order = (merged.c.timestamp.desc(), merged.c.seq.desc())
    return select(merged.c.seq).order_by(*order).limit(limit)


def _newest(
    session: Session,
    company_id: str,
    event: str | None,
    window: tuple[datetime | None, datetime | None, Position | None],
    limit: int,
    *,
    name: object,
) -> Select[int, datetime]:
    events = aliased(EventRow)
    conditions = company_events(session, company_id, event, events=events)
    conditions += in_window(*window, events=events)
    if name is not _NO_NAME:
        key = _name_key(session, events)
        conditions.append(key.is_(None) if name is None else key == name)
    return (
        select(events.seq, events.timestamp)
        .where(*conditions)
        .order_by(events.timestamp.desc(), events.seq.desc())
        .limit(limit)
    )


def _name_key(session: Session, events: Any) -> ColumnElement[Any]:
    """What the company index holds of an event's name."""
    return func.hashtext(events.event) if is_postgres(session) else events.event


def _event_names(session: Session, company_id: str) -> list[object]:
    """The company's event names as its index holds them (`_name_key`), None for events
    without one: each found by one probe of the index, skipping over the events between."""
    first, following, nameless = aliased(EventRow), aliased(EventRow), aliased(EventRow)
    first_key = _name_key(session, first)
    start = select(
        select(first_key)
        .where(*company_events(session, company_id, events=first), first_key.is_not(None))
        .order_by(first_key)
        .limit(1)
        .scalar_subquery()
        .label("name")
    ).cte("names", recursive=True)
    next_key = _name_key(session, following)
    names = start.union_all(
        select(
            select(next_key)
            .where(*company_events(session, company_id, events=following), next_key > start.c.name)
            .order_by(next_key)
            .limit(1)
            .scalar_subquery()
        ).where(start.c.name.is_not(None))
    )
    found: list[object] = [
        name for name in session.scalars(select(names.c.name)) if name is not None
    ]
    unnamed = (
        select(nameless.seq)
        .where(
            *company_events(session, company_id, events=nameless),
            _name_key(session, nameless).is_(None),
        )
        .limit(1)
    )
    if session.scalar(unnamed) is not None:
        found.append(None)
    return found

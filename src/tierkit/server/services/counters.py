"""Usage counters: each meter's value per company and window, kept so that a check reads usage
with one indexed lookup however many events there are.

The invariant: a counter holds its meter's aggregate over the company's events in
`[period_start, period_end)`. A counter is created from the raw events (`ensure_counters`),
and every later ingestion for the company updates every counter whose meter reads the event and
whose window holds its timestamp (`apply_events`), late events included. Both run while the
company's row is locked (`lock_companies`), so no event is missed or counted twice between them.
A counter describes its own meter (event, aggregation, property): when a feature's meter or
period changes, its old counters are simply no longer read.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import Aggregation, Meter
from tierkit.engine.meters import MeterEvent, aggregate, combine, latest_key, reading
from tierkit.server.db.tables import EventRow, UsageCounterRow, UsageUniqueRow
from tierkit.server.db.upserts import insert_ignoring_conflicts

ALL_TIME_START = datetime(1970, 1, 1, tzinfo=UTC)
ALL_TIME_END = datetime(9999, 12, 31, tzinfo=UTC)
USAGE_EVENT_TYPES = ("track", "set")
"""Event types that meters read (`identify` events carry no usage)."""


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """A meter over a window; `None` bounds mean all time."""

    meter: Meter
    start: datetime | None
    end: datetime | None

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return self.start or ALL_TIME_START, self.end or ALL_TIME_END

    def identity(self) -> tuple[str, str, str, datetime, datetime]:
        return (
            self.meter.event,
            self.meter.aggregation.value,
            self.meter.property or "",
            *self.bounds,
        )


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A usage event just stored, as counters read it."""

    company_id: str
    event: str
    reading: MeterEvent


def _identity(row: UsageCounterRow) -> tuple[str, str, str, datetime, datetime]:
    return row.event, row.aggregation, row.property, row.period_start, row.period_end


def _meter(row: UsageCounterRow) -> Meter:
    return Meter(row.event, Aggregation(row.aggregation), row.property or None)


def value_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def read_counters(
    session: Session, company_id: str, specs: Iterable[CounterSpec], now: datetime
) -> tuple[dict[CounterSpec, float], list[CounterSpec]]:
    """The values of the counters that exist for `specs` (windows holding `now`), and the
    specs that have no counter yet."""
    wanted = {spec.identity(): spec for spec in specs}
    if not wanted:
        return {}, []
    rows = session.scalars(
        select(UsageCounterRow).where(
            UsageCounterRow.company_id == company_id,
            UsageCounterRow.event.in_({identity[0] for identity in wanted}),
            UsageCounterRow.period_end > now,
            UsageCounterRow.period_start <= now,
        )
    ).all()
    found = {}
    for row in rows:
        spec = wanted.get(_identity(row))
        if spec is not None:
            found[spec] = row.value
    return found, [spec for spec in wanted.values() if spec not in found]


def _window_events(session: Session, company_id: str, spec: CounterSpec) -> Sequence[EventRow]:
    start, end = spec.bounds
    return session.scalars(
        select(EventRow).where(
            EventRow.company_id == company_id,
            EventRow.event == spec.meter.event,
            EventRow.timestamp >= start,
            EventRow.timestamp < end,
            EventRow.type.in_(USAGE_EVENT_TYPES),
        )
    ).all()


def to_meter_event(row: EventRow) -> MeterEvent:
    return MeterEvent(row.timestamp, row.quantity, row.properties, row.seq)


_SQL_AGGREGATES: dict[Aggregation, ColumnElement[Any]] = {
    Aggregation.COUNT: func.count(),
    Aggregation.SUM: func.coalesce(func.sum(EventRow.quantity), 0.0),
    Aggregation.MAX: func.max(EventRow.quantity),
}


def _recount_in_sql(session: Session, company_id: str, spec: CounterSpec) -> float:
    """`count`, and `sum`/`max` of `quantity`, computed by the database."""
    start, end = spec.bounds
    value = session.scalar(
        select(_SQL_AGGREGATES[spec.meter.aggregation]).where(
            EventRow.company_id == company_id,
            EventRow.event == spec.meter.event,
            EventRow.timestamp >= start,
            EventRow.timestamp < end,
            EventRow.type.in_(USAGE_EVENT_TYPES),
        )
    )
    number = float(value or 0.0)
    # `max` starts from 0, as the engine's does: usage is never negative.
    return max(number, 0.0) if spec.meter.aggregation is Aggregation.MAX else number


def _create_counter(session: Session, company_id: str, spec: CounterSpec) -> UsageCounterRow:
    start, end = spec.bounds
    meter = spec.meter
    row = UsageCounterRow(
        company_id=company_id,
        event=meter.event,
        aggregation=meter.aggregation.value,
        property=meter.property or "",
        period_start=start,
        period_end=end,
        value=0.0,
    )
    if meter.property is None and meter.aggregation in _SQL_AGGREGATES:
        row.value = _recount_in_sql(session, company_id, spec)
        session.add(row)
        session.flush()
        return row
    events = [to_meter_event(e) for e in _window_events(session, company_id, spec)]
    row.value = aggregate(meter, events)
    if meter.aggregation is Aggregation.LATEST:
        read = [e for e in events if reading(meter, e) is not None]
        if read:
            row.latest_at, row.latest_seq = latest_key(max(read, key=latest_key))
    session.add(row)
    session.flush()
    if meter.aggregation is Aggregation.UNIQUE_COUNT:
        hashes = {value_hash(str(r)) for e in events if (r := reading(meter, e)) is not None}
        if hashes:
            session.execute(
                insert_ignoring_conflicts(session, UsageUniqueRow, ["counter_id", "value_hash"]),
                [{"counter_id": row.id, "value_hash": h} for h in sorted(hashes)],
            )
    return row


def ensure_counters(
    session: Session, company_id: str, specs: Iterable[CounterSpec], now: datetime
) -> dict[CounterSpec, float]:
    """The values of `specs`, creating from the raw events the counters that do not exist.
    The caller holds the company's lock."""
    specs = list(specs)
    found, missing = read_counters(session, company_id, specs, now)
    for spec in missing:
        found[spec] = _create_counter(session, company_id, spec).value
    return found


def apply_events(session: Session, events: Sequence[StoredEvent]) -> None:
    """Fold just-stored usage events into every existing counter that reads them. The caller
    holds the locks of the events' companies."""
    if not events:
        return
    groups: dict[tuple[str, str], list[MeterEvent]] = defaultdict(list)
    for stored in events:
        groups[(stored.company_id, stored.event)].append(stored.reading)
    earliest = min(stored.reading.timestamp for stored in events)
    latest = max(stored.reading.timestamp for stored in events)
    rows = session.scalars(
        select(UsageCounterRow).where(
            UsageCounterRow.company_id.in_({company for company, _ in groups}),
            UsageCounterRow.event.in_({event for _, event in groups}),
            UsageCounterRow.period_end > earliest,
            UsageCounterRow.period_start <= latest,
        )
    ).all()
    distinct: dict[int, set[str]] = {}
    for row in rows:
        group = groups.get((row.company_id, row.event))
        if not group:
            continue
        meter = _meter(row)
        readings = [
            (event, value)
            for event in group
            if row.period_start <= event.timestamp < row.period_end
            and (value := reading(meter, event)) is not None
        ]
        if readings:
            _fold(row, meter, readings, distinct)
    if distinct:
        _count_new_values(session, rows, distinct)
    session.flush()


def _fold(
    row: UsageCounterRow,
    meter: Meter,
    readings: list[tuple[MeterEvent, float | str]],
    distinct: dict[int, set[str]],
) -> None:
    if meter.aggregation is Aggregation.UNIQUE_COUNT:
        distinct[row.id] = {value_hash(str(value)) for _, value in readings}
    elif meter.aggregation is Aggregation.LATEST:
        event, value = max(readings, key=lambda item: latest_key(item[0]))
        current = (row.latest_at, row.latest_seq or 0) if row.latest_at else None
        if current is None or latest_key(event) > current:
            row.value = float(value)
            row.latest_at, row.latest_seq = latest_key(event)
    else:
        row.value = combine(meter.aggregation, row.value, [value for _, value in readings])


def _count_new_values(
    session: Session, rows: Sequence[UsageCounterRow], distinct: Mapping[int, set[str]]
) -> None:
    statement = insert_ignoring_conflicts(
        session, UsageUniqueRow, ["counter_id", "value_hash"]
    ).returning(UsageUniqueRow.counter_id)
    parameters = [
        {"counter_id": counter_id, "value_hash": h}
        for counter_id, hashes in distinct.items()
        for h in sorted(hashes)
    ]
    added = Counter(session.execute(statement, parameters).scalars().all())
    for row in rows:
        if added[row.id]:
            row.value += added[row.id]

"""Usage counters: each meter's value per company and window, kept so that a check reads usage
with one indexed lookup however many events there are.

The invariant: a counter holds its meter's aggregate over the company's events in
`[period_start, period_end)`. A counter is created from the raw events (`ensure_counters`),
and every later ingestion for the company updates every counter whose meter reads the event and
whose window holds its timestamp (`fold_stored`: in SQL on PostgreSQL, `apply_events` on
SQLite), late events included. Both run while the company's row is locked (`lock_companies`),
so no event is missed or counted twice between them.
A counter describes its own meter (event, aggregation, property): when a feature's meter or
period changes, its old counters are simply no longer read.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, case, func, null, select, update
from sqlalchemy.orm import Session

from tierkit.engine.catalog import Aggregation, Meter
from tierkit.engine.meters import MeterEvent, Reading, combine, latest_key, reading
from tierkit.server.db.event_lookup import company_events
from tierkit.server.db.tables import EventRow, UsageCounterRow, UsageUniqueRow
from tierkit.server.db.types import naive_utc
from tierkit.server.db.upserts import (
    execute_on_postgres,
    insert_ignoring_conflicts,
    is_in,
    is_postgres,
)

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


@dataclass(slots=True)  # not frozen: a batch makes a thousand, and frozen init costs 3x
class StoredEvent:
    """A usage event just stored, as counters read it."""

    company_id: str
    event: str
    reading: MeterEvent


def _identity(row: UsageCounterRow) -> tuple[str, str, str, datetime, datetime]:
    return row.event, row.aggregation, row.property, row.period_start, row.period_end


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


def to_meter_event(row: EventRow) -> MeterEvent:
    return MeterEvent(row.timestamp, row.quantity, row.properties, row.seq)


def _reading(session: Session, meter: Meter) -> ColumnElement[Any]:
    """Each event's reading as SQL, as the engine's `reading` takes it for `sum`, `max` and
    `latest`: the property when it is a JSON number (null otherwise), else the quantity."""
    if meter.property is None:
        return EventRow.__table__.c.quantity
    if is_postgres(session):
        field = EventRow.properties[meter.property]
        number = field.as_float()
        return case((func.jsonb_typeof(field) == "number", number), else_=null())
    path = f'$."{meter.property}"'  # event names and properties hold no quotes
    kind = func.json_type(EventRow.properties, path)
    return case((kind.in_(("integer", "real")), func.json_extract(EventRow.properties, path)))


def _in_window(
    session: Session, company_id: str, spec: CounterSpec
) -> tuple[ColumnElement[bool], ...]:
    start, end = spec.bounds
    return (
        *company_events(session, company_id, spec.meter.event),
        EventRow.timestamp >= start,
        EventRow.timestamp < end,
        EventRow.type.in_(USAGE_EVENT_TYPES),
    )


@dataclass(frozen=True, slots=True)
class Recount:
    """A window's aggregate counted afresh from the raw events."""

    value: float
    latest_at: datetime | None = None
    latest_seq: int | None = None
    hashes: frozenset[str] | None = None
    """`unique_count`: the distinct values seen (hashed)."""


def recount(session: Session, company_id: str, spec: CounterSpec) -> Recount:
    """Count the window from the raw events: in the database (one aggregate query, however
    many events), except distinct values, which are kept hashed so that later events can tell
    which ones are new."""
    meter = spec.meter
    where = _in_window(session, company_id, spec)
    if meter.aggregation is Aggregation.UNIQUE_COUNT:
        rows = session.scalars(select(EventRow).where(*where)).all()
        hashes = frozenset(
            value_hash(str(r)) for e in rows if (r := reading(meter, to_meter_event(e))) is not None
        )
        return Recount(float(len(hashes)), hashes=hashes)
    value = _reading(session, meter)
    if meter.aggregation is Aggregation.LATEST:
        last = session.execute(
            select(value, EventRow.timestamp, EventRow.seq)
            .where(*where, value.is_not(None))
            .order_by(EventRow.timestamp.desc(), EventRow.seq.desc())
            .limit(1)
        ).first()
        return Recount(0.0) if last is None else Recount(float(last[0]), last[1], last[2])
    aggregate_of = {
        Aggregation.COUNT: func.count(),
        Aggregation.SUM: func.sum(value),
        Aggregation.MAX: func.max(value),
    }
    number = float(session.scalar(select(aggregate_of[meter.aggregation]).where(*where)) or 0.0)
    # `max` starts from 0, as the engine's does: usage is never negative.
    return Recount(max(number, 0.0) if meter.aggregation is Aggregation.MAX else number)


def _create_counter(session: Session, company_id: str, spec: CounterSpec) -> UsageCounterRow:
    start, end = spec.bounds
    meter = spec.meter
    counted = recount(session, company_id, spec)
    row = UsageCounterRow(
        company_id=company_id,
        event=meter.event,
        aggregation=meter.aggregation.value,
        property=meter.property or "",
        period_start=start,
        period_end=end,
        value=counted.value,
        latest_at=counted.latest_at,
        latest_seq=counted.latest_seq,
    )
    session.add(row)
    session.flush()
    store_unique_hashes(session, row.id, counted.hashes or frozenset())
    return row


def store_unique_hashes(session: Session, counter_id: int, hashes: frozenset[str]) -> None:
    """Keep the distinct values a `unique_count` counter has seen (those it has are kept)."""
    if hashes:
        session.execute(
            insert_ignoring_conflicts(session, UsageUniqueRow, ["counter_id", "value_hash"]),
            [{"counter_id": counter_id, "value_hash": h} for h in sorted(hashes)],
        )


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


@dataclass(slots=True)
class _Kept:
    """A counter as ingestion updates it (plain data: loading ORM objects cost more than the
    update itself), with what the batch adds to it."""

    id: int
    meter: Meter
    value: float
    latest_at: datetime | None
    latest_seq: int | None
    readings: list[tuple[MeterEvent, Reading]]
    changed: bool = False


_COUNTERS = cast(Table, UsageCounterRow.__table__)


def apply_events(session: Session, events: Sequence[StoredEvent]) -> None:
    """Fold just-stored usage events into every existing counter that reads them. The caller
    holds the locks of the events' companies."""
    if not events:
        return
    groups: dict[tuple[str, str], list[MeterEvent]] = defaultdict(list)
    for stored in events:
        groups[(stored.company_id, stored.event)].append(stored.reading)
    c = _COUNTERS.c
    rows = session.execute(
        select(
            c.id, c.company_id, c.event, c.aggregation, c.property, c.period_start,
            c.period_end, c.value, c.latest_at, c.latest_seq,
        ).where(
            is_in(session, c.company_id, sorted({stored.company_id for stored in events})),
            is_in(session, c.event, sorted({stored.event for stored in events})),
            c.period_end > min(stored.reading.timestamp for stored in events),
            c.period_start <= max(stored.reading.timestamp for stored in events),
        )
    ).all()  # fmt: skip
    updated = []
    for row in rows:
        meter = Meter(row.event, Aggregation(row.aggregation), row.property or None)
        start, end = row.period_start, row.period_end
        readings = [
            (event, value)
            for event in groups[(row.company_id, row.event)]
            if start <= event.timestamp < end and (value := reading(meter, event)) is not None
        ]
        if readings:
            updated.append(_Kept(row.id, meter, row.value, row.latest_at, row.latest_seq, readings))
    _fold_in(session, updated)


# PostgreSQL: a batch's events folded into every counter that reads them in one statement,
# with no counter read into Python: `count`, `sum` and `max` add up in SQL, `latest` takes the
# batch's last reading when it comes after the counter's. The readings are the engine's
# (`meters.reading`), as `recount` computes them. Counters of distinct values need the values'
# hashes: the statement returns their (counter, event) pairs, folded in Python. The lookups are
# forced (`LATERAL ... OFFSET 0`: by primary key, then by company and event): on a growing
# table the planner's estimates chose a scan of every event, or a loop over every pair of
# event and counter.
_POSTGRES_FOLD = """
WITH batch AS MATERIALIZED (
    SELECT e.*
    FROM unnest(%(s)s::bigint[]) AS stored(seq)
    CROSS JOIN LATERAL (
        SELECT seq, company_id, event, quantity, properties, "timestamp" AS ts
        FROM events
        WHERE events.seq = stored.seq AND type IN ('track', 'set')
        OFFSET 0
    ) AS e
), counters AS MATERIALIZED (
    SELECT c.*
    FROM (SELECT DISTINCT company_id, event FROM batch) AS pair
    CROSS JOIN LATERAL (
        SELECT id, company_id, event, aggregation, property, period_start, period_end
        FROM usage_counters
        WHERE usage_counters.company_id = pair.company_id AND usage_counters.event = pair.event
        OFFSET 0
    ) AS c
), readings AS (
    SELECT c.id, c.aggregation, b.seq, b.ts,
           CASE WHEN c.aggregation = 'count' THEN 1.0::float8
                WHEN c.property = '' THEN b.quantity
                WHEN jsonb_typeof(b.properties -> c.property) = 'number'
                THEN (b.properties ->> c.property)::float8
           END AS r
    FROM batch AS b
    JOIN counters AS c
      ON c.company_id = b.company_id AND c.event = b.event
     AND c.period_start <= b.ts AND b.ts < c.period_end
), totals AS (
    SELECT id, count(*) AS n, sum(r) AS total, max(r) AS top
    FROM readings
    WHERE aggregation IN ('count', 'sum', 'max') AND r IS NOT NULL
    GROUP BY id
), lasts AS (
    SELECT DISTINCT ON (id) id, r, ts, seq
    FROM readings
    WHERE aggregation = 'latest' AND r IS NOT NULL
    ORDER BY id, ts DESC, seq DESC
), added AS (
    UPDATE usage_counters AS c
    SET value = CASE c.aggregation
                    WHEN 'count' THEN c.value + t.n
                    WHEN 'sum' THEN c.value + t.total
                    ELSE greatest(c.value, t.top)
                END
    FROM totals AS t
    WHERE c.id = t.id
), set_last AS (
    UPDATE usage_counters AS c
    SET value = l.r, latest_at = l.ts, latest_seq = l.seq
    FROM lasts AS l
    WHERE c.id = l.id
      AND (c.latest_at IS NULL OR (l.ts, l.seq) > (c.latest_at, coalesce(c.latest_seq, 0)))
)
SELECT r.id, c.event, c.property, c.value, r.seq
FROM readings AS r JOIN usage_counters AS c ON c.id = r.id
WHERE r.aggregation = 'unique_count'
"""


def fold_stored(
    session: Session, seqs: Sequence[int], stored: Callable[[], Sequence[StoredEvent]]
) -> None:
    """Fold the usage events just stored as `seqs` (`stored()` gives them) into every counter
    that reads them. The caller holds the locks of the events' companies."""
    if not seqs:
        return
    if not is_postgres(session):
        apply_events(session, stored())
        return
    numbers = "{" + ",".join(map(str, seqs)) + "}"  # text: far cheaper than a list's dumper
    distinct = execute_on_postgres(session, _POSTGRES_FOLD, {"s": numbers})
    if not distinct:
        return
    events = {event.reading.sequence: event.reading for event in stored()}
    counters: dict[int, _Kept] = {}
    for counter_id, event, property_, value, seq in distinct:
        meter = Meter(event, Aggregation.UNIQUE_COUNT, property_ or None)
        counter = counters.setdefault(counter_id, _Kept(counter_id, meter, value, None, None, []))
        if (value_read := reading(meter, events[seq])) is not None:
            counter.readings.append((events[seq], value_read))
    _fold_in(session, [counter for counter in counters.values() if counter.readings])


def _fold_in(session: Session, updated: Sequence[_Kept]) -> None:
    distinct: dict[int, set[str]] = {}
    for counter in updated:
        _fold(counter, counter.readings, distinct)
    if distinct:
        _count_new_values(session, updated, distinct)
    _write_back(session, [counter for counter in updated if counter.changed])


def _fold(
    counter: _Kept, readings: list[tuple[MeterEvent, Reading]], distinct: dict[int, set[str]]
) -> None:
    aggregation = counter.meter.aggregation
    if aggregation is Aggregation.UNIQUE_COUNT:
        distinct[counter.id] = {value_hash(str(value)) for _, value in readings}
    elif aggregation is Aggregation.LATEST:
        event, value = max(readings, key=lambda item: latest_key(item[0]))
        current = (counter.latest_at, counter.latest_seq or 0) if counter.latest_at else None
        if current is None or latest_key(event) > current:
            counter.value = float(value)
            counter.latest_at, counter.latest_seq = latest_key(event)
            counter.changed = True
    else:
        counter.value = combine(aggregation, counter.value, [value for _, value in readings])
        counter.changed = True


def _count_new_values(
    session: Session, counters: Sequence[_Kept], distinct: Mapping[int, set[str]]
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
    for counter in counters:
        if added[counter.id]:
            counter.value += added[counter.id]
            counter.changed = True


# PostgreSQL: every changed counter in one statement over arrays.
_POSTGRES_UPDATE = """
UPDATE usage_counters AS c SET value = v.value, latest_at = v.at, latest_seq = v.seq
FROM unnest(%(i)b::bigint[], %(v)b::float8[], %(a)b::timestamp[], %(s)b::bigint[])
     AS v(id, value, at, seq)
WHERE c.id = v.id
"""


def _write_back(session: Session, counters: Sequence[_Kept]) -> None:
    if not counters:
        return
    if is_postgres(session):
        execute_on_postgres(
            session,
            _POSTGRES_UPDATE,
            {
                "i": [k.id for k in counters],
                "v": [k.value for k in counters],
                "a": [naive_utc(k.latest_at) if k.latest_at else None for k in counters],
                "s": [k.latest_seq for k in counters],
            },
        )  # fmt: skip
        return
    c = _COUNTERS.c
    session.execute(
        update(_COUNTERS)
        .where(c.id == bindparam("counter"))
        .values(
            value=bindparam("new_value"), latest_at=bindparam("at"), latest_seq=bindparam("seq")
        ),
        [
            {"counter": k.id, "new_value": k.value, "at": k.latest_at, "seq": k.latest_seq}
            for k in counters
        ],
    )

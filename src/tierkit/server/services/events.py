"""Events: usage (`track`), gauges (`set`) and identities (`identify`), stored exactly once and
folded into usage counters in the same transaction, so an acknowledged event is never lost and
never counted twice."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import Aggregation, FeatureType
from tierkit.engine.codec import format_time
from tierkit.engine.meters import MeterEvent
from tierkit.server.db import Database
from tierkit.server.db.event_lookup import company_events
from tierkit.server.db.tables import CompanyRow, EventRow
from tierkit.server.db.text_arrays import text_array_parameters
from tierkit.server.db.types import naive_utc
from tierkit.server.db.upserts import (
    execute_many_on_sqlite,
    execute_on_postgres,
    insert_ignoring_conflicts,
    is_in,
    is_postgres,
    lock_companies,
    sqlstate,
    violated_constraint,
)
from tierkit.server.services.audit import ChangeLog
from tierkit.server.services.catalog_cache import CatalogCache, key_notes
from tierkit.server.services.changes import staging
from tierkit.server.services.clock import Clock
from tierkit.server.services.companies import get_company_row, upsert_company_in
from tierkit.server.services.counters import StoredEvent, fold_stored
from tierkit.server.services.errors import Conflict, ErrorDetail, InvalidRequest, NotFound
from tierkit.server.services.known_companies import KnownCompanies
from tierkit.server.services.pagination import Page, paginate, to_page
from tierkit.server.services.rows import new_customer_values
from tierkit.server.services.telemetry import NoTelemetry, Telemetry
from tierkit.server.services.users import add_membership_in, upsert_user_in

MAX_BATCH = 1000


@dataclass(slots=True)  # not frozen: a batch builds a thousand, and frozen init costs 3x
class NewEvent:
    """An event to store. `identify` events carry `company_fields`/`user_fields` (name,
    traits) to upsert; `set` events set a gauge to `quantity`."""

    type: str
    company: str | None
    event: str | None = None
    user: str | None = None
    quantity: float = 1.0
    properties: Mapping[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = None
    idempotency_key: str | None = None
    company_fields: Mapping[str, Any] | None = None
    user_fields: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: str
    type: str
    event: str | None
    company: str | None
    user: str | None
    quantity: float
    properties: Mapping[str, Any]
    timestamp: datetime
    received_at: datetime
    idempotency_key: str | None


def event_id(seq: int) -> str:
    return f"evt_{seq}"


def event_not_found(event: str) -> NotFound:
    return NotFound(f"There is no event {event!r}.", code="event_not_found")


def _company_ids(
    session: Session, environment_id: str, keys: Sequence[str], now: datetime, *, lock: bool
) -> dict[str, str]:
    """The ids of the companies `keys`, creating (and announcing) the unknown ones; with
    `lock`, their rows are locked as they are read."""
    if not keys:
        return {}

    def ids_of(wanted: Sequence[str]) -> dict[str, str]:
        # Locked as they are read, in id order (SQLite ignores FOR UPDATE: its write
        # transactions already run one at a time).
        query = select(CompanyRow.key, CompanyRow.id).where(
            CompanyRow.environment_id == environment_id, is_in(session, CompanyRow.key, wanted)
        )
        if lock:
            query = query.order_by(CompanyRow.id).with_for_update()
        return dict(session.execute(query).all())

    ids = ids_of(keys)
    missing = [key for key in keys if key not in ids]
    if missing:
        created = session.execute(
            insert_ignoring_conflicts(session, CompanyRow, ["environment_id", "key"]).returning(
                CompanyRow.key
            ),
            [new_customer_values("co", environment_id, key, now) for key in missing],
        ).scalars()
        log = ChangeLog(session, environment_id, now)
        for key in created:  # tracking for an unknown company created it
            log.record(
                "company.created",
                ("company", key),
                None,
                {"key": key, "name": None, "traits": {}, "created_at": now, "updated_at": now},
            )
        ids |= ids_of(missing)
    return ids


def ensure_companies(
    session: Session, environment_id: str, keys: Sequence[str], now: datetime
) -> dict[str, str]:
    """The ids of the companies `keys`, creating the unknown ones, with their rows locked."""
    return _company_ids(session, environment_id, keys, now, lock=True)


class CompaniesDeleted(Exception):
    """A company of the batch was deleted between its lookup and its lock."""


class StoredKeyMet(Exception):
    """A plain insert met an idempotency key already stored (or being stored)."""


_ATTEMPTS = 3
_DEADLOCK_DETECTED = "40P01"


def _identity(fields: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if fields is None else dict(fields)


def _identities(event: NewEvent) -> dict[str, Any]:
    """What an `identify` event stores as its properties: the company's and user's fields."""
    return {
        name: value
        for name, value in (
            ("company", _identity(event.company_fields)),
            ("user", _identity(event.user_fields)),
        )
        if value is not None
    }


@dataclass(slots=True)
class _Columns:
    """A batch as one list per column of the events table, in the batch's order (its
    environment and receiving time are the batch's own): built in a few passes, with no
    object per event."""

    types: list[str]
    events: list[str | None]
    company_ids: list[str | None]
    users: list[str | None]
    quantities: list[float]
    properties: list[Mapping[str, Any]]
    timestamps: list[datetime]
    keys: list[str | None]

    @classmethod
    def of(
        cls, events: Sequence[NewEvent], company_ids: Mapping[str, str], now: datetime
    ) -> _Columns:
        return cls(
            [e.type for e in events],
            [e.event for e in events],
            [company_ids.get(e.company) if e.company else None for e in events],
            [e.user for e in events],
            [e.quantity for e in events],
            [_identities(e) if e.type == "identify" else e.properties for e in events],
            [e.timestamp or now for e in events],
            [e.idempotency_key for e in events],
        )


# PostgreSQL: the batch as one array per column, so the statement stays short (a multi-row
# VALUES of 11,000 parameters costs the driver more to prepare than the database to run); the
# columns of text and numbers go as joined text, far cheaper to make than a list's dumper.
# Rows are numbered in the batch's order (as unnest emits them) and written in key order: two
# batches sharing keys then wait on each other in one order, never crosswise (a deadlock).
# Only `seq` and the key come back (`seq` alone when every row goes in).
_POSTGRES_INSERT = """
INSERT INTO events (seq, environment_id, type, event, company_id, user_key, quantity,
                    properties, "timestamp", received_at, idempotency_key)
SELECT s, %(e)s::varchar, t, n, c, u, q, p::jsonb, ts AT TIME ZONE 'UTC', %(r)s::timestamp, k
FROM (
    SELECT nextval('events_seq_seq') AS s, batch.*
    FROM unnest((string_to_array(%(t)s, %(t_separator)s, %(t_null)s))[2:],
                (string_to_array(%(n)s, %(n_separator)s, %(n_null)s))[2:],
                (string_to_array(%(c)s, %(c_separator)s, %(c_null)s))[2:],
                (string_to_array(%(u)s, %(u_separator)s, %(u_null)s))[2:],
                string_to_array(%(q)s, ',')::float8[],
                (string_to_array(%(p)s, %(p_separator)s, %(p_null)s))[2:],
                %(ts)b::timestamptz[],
                (string_to_array(%(k)s, %(k_separator)s, %(k_null)s))[2:])
         WITH ORDINALITY AS batch(t, n, c, u, q, p, ts, k, i)
    ORDER BY i
) AS numbered
ORDER BY k
RETURNING seq, idempotency_key
"""
# Skipping the rows whose key is stored costs PostgreSQL a fifth of the insert (a speculative
# insertion per row), for batches that almost never hold one: a batch is inserted plainly
# first, and only if that meets a stored key (the whole transaction undone) with this clause.
_SKIP_STORED_KEYS = "ON CONFLICT (environment_id, idempotency_key) DO NOTHING\n"
_POSTGRES_INSERT_ALL = _POSTGRES_INSERT.replace("RETURNING seq, idempotency_key", "RETURNING seq")
"""The plain insert: every row goes in, so the numbers alone say which is which."""
_POSTGRES_INSERT_SKIPPING = _POSTGRES_INSERT.replace("RETURNING", _SKIP_STORED_KEYS + "RETURNING")
_IDEMPOTENCY_KEYS = "uq_events_environment_id_idempotency_key"


def _seqs_of_rows(
    keys: Sequence[str | None], returned: Iterable[Sequence[Any]]
) -> list[int | None]:
    """Each row's `seq`, None for a row skipped as a duplicate, from the `(seq, key)` pairs
    the insert returned. Rows are numbered in order, and a row without a key is never
    skipped, so those take the keyless numbers in order. The batch's keys are distinct."""
    by_key: dict[str, int] = {}
    keyless: list[int] = []
    for seq, key in returned:
        if key is None:
            keyless.append(seq)
        else:
            by_key[key] = seq
    keyless.sort(reverse=True)
    return [keyless.pop() if key is None else by_key.get(key) for key in keys]


def _to_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


# SQLite: a write transaction holds the whole database, so the keys stored before are found
# first and the new rows numbered after the last one (as SQLite itself would number them),
# and the rows go through the driver's `executemany` as plain tuples.
_SQLITE_INSERT = """
INSERT INTO events (seq, environment_id, type, event, company_id, user_key, quantity,
                    properties, "timestamp", received_at, idempotency_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _sqlite_time(moment: datetime) -> str:
    """A timestamp as SQLAlchemy stores it on SQLite (naive UTC, always with microseconds)."""
    return naive_utc(moment).isoformat(sep=" ", timespec="microseconds")


def _insert_events_on_sqlite(
    session: Session, environment_id: str, rows: _Columns, now: datetime
) -> list[int | None]:
    keys = [key for key in rows.keys if key is not None]
    stored = set(
        session.scalars(
            select(EventRow.idempotency_key).where(
                EventRow.environment_id == environment_id,
                is_in(session, EventRow.idempotency_key, keys),
            )
        )
        if keys
        else ()
    )
    last = session.scalar(select(func.max(EventRow.seq))) or 0
    received = _sqlite_time(now)
    seqs: list[int | None] = []
    values = []
    for kind, name, company_id, user, quantity, properties, moment, key in zip(
        rows.types, rows.events, rows.company_ids, rows.users, rows.quantities,
        rows.properties, rows.timestamps, rows.keys, strict=True,
    ):  # fmt: skip
        if key in stored:
            seqs.append(None)
            continue
        last += 1
        seqs.append(last)
        values.append(
            (
                last, environment_id, kind, name, company_id, user, quantity,
                orjson.dumps(properties).decode(), _sqlite_time(moment), received, key,
            )
        )  # fmt: skip
    execute_many_on_sqlite(session, _SQLITE_INSERT, values)
    return seqs


def _insert_events(
    session: Session, environment_id: str, rows: _Columns, now: datetime, *, plainly: bool
) -> list[int | None]:
    """Insert rows (received at `now`, with distinct keys), skipping those whose idempotency
    key is stored; each row's `seq`, None for those skipped. `plainly`, PostgreSQL raises
    `StoredKeyMet` instead of skipping (see `_SKIP_STORED_KEYS`)."""
    if not rows.types:
        return []
    if not is_postgres(session):
        return _insert_events_on_sqlite(session, environment_id, rows, now)
    # Timestamps go as they are (aware: the driver sends them in UTC, without a Python
    # conversion each); the environment and the receiving time are the batch's own.
    parameters = {
        **text_array_parameters("t", rows.types),
        **text_array_parameters("n", rows.events),
        **text_array_parameters("c", rows.company_ids),
        **text_array_parameters("u", rows.users),
        # JSON as orjson writes it holds no control character: the record separator splits.
        **text_array_parameters("p", [orjson.dumps(p).decode() for p in rows.properties]),
        **text_array_parameters("k", rows.keys),
        "q": ",".join(map(repr, rows.quantities)),  # repr: the shortest exact decimal
        "ts": rows.timestamps,
        "e": environment_id,
        "r": naive_utc(now),
    }
    if not plainly:
        returned = execute_on_postgres(session, _POSTGRES_INSERT_SKIPPING, parameters)
        return _seqs_of_rows(rows.keys, returned)
    try:
        returned = execute_on_postgres(session, _POSTGRES_INSERT_ALL, parameters)
    except Exception as error:
        if violated_constraint(error) == _IDEMPOTENCY_KEYS:
            raise StoredKeyMet from error
        raise
    # Every row went in, numbered in the batch's order.
    return sorted(seq for (seq,) in returned)


def store_events(
    session: Session,
    environment_id: str,
    events: Sequence[NewEvent],
    now: datetime,
    *,
    plainly: bool = False,
    known: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str]]:
    """Store `events` (duplicates of a stored idempotency key skipped) and fold them into
    counters and identities. Returns how many were stored, and the ids of the batch's
    companies by key. `events` have distinct keys. `plainly`: raise `StoredKeyMet` on a
    stored key instead (PostgreSQL; see `_SKIP_STORED_KEYS`). `known`: company ids by key
    read before, maybe stale (`KnownCompanies`): the lock raises `CompaniesDeleted` then."""
    company_keys = sorted({e.company for e in events if e.company})
    # The companies are locked only once the events are in: the insert, the longest step,
    # runs beside other batches for the same companies, and the lock covers what must take
    # turns (counters, identities, the commit). Events uncommitted until then are invisible
    # to a counter being created meanwhile, so each is counted once, by one or the other: the
    # fold, a statement of its own after the lock, sees every counter committed before it.
    company_ids = {key: known[key] for key in company_keys if key in known} if known else {}
    if len(company_ids) < len(company_keys):
        unknown = [key for key in company_keys if key not in company_ids]
        company_ids |= _company_ids(session, environment_id, unknown, now, lock=False)
    rows = _Columns.of(events, company_ids, now)
    seqs = _insert_events(session, environment_id, rows, now, plainly=plainly)
    # The stored usage events (a company's `track` and `set`): what counters read. Picked
    # before the lock: whatever runs while the companies are locked, other batches wait for.
    usage = [
        (company_id, name, quantity, properties, moment, seq)
        for kind, name, company_id, quantity, properties, moment, seq in zip(
            rows.types, rows.events, rows.company_ids, rows.quantities, rows.properties,
            rows.timestamps, seqs, strict=True,
        )
        if seq is not None and kind != "identify" and company_id is not None and name
    ]  # fmt: skip
    usage_seqs = [row[-1] for row in usage]
    if lock_companies(session, list(company_ids.values())) != set(company_ids.values()):
        raise CompaniesDeleted
    if "identify" in rows.types:
        for kind, properties, company_id, seq in zip(
            rows.types, rows.properties, rows.company_ids, seqs, strict=True
        ):
            if kind == "identify" and seq is not None:
                _apply_identity(session, environment_id, properties, company_id, now)

    def stored() -> list[StoredEvent]:
        return [
            StoredEvent(company_id, name, MeterEvent(_to_utc(moment), quantity, properties, seq))
            for company_id, name, quantity, properties, moment, seq in usage
        ]

    fold_stored(session, usage_seqs, stored)
    return sum(seq is not None for seq in seqs), company_ids


def _apply_identity(
    session: Session,
    environment_id: str,
    identities: Mapping[str, Any],
    company_id: str | None,
    now: datetime,
) -> None:
    company = identities.get("company")
    if company is not None:
        fields = {name: company[name] for name in ("name", "traits") if name in company}
        upsert_company_in(session, environment_id, company["key"], fields, now)
    user = identities.get("user")
    if user is not None:
        fields = {name: user[name] for name in ("name", "traits") if name in user}
        row, _ = upsert_user_in(session, environment_id, user["key"], fields, now)
        if company_id is not None:
            add_membership_in(session, row, company_id, now)


def _record(row: EventRow, company: str | None) -> EventRecord:
    return EventRecord(
        id=event_id(row.seq),
        type=row.type,
        event=row.event,
        company=company,
        user=row.user_key,
        quantity=row.quantity,
        properties=row.properties,
        timestamp=row.timestamp,
        received_at=row.received_at,
        idempotency_key=row.idempotency_key,
    )


def _with_company(environment_id: str) -> Select[EventRow, str]:
    return (
        select(EventRow, CompanyRow.key)
        .outerjoin(CompanyRow, CompanyRow.id == EventRow.company_id)
        .where(EventRow.environment_id == environment_id)
    )


EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(hours=24)


def _check_timestamps(
    events: Sequence[NewEvent], now: datetime, *, batch: bool, time_param: str
) -> None:
    """Late events are welcome; events from before 2000 or more than a day ahead of the
    server's clock are mistakes (a unit error, a wrong clock) that would corrupt periods."""
    latest = now + FUTURE_TOLERANCE
    details = [
        ErrorDetail(
            f"events.{index}.{time_param}" if batch else time_param,
            "The timestamp must be after 2000-01-01 and at most 24 hours ahead of the "
            f"server's clock ({format_time(now)}).",
            "timestamp_out_of_range",
        )
        for index, event in enumerate(events)
        if event.timestamp is not None and not EARLIEST_EVENT <= event.timestamp <= latest
    ]
    if details:
        more = f" ({len(details) - 1} more in `details`)" if len(details) > 1 else ""
        raise InvalidRequest(
            f"`{details[0].param}`: {details[0].message}{more}",
            code="timestamp_out_of_range",
            param=details[0].param,
            details=details,
        )


class EventService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        catalogs: CatalogCache,
        on_customer_change: Callable[[str, str], None] = lambda environment_id, key: None,
        on_user_change: Callable[[str, str], None] = lambda environment_id, key: None,
        *,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._telemetry = telemetry or NoTelemetry()
        self._db = database
        self._clock = clock
        self._catalogs = catalogs
        self._customer_changed = on_customer_change
        self._user_changed = on_user_change
        self._known = KnownCompanies()

    def ingest(
        self,
        environment_id: str,
        events: Sequence[NewEvent],
        *,
        batch: bool = True,
        time_param: str = "timestamp",
    ) -> IngestResult:
        """Store a batch in one transaction: all of it, or (on error) none of it. An
        idempotency key seen before, in this batch or any earlier one, is a duplicate.
        `batch` and `time_param` say how errors name an event's timestamp."""
        now = self._clock()
        _check_timestamps(events, now, batch=batch, time_param=time_param)
        seen: set[str] = set()
        unique = []
        for event in events:
            if event.idempotency_key is not None:
                if event.idempotency_key in seen:
                    continue
                seen.add(event.idempotency_key)
            unique.append(event)
        companies = sorted({e.company for e in events if e.company})
        users = sorted({e.user for e in events if e.user and e.type == "identify"})
        notes = key_notes(self._customer_changed, environment_id, *companies) + key_notes(
            self._user_changed, environment_id, *users
        )
        try:
            with staging(notes):
                stored = self._store(environment_id, unique, now, companies)
        finally:
            self._forget(environment_id, companies, users)
        self._telemetry.ingested(stored, len(events) - stored)
        return IngestResult(accepted=stored, duplicates=len(events) - stored)

    def _store(
        self,
        environment_id: str,
        events: Sequence[NewEvent],
        now: datetime,
        companies: Sequence[str],
    ) -> int:
        """`store_events` in a transaction, started over (nothing of it kept) if one of the
        batch's companies was deleted while the events went in, or before while its id was
        remembered here (it is created anew), or if the database broke a deadlock by ending
        this transaction (a `consume` holding a company's lock while it waits for a key this
        batch inserted). The first attempt inserts plainly; one that meets a stored key is
        started over skipping stored keys. Neither that retry nor the first one after a
        remembered id proved stale counts as an attempt. `companies`: the batch's company
        keys (whose remembered ids are used, or forgotten)."""
        attempts, plainly, trusted = 0, True, True
        while attempts < _ATTEMPTS:
            known = self._known.known(environment_id, companies) if trusted else None
            try:
                with self._db.write() as session:
                    stored, ids = store_events(
                        session, environment_id, events, now, plainly=plainly, known=known
                    )
                self._known.remember(environment_id, ids)  # committed: safe to reuse
                return stored
            except StoredKeyMet:
                plainly = False  # again, skipping the stored keys (not counted as an attempt)
                continue
            except CompaniesDeleted:
                self._known.forget(environment_id, companies)
                if known:  # maybe only stale here: once more, reading every id anew
                    trusted = False
                    continue
            except Exception as error:
                if sqlstate(error) != _DEADLOCK_DETECTED:
                    raise
            attempts += 1
        raise Conflict(
            "This batch kept meeting concurrent changes to its companies; send it again.",
            code="concurrent_change",
        )

    def _forget(self, environment_id: str, companies: list[str], users: list[str]) -> None:
        for key in companies:
            self._customer_changed(environment_id, key)
        for key in users:
            self._user_changed(environment_id, key)

    def set_gauge(
        self,
        environment_id: str,
        key: str,
        company: str,
        value: float,
        *,
        at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> IngestResult:
        """Set the gauge `key` (a `latest`-metered feature or its event) for a company, as a
        `set` event; errors name its time `time`."""
        event = NewEvent(
            type="set",
            event=self._gauge_event(environment_id, key),
            company=company,
            quantity=value,
            timestamp=at,
            idempotency_key=idempotency_key,
        )
        return self.ingest(environment_id, [event], batch=False, time_param="time")

    def _gauge_event(self, environment_id: str, key: str) -> str:
        """The event a gauge `key` names: the meter event of the `latest`-metered feature
        `key`, or `key` itself taken as an event name."""
        feature = self._catalogs.get(environment_id).features.get(key)
        if (
            feature is not None
            and feature.type is FeatureType.METERED
            and feature.meter is not None
            and feature.meter.aggregation is Aggregation.LATEST
        ):
            return feature.meter.event
        return key

    def list_events(
        self,
        environment_id: str,
        *,
        company: str | None = None,
        event: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[EventRecord]:
        """Events as stored, newest first; `start`/`end` bound their timestamps `[start, end)`."""
        with self._db.read() as session:
            query = _with_company(environment_id)
            if company is not None:
                row = get_company_row(session, environment_id, company)
                if row is None:
                    return Page([], None)
                query = query.where(*company_events(session, row.id, event))
            elif event is not None:
                query = query.where(EventRow.event == event)
            if start is not None:
                query = query.where(EventRow.timestamp >= start)
            if end is not None:
                query = query.where(EventRow.timestamp < end)
            query, limit = paginate(query, [EventRow.seq], cursor, limit, descending=True)
            page = to_page(session.execute(query).all(), limit, lambda row: [row[0].seq])
            return Page([_record(row, key) for row, key in page.items], page.next_cursor)

    def stored_keys(self, environment_id: str, keys: Sequence[str]) -> set[str]:
        """Which of these idempotency keys name stored events."""
        if not keys:
            return set()
        with self._db.read() as session:
            found = session.scalars(
                select(EventRow.idempotency_key).where(
                    EventRow.environment_id == environment_id,
                    EventRow.idempotency_key.in_(set(keys)),
                )
            )
            return {key for key in found if key is not None}

    def get_event(self, environment_id: str, event: str) -> EventRecord:
        prefix, _, number = event.partition("_")
        if prefix != "evt" or not number.isascii() or not number.isdigit() or len(number) > 18:
            raise event_not_found(event)
        with self._db.read() as session:
            found = session.execute(
                _with_company(environment_id).where(EventRow.seq == int(number))
            ).first()
            if found is None:
                raise event_not_found(event)
            return _record(found[0], found[1])

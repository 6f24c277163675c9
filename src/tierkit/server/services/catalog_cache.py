"""What checks read from memory: each environment's compiled catalog and each company's and
user's state, built once and dropped after every write that changes them.

A check then queries nothing. Writes drop their entries in this process once their transaction
has ended (`changes_catalog`, `changes_customer` on service methods), and stage a note that
their transaction carries to other processes (`changes.staging`, `change_relay.py`), which drop
theirs when it arrives. Without notes (SQLite, or while a process's notification channel is
down) an entry expires after `max_age` (TIERKIT_CACHE_SECONDS): the fallback bound. Most
time-driven changes need no invalidation: a company's state holds its subscription history,
override expiries and grants, and the engine reads them at the instant of each check. The
exception is a plan's new credit period, whose grant must be written: a cached company state
is not trusted past its next credit instant (`CheckService`, `LoadedCompany.refresh_at`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Concatenate, Generic, ParamSpec, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import CreditType
from tierkit.engine.codec import rule_from_json
from tierkit.engine.evaluate import Catalog
from tierkit.server.db import Database
from tierkit.server.db.tables import CreditTypeRow, FeatureRow, PlanRow
from tierkit.server.services.changes import CatalogHook, ChangeNote, KeyHook, staging
from tierkit.server.services.plan_versions import read_held_versions
from tierkit.server.services.rows import to_feature, to_plan
from tierkit.server.services.telemetry import CacheRead, NoTelemetry, Telemetry

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
P = ParamSpec("P")
R = TypeVar("R")


class KeyedCache(Generic[K, V]):
    """A bounded map of built values, each kept at most `max_age` seconds. A write that ends
    while a value is being built makes that value stale: it is returned once but not kept."""

    def __init__(self, max_size: int, max_age: float, on_read: CacheRead | None = None) -> None:
        self._on_read = on_read or NoTelemetry().cache_reads("")
        self._values: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._generations: dict[K, int] = {}
        self._epoch = 0  # moves on when every entry is dropped at once
        self._lock = threading.Lock()
        self._max_size = max_size
        self._max_age = max_age

    def get(self, key: K, build: Callable[[], V]) -> V:
        """The value (a hit), or the value built now (a miss)."""
        value = self.peek(key)
        self._on_read(value is not None)
        if value is not None:
            return value
        generation = self._generations.get(key, 0), self._epoch
        value = build()
        with self._lock:
            if (self._generations.get(key, 0), self._epoch) == generation:
                self._values[key] = (value, time.monotonic() + self._max_age)
                if len(self._values) > self._max_size:
                    self._values.popitem(last=False)
        return value

    def peek(self, key: K) -> V | None:
        """The value if it is built and fresh, without building it (not counted as a read:
        see `count_hit`)."""
        entry = self._values.get(key)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def count_hit(self) -> None:
        """Count a read answered by `peek`."""
        self._on_read(True)

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._generations[key] = self._generations.get(key, 0) + 1
            self._values.pop(key, None)

    def clear(self) -> None:
        """Drop every entry (and what is being built meanwhile)."""
        self.invalidate_where(lambda _key: True)

    def invalidate_where(self, stale: Callable[[K], bool]) -> None:
        """Drop every entry whose key is `stale` (and what is being built meanwhile)."""
        with self._lock:
            self._epoch += 1
            for key in [key for key in self._values if stale(key)]:
                del self._values[key]


class CatalogCache:
    def __init__(
        self, database: Database, max_age: float, telemetry: Telemetry | None = None
    ) -> None:
        self._db = database
        on_read = (telemetry or NoTelemetry()).cache_reads("catalog")
        self._catalogs: KeyedCache[str, Catalog] = KeyedCache(1_000, max_age, on_read)

    def get(self, environment_id: str) -> Catalog:
        return self._catalogs.get(environment_id, lambda: self._build(environment_id))

    def peek(self, environment_id: str) -> Catalog | None:
        return self._catalogs.peek(environment_id)

    def count_hit(self) -> None:
        self._catalogs.count_hit()

    def invalidate(self, environment_id: str) -> None:
        self._catalogs.invalidate(environment_id)

    def clear(self) -> None:
        self._catalogs.clear()

    def _build(self, environment_id: str) -> Catalog:
        with self._db.read() as session:
            return read_catalog(session, environment_id)


def read_catalog(session: Session, environment_id: str) -> Catalog:
    """The environment's catalog as `session` sees it (no cache)."""
    features = session.scalars(
        select(FeatureRow).where(FeatureRow.environment_id == environment_id)
    ).all()
    plans = session.scalars(select(PlanRow).where(PlanRow.environment_id == environment_id)).all()
    credits = session.scalars(
        select(CreditTypeRow).where(CreditTypeRow.environment_id == environment_id)
    ).all()
    latest = {row.key: to_plan(row) for row in plans}
    return Catalog(
        features={row.key: to_feature(row) for row in features},
        plans=latest,
        plan_versions=read_held_versions(session, environment_id, latest),
        rules={
            row.key: tuple(rule_from_json(rule) for rule in row.rules)
            for row in features
            if row.rules
        },
        credits={row.key: CreditType(row.key, row.name, row.unit) for row in credits},
    )


class _ChangesCatalog(Protocol):
    def _catalog_changed(self, environment_id: str) -> None: ...


class _ChangesCustomer(Protocol):
    def _customer_changed(self, environment_id: str, key: str) -> None: ...


def catalog_notes(hook: Callable[[str], None], environment_id: str) -> list[ChangeNote]:
    """What a catalog write tells other processes (services wired by `Services.build` have a
    `CatalogHook`; others tell nothing)."""
    return [hook.note(environment_id)] if isinstance(hook, CatalogHook) else []


def key_notes(
    hook: Callable[[str, str], None], environment_id: str, *keys: str
) -> list[ChangeNote]:
    """What a write to these companies (or users) tells other processes."""
    return [hook.note(environment_id, key) for key in keys] if isinstance(hook, KeyHook) else []


S = TypeVar("S", bound=_ChangesCatalog)
C = TypeVar("C", bound=_ChangesCustomer)


def changes_catalog(
    method: Callable[Concatenate[S, str, P], R],
) -> Callable[Concatenate[S, str, P], R]:
    """Mark a service method (environment first) as a catalog write: its transactions carry a
    note to other processes, and once it has ended, the environment's compiled catalog is
    dropped here."""

    @functools.wraps(method)
    def wrapper(self: S, environment_id: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with staging(catalog_notes(self._catalog_changed, environment_id)):
                return method(self, environment_id, *args, **kwargs)
        finally:
            self._catalog_changed(environment_id)

    return wrapper


def changes_customer(
    method: Callable[Concatenate[C, str, str, P], R],
) -> Callable[Concatenate[C, str, str, P], R]:
    """Mark a service method (environment, then company or user key) as a write to that
    customer: its transactions carry a note to other processes, and once it has ended, the
    customer's cached state is dropped here."""

    @functools.wraps(method)
    def wrapper(self: C, environment_id: str, key: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with staging(key_notes(self._customer_changed, environment_id, key)):
                return method(self, environment_id, key, *args, **kwargs)
        finally:
            self._customer_changed(environment_id, key)

    return wrapper

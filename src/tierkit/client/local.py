"""Local evaluation: the engine in-process over the synchronised catalog and the states of the
companies and users this process has seen, with each decision kept until it can change.

A company's decisions are kept (per feature, quantity and user) until the engine's
`stable_until` instant (a subscription or trial boundary, an expiry, a usage window's end) or
until anything about the company changes (a stream event, a tracked event): a repeated check is
a dictionary lookup. Checks with a `context` are evaluated each time.

Tracked events count at once: their usage is added to the company's state and kept on top of
every state read from the server until the event is delivered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from tierkit.engine.catalog import Aggregation, FeatureType, Scalar
from tierkit.engine.codec import catalog_from_json, company_from_json, parse_time, user_from_json
from tierkit.engine.evaluate import (
    Catalog,
    CompanyState,
    Decision,
    Reason,
    UserState,
    evaluate,
    stable_until,
)
from tierkit.zones import zone_named

_NEVER = float("inf")


class Need(Enum):
    """What a check lacks before it can be decided locally."""

    CATALOG = "catalog"
    COMPANY = "company"
    USER = "user"


FETCHES = range(len(Need) + 1)
"""The fetches a local check may make: each need once, and one more decide after them."""


@dataclass(slots=True)
class _Company:
    state: CompanyState
    valid_until: float
    """Kept decisions hold until this instant (seconds since the epoch)."""
    refresh_at: float
    """Read the state again from the server after this instant."""
    memo: dict[str | tuple[str, float, str | None], Decision] = field(default_factory=dict)
    """Kept decisions: by feature for the usual check (one unit, no user), else by
    `(feature, quantity, user)`."""


MAX_PENDING = 100
"""Undelivered events a state read asks the server about (`pending`)."""


@dataclass(frozen=True, slots=True)
class TrackedMarker:
    undelivered: frozenset[int]
    last: int
    """The last tracked event's number."""
    pending: tuple[str, ...] = ()
    """Idempotency keys of the company's undelivered events, oldest first: the server says
    which of them the state it sends already counts."""


@dataclass(frozen=True, slots=True)
class _Tracked:
    company: str
    event: str
    quantity: float
    properties: Mapping[str, Any]
    at: datetime
    key: str | None = None
    """Its idempotency key."""


def fallback_decision(
    company: str,
    feature: str,
    error_code: str,
    *,
    allowed: bool,
    value: Scalar | None,
    stale: bool = False,
) -> Decision:
    """What a check answers when it cannot decide."""
    return Decision(
        feature=feature,
        company=company,
        company_found=False,
        allowed=allowed,
        value=value,
        unlimited=False,
        reason=Reason.ERROR,
        error_code=error_code,
        stale=stale,
    )


class LocalEvaluation:
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self.seconds: Callable[[], float] = time.time if clock is None else self._clock_seconds
        """Now, in seconds since the epoch."""
        self.catalog: Catalog | None = None
        self.etag: str | None = None
        self._companies: dict[str, _Company] = {}
        self._users: dict[str, UserState] = {}
        self._tracked: dict[int, _Tracked] = {}
        self._tracked_seq = 0
        self._lock = threading.Lock()
        self.kept: dict[tuple[str, str], Decision] = {}
        """The usual check's kept decisions (one unit, no user, no context), by company and
        feature in one table: the hot path is one lookup, whatever the number of companies.
        Read it (never write it) as `decide` does: an entry holds while `seconds()` is before
        `kept_until` and the state is not `stale`."""
        self.kept_until = _NEVER
        """Every decision in `kept` holds until this instant (the earliest of their
        companies' horizons); then the table is emptied and refilled as checks come."""
        self._kept_lock = threading.Lock()
        self.stale = False
        """The state could not be refreshed lately: decisions say `stale`."""
        self.on_refresh_due: Callable[[str], None] = lambda company: None

    def _clock_seconds(self) -> float:
        return self._clock().timestamp()

    # -- reading -----------------------------------------------------------------------------

    def decide(
        self,
        company: str,
        feature: str,
        user: str | None = None,
        quantity: float = 1,
        context: Mapping[str, Scalar] | None = None,
    ) -> Decision | Need:
        """The decision, or what must be fetched first."""
        plain = quantity == 1 and user is None and not context
        if plain:
            kept = self.kept.get((company, feature))
            if kept is not None and self.seconds() < self.kept_until:
                return replace(kept, stale=True) if self.stale else kept
        return self._decide(company, feature, user, quantity, context, plain=plain)

    def _decide(
        self,
        company: str,
        feature: str,
        user: str | None,
        quantity: float,
        context: Mapping[str, Scalar] | None,
        *,
        plain: bool,
    ) -> Decision | Need:
        entry = self._companies.get(company)
        if entry is not None and not context:
            kept = entry.memo.get(feature if plain else (feature, quantity, user))
            if kept is not None and self.seconds() < entry.valid_until:
                if plain:
                    self._keep(company, feature, entry, kept)
                return replace(kept, stale=True) if self.stale else kept
        catalog = self.catalog
        if catalog is None:
            return Need.CATALOG
        if entry is None:
            return Need.COMPANY
        user_state = None
        if user is not None:
            user_state = self._users.get(user)
            if user_state is None:
                return Need.USER
        if feature not in catalog.features:
            return fallback_decision(
                company, feature, "feature_not_found", allowed=False, value=None
            )
        now = self._clock()
        seconds = now.timestamp()
        if seconds >= entry.valid_until:
            entry = self._renew(company, entry, catalog, now)
        decision = evaluate(
            catalog,
            entry.state,
            feature,
            now=now,
            quantity=quantity,
            user=user_state,
            context=context,
        )
        if plain:
            entry.memo[feature] = decision
            self._keep(company, feature, entry, decision)
        elif not context:
            entry.memo[(feature, quantity, user)] = decision
        return replace(decision, stale=True) if self.stale else decision

    def _keep(self, company: str, feature: str, entry: _Company, decision: Decision) -> None:
        """Put a decision of `entry` in the hot table, unless the entry was replaced meanwhile
        (the sync thread forgets a replaced entry's decisions after replacing it, so one of the
        two removes it)."""
        with self._kept_lock:
            if self.seconds() >= self.kept_until:
                self.kept.clear()
                self.kept_until = _NEVER
            self.kept[(company, feature)] = decision
            self.kept_until = min(self.kept_until, entry.valid_until)
        if self._companies.get(company) is not entry:
            self.kept.pop((company, feature), None)

    def _forget(self, company: str, entry: _Company | None) -> None:
        """Drop a replaced entry's decisions from the hot table (after replacing it)."""
        if entry is not None:
            for feature in list(entry.memo):
                if isinstance(feature, str):
                    self.kept.pop((company, feature), None)

    def close(self) -> None:
        """Answer nothing more from the kept table."""
        self._forget_all()
        self.kept_until = -_NEVER

    def _forget_all(self) -> None:
        with self._kept_lock:
            self.kept.clear()
            self.kept_until = _NEVER

    def _renew(self, key: str, entry: _Company, catalog: Catalog, now: datetime) -> _Company:
        """The entry with its kept decisions dropped and its horizon moved past `now`."""
        if now.timestamp() >= entry.refresh_at:
            self.on_refresh_due(key)
        renewed = _Company(
            entry.state, _horizon(catalog, entry.state, now, entry.refresh_at), entry.refresh_at
        )
        self._companies[key] = renewed
        self._forget(key, entry)
        return renewed

    def feature_keys(self) -> list[str]:
        """Every feature not archived, by key (what a bulk check without features covers)."""
        catalog = self.catalog
        if catalog is None:
            return []
        return sorted(k for k, f in catalog.features.items() if f.status.value != "archived")

    def state_of(self, key: str) -> CompanyState | None:
        entry = self._companies.get(key)
        return entry.state if entry is not None else None

    def has_company(self, key: str) -> bool:
        return key in self._companies

    def company_keys(self) -> list[str]:
        return list(self._companies)

    def user_keys(self) -> list[str]:
        return list(self._users)

    # -- writing (from the sync thread, or a check that fetched) -----------------------------

    def set_catalog(self, document: Mapping[str, Any], etag: str | None) -> None:
        catalog = catalog_from_json(document)
        with self._lock:
            self.catalog, self.etag = catalog, etag
            now = self._clock()
            for key, entry in list(self._companies.items()):
                self._companies[key] = _Company(
                    entry.state,
                    _horizon(catalog, entry.state, now, entry.refresh_at),
                    entry.refresh_at,
                )
            self._forget_all()  # after the entries are replaced (see `_keep`)

    def tracked_marker(self, company: str | None = None) -> TrackedMarker:
        """Taken before reading a company's state: what was undelivered then."""
        with self._lock:
            pending = tuple(
                t.key for t in self._tracked.values() if t.company == company and t.key is not None
            )
            return TrackedMarker(frozenset(self._tracked), self._tracked_seq, pending[:MAX_PENDING])

    def put_company(self, data: Mapping[str, Any], marker: TrackedMarker | None = None) -> None:
        """A state read from the server; tracked events undelivered when the read began, or
        tracked since, are counted on top, unless the server says the state counts them
        (`stored`: the marker's `pending` keys asked about). One not asked about and delivered
        while the read was in flight may be counted twice: `delivered` names its company, so
        that it is read again."""
        catalog = self.catalog
        if catalog is None:
            return
        state = company_from_json(data, catalog, zone_named)
        refresh = parse_time(data.get("refresh_at"))
        stored = frozenset(data.get("stored", ()))
        with self._lock:
            marker = marker or TrackedMarker(frozenset(), self._tracked_seq)
            pending = [
                t
                for seq, t in self._tracked.items()
                if (seq in marker.undelivered or seq > marker.last) and t.key not in stored
            ]
            for tracked in pending:
                if tracked.company == state.key:
                    state = _counted(catalog, state, tracked)
            self._store(state, refresh.timestamp() if refresh else _NEVER)

    def _store(self, state: CompanyState, refresh_at: float) -> None:
        catalog = self.catalog
        assert catalog is not None  # noqa: S101 - callers checked
        replaced = self._companies.get(state.key)
        self._companies[state.key] = _Company(
            state, _horizon(catalog, state, self._clock(), refresh_at), refresh_at
        )
        self._forget(state.key, replaced)

    def drop_company(self, key: str) -> None:
        self._forget(key, self._companies.pop(key, None))

    def put_user(self, data: Mapping[str, Any]) -> None:
        """A user's traits. Only checks naming a user read them: the hot table (checks
        without a user) is untouched."""
        user = user_from_json(data)
        if user is not None:
            self._users[user.key] = user
            with self._lock:
                for entry in self._companies.values():
                    for key in list(entry.memo):  # a copy: checks add to it meanwhile
                        if not isinstance(key, str):
                            entry.memo.pop(key, None)

    def track(
        self,
        company: str,
        event: str,
        quantity: float,
        properties: Mapping[str, Any],
        at: datetime | None,
        *,
        key: str | None = None,
    ) -> int:
        """Count a tracked event (with idempotency key `key`) at once; returns its mark, for
        `delivered`."""
        tracked = _Tracked(company, event, quantity, properties, at or self._clock(), key)
        with self._lock:
            self._tracked_seq += 1
            seq = self._tracked_seq
            self._tracked[seq] = tracked
            entry = self._companies.get(company)
            if entry is not None and self.catalog is not None:
                self._store(_counted(self.catalog, entry.state, tracked), entry.refresh_at)
        return seq

    def delivered(self, marks: Collection[int]) -> set[str]:
        """Tracked events the server stored; returns their companies."""
        companies = set()
        with self._lock:
            for seq in marks:
                tracked = self._tracked.pop(seq, None)
                if tracked is not None:
                    companies.add(tracked.company)
        return companies


def _horizon(catalog: Catalog, state: CompanyState, now: datetime, refresh_at: float) -> float:
    until = stable_until(catalog, state, now)
    return min(until.timestamp() if until is not None else _NEVER, refresh_at)


def _counted(catalog: Catalog, state: CompanyState, tracked: _Tracked) -> CompanyState:
    """The state with a tracked event counted in every meter it feeds (count, sum, max; a
    distinct count or gauge waits for the server's count)."""
    usage = dict(state.usage)
    changed = False
    for key, feature in catalog.features.items():
        meter = feature.meter
        if feature.type is not FeatureType.METERED or meter is None or meter.event != tracked.event:
            continue
        start, end = state.usage_windows.get(key, (None, None))
        if (start is not None and tracked.at < start) or (end is not None and tracked.at >= end):
            continue
        amount = _amount(meter.property, tracked)
        current = float(usage.get(key, 0))
        if meter.aggregation is Aggregation.COUNT:
            usage[key] = current + 1
        elif meter.aggregation is Aggregation.SUM and amount is not None:
            usage[key] = current + amount
        elif meter.aggregation is Aggregation.MAX and amount is not None:
            usage[key] = max(current, amount)
        else:
            continue
        changed = True
    return replace(state, usage=usage) if changed else state


def _amount(prop: str | None, tracked: _Tracked) -> float | None:
    value = tracked.quantity if prop is None else tracked.properties.get(prop)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)

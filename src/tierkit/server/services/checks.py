"""Checks: may this company use this feature now, and how much is left. The catalog comes
compiled from memory, the company's state (usage counters included) from memory or one short
transaction. A consume decides and records in one transaction, under the company's lock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from tierkit.engine.catalog import FeatureStatus, Scalar
from tierkit.engine.codec import decision_to_json
from tierkit.engine.evaluate import (
    Catalog,
    CompanyState,
    Decision,
    UserState,
    after_consuming,
    evaluate,
)
from tierkit.server.db import Database
from tierkit.server.db.tables import CompanyRow
from tierkit.server.db.upserts import lock_companies
from tierkit.server.services.catalog_cache import CatalogCache, KeyedCache
from tierkit.server.services.changes import ChangeFeed, ChangeKind, ChangeNote, staging
from tierkit.server.services.clock import Clock
from tierkit.server.services.companies import company_not_found, find_company_row
from tierkit.server.services.consumption import (
    consumable_meter,
    debit_consumed,
    earlier_consume,
    nothing_to_consume,
    record_consumption,
)
from tierkit.server.services.counters import ensure_counters
from tierkit.server.services.credits import refresh_credits_in
from tierkit.server.services.errors import InvalidRequest
from tierkit.server.services.events import ensure_companies
from tierkit.server.services.features import feature_not_found
from tierkit.server.services.states import LoadedCompany, load_company, load_user
from tierkit.server.services.telemetry import NoTelemetry, Telemetry


@dataclass(frozen=True, slots=True)
class CheckRequest:
    company: str
    features: Sequence[str] | None = None
    """The features to check; None: every feature that is not archived."""
    user: str | None = None
    quantity: float = 1
    context: Mapping[str, Scalar] = field(default_factory=dict)


_STATES_KEPT = 100_000


def _outdated(loaded: LoadedCompany, now: datetime) -> bool:
    """A state read before an instant that changes it (a grant expires, a plan's credit period
    ends) is not trusted past that instant: its next read writes what the instant changed."""
    return loaded.refresh_at is not None and now >= loaded.refresh_at


def refreshed_in(
    session: Session, company: CompanyRow, catalog: Catalog, now: datetime
) -> LoadedCompany:
    """The company's state with its counters and credits brought up to `now`. The caller
    holds the company's lock."""
    refresh_credits_in(session, company, catalog, now)
    loaded = load_company(session, company.environment_id, company.key, catalog, now)
    if loaded.missing:
        ensure_counters(session, company.id, loaded.missing, now)
        loaded = load_company(session, company.environment_id, company.key, catalog, now)
    return loaded


class CheckService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        catalogs: CatalogCache,
        max_age: float,
        changes: ChangeFeed | None = None,
        *,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._telemetry = telemetry = telemetry or NoTelemetry()
        self._changes = changes or ChangeFeed()
        self._db = database
        self._clock = clock
        self._catalogs = catalogs
        self._companies: KeyedCache[tuple[str, str], LoadedCompany] = KeyedCache(
            _STATES_KEPT, max_age, telemetry.cache_reads("company")
        )
        self._users: KeyedCache[tuple[str, str], UserState] = KeyedCache(
            _STATES_KEPT, max_age, telemetry.cache_reads("user")
        )

    def catalog_changed(self, environment_id: str) -> None:
        """A catalog write can move a company's usage window (a plan's period, a feature's
        meter): its cached company states go with its catalog."""
        self._catalogs.invalidate(environment_id)
        self._companies.invalidate_where(lambda key: key[0] == environment_id)

    def company_changed(self, environment_id: str, key: str) -> None:
        self._companies.invalidate((environment_id, key))

    def user_changed(self, environment_id: str, key: str) -> None:
        self._users.invalidate((environment_id, key))

    def forget(self, note: ChangeNote) -> None:
        """Drop what another process's change makes stale."""
        if note.kind is ChangeKind.RESET:
            self.forget_everything()
        elif note.kind is ChangeKind.CATALOG:
            self.catalog_changed(note.environment_id)
        elif note.company is not None:
            self.company_changed(note.environment_id, note.company)
        elif note.user is not None:
            self.user_changed(note.environment_id, note.user)

    def forget_everything(self) -> None:
        """Drop every cached catalog and state: changes may have been missed."""
        self._catalogs.clear()
        self._companies.clear()
        self._users.clear()

    def _load_company(self, environment_id: str, key: str) -> LoadedCompany:
        catalog = self._catalogs.get(environment_id)
        now = self._clock()
        with self._db.read() as session:
            loaded = load_company(session, environment_id, key, catalog, now)
        if loaded.company_id is None or not (loaded.missing or loaded.credits_stale):
            return loaded
        # A first read of a window (a new period, a new meter) counts it from the raw events;
        # a new credit period issues the plans' grants.
        with self._db.write() as session:
            company = find_company_row(session, environment_id, key)
            lock_companies(session, [company.id])
            return refreshed_in(session, company, catalog, now)

    def _company(self, environment_id: str, key: str, *, fresh: bool = False) -> CompanyState:
        if fresh:
            return self._load_company(environment_id, key).state
        cache_key = (environment_id, key)
        loaded = self._companies.get(cache_key, lambda: self._load_company(environment_id, key))
        if _outdated(loaded, self._clock()):
            self._companies.invalidate(cache_key)
            loaded = self._companies.get(cache_key, lambda: self._load_company(environment_id, key))
        return loaded.state

    def load_company(self, environment_id: str, key: str) -> LoadedCompany:
        """The company's state read anew, its counters and credits brought up to now."""
        return self._load_company(environment_id, key)

    def load_user(self, environment_id: str, key: str) -> UserState:
        user = self._user(environment_id, key)
        assert user is not None  # noqa: S101 - a key was given
        return user

    def _user(self, environment_id: str, key: str | None) -> UserState | None:
        if key is None:
            return None

        def load() -> UserState:
            with self._db.read() as session:
                return load_user(session, environment_id, key)

        return self._users.get((environment_id, key), load)

    def company_state(self, environment_id: str, key: str) -> CompanyState:
        """The company's state read anew (404 `company_not_found` when there is none)."""
        state = self._company(environment_id, key, fresh=True)
        if not state.found:
            raise company_not_found(key)
        return state

    def catalog(self, environment_id: str) -> Catalog:
        """The environment's compiled catalog (from memory)."""
        return self._catalogs.get(environment_id)

    def check(
        self, environment_id: str, request: CheckRequest, *, fresh: bool = False
    ) -> list[Decision]:
        """A decision per requested feature (unknown features are 404 `feature_not_found`).
        Reads the database for what is not in memory yet, or for the company's state anew
        when `fresh`."""
        catalog = self._catalogs.get(environment_id)
        company = self._company(environment_id, request.company, fresh=fresh)
        user = self._user(environment_id, request.user)
        decisions = self._decide(catalog, company, user, request)
        if not fresh:  # fresh reads are the console's and usage pages', not checks
            self._telemetry.decided(decisions)
        return decisions

    def check_from_memory(
        self, environment_id: str, request: CheckRequest
    ) -> list[Decision] | None:
        """`check` when everything it needs is in memory (no I/O at all), else None."""
        catalog = self._catalogs.peek(environment_id)
        loaded = self._companies.peek((environment_id, request.company))
        if loaded is None or _outdated(loaded, self._clock()):
            return None
        company = loaded.state
        user = None
        if request.user is not None:
            user = self._users.peek((environment_id, request.user))
            if user is None:
                return None
        if catalog is None:
            return None
        decisions = self._decide(catalog, company, user, request)
        self._catalogs.count_hit()
        self._companies.count_hit()
        if user is not None:
            self._users.count_hit()
        self._telemetry.decided(decisions)
        return decisions

    def consume(
        self, environment_id: str, request: CheckRequest, idempotency_key: str | None
    ) -> Decision:
        """Check one metered feature and, if allowed, record `quantity` units of its meter, in
        one transaction under the company's lock: concurrent consumers never pass a hard limit.
        A retry with the same `idempotency_key` records nothing and answers the same."""
        catalog = self._catalogs.get(environment_id)
        (key,) = self._feature_keys(catalog, request.features)
        meter = consumable_meter(catalog.features[key], request.quantity)
        user = self._user(environment_id, request.user)
        now = self._clock()
        note = ChangeNote(environment_id, ChangeKind.USAGE, company=request.company)
        try:
            with staging() as notes, self._db.write() as session:
                company_id = ensure_companies(session, environment_id, [request.company], now)[
                    request.company
                ]
                if idempotency_key is not None:
                    earlier = earlier_consume(session, environment_id, idempotency_key)
                    if earlier is not None:
                        return earlier
                # Locked by ensure_companies.
                company = session.get_one(CompanyRow, company_id)
                loaded = refreshed_in(session, company, catalog, now)
                decision = evaluate(
                    catalog,
                    loaded.state,
                    key,
                    now=now,
                    quantity=request.quantity,
                    user=user,
                    context=request.context,
                )
                if meter is None and decision.credits is None:
                    raise nothing_to_consume(catalog.features[key])
                if decision.allowed:
                    notes.append(note)  # a denial or a replay changes nothing elsewhere
                    decision = after_consuming(decision, request.quantity)
                    seq = record_consumption(
                        session,
                        environment_id,
                        company_id,
                        meter,
                        request,
                        now=now,
                        idempotency_key=idempotency_key,
                        reply=decision_to_json(decision),
                    )
                    if decision.credits is not None:
                        debit_consumed(
                            session,
                            company_id,
                            decision.credits,
                            now=now,
                            event_seq=seq,
                            feature=key,
                        )
                self._telemetry.decided((decision,))
                return decision
        finally:
            self.company_changed(environment_id, request.company)
            self._changes.publish_note(note)

    def _decide(
        self,
        catalog: Catalog,
        company: CompanyState,
        user: UserState | None,
        request: CheckRequest,
    ) -> list[Decision]:
        keys = self._feature_keys(catalog, request.features)
        now = self._clock()
        return [
            evaluate(
                catalog,
                company,
                key,
                now=now,
                quantity=request.quantity,
                user=user,
                context=request.context,
            )
            for key in keys
        ]

    @staticmethod
    def _feature_keys(catalog: Catalog, features: Sequence[str] | None) -> list[str]:
        if features is None:
            return sorted(
                key
                for key, feature in catalog.features.items()
                if feature.status is not FeatureStatus.ARCHIVED
            )
        for index, key in enumerate(features):
            if key not in catalog.features:
                param = "feature" if len(features) == 1 else f"features.{index}"
                raise feature_not_found(key, param)
        if len(set(features)) != len(features):
            raise InvalidRequest(
                "Name each feature once.", code="duplicate_feature", param="features"
            )
        return list(features)

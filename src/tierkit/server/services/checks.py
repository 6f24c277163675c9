"""Checks: may this company use this feature now, and how much is left. The catalog comes
compiled from memory; the company's state is read in one short transaction per request."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import FeatureStatus, Scalar
from tierkit.engine.evaluate import Catalog, CompanyState, Decision, UserState, evaluate
from tierkit.server.db import Database
from tierkit.server.db.tables import UserRow
from tierkit.server.services.catalog_cache import CatalogCache, KeyedCache
from tierkit.server.services.clock import Clock
from tierkit.server.services.companies import get_company_row
from tierkit.server.services.errors import InvalidRequest
from tierkit.server.services.features import feature_not_found
from tierkit.server.services.overrides import company_override_rows
from tierkit.server.services.rows import to_override
from tierkit.server.services.subscriptions import company_subscription_rows, to_subscription


@dataclass(frozen=True, slots=True)
class CheckRequest:
    company: str
    features: Sequence[str] | None = None
    """The features to check; None: every feature that is not archived."""
    user: str | None = None
    quantity: float = 1
    context: Mapping[str, Scalar] = field(default_factory=dict)


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _company_state(session: Session, environment_id: str, key: str) -> CompanyState:
    row = get_company_row(session, environment_id, key)
    if row is None:
        return CompanyState(key=key, found=False)
    timezone = row.traits.get("timezone")
    return CompanyState(
        key=key,
        traits=dict(row.traits),
        subscriptions=tuple(to_subscription(s) for s in company_subscription_rows(session, row.id)),
        overrides=tuple(to_override(o) for o in company_override_rows(session, row.id)),
        timezone=_zone(timezone) if isinstance(timezone, str) else UTC,
    )


def _user_state(session: Session, environment_id: str, key: str) -> UserState:
    row = session.scalar(
        select(UserRow).where(UserRow.environment_id == environment_id, UserRow.key == key)
    )
    return UserState(key, dict(row.traits) if row is not None else {})


_STATES_KEPT = 100_000


class CheckService:
    def __init__(
        self, database: Database, clock: Clock, catalogs: CatalogCache, max_age: float
    ) -> None:
        self._db = database
        self._clock = clock
        self._catalogs = catalogs
        self._companies: KeyedCache[tuple[str, str], CompanyState] = KeyedCache(
            _STATES_KEPT, max_age
        )
        self._users: KeyedCache[tuple[str, str], UserState] = KeyedCache(_STATES_KEPT, max_age)

    def company_changed(self, environment_id: str, key: str) -> None:
        self._companies.invalidate((environment_id, key))

    def user_changed(self, environment_id: str, key: str) -> None:
        self._users.invalidate((environment_id, key))

    def _company(self, environment_id: str, key: str) -> CompanyState:
        def load() -> CompanyState:
            with self._db.read() as session:
                return _company_state(session, environment_id, key)

        return self._companies.get((environment_id, key), load)

    def _user(self, environment_id: str, key: str | None) -> UserState | None:
        if key is None:
            return None

        def load() -> UserState:
            with self._db.read() as session:
                return _user_state(session, environment_id, key)

        return self._users.get((environment_id, key), load)

    def catalog(self, environment_id: str) -> Catalog:
        """The environment's compiled catalog (from memory)."""
        return self._catalogs.get(environment_id)

    def check(self, environment_id: str, request: CheckRequest) -> list[Decision]:
        """A decision per requested feature (unknown features are 404 `feature_not_found`).
        Reads the database for what is not in memory yet."""
        catalog = self._catalogs.get(environment_id)
        company = self._company(environment_id, request.company)
        user = self._user(environment_id, request.user)
        return self._decide(catalog, company, user, request)

    def check_from_memory(
        self, environment_id: str, request: CheckRequest
    ) -> list[Decision] | None:
        """`check` when everything it needs is in memory (no I/O at all), else None."""
        catalog = self._catalogs.peek(environment_id)
        company = self._companies.peek((environment_id, request.company))
        user = None
        if request.user is not None:
            user = self._users.peek((environment_id, request.user))
            if user is None:
                return None
        if catalog is None or company is None:
            return None
        return self._decide(catalog, company, user, request)

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

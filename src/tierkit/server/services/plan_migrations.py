"""Plan versions as the API shows them, and migrations of subscriptions between versions.

A migration's dry run reports, per company, what moving its subscription would change: every
feature's decision under both versions (the engine decides; usage comes from the counters the
checks read), and which companies would be over a new limit. A real run moves one batch of
subscriptions per call, each batch its own transaction; what is left to do is in the data
(subscriptions still on `from_version`), so an interrupted migration resumes by calling again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, joinedload

from tierkit.engine.catalog import Plan, Scalar
from tierkit.engine.evaluate import Catalog, CompanyState, Decision, evaluate_all
from tierkit.engine.numbers import finite_number
from tierkit.server.db import Database
from tierkit.server.db.tables import CompanyRow, PlanRow, PlanVersionRow, SubscriptionRow
from tierkit.server.db.upserts import lock_companies
from tierkit.server.services.catalog_cache import catalog_notes, key_notes, read_catalog
from tierkit.server.services.changes import staging
from tierkit.server.services.clock import Clock
from tierkit.server.services.counters import ensure_counters
from tierkit.server.services.errors import InvalidRequest, NotFound, named_in_body
from tierkit.server.services.pagination import Page, paginate, to_page
from tierkit.server.services.plan_versions import not_ended, subscriber_counts, version_plan
from tierkit.server.services.plans import find_plan_row
from tierkit.server.services.rows import to_plan
from tierkit.server.services.states import load_company, with_usage
from tierkit.server.services.subscriptions import (
    log_subscription_change,
    to_subscription_record,
)


@dataclass(frozen=True, slots=True)
class PlanVersionRecord:
    version: int
    plan: Plan
    """The plan as this version defines it."""
    created_at: datetime
    subscribers: int
    """Subscriptions on this version that have not ended."""
    current: bool


class Effect(StrEnum):
    GAIN = "gain"
    LOSS = "loss"
    CHANGE = "change"


@dataclass(frozen=True, slots=True)
class Access:
    allowed: bool
    value: Scalar | None
    unlimited: bool


@dataclass(frozen=True, slots=True)
class FeatureChange:
    feature: str
    effect: Effect
    before: Access
    after: Access


@dataclass(frozen=True, slots=True)
class OverLimit:
    feature: str
    used: float
    limit: float


@dataclass(frozen=True, slots=True)
class CompanyImpact:
    company: str
    subscriptions: list[str]
    changes: list[FeatureChange]
    over_limit: list[OverLimit]

    @property
    def loses_access(self) -> bool:
        return any(c.before.allowed and not c.after.allowed for c in self.changes)


@dataclass(frozen=True, slots=True)
class ImpactReport:
    plan: str
    from_version: int
    to_version: int
    companies: int
    """Companies with a subscription on `from_version` that has not ended."""
    subscriptions: int
    impacts: list[CompanyImpact]
    """Companies whose decisions change or that go over a limit (the others are unchanged)."""


@dataclass(frozen=True, slots=True)
class MigrationBatch:
    plan: str
    from_version: int
    to_version: int
    migrated: int
    remaining: int

    @property
    def done(self) -> bool:
        return self.remaining == 0


_PREVIEW_CHUNK = 100
"""Companies evaluated per transaction of a dry run."""


class PlanMigrationService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        on_catalog_change: Callable[[str], None] = lambda environment_id: None,
        on_customer_change: Callable[[str, str], None] = lambda environment_id, key: None,
    ) -> None:
        self._db = database
        self._clock = clock
        self._catalog_changed = on_catalog_change
        self._customer_changed = on_customer_change

    def list_versions(
        self, environment_id: str, plan_key: str, *, cursor: str | None = None, limit: int = 50
    ) -> Page[PlanVersionRecord]:
        """The plan's versions, newest first, with their subscriber counts."""
        with self._db.read() as session:
            row = find_plan_row(session, environment_id, plan_key)
            latest = to_plan(row)
            query = select(PlanVersionRow).where(PlanVersionRow.plan_id == row.id)
            query, limit = paginate(query, [PlanVersionRow.version], cursor, limit, descending=True)
            page = to_page(session.scalars(query).all(), limit, lambda v: [v.version])
            counts = subscriber_counts(session, row.id, self._clock())
            return Page(
                [
                    PlanVersionRecord(
                        v.version,
                        version_plan(latest, v),
                        v.created_at,
                        counts.get(v.version, 0),
                        v.version == row.version,
                    )
                    for v in page.items
                ],
                page.next_cursor,
            )

    def preview(
        self, environment_id: str, plan_key: str, from_version: int, to_version: int
    ) -> ImpactReport:
        """What moving every subscription on `from_version` to `to_version` would change.

        Nothing of the catalog or the subscriptions changes. Usage counters a company lacks
        for a window are created from its events, as its next check would. Companies are
        read in chunks, each in a short transaction holding only its own companies' locks."""
        now = self._clock()
        with self._db.read() as session:
            row, versions = _find_versions(
                session, environment_id, plan_key, from_version, to_version
            )
            catalog = _catalog_with(read_catalog(session, environment_id), row, versions)
            moving = session.execute(
                _on_version(row.id, from_version, now)
                .with_only_columns(SubscriptionRow.company_id, SubscriptionRow.id)
                .order_by(SubscriptionRow.company_id, SubscriptionRow.id)
            ).all()
        by_company: dict[str, list[str]] = {}
        for company_id, subscription_id in moving:
            by_company.setdefault(company_id, []).append(subscription_id)
        company_ids = sorted(by_company)
        impacts = []
        for start in range(0, len(company_ids), _PREVIEW_CHUNK):
            chunk = company_ids[start : start + _PREVIEW_CHUNK]
            with self._db.write() as session:
                lock_companies(session, chunk)
                for company in session.scalars(select(CompanyRow).where(CompanyRow.id.in_(chunk))):
                    impact = _company_impact(
                        session,
                        catalog,
                        company,
                        moved=by_company[company.id],
                        to_version=to_version,
                        now=now,
                    )
                    if impact.changes or impact.over_limit:
                        impacts.append(impact)
        return ImpactReport(
            plan_key,
            from_version,
            to_version,
            len(by_company),
            len(moving),
            sorted(impacts, key=lambda impact: impact.company),
        )

    def migrate_batch(
        self,
        environment_id: str,
        plan_key: str,
        from_version: int,
        to_version: int,
        *,
        batch_size: int = 100,
    ) -> MigrationBatch:
        """Move up to `batch_size` subscriptions (not ended) from `from_version` to
        `to_version` in one transaction; call again until `done`. Each moved subscription is
        audited (`subscription.updated`) and its company marked for `entitlements.changed`."""
        now = self._clock()
        companies: set[str] = set()
        plan = joinedload(SubscriptionRow.plan)
        try:
            with staging() as notes, self._db.write() as session:
                row, _ = _find_versions(session, environment_id, plan_key, from_version, to_version)
                batch = session.scalars(
                    _on_version(row.id, from_version, now)
                    .options(plan.lazyload(PlanRow.entitlements), plan.lazyload(PlanRow.prices))
                    .order_by(SubscriptionRow.id)
                    .limit(batch_size)
                    # Two runs at once take different rows (PostgreSQL; SQLite writes one at
                    # a time anyway).
                    .with_for_update(skip_locked=True, of=SubscriptionRow)
                ).all()
                owners = {
                    c.id: c
                    for c in session.scalars(
                        select(CompanyRow).where(CompanyRow.id.in_({s.company_id for s in batch}))
                    )
                }
                for sub in batch:
                    company = owners[sub.company_id]
                    before = to_subscription_record(sub, company.key)
                    sub.plan_version = to_version
                    sub.updated_at = now
                    session.flush()
                    log_subscription_change(
                        session, company, now, "subscription.updated", before=before, row=sub
                    )
                    companies.add(company.key)
                if companies:
                    notes.extend(catalog_notes(self._catalog_changed, environment_id))
                    notes.extend(
                        key_notes(self._customer_changed, environment_id, *sorted(companies))
                    )
                remaining = session.scalar(
                    select(func.count()).select_from(
                        _on_version(row.id, from_version, now).subquery()
                    )
                )
                return MigrationBatch(
                    plan_key, from_version, to_version, len(batch), remaining or 0
                )
        finally:
            if companies:
                # The catalog carries the versions subscriptions hold: it changes too.
                self._catalog_changed(environment_id)
                for key in sorted(companies):
                    self._customer_changed(environment_id, key)


def _find_versions(
    session: Session, environment_id: str, plan_key: str, from_version: int, to_version: int
) -> tuple[PlanRow, dict[int, PlanVersionRow]]:
    row = find_plan_row(session, environment_id, plan_key)
    if from_version == to_version:
        raise InvalidRequest(
            "`from_version` and `to_version` are the same version.",
            code="same_version",
            param="to_version",
        )
    versions = {
        v.version: v
        for v in session.scalars(
            select(PlanVersionRow).where(
                PlanVersionRow.plan_id == row.id,
                PlanVersionRow.version.in_((from_version, to_version)),
            )
        )
    }
    for param, number in (("from_version", from_version), ("to_version", to_version)):
        if number not in versions:
            raise named_in_body(
                NotFound(
                    f"Plan {plan_key!r} has no version {number} (its latest is {row.version}).",
                    code="plan_version_not_found",
                ),
                param,
            )
    return row, versions


def _on_version(plan_id: str, version: int, now: datetime) -> Select[SubscriptionRow]:
    """Subscriptions on that version of the plan that have not ended."""
    return select(SubscriptionRow).where(
        SubscriptionRow.plan_id == plan_id,
        SubscriptionRow.plan_version == version,
        not_ended(now),
    )


def _catalog_with(catalog: Catalog, row: PlanRow, versions: dict[int, PlanVersionRow]) -> Catalog:
    """`catalog` holding both versions of the migration, whatever subscriptions hold."""
    latest = catalog.plans[row.key]
    held = dict(catalog.plan_versions.get(row.key, {}))
    held |= {number: version_plan(latest, v) for number, v in versions.items()}
    return replace(catalog, plan_versions={**catalog.plan_versions, row.key: held})


def _company_impact(
    session: Session,
    catalog: Catalog,
    company: CompanyRow,
    *,
    moved: Sequence[str],
    to_version: int,
    now: datetime,
) -> CompanyImpact:
    """The company's decisions with its `moved` subscriptions on their version, then on
    `to_version`, each with the usage its windows count."""
    before = _state(session, company, catalog, now)
    after = replace(
        before,
        subscriptions=tuple(
            replace(s, plan_version=to_version) if s.id in moved else s
            for s in before.subscriptions
        ),
    )
    after = _with_counted_usage(session, company.id, catalog, after, now)
    return _impact(
        catalog, company=company.key, subscriptions=moved, before=before, after=after, now=now
    )


def _state(session: Session, company: CompanyRow, catalog: Catalog, now: datetime) -> CompanyState:
    loaded = load_company(session, company.environment_id, company.key, catalog, now)
    if loaded.missing:
        ensure_counters(session, company.id, loaded.missing, now)
        loaded = load_company(session, company.environment_id, company.key, catalog, now)
    return loaded.state


def _with_counted_usage(
    session: Session, company_id: str, catalog: Catalog, state: CompanyState, now: datetime
) -> CompanyState:
    """`state` with its usage in the windows its (new) entitlements count over."""
    counted, missing = with_usage(session, company_id, catalog, state, now)
    if missing:
        ensure_counters(session, company_id, missing, now)
        counted, _ = with_usage(session, company_id, catalog, state, now)
    return counted


def _access(decision: Decision) -> Access:
    return Access(decision.allowed, decision.value, decision.unlimited)


def _effect(before: Access, after: Access) -> Effect:
    if before.allowed != after.allowed:
        return Effect.GAIN if after.allowed else Effect.LOSS
    if before.unlimited != after.unlimited:
        return Effect.GAIN if after.unlimited else Effect.LOSS
    old, new = finite_number(before.value), finite_number(after.value)
    if isinstance(before.value, bool) or isinstance(after.value, bool):
        return Effect.GAIN if after.value else Effect.LOSS
    if old is not None and new is not None and old != new:
        return Effect.GAIN if new > old else Effect.LOSS
    return Effect.CHANGE


def _impact(
    catalog: Catalog,
    *,
    company: str,
    subscriptions: Sequence[str],
    before: CompanyState,
    after: CompanyState,
    now: datetime,
) -> CompanyImpact:
    changes, over = [], []
    was = evaluate_all(catalog, before, now=now)
    will = evaluate_all(catalog, after, now=now)
    for old, new in zip(was, will, strict=True):
        then, then_after = _access(old), _access(new)
        if then != then_after:
            changes.append(FeatureChange(old.feature, _effect(then, then_after), then, then_after))
        limit = new.usage.limit if new.usage else None
        old_limit = old.usage.limit if old.usage else None
        if new.usage and limit is not None and new.usage.used > limit and limit != old_limit:
            over.append(OverLimit(new.feature, new.usage.used, limit))
    return CompanyImpact(company, list(subscriptions), changes, over)

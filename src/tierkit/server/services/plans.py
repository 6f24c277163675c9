"""Plans: base plans and add-ons, with their entitlements and prices, validated as a whole."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tierkit.engine.catalog import (
    Entitlement,
    Feature,
    FeatureStatus,
    Plan,
    PlanStatus,
    PlanType,
)
from tierkit.engine.catalog_rules import (
    Problem,
    check_entitlement,
    check_plan,
    normalize_entitlement,
)
from tierkit.server.db import Database
from tierkit.server.db.ids import new_id
from tierkit.server.db.tables import CreditTypeRow, FeatureRow, PlanRow, SubscriptionRow
from tierkit.server.services.audit import ChangeLog
from tierkit.server.services.catalog_cache import changes_catalog
from tierkit.server.services.clock import Clock
from tierkit.server.services.errors import Conflict, NotFound, named_in_body
from tierkit.server.services.features import find_feature_row, raise_problems
from tierkit.server.services.pagination import Page, paginate, to_page
from tierkit.server.services.plan_versions import store_version
from tierkit.server.services.rows import (
    new_entitlement_row,
    new_price_row,
    to_feature,
    to_plan,
    write_plan_fields,
)


@dataclass(frozen=True, slots=True)
class PlanRecord:
    id: str
    plan: Plan
    created_at: datetime
    updated_at: datetime
    version: int = 1
    """The current version of the plan's entitlements, prices and credit grants."""


@dataclass(frozen=True, slots=True)
class PlanFeature:
    """A feature as a plan offers it: the plan's entitlement, or the feature's fallback."""

    feature: Feature
    entitlement: Entitlement | None

    @property
    def value(self) -> Any:
        if self.entitlement is not None:
            return None if self.entitlement.unlimited else self.entitlement.value
        return self.feature.default if self.feature.default is not None else self.feature.zero_value


def _to_record(row: PlanRow) -> PlanRecord:
    return PlanRecord(row.id, to_plan(row), row.created_at, row.updated_at, row.version)


def plan_not_found(key: str) -> NotFound:
    return NotFound(f"There is no plan {key!r}.", code="plan_not_found")


def find_plan_row(
    session: Session, environment_id: str, key: str, *, param: str | None = None
) -> PlanRow:
    """The plan, or 404; or 400 on `param` when a body field named it."""
    row = session.scalar(
        select(PlanRow).where(PlanRow.environment_id == environment_id, PlanRow.key == key)
    )
    if row is None:
        raise named_in_body(plan_not_found(key), param)
    return row


def _unknown_credits(session: Session, environment_id: str, plan: Plan) -> list[Problem]:
    """Entitlements priced in a credit type the environment does not have."""
    named = {e.credit for e in plan.entitlements if e.credit is not None}
    named |= {g.credit for g in plan.credit_grants}
    if not named:
        return []
    known = set(
        session.scalars(
            select(CreditTypeRow.key).where(
                CreditTypeRow.environment_id == environment_id, CreditTypeRow.key.in_(named)
            )
        )
    )
    places = [(f"entitlements.{i}.credit", e.credit) for i, e in enumerate(plan.entitlements)]
    places += [(f"credit_grants.{i}.credit", g.credit) for i, g in enumerate(plan.credit_grants)]
    return [
        Problem(
            param,
            "credit_not_found",
            f"There is no credit type {credit!r}; create it with POST /v1/credits.",
        )
        for param, credit in places
        if credit is not None and credit not in known
    ]


def _feature_rows(session: Session, environment_id: str) -> dict[str, FeatureRow]:
    rows = session.scalars(select(FeatureRow).where(FeatureRow.environment_id == environment_id))
    return {row.key: row for row in rows}


class PlanService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        on_catalog_change: Callable[[str], None] = lambda environment_id: None,
    ) -> None:
        self._db = database
        self._clock = clock
        self._catalog_changed = on_catalog_change

    def list_plans(
        self,
        environment_id: str,
        *,
        type: PlanType | None = None,
        status: PlanStatus | None = None,
        group: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[PlanRecord]:
        """Plans in display order (`sort_order`, then key)."""
        with self._db.read() as session:
            query = select(PlanRow).where(PlanRow.environment_id == environment_id)
            if type is not None:
                query = query.where(PlanRow.type == type.value)
            if status is not None:
                query = query.where(PlanRow.status == status.value)
            if group is not None:
                query = query.where(PlanRow.plan_group == group)
            query, limit = paginate(query, [PlanRow.sort_order, PlanRow.key], cursor, limit)
            rows = session.scalars(query).all()
            page = to_page(rows, limit, lambda row: [row.sort_order, row.key])
            return Page([_to_record(row) for row in page.items], page.next_cursor)

    def get_plan(self, environment_id: str, key: str) -> PlanRecord:
        with self._db.read() as session:
            return _to_record(find_plan_row(session, environment_id, key))

    @changes_catalog
    def create_plan(self, environment_id: str, plan: Plan) -> PlanRecord:
        try:
            with self._db.write() as session:
                return self.create_plan_in(session, environment_id, plan)
        except IntegrityError as error:
            raise _concurrent_change() from error

    def create_plan_in(self, session: Session, environment_id: str, plan: Plan) -> PlanRecord:
        """`create_plan` in the caller's transaction (which invalidates the catalog)."""
        now = self._clock()
        if session.scalar(
            select(PlanRow.id).where(
                PlanRow.environment_id == environment_id, PlanRow.key == plan.key
            )
        ):
            raise Conflict(f"A plan {plan.key!r} already exists.", code="plan_exists", param="key")
        row = PlanRow(
            id=new_id("plan"), environment_id=environment_id, created_at=now, updated_at=now
        )
        self._store(session, environment_id, row, plan, replace_lines=True)
        session.add(row)
        session.flush()
        created = _to_record(row)
        ChangeLog(session, environment_id, now).record(
            "plan.created", ("plan", plan.key), None, created
        )
        return created

    @changes_catalog
    def update_plan(self, environment_id: str, key: str, changes: Mapping[str, Any]) -> PlanRecord:
        """Apply `changes`; `entitlements` and `prices`, when given, replace the lists whole."""
        try:
            with self._db.write() as session:
                return self.update_plan_in(session, environment_id, key, changes)
        except IntegrityError as error:
            raise _concurrent_change() from error

    def update_plan_in(
        self, session: Session, environment_id: str, key: str, changes: Mapping[str, Any]
    ) -> PlanRecord:
        """`update_plan` in the caller's transaction (which invalidates the catalog)."""
        row = find_plan_row(session, environment_id, key)
        before = _to_record(row)
        plan = replace(before.plan, **changes)
        moved = plan.type.value != row.type or plan.group != row.plan_group
        if moved and _has_subscriptions(session, row.id):
            raise Conflict(
                f"Plan {key!r} has subscriptions: its `type` and `group` cannot change "
                "(make a new plan and move companies to it).",
                code="plan_in_use",
                param="type" if plan.type.value != row.type else "group",
            )
        replace_lines = "entitlements" in changes or "prices" in changes
        self._store(session, environment_id, row, plan, replace_lines=replace_lines)
        row.updated_at = self._clock()
        session.flush()
        after = _to_record(row)
        ChangeLog(session, environment_id, row.updated_at).record(
            "plan.updated", ("plan", key), before, after
        )
        return after

    @changes_catalog
    def delete_plan(self, environment_id: str, key: str) -> None:
        """Delete a plan nobody ever subscribed to (409 otherwise: archive it instead)."""
        with self._db.write() as session:
            row = find_plan_row(session, environment_id, key)
            if _has_subscriptions(session, row.id):
                raise Conflict(
                    f"Plan {key!r} has subscriptions (their history needs it): archive it "
                    "(`status: archived`) instead.",
                    code="plan_in_use",
                )
            before = _to_record(row)
            session.delete(row)
            ChangeLog(session, environment_id, self._clock()).record(
                "plan.deleted", ("plan", key), before, None
            )

    @changes_catalog
    def put_entitlement(
        self, environment_id: str, plan_key: str, entitlement: Entitlement
    ) -> Entitlement:
        """Set one entitlement of a plan, adding it or replacing the one for that feature."""
        with self._db.write() as session:
            row = find_plan_row(session, environment_id, plan_key)
            plan = to_plan(row)
            others = tuple(e for e in plan.entitlements if e.feature != entitlement.feature)
            position = next(
                (i for i, e in enumerate(plan.entitlements) if e.feature == entitlement.feature),
                len(others),
            )
            entitlements = (*others[:position], entitlement, *others[position:])
            feature = to_feature(find_feature_row(session, environment_id, entitlement.feature))
            problems = check_entitlement(feature, entitlement, "")
            if (
                feature.status is FeatureStatus.ARCHIVED
                and plan.entitlement_for(feature.key) is None
            ):
                problems.append(
                    Problem(
                        "feature",
                        "feature_archived",
                        f"Feature {feature.key!r} is archived; it cannot be added to a plan.",
                    )
                )
            raise_problems(problems, "The entitlement has")
            before = _to_record(row)
            self._store(
                session, environment_id, row, replace(plan, entitlements=entitlements), True
            )
            row.updated_at = self._clock()
            session.flush()
            ChangeLog(session, environment_id, row.updated_at).record(
                "plan.updated", ("plan", plan_key), before, _to_record(row)
            )
            return normalize_entitlement(feature, entitlement)

    @changes_catalog
    def delete_entitlement(self, environment_id: str, plan_key: str, feature_key: str) -> None:
        with self._db.write() as session:
            row = find_plan_row(session, environment_id, plan_key)
            kept = [e for e in row.entitlements if e.feature.key != feature_key]
            if len(kept) == len(row.entitlements):
                raise NotFound(
                    f"Plan {plan_key!r} has no entitlement for {feature_key!r}.",
                    code="entitlement_not_found",
                )
            before = _to_record(row)
            plan = replace(
                before.plan,
                entitlements=tuple(e for e in before.plan.entitlements if e.feature != feature_key),
            )
            self._store(session, environment_id, row, plan, replace_lines=True)
            row.updated_at = self._clock()
            session.flush()
            ChangeLog(session, environment_id, row.updated_at).record(
                "plan.updated", ("plan", plan_key), before, _to_record(row)
            )

    def list_plan_features(self, environment_id: str, plan_key: str) -> list[PlanFeature]:
        """Every feature with the plan's value for it (pricing pages); archived features only
        where the plan still entitles them."""
        with self._db.read() as session:
            plan = to_plan(find_plan_row(session, environment_id, plan_key))
            features = sorted(
                (to_feature(r) for r in _feature_rows(session, environment_id).values()),
                key=lambda f: f.key,
            )
            index = {e.feature: i for i, e in enumerate(plan.entitlements)}
            offered = [
                PlanFeature(f, plan.entitlement_for(f.key))
                for f in features
                if f.status is not FeatureStatus.ARCHIVED or f.key in index
            ]
            # The plan's own order first, then the rest by key.
            return sorted(offered, key=lambda pf: index.get(pf.feature.key, len(index)))

    def _store(
        self,
        session: Session,
        environment_id: str,
        row: PlanRow,
        plan: Plan,
        replace_lines: bool,
    ) -> None:
        """Validate `plan` against the environment's features and write it onto `row`, with
        its versioned parts as a new version or in place (`store_version`)."""
        feature_rows = _feature_rows(session, environment_id)
        features = {key: to_feature(r) for key, r in feature_rows.items()}
        already = {e.feature.key for e in row.entitlements}
        problems = check_plan(plan, features, already)
        problems += _unknown_credits(session, environment_id, plan)
        raise_problems(problems, "The plan has")
        self._check_one_default(session, environment_id, row, plan)
        before = None if row.version is None else to_plan(row)
        if replace_lines:
            plan = replace(
                plan,
                entitlements=tuple(
                    normalize_entitlement(features[e.feature], e) for e in plan.entitlements
                ),
            )
        store_version(session, row, before, plan, self._clock())
        write_plan_fields(row, plan)
        if not replace_lines:
            return
        # Old lines go first: new ones may reuse their (plan, feature) keys.
        row.entitlements.clear()
        row.prices.clear()
        if row in session:
            session.flush()
        row.entitlements.extend(
            new_entitlement_row(e, feature_rows[e.feature].id, i)
            for i, e in enumerate(plan.entitlements)
        )
        row.prices.extend(new_price_row(p, i) for i, p in enumerate(plan.prices))

    def _check_one_default(
        self, session: Session, environment_id: str, row: PlanRow, plan: Plan
    ) -> None:
        if not plan.is_default or plan.status is PlanStatus.ARCHIVED:
            return
        other = session.scalar(
            select(PlanRow.key).where(
                PlanRow.environment_id == environment_id,
                PlanRow.plan_group == plan.group,
                PlanRow.is_default.is_(True),
                PlanRow.status != PlanStatus.ARCHIVED.value,
                PlanRow.key != plan.key,
            )
        )
        if other is not None:
            raise Conflict(
                f"Plan {other!r} is already the default of group {plan.group!r}; "
                "unset it there first (one default plan per group).",
                code="default_plan_exists",
                param="is_default",
            )


def _has_subscriptions(session: Session, plan_id: str) -> bool:
    query = select(SubscriptionRow.id).where(SubscriptionRow.plan_id == plan_id).limit(1)
    return session.scalar(query) is not None


def _concurrent_change() -> Conflict:
    return Conflict(
        "Another request changed the catalog at the same time; retry.", code="concurrent_change"
    )

"""Features: the things a plan entitles, with their type, meter, options and fallbacks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tierkit.engine.catalog import Feature, FeatureStatus, FeatureType
from tierkit.engine.catalog_rules import (
    Problem,
    check_entitlement,
    check_feature,
    check_rules,
    normalize_entitlement,
)
from tierkit.engine.codec import rule_from_json, rule_to_json
from tierkit.engine.rules import Rule
from tierkit.server.db import Database
from tierkit.server.db.ids import new_id
from tierkit.server.db.tables import CompanyRow, EntitlementRow, FeatureRow, OverrideRow, PlanRow
from tierkit.server.services.audit import ChangeLog, jsonable
from tierkit.server.services.catalog_cache import changes_catalog
from tierkit.server.services.clock import Clock
from tierkit.server.services.errors import (
    Conflict,
    ErrorDetail,
    InvalidRequest,
    NotFound,
    named_in_body,
)
from tierkit.server.services.pagination import Page, paginate, to_page
from tierkit.server.services.rows import (
    to_entitlement,
    to_feature,
    to_override,
    write_feature_row,
)


@dataclass(frozen=True, slots=True)
class FeatureRecord:
    """A stored feature: the engine's definition plus its identity and timestamps."""

    id: str
    feature: Feature
    created_at: datetime
    updated_at: datetime


def _to_record(row: FeatureRow) -> FeatureRecord:
    return FeatureRecord(row.id, to_feature(row), row.created_at, row.updated_at)


def raise_problems(problems: Iterable[Problem], summary: str) -> None:
    """Raise one `InvalidRequest` listing every problem, if there are any."""
    problems = list(problems)
    if not problems:
        return
    first = problems[0]
    message = first.message if len(problems) == 1 else f"{summary} {len(problems)} problems."
    raise InvalidRequest(
        message,
        code=first.code if len(problems) == 1 else "invalid_definition",
        param=first.param,
        details=[ErrorDetail(p.param, p.message, p.code) for p in problems],
    )


def feature_not_found(key: str, param: str | None = None) -> NotFound:
    return NotFound(f"There is no feature {key!r}.", code="feature_not_found", param=param)


def find_feature_row(
    session: Session, environment_id: str, key: str, *, param: str | None = None
) -> FeatureRow:
    """The feature, or 404; or 400 on `param` when a body field named it."""
    row = session.scalar(
        select(FeatureRow).where(FeatureRow.environment_id == environment_id, FeatureRow.key == key)
    )
    if row is None:
        raise named_in_body(feature_not_found(key), param)
    return row


class FeatureService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        on_catalog_change: Callable[[str], None] = lambda environment_id: None,
    ) -> None:
        self._db = database
        self._clock = clock
        self._catalog_changed = on_catalog_change

    def list_features(
        self,
        environment_id: str,
        *,
        status: FeatureStatus | None = None,
        type: FeatureType | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[FeatureRecord]:
        with self._db.read() as session:
            query = select(FeatureRow).where(FeatureRow.environment_id == environment_id)
            if status is not None:
                query = query.where(FeatureRow.status == status.value)
            if type is not None:
                query = query.where(FeatureRow.type == type.value)
            query, limit = paginate(query, [FeatureRow.key], cursor, limit)
            page = to_page(session.scalars(query).all(), limit, lambda row: [row.key])
            return Page([_to_record(row) for row in page.items], page.next_cursor)

    def get_feature(self, environment_id: str, key: str) -> FeatureRecord:
        with self._db.read() as session:
            return _to_record(find_feature_row(session, environment_id, key))

    @changes_catalog
    def create_feature(self, environment_id: str, feature: Feature) -> FeatureRecord:
        try:
            with self._db.write() as session:
                return self.create_feature_in(session, environment_id, feature)
        except IntegrityError as error:  # a concurrent create of the same key
            raise _feature_exists(feature.key) from error

    def create_feature_in(
        self, session: Session, environment_id: str, feature: Feature
    ) -> FeatureRecord:
        """Create a feature in the caller's transaction (which invalidates the catalog)."""
        raise_problems(check_feature(feature), "The feature has")
        now = self._clock()
        if session.scalar(
            select(FeatureRow.id).where(
                FeatureRow.environment_id == environment_id, FeatureRow.key == feature.key
            )
        ):
            raise _feature_exists(feature.key)
        row = FeatureRow(
            id=new_id("feat"), environment_id=environment_id, created_at=now, updated_at=now
        )
        write_feature_row(row, feature)
        session.add(row)
        session.flush()
        created = _to_record(row)
        ChangeLog(session, environment_id, now).record(
            "feature.created", ("feature", feature.key), None, created
        )
        return created

    @changes_catalog
    def update_feature(
        self, environment_id: str, key: str, changes: Mapping[str, Any]
    ) -> FeatureRecord:
        """Apply `changes` (engine-typed field values); every plan using it must still fit."""
        with self._db.write() as session:
            return self.update_feature_in(session, environment_id, key, changes)

    def update_feature_in(
        self, session: Session, environment_id: str, key: str, changes: Mapping[str, Any]
    ) -> FeatureRecord:
        """`update_feature` in the caller's transaction (which invalidates the catalog)."""
        row = find_feature_row(session, environment_id, key)
        before = _to_record(row)
        feature = replace(before.feature, **changes)
        raise_problems(check_feature(feature), "The feature has")
        _refit_plans(session, row, feature)
        write_feature_row(row, feature)
        row.updated_at = self._clock()
        session.flush()
        after = _to_record(row)
        ChangeLog(session, environment_id, row.updated_at).record(
            "feature.updated", ("feature", key), before, after
        )
        return after

    def get_rules(self, environment_id: str, key: str) -> list[Rule]:
        with self._db.read() as session:
            row = find_feature_row(session, environment_id, key)
            return [rule_from_json(rule) for rule in row.rules or ()]

    @changes_catalog
    def put_rules(self, environment_id: str, key: str, rules: Sequence[Rule]) -> list[Rule]:
        """Replace a feature's rules (in order; the first match wins) after checking them all."""
        with self._db.write() as session:
            return self.put_rules_in(session, environment_id, key, rules)

    def put_rules_in(
        self, session: Session, environment_id: str, key: str, rules: Sequence[Rule]
    ) -> list[Rule]:
        """`put_rules` in the caller's transaction (which invalidates the catalog)."""
        row = find_feature_row(session, environment_id, key)
        features = {
            r.key: to_feature(r)
            for r in session.scalars(
                select(FeatureRow).where(FeatureRow.environment_id == environment_id)
            )
        }
        plans = set(
            session.scalars(select(PlanRow.key).where(PlanRow.environment_id == environment_id))
        )
        raise_problems(check_rules(features[key], rules, features, plans), "The rules have")
        before = {**jsonable(_to_record(row)), "rules": list(row.rules or ())}
        row.rules = [rule_to_json(rule) for rule in rules] or None
        row.updated_at = self._clock()
        after = {**jsonable(_to_record(row)), "rules": row.rules or []}
        ChangeLog(session, environment_id, row.updated_at).record(
            "feature.updated", ("feature", key), before, after
        )
        return list(rules)

    @changes_catalog
    def delete_feature(self, environment_id: str, key: str) -> None:
        """Delete a feature no plan or override uses (409 otherwise: archive it instead)."""
        with self._db.write() as session:
            row = find_feature_row(session, environment_id, key)
            users = [
                ErrorDetail(f"plans.{plan}", f"Plan {plan!r} has an entitlement for it.")
                for plan in _plans_using(session, row.id)
            ] + [
                ErrorDetail(f"companies.{company}", f"Company {company!r} has an override for it.")
                for company in _companies_overriding(session, row.id)
            ]
            if users:
                raise Conflict(
                    f"Feature {key!r} is in use ({len(users)} plans and overrides, see "
                    "`details`): archive it (`status: archived`) or remove those first.",
                    code="feature_in_use",
                    details=users,
                )
            before = _to_record(row)
            session.delete(row)
            ChangeLog(session, environment_id, self._clock()).record(
                "feature.deleted", ("feature", key), before, None
            )


def _feature_exists(key: str) -> Conflict:
    return Conflict(f"A feature {key!r} already exists.", code="feature_exists", param="key")


def _plans_using(session: Session, feature_id: str) -> list[str]:
    return list(
        session.scalars(
            select(PlanRow.key)
            .join(EntitlementRow, EntitlementRow.plan_id == PlanRow.id)
            .where(EntitlementRow.feature_id == feature_id)
            .order_by(PlanRow.key)
        )
    )


def _companies_overriding(session: Session, feature_id: str) -> list[str]:
    return list(
        session.scalars(
            select(CompanyRow.key)
            .join(OverrideRow, OverrideRow.company_id == CompanyRow.id)
            .where(OverrideRow.feature_id == feature_id)
            .order_by(CompanyRow.key)
        )
    )


def _refit_overrides(session: Session, row: FeatureRow, feature: Feature) -> list[ErrorDetail]:
    """What would break in companies' overrides, which are shaped like entitlements."""
    uses = session.execute(
        select(CompanyRow.key, OverrideRow)
        .join(OverrideRow, OverrideRow.company_id == CompanyRow.id)
        .where(OverrideRow.feature_id == row.id)
    ).all()
    details = []
    for company_key, override_row in uses:
        entitlement = to_override(override_row).entitlement
        details += [
            ErrorDetail(f"companies.{company_key}.{problem.param}", problem.message)
            for problem in check_entitlement(feature, entitlement, "")
        ]
        if not details:
            normalized = normalize_entitlement(feature, entitlement)
            override_row.period = normalized.period.value if normalized.period else None
            override_row.reset = normalized.reset.value if normalized.reset else None
    return details


def _refit_plans(session: Session, row: FeatureRow, feature: Feature) -> None:
    """Plans' entitlements and companies' overrides must fit the changed feature (409 if not);
    they are then stored as the feature now reads them (one that becomes metered gives them
    `month`/`calendar`)."""
    uses = session.execute(
        select(PlanRow.key, EntitlementRow)
        .join(EntitlementRow, EntitlementRow.plan_id == PlanRow.id)
        .where(EntitlementRow.feature_id == row.id)
    ).all()
    details = [
        ErrorDetail(f"plans.{plan_key}.{problem.param}", problem.message)
        for plan_key, entitlement_row in uses
        for problem in check_entitlement(feature, to_entitlement(entitlement_row), "")
    ]
    details += _refit_overrides(session, row, feature)
    if details:
        raise Conflict(
            f"Plans or overrides use feature {row.key!r} in ways this change would break; "
            "change those first (see `details`).",
            code="feature_in_use",
            details=details,
        )
    for _, entitlement_row in uses:
        normalized = normalize_entitlement(feature, to_entitlement(entitlement_row))
        entitlement_row.period = normalized.period.value if normalized.period else None
        entitlement_row.reset = normalized.reset.value if normalized.reset else None

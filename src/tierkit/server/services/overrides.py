"""Overrides: a company's own value for a feature, shaped like an entitlement, until it expires.
An expired override stops applying at its instant: reads compare with the clock, no job runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tierkit.engine.catalog_rules import check_entitlement, normalize_entitlement
from tierkit.engine.customers import Override
from tierkit.server.db import Database
from tierkit.server.db.ids import new_id
from tierkit.server.db.tables import CompanyRow, OverrideRow
from tierkit.server.db.upserts import lock_companies
from tierkit.server.services.audit import ChangeLog
from tierkit.server.services.catalog_cache import changes_customer
from tierkit.server.services.clock import Clock
from tierkit.server.services.companies import find_company_row
from tierkit.server.services.errors import InvalidRequest, NotFound
from tierkit.server.services.features import find_feature_row, raise_problems
from tierkit.server.services.rows import to_feature, to_override


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    override: Override
    company: str
    created_at: datetime
    updated_at: datetime


def company_override_rows(session: Session, company_id: str) -> list[OverrideRow]:
    return list(session.scalars(select(OverrideRow).where(OverrideRow.company_id == company_id)))


def put_override_in(
    session: Session,
    company: CompanyRow,
    override: Override,
    now: datetime,
    *,
    param: str = "",
) -> OverrideRow:
    """Set the company's override for a feature in `session` (replacing any, expired or not)."""
    where = f"{param}." if param else ""
    feature_row = find_feature_row(session, company.environment_id, override.feature)
    feature = to_feature(feature_row)
    raise_problems(check_entitlement(feature, override.entitlement, param), "The override has")
    if override.expires_at is not None and override.expires_at <= now:
        raise InvalidRequest(
            "`expires_at` is in the past: the override would never apply.",
            code="expires_in_past",
            param=f"{where}expires_at",
        )
    entitlement = normalize_entitlement(feature, override.entitlement)
    lock_companies(session, [company.id])  # two first PUTs of one override take turns
    row = session.scalar(
        select(OverrideRow).where(
            OverrideRow.company_id == company.id, OverrideRow.feature_id == feature_row.id
        )
    )
    before = None if row is None else _to_record(row, company.key)
    if row is None:
        row = OverrideRow(
            id=new_id("ovr"),
            environment_id=company.environment_id,
            company_id=company.id,
            feature_id=feature_row.id,
            feature=feature_row,
            created_at=now,
        )
        session.add(row)
    row.value = entitlement.value
    row.unlimited = entitlement.unlimited
    row.period = entitlement.period.value if entitlement.period else None
    row.reset = entitlement.reset.value if entitlement.reset else None
    row.soft_limit = entitlement.soft_limit
    row.expires_at = override.expires_at
    row.note = override.note
    row.updated_at = now
    session.flush()
    ChangeLog(session, company.environment_id, now).record(
        "override.created" if before is None else "override.updated",
        ("override", f"{company.key}/{override.feature}"),
        before,
        _to_record(row, company.key),
        {"company": company.key, "override": override.feature},
    )
    return row


def delete_override_in(
    session: Session, company: CompanyRow, row: OverrideRow, now: datetime
) -> None:
    """Remove an override in `session`, recorded as `override.deleted`."""
    before = _to_record(row, company.key)
    session.delete(row)
    feature = row.feature.key
    ChangeLog(session, company.environment_id, now).record(
        "override.deleted",
        ("override", f"{company.key}/{feature}"),
        before,
        None,
        {"company": company.key, "override": feature},
    )


def _to_record(row: OverrideRow, company_key: str) -> OverrideRecord:
    return OverrideRecord(to_override(row), company_key, row.created_at, row.updated_at)


class OverrideService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        on_customer_change: Callable[[str, str], None] = lambda environment_id, key: None,
    ) -> None:
        self._db = database
        self._clock = clock
        self._customer_changed = on_customer_change

    @changes_customer
    def put_override(
        self, environment_id: str, company_key: str, override: Override
    ) -> OverrideRecord:
        with self._db.write() as session:
            company = find_company_row(session, environment_id, company_key)
            row = put_override_in(session, company, override, self._clock())
            return _to_record(row, company.key)

    def list_overrides(
        self, environment_id: str, company_key: str, *, include_expired: bool = False
    ) -> list[OverrideRecord]:
        """The company's overrides by feature key; expired ones only when asked."""
        now = self._clock()
        with self._db.read() as session:
            company = find_company_row(session, environment_id, company_key)
            records = [
                _to_record(row, company.key) for row in company_override_rows(session, company.id)
            ]
        return sorted(
            (r for r in records if include_expired or r.override.is_active(now)),
            key=lambda r: r.override.feature,
        )

    @changes_customer
    def delete_override(self, environment_id: str, company_key: str, feature_key: str) -> None:
        with self._db.write() as session:
            company = find_company_row(session, environment_id, company_key)
            for row in company_override_rows(session, company.id):
                if row.feature.key == feature_key:
                    delete_override_in(session, company, row, self._clock())
                    return
            raise NotFound(
                f"Company {company_key!r} has no override for {feature_key!r}.",
                code="override_not_found",
            )

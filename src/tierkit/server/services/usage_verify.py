"""`tierkit usage verify`: recount every usage counter from the raw events it summarises and
report (and, asked to, repair) any drift. Counters are kept exact by ingestion; this is the
proof, for operators after a crash, a restore or a manual change to the database."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import Aggregation, Meter
from tierkit.server.db import Database
from tierkit.server.db.tables import CompanyRow, EnvironmentRow, UsageCounterRow, UsageUniqueRow
from tierkit.server.db.upserts import lock_companies
from tierkit.server.services.counters import CounterSpec, recount, store_unique_hashes
from tierkit.server.services.environments import find_environment_row

_COMPANIES_PER_TRANSACTION = 200


@dataclass(frozen=True, slots=True)
class CounterDrift:
    """A counter whose stored value differs from a recount of its window's raw events."""

    environment: str
    company: str
    meter: str
    """`event/aggregation[/property]`."""
    period_start: datetime
    period_end: datetime
    stored: float
    recounted: float


@dataclass(slots=True)
class VerifyReport:
    companies: int = 0
    counters: int = 0
    drifts: list[CounterDrift] = field(default_factory=list)
    repaired: bool = False


Progress = Callable[[int, int], None]
"""`progress(companies_done, companies_total)`."""


def _describe(row: UsageCounterRow) -> str:
    return "/".join(part for part in (row.event, row.aggregation, row.property) if part)


def _same(stored: float, recounted: float) -> bool:
    return math.isclose(stored, recounted, rel_tol=1e-9, abs_tol=1e-9)


class UsageVerifyService:
    def __init__(self, database: Database) -> None:
        self._database = database

    def verify(
        self,
        environment: str | None = None,
        *,
        repair: bool = False,
        progress: Progress | None = None,
    ) -> VerifyReport:
        """Recount the counters of every company (of `environment` when given), each company
        under its lock so that concurrent ingestion neither races the recount nor is lost."""
        companies = self._companies_with_counters(environment)
        report = VerifyReport(repaired=repair)
        for start in range(0, len(companies), _COMPANIES_PER_TRANSACTION):
            batch = companies[start : start + _COMPANIES_PER_TRANSACTION]
            with self._database.write() as session:
                lock_companies(session, [company_id for company_id, _, _ in batch])
                for company_id, environment_name, company_key in batch:
                    self._verify_company(
                        session, company_id, (environment_name, company_key), report, repair
                    )
            report.companies += len(batch)
            if progress is not None:
                progress(report.companies, len(companies))
        return report

    def _companies_with_counters(self, environment: str | None) -> list[tuple[str, str, str]]:
        with self._database.read() as session:
            query = (
                select(CompanyRow.id, EnvironmentRow.name, CompanyRow.key)
                .join(EnvironmentRow, EnvironmentRow.id == CompanyRow.environment_id)
                .where(CompanyRow.id.in_(select(UsageCounterRow.company_id).distinct()))
                .order_by(CompanyRow.id)
            )
            if environment is not None:
                environment_id = find_environment_row(session, environment).id
                query = query.where(CompanyRow.environment_id == environment_id)
            return [(row[0], row[1], row[2]) for row in session.execute(query).all()]

    def _verify_company(
        self,
        session: Session,
        company_id: str,
        names: tuple[str, str],
        report: VerifyReport,
        repair: bool,
    ) -> None:
        rows = session.scalars(
            select(UsageCounterRow)
            .where(UsageCounterRow.company_id == company_id)
            .order_by(UsageCounterRow.id)
        ).all()
        for row in rows:
            report.counters += 1
            meter = Meter(row.event, Aggregation(row.aggregation), row.property or None)
            truth = recount(
                session, company_id, CounterSpec(meter, row.period_start, row.period_end)
            )
            hashes: set[str] = set()
            if truth.hashes is not None:
                hashes = set(
                    session.scalars(
                        select(UsageUniqueRow.value_hash).where(UsageUniqueRow.counter_id == row.id)
                    ).all()
                )
            if _same(row.value, truth.value) and (truth.hashes is None or hashes == truth.hashes):
                continue
            environment, company = names
            report.drifts.append(
                CounterDrift(
                    environment,
                    company,
                    _describe(row),
                    row.period_start,
                    row.period_end,
                    row.value,
                    truth.value,
                )
            )
            if repair:
                row.value, row.latest_at, row.latest_seq = (
                    truth.value,
                    truth.latest_at,
                    truth.latest_seq,
                )
                if truth.hashes is not None:
                    session.execute(
                        delete(UsageUniqueRow).where(UsageUniqueRow.counter_id == row.id)
                    )
                    store_unique_hashes(session, row.id, truth.hashes)
        session.flush()

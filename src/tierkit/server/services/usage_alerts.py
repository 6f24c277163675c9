"""`usage.threshold_reached`: a company's usage of a metered feature reached 80% or 100% of
its limit, announced once per company, feature, period and level (a new period starts over).

A job follows the events table by sequence number: each run takes the companies with new
events, brings their counters up to date, and announces the levels newly reached. The
`usage_thresholds` table's unique key makes each announcement once, whichever process runs
the job. A run reads only up to a number below which nothing is left to commit
(`newest_settled`), so an event that commits after a later-numbered one is still seen.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tierkit.engine.evaluate import Catalog, Decision, evaluate_all
from tierkit.server.db.tables import CompanyRow, EventRow, UsageThresholdRow
from tierkit.server.db.upserts import insert_ignoring_conflicts, lock_companies
from tierkit.server.services.audit import add_event, jsonable
from tierkit.server.services.catalog_cache import read_catalog
from tierkit.server.services.checks import refreshed_in
from tierkit.server.services.jobs import JobRun, newest_settled

PERCENTS = (80, 100)
_EVENTS_PER_RUN = 2_000_000
_NEVER_RESETS = datetime(1970, 1, 1, tzinfo=UTC)
"""The `period_start` of usage that never resets."""


def announce_usage_thresholds(run: JobRun) -> None:
    """The `usage_thresholds` job's work. A first run starts after the newest event.

    Each run covers the events numbered after its position, up to `_EVENTS_PER_RUN` of them:
    the database hands back only which companies they belong to (a range of the primary key,
    grouped there), so a run costs the same for ten events of a company as for a million, and
    the job keeps up with any ingestion rate."""
    session = run.session
    newest = newest_settled(session, EventRow.seq)
    if newest is None:
        return  # a write still running may commit lower numbers: the next run covers them
    if run.position is None:
        run.position = newest
        return
    until = min(newest, run.position + _EVENTS_PER_RUN)
    if until <= run.position:
        return
    found = session.scalars(
        select(EventRow.company_id)
        .where(EventRow.seq > run.position, EventRow.seq <= until)
        .distinct()
    )
    company_ids = sorted(company for company in found if company is not None)
    run.position = until
    if not company_ids:
        return
    lock_companies(session, company_ids)
    companies = session.scalars(
        select(CompanyRow).where(CompanyRow.id.in_(company_ids)).order_by(CompanyRow.id)
    ).all()
    catalogs: dict[str, Catalog] = {}
    for company in companies:
        if company.environment_id not in catalogs:
            catalogs[company.environment_id] = read_catalog(session, company.environment_id)
        _announce_levels(session, company, catalogs[company.environment_id], run.until)


def _announce_levels(
    session: Session, company: CompanyRow, catalog: Catalog, now: datetime
) -> None:
    loaded = refreshed_in(session, company, catalog, now)
    metered = [key for key, feature in catalog.features.items() if feature.meter is not None]
    for decision in evaluate_all(catalog, loaded.state, now=now, features=sorted(metered)):
        for percent in _levels_reached(decision):
            if _first_time(session, company, decision, percent, now):
                add_event(
                    session,
                    company.environment_id,
                    "usage.threshold_reached",
                    _event_data(company.key, decision, percent),
                    now,
                )


def _levels_reached(decision: Decision) -> list[int]:
    usage = decision.usage
    if usage is None or usage.limit is None or usage.limit <= 0 or decision.unlimited:
        return []
    return [p for p in PERCENTS if usage.used >= usage.limit * p / 100]


def _first_time(
    session: Session, company: CompanyRow, decision: Decision, percent: int, now: datetime
) -> bool:
    assert decision.usage is not None  # noqa: S101 - a level needs usage
    inserted = session.execute(
        insert_ignoring_conflicts(
            session,
            UsageThresholdRow,
            ["environment_id", "company_key", "feature", "period_start", "percent"],
        ).returning(UsageThresholdRow.id),
        [
            {
                "environment_id": company.environment_id,
                "company_key": company.key,
                "feature": decision.feature,
                "period_start": decision.usage.period_start or _NEVER_RESETS,
                "percent": percent,
                "created_at": now,
            }
        ],
    ).first()
    return inserted is not None


def _event_data(company: str, decision: Decision, percent: int) -> dict[str, object]:
    usage = decision.usage
    assert usage is not None  # noqa: S101 - a level needs usage
    return {
        "company": company,
        "feature": decision.feature,
        "percent": percent,
        "used": jsonable(usage.used),
        "limit": jsonable(usage.limit),
        "period": usage.period.value,
        "period_start": jsonable(usage.period_start),
        "resets_at": jsonable(usage.resets_at),
        "allowed": decision.allowed,
    }

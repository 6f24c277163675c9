"""Companies: upserted by their external key, with merged traits; lists filter by plan, text
and traits. A company's subscriptions, overrides and memberships go when it goes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import PlanStatus, PlanType, Scalar
from tierkit.engine.customers import Company, merge_traits
from tierkit.server.db import Database
from tierkit.server.db.event_lookup import company_events
from tierkit.server.db.tables import (
    CompanyRow,
    CompanyTraitRow,
    EventRow,
    PlanRow,
    SubscriptionRow,
)
from tierkit.server.db.upserts import insert_unless_exists, lock_companies
from tierkit.server.services.audit import ChangeLog
from tierkit.server.services.catalog_cache import changes_customer
from tierkit.server.services.clock import Clock
from tierkit.server.services.errors import NotFound
from tierkit.server.services.pagination import Page, paginate, to_page
from tierkit.server.services.plans import find_plan_row
from tierkit.server.services.rows import new_customer_values
from tierkit.server.services.search import matches_text


@dataclass(frozen=True, slots=True)
class CompanyRecord:
    id: str
    company: Company
    created_at: datetime
    updated_at: datetime


def to_company_record(row: CompanyRow) -> CompanyRecord:
    return CompanyRecord(
        row.id, Company(row.key, row.name, dict(row.traits)), row.created_at, row.updated_at
    )


def company_not_found(key: str, param: str | None = None) -> NotFound:
    return NotFound(f"There is no company {key!r}.", code="company_not_found", param=param)


def find_company_row(session: Session, environment_id: str, key: str) -> CompanyRow:
    row = get_company_row(session, environment_id, key)
    if row is None:
        raise company_not_found(key)
    return row


def get_company_row(session: Session, environment_id: str, key: str) -> CompanyRow | None:
    return session.scalar(
        select(CompanyRow).where(CompanyRow.environment_id == environment_id, CompanyRow.key == key)
    )


def trait_text(value: Scalar) -> str:
    """A trait as the text lists filter on: strings as they are, other values as JSON."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def upsert_company_in(
    session: Session, environment_id: str, key: str, fields: Mapping[str, Any], now: datetime
) -> tuple[CompanyRow, bool]:
    """Create or update a company in `session`; `fields` may hold `name` and `traits` (merged,
    `None` removes). Returns the row and whether it was created."""
    row = get_company_row(session, environment_id, key)
    created = False
    if row is None:
        values = new_customer_values("co", environment_id, key, now)
        row, created = insert_unless_exists(session, CompanyRow, values, ["environment_id", "key"])
    before = None if created else to_company_record(row)
    if "name" in fields:
        row.name = fields["name"]
    if fields.get("traits"):
        row.traits = merge_traits(row.traits, fields["traits"])
        session.flush()
        _index_traits(session, row)
    row.updated_at = now
    session.flush()
    ChangeLog(session, environment_id, now).record(
        "company.created" if created else "company.updated",
        ("company", key),
        before,
        to_company_record(row),
    )
    return row, created


def _index_traits(session: Session, row: CompanyRow) -> None:
    session.execute(delete(CompanyTraitRow).where(CompanyTraitRow.company_id == row.id))
    session.add_all(
        CompanyTraitRow(company_id=row.id, name=name, value=trait_text(value))
        for name, value in row.traits.items()
    )


def _active_at(now: datetime) -> Any:
    return and_(
        SubscriptionRow.started_at <= now,
        or_(SubscriptionRow.ends_at.is_(None), SubscriptionRow.ends_at > now),
    )


def _on_plan(plan: PlanRow, now: datetime) -> Any:
    """Companies on `plan` now: subscribed, or (for a default plan) with no base plan of
    its group."""
    subscribed = exists().where(
        SubscriptionRow.company_id == CompanyRow.id,
        SubscriptionRow.plan_id == plan.id,
        _active_at(now),
    )
    if not plan.is_default or plan.status == PlanStatus.ARCHIVED.value:
        return subscribed
    other_base = exists().where(
        SubscriptionRow.company_id == CompanyRow.id,
        SubscriptionRow.plan_id == PlanRow.id,
        PlanRow.type == PlanType.BASE.value,
        PlanRow.plan_group == plan.plan_group,
        _active_at(now),
    )
    return or_(subscribed, ~other_base)


class CompanyService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        on_customer_change: Callable[[str, str], None] = lambda environment_id, key: None,
    ) -> None:
        self._db = database
        self._clock = clock
        self._customer_changed = on_customer_change

    def list_companies(
        self,
        environment_id: str,
        *,
        plan: str | None = None,
        q: str | None = None,
        traits: Mapping[str, str] | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[CompanyRecord]:
        """Companies by key; `plan` counts default-plan companies, `q` searches key and name
        (case-insensitive), `traits` match exactly (numbers and booleans as JSON text)."""
        with self._db.read() as session:
            query = select(CompanyRow).where(CompanyRow.environment_id == environment_id)
            if plan is not None:
                plan_row = find_plan_row(session, environment_id, plan)
                query = query.where(_on_plan(plan_row, self._clock()))
            if q:
                query = query.where(matches_text(q, CompanyRow.key, CompanyRow.name))
            for name, value in (traits or {}).items():
                query = query.where(
                    exists().where(
                        CompanyTraitRow.company_id == CompanyRow.id,
                        CompanyTraitRow.name == name,
                        CompanyTraitRow.value == value,
                    )
                )
            query, limit = paginate(query, [CompanyRow.key], cursor, limit)
            page = to_page(session.scalars(query).all(), limit, lambda row: [row.key])
            return Page([to_company_record(row) for row in page.items], page.next_cursor)

    @changes_customer
    def delete_company(self, environment_id: str, key: str) -> None:
        """Delete the company with its subscriptions, overrides, memberships, usage counters
        and events (after any ingestion holding its lock has committed)."""
        with self._db.write() as session:
            row = find_company_row(session, environment_id, key)
            lock_companies(session, [row.id])
            before = to_company_record(row)
            session.execute(delete(EventRow).where(*company_events(session, row.id)))
            session.delete(row)
            ChangeLog(session, environment_id, self._clock()).record(
                "company.deleted", ("company", key), before, None
            )

"""Use cases over a whole customer: the company upsert with its `plan` shortcut, the company
as one document (traits, subscriptions, overrides, members), in single transactions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import PlanStatus, PlanType
from tierkit.engine.customers import SubscriptionStatus
from tierkit.server.db import Database
from tierkit.server.db.tables import CompanyRow, PlanRow
from tierkit.server.services.catalog_cache import changes_customer
from tierkit.server.services.clock import Clock
from tierkit.server.services.companies import (
    CompanyRecord,
    find_company_row,
    to_company_record,
    upsert_company_in,
)
from tierkit.server.services.errors import InvalidRequest
from tierkit.server.services.overrides import OverrideRecord, company_override_rows
from tierkit.server.services.plans import find_plan_row
from tierkit.server.services.rows import to_override
from tierkit.server.services.subscriptions import (
    NewSubscription,
    SubscriptionRecord,
    company_subscription_rows,
    subscribe_in,
    to_subscription,
)
from tierkit.server.services.users import company_member_keys


@dataclass(frozen=True, slots=True)
class CompanyDetail:
    record: CompanyRecord
    plan: str | None
    """The base plan of the `default` group now: subscribed, or the default plan."""
    plan_is_default: bool
    subscriptions: list[SubscriptionRecord]
    """Active and scheduled subscriptions (the history is on the subscriptions route)."""
    overrides: list[OverrideRecord]
    users: list[str]


def ensure_subscribed_in(
    session: Session, company: CompanyRow, plan: PlanRow, now: datetime, *, param: str
) -> None:
    """Subscribe the company to `plan` now, unless it is on it already."""
    for row in company_subscription_rows(session, company.id):
        if row.plan_id == plan.id and to_subscription(row).is_active(now):
            return
    subscribe_in(session, company, NewSubscription(plan=plan.key), now, plan_param=param)


def ensure_base_plan_in(
    session: Session, company: CompanyRow, plan_key: str, now: datetime, *, param: str = "plan"
) -> None:
    """Subscribe the company to base plan `plan_key` now, unless it is on it already."""
    plan = find_plan_row(session, company.environment_id, plan_key, param=param)
    if plan.type != PlanType.BASE.value:
        raise InvalidRequest(
            f"Plan {plan_key!r} is an add-on; the `plan` shortcut takes a base plan. "
            "Add add-ons with POST /v1/companies/{key}/subscriptions.",
            code="plan_not_base",
            param=param,
        )
    ensure_subscribed_in(session, company, plan, now, param=param)


def _default_plan(session: Session, environment_id: str, group: str) -> PlanRow | None:
    return session.scalar(
        select(PlanRow).where(
            PlanRow.environment_id == environment_id,
            PlanRow.plan_group == group,
            PlanRow.is_default.is_(True),
            PlanRow.status != PlanStatus.ARCHIVED.value,
        )
    )


def company_detail_in(session: Session, row: CompanyRow, now: datetime) -> CompanyDetail:
    subscriptions = [
        SubscriptionRecord(to_subscription(s), row.key, s.created_at, s.updated_at)
        for s in company_subscription_rows(session, row.id)
    ]
    current = [
        r for r in subscriptions if r.subscription.status(now) is not SubscriptionStatus.ENDED
    ]
    base = next(
        (
            r.subscription.plan
            for r in current
            if r.subscription.is_active(now)
            and r.subscription.plan_type is PlanType.BASE
            and r.subscription.group == "default"
        ),
        None,
    )
    default = None if base else _default_plan(session, row.environment_id, "default")
    overrides = [
        OverrideRecord(to_override(o), row.key, o.created_at, o.updated_at)
        for o in company_override_rows(session, row.id)
    ]
    return CompanyDetail(
        record=to_company_record(row),
        plan=base or (default.key if default else None),
        plan_is_default=base is None and default is not None,
        subscriptions=current,
        overrides=sorted(
            (o for o in overrides if o.override.is_active(now)), key=lambda o: o.override.feature
        ),
        users=company_member_keys(session, row.id),
    )


class CustomerService:
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
    def upsert_company(
        self, environment_id: str, key: str, fields: Mapping[str, Any]
    ) -> tuple[CompanyDetail, bool]:
        """Create or update a company (`name`, `traits`) and, with `plan`, put it on that base
        plan, all in one transaction."""
        now = self._clock()
        with self._db.write() as session:
            row, created = upsert_company_in(session, environment_id, key, fields, now)
            if fields.get("plan") is not None:
                ensure_base_plan_in(session, row, fields["plan"], now)
            return company_detail_in(session, row, now), created

    def get_company(self, environment_id: str, key: str) -> CompanyDetail:
        with self._db.read() as session:
            row = find_company_row(session, environment_id, key)
            return company_detail_in(session, row, self._clock())

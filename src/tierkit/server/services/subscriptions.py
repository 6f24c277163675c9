"""Subscriptions: base plans (one per group at a time) and add-ons with quantities, kept as a
history so what a company had at any instant stays answerable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from tierkit.engine.catalog import PlanStatus, PlanType, PriceInterval
from tierkit.engine.customers import (
    Subscription,
    SubscriptionStatus,
    default_trial_end,
    ends_for_new_base,
)
from tierkit.engine.periods import Unit, cycle_bounds
from tierkit.server.db import Database
from tierkit.server.db.ids import new_id
from tierkit.server.db.tables import CompanyRow, PlanRow, SubscriptionRow
from tierkit.server.services.audit import ChangeLog
from tierkit.server.services.catalog_cache import changes_customer
from tierkit.server.services.clock import Clock
from tierkit.server.services.companies import find_company_row
from tierkit.server.services.errors import Conflict, InvalidRequest, NotFound
from tierkit.server.services.plans import find_plan_row


class CancelAt(StrEnum):
    NOW = "now"
    PERIOD_END = "period_end"


@dataclass(frozen=True, slots=True)
class NewSubscription:
    """What a caller asks for. `trial_ends_at` of `None` with `plan_trial` True takes the
    plan's `trial_days`; with `plan_trial` False it means no trial."""

    plan: str
    quantity: int = 1
    started_at: datetime | None = None
    trial_ends_at: datetime | None = None
    plan_trial: bool = True
    ends_at: datetime | None = None
    price_interval: PriceInterval | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    subscription: Subscription
    company: str
    created_at: datetime
    updated_at: datetime


def to_subscription(row: SubscriptionRow) -> Subscription:
    return Subscription(
        id=row.id,
        plan=row.plan.key,
        plan_type=PlanType(row.plan.type),
        group=row.plan.plan_group,
        quantity=row.quantity,
        started_at=row.started_at,
        trial_ends_at=row.trial_ends_at,
        ends_at=row.ends_at,
        price_interval=PriceInterval(row.price_interval) if row.price_interval else None,
        canceled_at=row.canceled_at,
        plan_version=row.plan_version,
    )


def to_subscription_record(row: SubscriptionRow, company: str) -> SubscriptionRecord:
    return SubscriptionRecord(to_subscription(row), company, row.created_at, row.updated_at)


def company_subscription_rows(session: Session, company_id: str) -> list[SubscriptionRow]:
    # A subscription needs its plan's key, type and group, not its entitlements and prices.
    plan = joinedload(SubscriptionRow.plan)
    return list(
        session.scalars(
            select(SubscriptionRow)
            .options(plan.lazyload(PlanRow.entitlements), plan.lazyload(PlanRow.prices))
            .where(SubscriptionRow.company_id == company_id)
            .order_by(SubscriptionRow.started_at, SubscriptionRow.id)
        )
    )


def _price_interval(plan: PlanRow, asked: PriceInterval | None) -> PriceInterval | None:
    intervals = [PriceInterval(p.interval) for p in plan.prices]
    if asked is not None:
        if asked not in intervals:
            offered = ", ".join(sorted(set(intervals))) or "none"
            raise InvalidRequest(
                f"Plan {plan.key!r} has no {asked} price (its intervals: {offered}).",
                code="price_interval_not_offered",
                param="price_interval",
            )
        return asked
    default = next((PriceInterval(p.interval) for p in plan.prices if p.is_default), None)
    return default or (intervals[0] if intervals else None)


def _trial_days(plan: PlanRow, interval: PriceInterval | None) -> int | None:
    """The trial of a subscription at `interval`: its price's own `trial_days` (the default
    price's first), else the plan's."""
    prices = sorted(
        (p for p in plan.prices if interval is not None and p.interval == interval.value),
        key=lambda p: not p.is_default,
    )
    own = next((p.trial_days for p in prices if p.trial_days is not None), None)
    return own if own is not None else plan.trial_days


def subscribe_in(
    session: Session,
    company: CompanyRow,
    request: NewSubscription,
    now: datetime,
    *,
    plan_param: str = "plan",
) -> SubscriptionRow:
    """Subscribe `company` to a plan in `session`. A base plan ends the group's previous base
    plan at its start; an add-on may be held once at a time (change its quantity instead)."""
    plan = find_plan_row(session, company.environment_id, request.plan, param=plan_param)
    if plan.status == PlanStatus.ARCHIVED.value:
        raise InvalidRequest(
            f"Plan {plan.key!r} is archived; new subscriptions need an active plan.",
            code="plan_archived",
            param=plan_param,
        )
    started_at = request.started_at or now
    interval = _price_interval(plan, request.price_interval)
    trial_ends_at = request.trial_ends_at
    if trial_ends_at is None and request.plan_trial:
        trial_ends_at = default_trial_end(started_at, _trial_days(plan, interval))
    _check_times(started_at, trial_ends_at, request.ends_at)
    existing = company_subscription_rows(session, company.id)
    if plan.type == PlanType.ADD_ON.value:
        _check_add_on_free(plan, existing, started_at)
    else:
        ends = ends_for_new_base(
            [to_subscription(r) for r in existing], plan.plan_group, started_at
        )
        for row in existing:
            if row.id in ends:
                before = to_subscription_record(row, company.key)
                row.ends_at = ends[row.id]
                row.updated_at = now
                log_subscription_change(
                    session, company, now, "subscription.updated", before=before, row=row
                )
    row = SubscriptionRow(
        id=new_id("sub"),
        environment_id=company.environment_id,
        company_id=company.id,
        plan_id=plan.id,
        plan=plan,
        plan_version=plan.version,
        quantity=request.quantity,
        price_interval=interval,
        started_at=started_at,
        trial_ends_at=trial_ends_at,
        ends_at=request.ends_at,
        canceled_at=None,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    log_subscription_change(session, company, now, "subscription.created", before=None, row=row)
    return row


def log_subscription_change(
    session: Session,
    company: CompanyRow,
    now: datetime,
    action: str,
    *,
    before: SubscriptionRecord | None,
    row: SubscriptionRow,
) -> None:
    """Audit a subscription change (and announce it to webhooks)."""
    ChangeLog(session, company.environment_id, now).record(
        action,
        ("subscription", row.id),
        before,
        to_subscription_record(row, company.key),
        {"company": company.key},
    )


def _check_times(
    started_at: datetime, trial_ends_at: datetime | None, ends_at: datetime | None
) -> None:
    if ends_at is not None and ends_at <= started_at:
        raise InvalidRequest(
            "`ends_at` must be after `started_at`.", code="invalid_period", param="ends_at"
        )
    if trial_ends_at is not None and trial_ends_at < started_at:
        raise InvalidRequest(
            "`trial_ends_at` cannot be before `started_at`.",
            code="invalid_period",
            param="trial_ends_at",
        )


def _check_add_on_free(
    plan: PlanRow, existing: list[SubscriptionRow], started_at: datetime
) -> None:
    for row in existing:
        if row.plan_id == plan.id and (row.ends_at is None or row.ends_at > started_at):
            raise Conflict(
                f"The company already has add-on {plan.key!r} ({row.id}); change that "
                "subscription's `quantity` instead.",
                code="already_subscribed",
                param="plan",
            )


def _check_no_overlap(existing: list[SubscriptionRow], changed: Subscription) -> None:
    """A later `ends_at` may not run into the group's next base plan, or into a later
    subscription to the same add-on: one at a time, as when subscribing."""
    for row in existing:
        other = to_subscription(row)
        if other.id == changed.id or (
            other.ends_at is not None and other.ends_at <= other.started_at
        ):
            continue  # itself, or one that never runs
        if changed.plan_type is PlanType.ADD_ON:
            same_slot = other.plan == changed.plan
        else:
            same_slot = other.plan_type is PlanType.BASE and other.group == changed.group
        before_other_ends = other.ends_at is None or changed.started_at < other.ends_at
        after_other_starts = changed.ends_at is None or other.started_at < changed.ends_at
        if same_slot and before_other_ends and after_other_starts:
            raise Conflict(
                f"With that `ends_at`, subscription {changed.id!r} would overlap {other.id!r} "
                f"({other.plan}); a company holds one base plan per group, and each add-on "
                "once, at a time.",
                code="subscription_overlap",
                param="ends_at",
            )


def end_subscription_in(
    session: Session, company: CompanyRow, row: SubscriptionRow, at: datetime, now: datetime
) -> None:
    """End a subscription at `at` (one that has not started yet never starts), recorded as
    `subscription.canceled`."""
    before = to_subscription_record(row, company.key)
    row.ends_at = max(at, row.started_at)
    row.canceled_at = now
    row.updated_at = now
    log_subscription_change(session, company, now, "subscription.canceled", before=before, row=row)


def _period_end(subscription: Subscription, now: datetime) -> datetime:
    if subscription.is_trialing(now):
        assert subscription.trial_ends_at is not None  # noqa: S101 - trialing implies it
        return subscription.trial_ends_at
    if subscription.started_at > now:
        return subscription.started_at
    interval = subscription.price_interval or PriceInterval.MONTH
    if interval is PriceInterval.ONE_TIME:
        raise InvalidRequest(
            "A one-time purchase has no billing period; cancel it with `at=now`.",
            code="no_billing_period",
            param="at",
        )
    _, end = cycle_bounds(subscription.started_at, Unit(interval.value), now)
    return end if subscription.ends_at is None else min(end, subscription.ends_at)


class SubscriptionService:
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
    def create_subscription(
        self, environment_id: str, company_key: str, request: NewSubscription
    ) -> SubscriptionRecord:
        with self._db.write() as session:
            company = find_company_row(session, environment_id, company_key)
            row = subscribe_in(session, company, request, self._clock())
            return to_subscription_record(row, company.key)

    def list_subscriptions(
        self, environment_id: str, company_key: str, *, at: datetime | None = None
    ) -> list[SubscriptionRecord]:
        """The company's subscription history, oldest first; with `at`, those active then."""
        with self._db.read() as session:
            company = find_company_row(session, environment_id, company_key)
            records = [
                to_subscription_record(r, company.key)
                for r in company_subscription_rows(session, company.id)
            ]
        if at is not None:
            records = [r for r in records if r.subscription.is_active(at)]
        return records

    def get_subscription(
        self, environment_id: str, company_key: str, subscription_id: str
    ) -> SubscriptionRecord:
        with self._db.read() as session:
            company = find_company_row(session, environment_id, company_key)
            return to_subscription_record(_find(session, company, subscription_id), company.key)

    @changes_customer
    def update_subscription(
        self,
        environment_id: str,
        company_key: str,
        subscription_id: str,
        changes: Mapping[str, Any],
    ) -> SubscriptionRecord:
        """Change `quantity`, `trial_ends_at` or `ends_at` of a subscription that has not ended."""
        now = self._clock()
        with self._db.write() as session:
            company = find_company_row(session, environment_id, company_key)
            row = _find(session, company, subscription_id)
            current = to_subscription(row)
            if current.status(now) is SubscriptionStatus.ENDED:
                raise _ended(row.id)
            before = to_subscription_record(row, company.key)
            updated = replace(current, **changes)
            _check_times(updated.started_at, updated.trial_ends_at, updated.ends_at)
            if "ends_at" in changes:
                _check_no_overlap(company_subscription_rows(session, company.id), updated)
            row.quantity = updated.quantity
            row.trial_ends_at = updated.trial_ends_at
            row.ends_at = updated.ends_at
            row.updated_at = now
            log_subscription_change(
                session, company, now, "subscription.updated", before=before, row=row
            )
            return to_subscription_record(row, company.key)

    @changes_customer
    def cancel_subscription(
        self, environment_id: str, company_key: str, subscription_id: str, at: CancelAt
    ) -> SubscriptionRecord:
        """End a subscription now, or when its current billing period (or trial) ends."""
        now = self._clock()
        with self._db.write() as session:
            company = find_company_row(session, environment_id, company_key)
            row = _find(session, company, subscription_id)
            current = to_subscription(row)
            if current.status(now) is SubscriptionStatus.ENDED:
                raise _ended(row.id)
            end = now if at is CancelAt.NOW else _period_end(current, now)
            end_subscription_in(session, company, row, end, now)
            return to_subscription_record(row, company.key)


def _find(session: Session, company: CompanyRow, subscription_id: str) -> SubscriptionRow:
    row = session.scalar(
        select(SubscriptionRow).where(
            SubscriptionRow.id == subscription_id, SubscriptionRow.company_id == company.id
        )
    )
    if row is None:
        raise NotFound(
            f"Company {company.key!r} has no subscription {subscription_id!r}.",
            code="subscription_not_found",
        )
    return row


def _ended(subscription_id: str) -> Conflict:
    return Conflict(
        f"Subscription {subscription_id!r} has already ended; start a new one instead.",
        code="subscription_ended",
    )

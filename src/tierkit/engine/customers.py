"""Customer state: companies, their subscriptions over time, and their overrides.

Everything answers for an instant `at`, passed in: what a company had at any moment follows from
its subscription history, and an override stops applying the instant it expires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from tierkit.engine.catalog import Entitlement, PlanType, PriceInterval, Scalar


class SubscriptionStatus(StrEnum):
    SCHEDULED = "scheduled"  # starts in the future
    TRIALING = "trialing"
    ACTIVE = "active"
    ENDED = "ended"  # ran its course (or was ended by cancelling)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A company's subscription to one plan, over `[started_at, ends_at)`."""

    id: str
    plan: str
    plan_type: PlanType
    group: str
    quantity: int
    started_at: datetime
    trial_ends_at: datetime | None = None
    ends_at: datetime | None = None
    price_interval: PriceInterval | None = None
    canceled_at: datetime | None = None
    plan_version: int | None = None
    """The version of the plan it holds; `None` reads the plan's latest definition."""

    def is_active(self, at: datetime) -> bool:
        return self.started_at <= at and (self.ends_at is None or at < self.ends_at)

    def is_trialing(self, at: datetime) -> bool:
        return self.is_active(at) and self.trial_ends_at is not None and at < self.trial_ends_at

    def status(self, at: datetime) -> SubscriptionStatus:
        # One that ends at its own start (superseded or cancelled before it began) never runs:
        # it is over, not scheduled.
        if self.ends_at is not None and self.ends_at <= max(at, self.started_at):
            return SubscriptionStatus.ENDED
        if at < self.started_at:
            return SubscriptionStatus.SCHEDULED
        return SubscriptionStatus.TRIALING if self.is_trialing(at) else SubscriptionStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class Override:
    """A company's own value for one feature, replacing its plans' until `expires_at`."""

    entitlement: Entitlement
    expires_at: datetime | None = None
    note: str = ""

    @property
    def feature(self) -> str:
        return self.entitlement.feature

    def is_active(self, at: datetime) -> bool:
        return self.expires_at is None or at < self.expires_at


@dataclass(frozen=True, slots=True)
class Company:
    key: str
    name: str | None = None
    traits: Mapping[str, Scalar] = field(default_factory=dict)


def active_subscriptions(subscriptions: Iterable[Subscription], at: datetime) -> list[Subscription]:
    """What the company has at `at` (trials count; ended and future ones do not)."""
    return [s for s in subscriptions if s.is_active(at)]


def active_overrides(overrides: Iterable[Override], at: datetime) -> list[Override]:
    return [o for o in overrides if o.is_active(at)]


def merge_traits(
    current: Mapping[str, Scalar], changes: Mapping[str, Scalar | None]
) -> dict[str, Scalar]:
    """Traits after an upsert: keys merge one by one, and a `None` value removes the trait."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def default_trial_end(started_at: datetime, trial_days: int | None) -> datetime | None:
    if not trial_days:
        return None
    try:
        return started_at + timedelta(days=trial_days)
    except OverflowError:
        # A start at the calendar's end: the trial lasts as long as time can be written.
        return datetime.max.replace(tzinfo=started_at.tzinfo)


def ends_for_new_base(
    existing: Sequence[Subscription], group: str, started_at: datetime
) -> dict[str, datetime]:
    """When a base plan of `group` starts at `started_at`, the new `ends_at` of each base
    subscription of that group it supersedes, by id.

    One still running at `started_at` ends at that instant; one scheduled to start at or after
    it never starts (it ends at its own start).
    """
    ends: dict[str, datetime] = {}
    for sub in existing:
        if sub.plan_type is not PlanType.BASE or sub.group != group:
            continue
        if sub.ends_at is not None and sub.ends_at <= started_at:
            continue  # already over by then
        ends[sub.id] = started_at if sub.started_at < started_at else sub.started_at
    return ends

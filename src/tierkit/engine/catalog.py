"""Catalog types: features, plans, entitlements and prices, as plain immutable data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

KEY_PATTERN = r"^[a-z0-9][a-z0-9_.:-]{0,63}$"
"""Keys of features, plans, option keys, plan groups, credit types and bundles (API.md)."""

MAX_SAFE_NUMBER = 2**53
"""Entitled numbers stay exact in every JSON client (JavaScript's safe integer range)."""

Scalar = bool | int | float | str
"""An entitled value: a boolean, a number, an option key or a limit."""


class FeatureType(StrEnum):
    BOOLEAN = "boolean"
    NUMERIC = "numeric"
    ENUM = "enum"
    METERED = "metered"


class Aggregation(StrEnum):
    COUNT = "count"
    SUM = "sum"
    MAX = "max"
    UNIQUE_COUNT = "unique_count"
    LATEST = "latest"


class FeatureStatus(StrEnum):
    ACTIVE = "active"
    DEPRECATED = "deprecated"
    COMING_SOON = "coming_soon"
    ARCHIVED = "archived"


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class PlanType(StrEnum):
    BASE = "base"
    ADD_ON = "add_on"


class PlanStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    ALL_TIME = "all_time"


class Reset(StrEnum):
    CALENDAR = "calendar"
    BILLING_CYCLE = "billing_cycle"


class PriceInterval(StrEnum):
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    ONE_TIME = "one_time"


@dataclass(frozen=True, slots=True)
class Meter:
    """How a metered feature's usage is measured from events."""

    event: str
    aggregation: Aggregation
    property: str | None = None


@dataclass(frozen=True, slots=True)
class FeatureOption:
    key: str
    name: str


@dataclass(frozen=True, slots=True)
class Feature:
    key: str
    name: str
    type: FeatureType
    description: str = ""
    unit: str | None = None
    status: FeatureStatus = FeatureStatus.ACTIVE
    visibility: Visibility = Visibility.PUBLIC
    meter: Meter | None = None
    options: tuple[FeatureOption, ...] | None = None
    default: Scalar | None = None
    global_value: Scalar | None = None

    @property
    def option_keys(self) -> frozenset[str]:
        return frozenset(option.key for option in self.options or ())

    @property
    def zero_value(self) -> Scalar | None:
        """The value when neither a plan nor the feature's `default` says anything."""
        return _ZERO_VALUES[self.type]


_ZERO_VALUES: Mapping[FeatureType, Scalar | None] = {
    FeatureType.BOOLEAN: False,
    FeatureType.NUMERIC: 0,
    FeatureType.ENUM: None,
    FeatureType.METERED: 0,
}


@dataclass(frozen=True, slots=True)
class Overage:
    """The price of usage past a soft limit: `price` minor units per `per` units."""

    price: int
    per: int = 1


@dataclass(frozen=True, slots=True)
class Entitlement:
    """A plan's value for one feature. Metered entitlements carry their period and reset."""

    feature: str
    value: Scalar | None = None
    unlimited: bool = False
    period: Period | None = None
    reset: Reset | None = None
    soft_limit: bool = False
    overage: Overage | None = None
    credit: str | None = None
    """A credit type each unit costs (`credit_cost` of it): the check needs the balance."""
    credit_cost: float | None = None


@dataclass(frozen=True, slots=True)
class CreditType:
    key: str
    name: str
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class RegionalPrice:
    currency: str
    amount: int


class DiscountKind(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class IntroOffer:
    """A discount for the first `cycles` billing cycles: `value` percent, or `value` minor
    units off (in the price's currency)."""

    kind: DiscountKind
    value: float
    cycles: int


@dataclass(frozen=True, slots=True)
class Price:
    interval: PriceInterval
    currency: str
    amount: int
    default: bool = False
    regional: tuple[RegionalPrice, ...] = ()
    trial_days: int | None = None
    """A trial for subscriptions at this price (instead of the plan's `trial_days`)."""
    intro: IntroOffer | None = None

    def amounts(self) -> dict[str, int]:
        """The price in each currency it is offered in."""
        return {self.currency: self.amount} | {r.currency: r.amount for r in self.regional}


@dataclass(frozen=True, slots=True)
class PlanCreditGrant:
    """Credits a plan gives its subscribers each `period` (a cycle anchored at the
    subscription's start). Up to `rollover_max` of what is left at a period's end carries into
    the next period, once."""

    credit: str
    amount: float
    period: Period = Period.MONTH
    rollover_max: float | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    key: str
    name: str
    type: PlanType = PlanType.BASE
    description: str = ""
    group: str = "default"
    status: PlanStatus = PlanStatus.ACTIVE
    visibility: Visibility = Visibility.PUBLIC
    is_default: bool = False
    trial_days: int | None = None
    sort_order: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)
    entitlements: tuple[Entitlement, ...] = ()
    prices: tuple[Price, ...] = ()
    credit_grants: tuple[PlanCreditGrant, ...] = ()

    def entitlement_for(self, feature_key: str) -> Entitlement | None:
        return next((e for e in self.entitlements if e.feature == feature_key), None)

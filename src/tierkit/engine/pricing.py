"""Pricing math: which price a plan has in a currency and interval, how entitlements read on a
pricing page, and what a company's current period costs. Money is integer minor units."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from tierkit.engine.catalog import (
    DiscountKind,
    Entitlement,
    Feature,
    FeatureType,
    Period,
    Plan,
    Price,
    PriceInterval,
)
from tierkit.engine.numbers import finite_number


@dataclass(frozen=True, slots=True)
class PlanPrice:
    """A plan's price in one currency: the amount, and the price it comes from."""

    amount: int
    currency: str
    price: Price


def plan_price(plan: Plan, interval: PriceInterval, currency: str) -> PlanPrice | None:
    """The plan's price for `interval` in `currency` (its main amount or a regional one); the
    default price wins when several match."""
    matching = sorted(
        (p for p in plan.prices if p.interval is interval and currency in p.amounts()),
        key=lambda p: not p.default,
    )
    if not matching:
        return None
    return PlanPrice(matching[0].amounts()[currency], currency, matching[0])


def default_price(plan: Plan) -> Price | None:
    return next((p for p in plan.prices if p.default), plan.prices[0] if plan.prices else None)


def intro_discount(price: Price, amount: int, cycle: int) -> int:
    """What the intro offer takes off `amount` in cycle `cycle` (0 is the first): nothing once
    its cycles are over. Never more than the amount."""
    offer = price.intro
    if offer is None or cycle >= offer.cycles:
        return 0
    if offer.kind is DiscountKind.PERCENT:
        # Money rounds half up (0.5% of 2900 is 15 off), not half to even as `round` does.
        off = (Decimal(amount) * Decimal(str(offer.value)) / 100).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
        return min(amount, int(off))
    return min(amount, int(offer.value))


def overage_charge(entitlement: Entitlement, used: float) -> tuple[int, int]:
    """Units past a soft limit, rounded up to whole `per` packages, and their price: the
    number of packages and the amount."""
    overage = entitlement.overage
    limit = finite_number(entitlement.value)
    if overage is None or entitlement.unlimited or limit is None or used <= limit:
        return 0, 0
    packages = math.ceil((used - limit) / overage.per)
    return packages, packages * overage.price


def _number_text(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def display_value(feature: Feature, entitlement: Entitlement | None) -> str:
    """How an entitlement reads on a pricing page: "Included", "Unlimited", "10,000 / month",
    an option's name."""
    if entitlement is None:
        return "—" if feature.type is not FeatureType.BOOLEAN else "Not included"
    if entitlement.unlimited:
        return "Unlimited"
    value = entitlement.value
    if feature.type is FeatureType.BOOLEAN:
        return "Included" if value is True else "Not included"
    if feature.type is FeatureType.ENUM:
        names = {option.key: option.name for option in feature.options or ()}
        return names.get(str(value), str(value))
    number = finite_number(value)
    text = _number_text(number) if number is not None else str(value)
    # No unit: the page has the feature's `unit` to say it in its own words (and plurals).
    if feature.type is FeatureType.METERED:
        period = entitlement.period or Period.MONTH
        if period is not Period.ALL_TIME:
            text = f"{text} / {period.value}"
    return text

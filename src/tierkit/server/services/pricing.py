"""The pricing table a pricing page shows, and the invoice preview of a company's current
period. Both are read from the compiled catalog and the company's state; nothing is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tierkit.engine.catalog import (
    Feature,
    FeatureStatus,
    FeatureType,
    Plan,
    PlanStatus,
    PlanType,
    PriceInterval,
    Visibility,
)
from tierkit.engine.customers import Subscription, active_subscriptions
from tierkit.engine.evaluate import Catalog, entitlement_of, evaluate
from tierkit.engine.periods import Unit, cycle_bounds, cycle_number
from tierkit.engine.pricing import (
    PlanPrice,
    default_price,
    display_value,
    intro_discount,
    overage_charge,
    plan_price,
)
from tierkit.server.services.catalog_cache import CatalogCache
from tierkit.server.services.checks import CheckService
from tierkit.server.services.clock import Clock


@dataclass(frozen=True, slots=True)
class PlanFeatureCell:
    feature: str
    value: object
    unlimited: bool
    display: str


@dataclass(frozen=True, slots=True)
class PlanColumn:
    plan: Plan
    price: PlanPrice | None
    features: list[PlanFeatureCell]


@dataclass(frozen=True, slots=True)
class PricingTable:
    currency: str
    interval: PriceInterval
    features: list[Feature]
    plans: list[PlanColumn]


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    kind: str
    """`base`, `add_on`, `intro_discount` or `overage`."""
    description: str
    quantity: float
    unit_amount: int
    amount: int
    plan: str | None = None
    feature: str | None = None


@dataclass(frozen=True, slots=True)
class InvoicePreview:
    company: str
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    lines: list[InvoiceLine] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


def _shown(feature: Feature) -> bool:
    return feature.visibility is Visibility.PUBLIC and feature.status is not FeatureStatus.ARCHIVED


def build_pricing_table(catalog: Catalog, currency: str, interval: PriceInterval) -> PricingTable:
    """Public active plans in `sort_order`, each with its price in `currency` for `interval`
    (null when it has none) and the display value of every public feature the table shows
    (those some shown plan entitles, in the order they first appear)."""
    plans = sorted(
        (
            p
            for p in catalog.plans.values()
            if p.status is PlanStatus.ACTIVE and p.visibility is Visibility.PUBLIC
        ),
        key=lambda p: (p.type is not PlanType.BASE, p.sort_order, p.key),
    )
    order: list[str] = []
    for plan in plans:
        for line in plan.entitlements:
            feature = catalog.features.get(line.feature)
            if feature is not None and _shown(feature) and feature.key not in order:
                order.append(feature.key)
    features = [catalog.features[key] for key in order]
    columns = []
    for plan in plans:
        cells = []
        for feature in features:
            offered = plan.entitlement_for(feature.key)
            cells.append(
                PlanFeatureCell(
                    feature.key,
                    None if offered is None or offered.unlimited else offered.value,
                    bool(offered and offered.unlimited),
                    display_value(feature, offered),
                )
            )
        columns.append(PlanColumn(plan, plan_price(plan, interval, currency), cells))
    return PricingTable(currency, interval, features, columns)


_UNITS = {
    PriceInterval.WEEK: Unit.WEEK,
    PriceInterval.MONTH: Unit.MONTH,
    PriceInterval.YEAR: Unit.YEAR,
}


def _subscription_lines(
    catalog: Catalog, subscription: Subscription, currency: str, now: datetime
) -> list[InvoiceLine]:
    plan = catalog.plan_for(subscription)
    if plan is None:
        return []
    fallback = default_price(plan)
    interval = subscription.price_interval or (
        fallback.interval if fallback else PriceInterval.MONTH
    )
    priced = plan_price(plan, interval, currency)
    if priced is None:
        return []
    kind = "base" if plan.type is PlanType.BASE else "add_on"
    trialing = subscription.is_trialing(now)
    quantity = subscription.quantity
    amount = 0 if trialing else priced.amount * quantity
    label = f"{plan.name} ({interval.value})" + (" - trial" if trialing else "")
    lines = [InvoiceLine(kind, label, quantity, priced.amount, amount, plan=plan.key)]
    unit = _UNITS.get(interval)
    if unit is not None and not trialing and priced.price.intro is not None:
        cycle = cycle_number(subscription.started_at, unit, now)
        off = intro_discount(priced.price, priced.amount, cycle) * quantity
        if off:
            intro = priced.price.intro
            lines.append(
                InvoiceLine(
                    "intro_discount",
                    f"{plan.name}: intro offer, cycle {cycle + 1} of {intro.cycles}",
                    quantity,
                    -off // quantity if quantity else 0,
                    -off,
                    plan=plan.key,
                )
            )
    return lines


class PricingService:
    def __init__(self, clock: Clock, catalogs: CatalogCache, checks: CheckService) -> None:
        self._clock = clock
        self._catalogs = catalogs
        self._checks = checks

    def pricing_table(
        self, environment_id: str, currency: str, interval: PriceInterval
    ) -> PricingTable:
        return build_pricing_table(self._catalogs.get(environment_id), currency, interval)

    def invoice_preview(
        self, environment_id: str, company_key: str, currency: str | None
    ) -> InvoicePreview:
        """The current period's lines: each active plan's price (times quantity; nothing
        while trialing), intro discounts, and overage of soft-limited metered features
        (units past the limit, rounded up to whole packages, at the entitlement's price).
        No proration: a plan changed mid-period is charged as if held all period."""
        catalog = self._catalogs.get(environment_id)
        company = self._checks.company_state(environment_id, company_key)
        now = self._clock()
        held = active_subscriptions(company.subscriptions, now)
        base = next(
            (s for s in held if s.plan_type is PlanType.BASE and s.plan in catalog.plans), None
        )
        currency = currency or self._currency_of(catalog, company.traits.get("currency"), base)
        lines = []
        for subscription in sorted(held, key=lambda s: (s.plan_type is not PlanType.BASE, s.plan)):
            lines += _subscription_lines(catalog, subscription, currency, now)
        for key in sorted(catalog.features):
            feature = catalog.features[key]
            if feature.type is not FeatureType.METERED or feature.meter is None:
                continue
            entitlement = entitlement_of(catalog, company, key, now=now)
            if not entitlement.soft_limit or entitlement.overage is None:
                continue
            usage = evaluate(catalog, company, key, now=now, quantity=0).usage
            used = usage.used if usage else 0.0
            packages, amount = overage_charge(entitlement, used)
            if packages:
                per = entitlement.overage.per
                lines.append(
                    InvoiceLine(
                        "overage",
                        f"{feature.name}: {packages} x {per:,} past the limit",
                        packages,
                        entitlement.overage.price,
                        amount,
                        feature=key,
                    )
                )
        start, end = self._period(base, now)
        return InvoicePreview(company_key, currency, start, end, lines)

    @staticmethod
    def _currency_of(catalog: Catalog, trait: object, base: Subscription | None) -> str:
        if isinstance(trait, str) and len(trait) == 3 and trait.isalpha():
            return trait.lower()
        plan = catalog.plan_for(base) if base else None
        price = default_price(plan) if plan else None
        return price.currency if price else "usd"

    @staticmethod
    def _period(
        base: Subscription | None, now: datetime
    ) -> tuple[datetime | None, datetime | None]:
        if base is None:
            return None, None
        unit = _UNITS.get(base.price_interval or PriceInterval.MONTH)
        if unit is None:
            return None, None
        return cycle_bounds(base.started_at, unit, now)

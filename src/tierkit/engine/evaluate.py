"""The evaluator: one feature for one company at one instant, with the reasons behind it.

Precedence (API.md "Checks"): the feature's `global_value`; the company's unexpired override;
its active subscriptions (base plan, or the group's default plan when it has none, plus add-ons:
booleans OR, numbers and limits add up times quantity, unlimited absorbs, an add-on's enum value
wins); the feature's rules in order, first match; the feature's `default`. A metered limit then
meets usage, which callers pass in as data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from enum import StrEnum

from tierkit.engine.catalog import (
    Aggregation,
    CreditType,
    Entitlement,
    Feature,
    FeatureType,
    Period,
    Plan,
    PlanStatus,
    PlanType,
    Reset,
    Scalar,
)
from tierkit.engine.credits import Grant, balances
from tierkit.engine.customers import Override, Subscription, active_subscriptions
from tierkit.engine.numbers import finite_number
from tierkit.engine.periods import Unit, calendar_bounds, cycle_bounds
from tierkit.engine.rules import Rule, Subject, first_matching_rule

Window = tuple[datetime | None, datetime | None]
"""A usage period `[start, end)`; `(None, None)` is all time."""


class Reason(StrEnum):
    GLOBAL_OVERRIDE = "global_override"
    OVERRIDE = "override"
    PLAN = "plan"
    RULE = "rule"
    DEFAULT = "default"
    LIMIT_EXCEEDED = "limit_exceeded"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    ERROR = "error"
    """The SDK's only: it could not decide, and answered with its configured fallback."""


@dataclass(frozen=True, slots=True)
class Catalog:
    """An environment's catalog as the evaluator reads it."""

    features: Mapping[str, Feature]
    plans: Mapping[str, Plan]
    rules: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    credits: Mapping[str, CreditType] = field(default_factory=dict)
    plan_versions: Mapping[str, Mapping[int, Plan]] = field(default_factory=dict)
    """Older versions of plans that subscriptions still hold, by plan key and version number
    (`plans` holds each plan's latest definition)."""

    def plan_for(self, subscription: Subscription) -> Plan | None:
        """The plan a subscription holds: its version when the catalog has it, else the
        latest (a subscription on the current version, or a version the catalog dropped)."""
        if subscription.plan_version is not None:
            older = self.plan_versions.get(subscription.plan, {}).get(subscription.plan_version)
            if older is not None:
                return older
        return self.plans.get(subscription.plan)

    def default_plans(self) -> dict[str, Plan]:
        """The default base plan of each group."""
        return {
            plan.group: plan
            for plan in self.plans.values()
            if plan.is_default and plan.type is PlanType.BASE and plan.status is PlanStatus.ACTIVE
        }


@dataclass(frozen=True, slots=True)
class CompanyState:
    """A company as the evaluator reads it; `found` is False for a company not on record."""

    key: str
    found: bool = True
    traits: Mapping[str, Scalar] = field(default_factory=dict)
    subscriptions: tuple[Subscription, ...] = ()
    overrides: tuple[Override, ...] = ()
    usage: Mapping[str, float] = field(default_factory=dict)
    """Units used per metered feature in its current period."""
    usage_windows: Mapping[str, Window] = field(default_factory=dict)
    """The period each `usage` value was counted over, when the caller knows it. A value
    counted over another window than the current one (the period has rolled over since it was
    read) is not this period's usage: the feature then reads 0."""
    credits: Mapping[str, float] = field(default_factory=dict)
    """Balance per credit type, when the caller has no `grants` to work them out from."""
    grants: tuple[Grant, ...] = ()
    """Credit grants: the balance of a credit type at any instant follows from them."""
    timezone: tzinfo = UTC
    """Where calendar periods are cut (the company's `timezone` trait, resolved by the caller)."""


@dataclass(frozen=True, slots=True)
class UserState:
    key: str
    traits: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Usage:
    used: float
    limit: float | None
    remaining: float | None
    overage: float
    period: Period
    period_start: datetime | None
    resets_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreditUse:
    """What a credit-priced check costs: `cost` of `credit`, against `balance`."""

    credit: str
    balance: float
    cost: float


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything of the check reply (API.md "Checks")."""

    feature: str
    company: str
    company_found: bool
    allowed: bool
    value: Scalar | None
    unlimited: bool
    reason: Reason
    plan: str | None = None
    rule: str | None = None
    override_expires_at: datetime | None = None
    usage: Usage | None = None
    credits: CreditUse | None = None
    error_code: str | None = None
    """The SDK's only: why it answered with its fallback (`reason` is then `error`)."""
    stale: bool = False
    """The SDK's only: decided from the last good state while the server is unreachable."""


@dataclass(frozen=True, slots=True)
class _Entitled:
    entitlement: Entitlement
    reason: Reason
    plan: str | None = None
    rule: str | None = None
    override_expires_at: datetime | None = None


def current_plans(
    catalog: Catalog, subscriptions: Sequence[Subscription], now: datetime
) -> list[tuple[Plan, Subscription | None]]:
    """The plans a company has at `now`: its active subscriptions' plans, and the default plan
    of each group in which it has no active base plan (with no subscription)."""
    held: list[tuple[Plan, Subscription | None]] = []
    base_groups = set()
    for sub in active_subscriptions(subscriptions, now):
        plan = catalog.plan_for(sub)
        if plan is None:
            continue
        held.append((plan, sub))
        if sub.plan_type is PlanType.BASE:
            base_groups.add(sub.group)
    for group, plan in sorted(catalog.default_plans().items()):
        if group not in base_groups:
            held.append((plan, None))
    return held


def _combine(
    feature: Feature, offered: list[tuple[Plan, Entitlement, int]]
) -> tuple[Entitlement, str]:
    """One entitlement from every plan that sets the feature (base plans first)."""
    base = next(((p, e, q) for p, e, q in offered if p.type is PlanType.BASE), None)
    first_plan, first, _ = base or offered[0]
    # The credit price of the base plan's entitlement, else of the first plan that sets one.
    priced = first if first.credit else next((e for _, e, _ in offered if e.credit), first)
    if feature.type is FeatureType.BOOLEAN:
        value: Scalar | None = any(e.value is True for _, e, _ in offered)
        combined = Entitlement(
            feature.key, value=value, credit=priced.credit, credit_cost=priced.credit_cost
        )
        return combined, first_plan.key
    if feature.type is FeatureType.ENUM:
        add_ons = [(p, e) for p, e, _ in offered if p.type is PlanType.ADD_ON]
        plan, entitlement = add_ons[-1] if add_ons else (first_plan, first)
        return entitlement, plan.key
    if any(e.unlimited for _, e, _ in offered):
        total = Entitlement(feature.key, unlimited=True)
    else:
        amount = float(
            sum((finite_number(e.value) or 0.0) * quantity for _, e, quantity in offered)
        )
        total = Entitlement(feature.key, value=int(amount) if amount.is_integer() else amount)
    return (
        Entitlement(
            feature.key,
            value=total.value,
            unlimited=total.unlimited,
            period=first.period,
            reset=first.reset,
            soft_limit=first.soft_limit,
            overage=first.overage,
            credit=priced.credit,
            credit_cost=priced.credit_cost,
        ),
        first_plan.key,
    )


class _CurrentUsage(Mapping[str, float]):
    """A company's usage as rules read it: each feature's value in its current window (0 when
    it was counted over an earlier one), worked out only for the features a rule asks about."""

    def __init__(self, catalog: Catalog, company: CompanyState, now: datetime) -> None:
        self._catalog = catalog
        self._company = company
        self._now = now

    def __getitem__(self, key: str) -> float:
        if key not in self._company.usage:
            raise KeyError(key)
        feature = self._catalog.features.get(key)
        if feature is None or key not in self._company.usage_windows:
            return float(self._company.usage[key])
        window = _current_window(self._catalog, feature, self._company, self._now)
        return _used(feature, self._company, window)

    def __iter__(self) -> Iterator[str]:
        return iter(self._company.usage)

    def __len__(self) -> int:
        return len(self._company.usage)


def _subject(
    catalog: Catalog,
    company: CompanyState,
    user: UserState | None,
    context: Mapping[str, Scalar],
    *,
    plans: Sequence[Plan],
    now: datetime,
) -> Subject:
    return Subject(
        company_key=company.key,
        company_traits={**company.traits, **context},
        user_key=user.key if user else None,
        user_traits={**(user.traits if user else {}), **context},
        plans=frozenset(plan.key for plan in plans),
        usage=_CurrentUsage(catalog, company, now),
        credits=credit_balances(company, now),
    )


def _granted(
    catalog: Catalog, feature: Feature, company: CompanyState, now: datetime
) -> tuple[_Entitled | None, list[tuple[Plan, Subscription | None]]]:
    """What the global value, an override or the company's plans grant (None when none of
    them speaks of the feature), and the plans the company holds."""
    if feature.global_value is not None:
        entitled = _Entitled(
            Entitlement(feature.key, value=feature.global_value), Reason.GLOBAL_OVERRIDE
        )
        return entitled, []
    override = next(
        (o for o in company.overrides if o.feature == feature.key and o.is_active(now)), None
    )
    if override is not None:
        entitled = _Entitled(
            override.entitlement, Reason.OVERRIDE, override_expires_at=override.expires_at
        )
        return entitled, []
    held = current_plans(catalog, company.subscriptions, now)
    offered = [
        (plan, entitlement, sub.quantity if sub else 1)
        for plan, sub in held
        if (entitlement := plan.entitlement_for(feature.key)) is not None
    ]
    if offered:
        entitlement, plan_key = _combine(feature, offered)
        return _Entitled(entitlement, Reason.PLAN, plan=plan_key), held
    return None, held


def _entitled(
    catalog: Catalog,
    feature: Feature,
    company: CompanyState,
    *,
    user: UserState | None,
    context: Mapping[str, Scalar],
    now: datetime,
) -> _Entitled:
    granted, held = _granted(catalog, feature, company, now)
    if granted is not None:
        return granted
    subject = _subject(catalog, company, user, context, plans=[plan for plan, _ in held], now=now)
    rule = first_matching_rule(catalog.rules.get(feature.key, ()), feature.key, subject)
    if rule is not None:
        entitlement = Entitlement(feature.key, value=rule.value, unlimited=rule.unlimited)
        return _Entitled(entitlement, Reason.RULE, rule=rule.name)
    value = feature.default if feature.default is not None else feature.zero_value
    return _Entitled(Entitlement(feature.key, value=value), Reason.DEFAULT)


def entitlement_of(
    catalog: Catalog, company: CompanyState, feature_key: str, *, now: datetime
) -> Entitlement:
    """The entitlement that decides the feature for the company now (with its period, soft
    limit and overage price), before usage and credits meet it."""
    feature = catalog.features[feature_key]
    return _entitled(catalog, feature, company, user=None, context={}, now=now).entitlement


def _base_anchor(company: CompanyState, now: datetime) -> datetime | None:
    base = [
        s for s in active_subscriptions(company.subscriptions, now) if s.plan_type is PlanType.BASE
    ]
    return min((s.started_at for s in base), default=None)


def usage_period(
    entitlement: Entitlement, company: CompanyState, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """The current period of a metered entitlement: calendar (in the company's zone) or billing
    cycle (anchored at the base subscription's start; calendar when there is none)."""
    period = entitlement.period or Period.MONTH
    if period is Period.ALL_TIME:
        return None, None
    unit = Unit(period.value)
    anchor = _base_anchor(company, now)
    if entitlement.reset is Reset.BILLING_CYCLE and anchor is not None:
        return cycle_bounds(anchor, unit, now)
    return calendar_bounds(unit, now, company.timezone)


def usage_window(
    feature: Feature, entitlement: Entitlement, company: CompanyState, now: datetime
) -> Window:
    """The window a metered feature's usage is counted over now. A gauge (`latest`) does not
    reset: its usage is the value last set, whenever that was."""
    if feature.meter is not None and feature.meter.aggregation is Aggregation.LATEST:
        return None, None
    return usage_period(entitlement, company, now)


def usage_windows(catalog: Catalog, company: CompanyState, now: datetime) -> dict[str, Window]:
    """The current usage window of every metered feature with a meter, for callers that read
    counters before evaluating."""
    windows = {}
    for key, feature in catalog.features.items():
        if feature.type is not FeatureType.METERED or feature.meter is None:
            continue
        windows[key] = _current_window(catalog, feature, company, now)
    return windows


def stable_until(catalog: Catalog, company: CompanyState, now: datetime) -> datetime | None:
    """The first instant after `now` at which a decision for the company may change while
    nothing but time moves: a subscription starts, ends or leaves its trial, an override or a
    grant expires, a usage window rolls over. None: no such instant. Callers that keep
    decisions (the SDK's local evaluation) trust them until then."""
    instants: list[datetime | None] = []
    for sub in company.subscriptions:
        instants += (sub.started_at, sub.trial_ends_at, sub.ends_at)
    instants += (o.expires_at for o in company.overrides)
    instants += (g.expires_at for g in company.grants)
    instants += (end for _, end in usage_windows(catalog, company, now).values())
    return min((t for t in instants if t is not None and t > now), default=None)


def _current_window(
    catalog: Catalog, feature: Feature, company: CompanyState, now: datetime
) -> Window:
    """The window the feature's usage counts over now: the period of what the global value,
    an override or the plans grant (rules and defaults carry none: a calendar month)."""
    granted, _ = _granted(catalog, feature, company, now)
    entitlement = granted.entitlement if granted else Entitlement(feature.key)
    return usage_window(feature, entitlement, company, now)


def _used(feature: Feature, company: CompanyState, window: Window) -> float:
    counted_over = company.usage_windows.get(feature.key, window)
    return float(company.usage.get(feature.key, 0)) if counted_over == window else 0.0


def credit_balances(company: CompanyState, now: datetime) -> Mapping[str, float]:
    """The company's balance per credit type at `now`."""
    return balances(company.grants, now) if company.grants else company.credits


def _left_and_over(used: float, limit: float | None) -> tuple[float | None, float]:
    """What remains under the limit and what is past it (none of either when unlimited)."""
    if limit is None:
        return None, 0.0
    return max(limit - used, 0.0), max(used - limit, 0.0)


def _allowed(feature: Feature, entitlement: Entitlement, quantity: float) -> bool:
    if entitlement.unlimited:
        return True
    if feature.type is FeatureType.BOOLEAN:
        return entitlement.value is True
    if feature.type is FeatureType.ENUM:
        return entitlement.value is not None
    number = finite_number(entitlement.value)
    return number is not None and number >= quantity


def evaluate(
    catalog: Catalog,
    company: CompanyState,
    feature_key: str,
    *,
    now: datetime,
    quantity: float = 1,
    user: UserState | None = None,
    context: Mapping[str, Scalar] | None = None,
) -> Decision:
    """Decide whether `company` may use `quantity` more of a feature at `now`, and why.

    The feature must be in the catalog (callers answer unknown features themselves)."""
    feature = catalog.features[feature_key]
    entitled = _entitled(catalog, feature, company, user=user, context=context or {}, now=now)
    entitlement = entitled.entitlement
    value = None if entitlement.unlimited else entitlement.value
    reason = entitled.reason
    usage = None
    if feature.type is FeatureType.METERED:
        window = usage_window(feature, entitlement, company, now)
        used = _used(feature, company, window)
        limit = None if entitlement.unlimited else (finite_number(value) or 0.0)
        start, end = window
        usage = Usage(
            used,
            limit,
            *_left_and_over(used, limit),
            period=entitlement.period or Period.MONTH,
            period_start=start,
            resets_at=end,
        )
        over = limit is not None and used + quantity > limit
        allowed = not over or entitlement.soft_limit
        if over and not entitlement.soft_limit:
            reason = Reason.LIMIT_EXCEEDED
    else:
        allowed = _allowed(feature, entitlement, quantity)
    credits = None
    if entitlement.credit is not None:
        cost = quantity * (entitlement.credit_cost or 0.0)
        balance = credit_balances(company, now).get(entitlement.credit, 0)
        credits = CreditUse(entitlement.credit, float(balance), cost)
        if allowed and credits.balance < cost:
            allowed, reason = False, Reason.INSUFFICIENT_CREDITS
    return Decision(
        feature=feature.key,
        company=company.key,
        company_found=company.found,
        allowed=allowed,
        value=value,
        unlimited=entitlement.unlimited,
        reason=reason,
        plan=entitled.plan,
        rule=entitled.rule,
        override_expires_at=entitled.override_expires_at,
        usage=usage,
        credits=credits,
    )


def evaluate_all(
    catalog: Catalog,
    company: CompanyState,
    *,
    now: datetime,
    features: Sequence[str] | None = None,
    user: UserState | None = None,
    context: Mapping[str, Scalar] | None = None,
) -> list[Decision]:
    """`evaluate` for several features (all non-archived ones, by key, when not given)."""
    keys = (
        features
        if features is not None
        else sorted(key for key, f in catalog.features.items() if f.status.value != "archived")
    )
    return [evaluate(catalog, company, key, now=now, user=user, context=context) for key in keys]


def after_consuming(decision: Decision, quantity: float) -> Decision:
    """The decision as it reads once `quantity` more units are recorded and their credits
    debited (the reply of a consume that was allowed)."""
    usage = decision.usage
    if usage is not None:
        used = usage.used + quantity
        remaining, overage = _left_and_over(used, usage.limit)
        usage = replace(usage, used=used, remaining=remaining, overage=overage)
    credits = decision.credits
    if credits is not None:
        credits = replace(credits, balance=credits.balance - credits.cost)
    return replace(decision, usage=usage, credits=credits)

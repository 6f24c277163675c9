"""The contract's rules for catalog definitions, as pure functions returning problems.

Shape (types, patterns, bounds) is the caller's parser's job; these are the rules that relate
fields to each other and entitlements to their features. An empty list means valid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from tierkit.engine.catalog import (
    MAX_SAFE_NUMBER,
    Aggregation,
    Entitlement,
    Feature,
    FeatureStatus,
    FeatureType,
    Period,
    Plan,
    PlanType,
    Reset,
    Scalar,
)
from tierkit.engine.currencies import is_currency
from tierkit.engine.rules import Condition, ConditionType, Rule


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition: where (`param`), a stable `code` and a sentence."""

    param: str
    code: str
    message: str


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= MAX_SAFE_NUMBER
    )


def _fits_boolean(feature: Feature, value: Scalar) -> str | None:
    return None if isinstance(value, bool) else "must be true or false for a boolean feature"


def _fits_number(feature: Feature, value: Scalar) -> str | None:
    if _is_number(value):
        return None
    return f"must be a number from 0 to {MAX_SAFE_NUMBER} for a {feature.type} feature"


def _fits_enum(feature: Feature, value: Scalar) -> str | None:
    if isinstance(value, str) and value in feature.option_keys:
        return None
    allowed = ", ".join(sorted(feature.option_keys)) or "none defined"
    return f"must be one of the feature's option keys ({allowed})"


_VALUE_CHECKS: Mapping[FeatureType, Callable[[Feature, Scalar], str | None]] = {
    FeatureType.BOOLEAN: _fits_boolean,
    FeatureType.NUMERIC: _fits_number,
    FeatureType.ENUM: _fits_enum,
    FeatureType.METERED: _fits_number,
}


def check_value(feature: Feature, value: Scalar, param: str) -> list[Problem]:
    """Does `value` fit the feature's type (a boolean, a number, one of the options)?"""
    message = _VALUE_CHECKS[feature.type](feature, value)
    if message is None:
        return []
    return [Problem(param, "invalid_value", f"The value {value!r} {message}.")]


def check_feature(feature: Feature) -> list[Problem]:
    """Rules that tie a feature's fields to its type."""
    problems: list[Problem] = []
    if feature.type is FeatureType.METERED:
        if feature.meter is None:
            problems.append(
                Problem("meter", "meter_required", "A metered feature needs a `meter`.")
            )
        else:
            problems += _check_meter_property(feature)
    elif feature.meter is not None:
        problems.append(
            Problem("meter", "meter_not_allowed", "Only metered features have a `meter`.")
        )
    if feature.type is FeatureType.ENUM:
        if not feature.options:
            problems.append(
                Problem("options", "options_required", "An enum feature needs `options`.")
            )
        else:
            problems += _check_unique(
                [o.key for o in feature.options], "options", "key", "option key"
            )
    elif feature.options is not None:
        problems.append(
            Problem("options", "options_not_allowed", "Only enum features have `options`.")
        )
    for name in ("default", "global_value"):
        value = getattr(feature, name)
        if value is not None:
            problems += check_value(feature, value, name)
    return problems


def _check_meter_property(feature: Feature) -> list[Problem]:
    assert feature.meter is not None  # noqa: S101 - the caller checked
    aggregation = feature.meter.aggregation
    if aggregation is Aggregation.UNIQUE_COUNT and feature.meter.property is None:
        return [
            Problem(
                "meter.property",
                "property_required",
                "A `unique_count` meter counts distinct values of a `property`: name it.",
            )
        ]
    if aggregation in (Aggregation.COUNT, Aggregation.LATEST) and feature.meter.property:
        return [
            Problem(
                "meter.property",
                "property_not_allowed",
                f"A `{aggregation}` meter reads no property; leave `property` null.",
            )
        ]
    return []


def _check_unique(keys: list[str], param: str, field: str, what: str) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for index, key in enumerate(keys):
        if key in seen:
            problems.append(
                Problem(
                    f"{param}.{index}.{field}", f"duplicate_{field}", f"Duplicate {what} {key!r}."
                )
            )
        seen.add(key)
    return problems


def normalize_entitlement(feature: Feature, entitlement: Entitlement) -> Entitlement:
    """Fill a metered entitlement's defaults (monthly, calendar reset) so storage is explicit."""
    if feature.type is not FeatureType.METERED:
        return entitlement
    return replace(
        entitlement,
        period=entitlement.period or Period.MONTH,
        reset=entitlement.reset or Reset.CALENDAR,
    )


def check_entitlement(feature: Feature, entitlement: Entitlement, param: str) -> list[Problem]:
    """Does the entitlement fit its feature: value type, unlimited, metered-only fields?"""
    where = f"{param}." if param else ""
    problems: list[Problem] = []
    can_be_unlimited = feature.type in (FeatureType.NUMERIC, FeatureType.METERED)
    if entitlement.unlimited:
        if not can_be_unlimited:
            problems.append(
                Problem(
                    f"{where}unlimited",
                    "unlimited_not_allowed",
                    f"A {feature.type} feature cannot be unlimited.",
                )
            )
        if entitlement.value is not None:
            problems.append(
                Problem(
                    f"{where}value",
                    "value_with_unlimited",
                    "Give either a `value` or `unlimited: true`, not both.",
                )
            )
    elif entitlement.value is None:
        hint = " or `unlimited: true`" if can_be_unlimited else ""
        problems.append(
            Problem(
                f"{where}value", "value_required", f"Feature {feature.key!r} needs a `value`{hint}."
            )
        )
    else:
        problems += check_value(feature, entitlement.value, f"{where}value")
    if feature.type is FeatureType.METERED:
        problems += _check_metered_entitlement(entitlement, where)
    else:
        for name in ("period", "reset", "overage"):
            if getattr(entitlement, name) is not None:
                problems.append(_metered_only(where, name, feature))
        if entitlement.soft_limit:
            problems.append(_metered_only(where, "soft_limit", feature))
    problems += _check_credit_cost(entitlement, where)
    return problems


def _check_credit_cost(entitlement: Entitlement, where: str) -> list[Problem]:
    if entitlement.credit is None and entitlement.credit_cost is None:
        return []
    if entitlement.credit is None:
        return [
            Problem(
                f"{where}credit",
                "credit_required",
                "`credit_cost` needs a `credit`: the credit type each unit costs.",
            )
        ]
    cost = entitlement.credit_cost
    if cost is None or not 0 < cost <= MAX_SAFE_NUMBER:
        return [
            Problem(
                f"{where}credit_cost",
                "invalid_credit_cost",
                "A credit-priced entitlement needs a `credit_cost` above 0: what each unit costs.",
            )
        ]
    return []


def _metered_only(where: str, name: str, feature: Feature) -> Problem:
    return Problem(
        f"{where}{name}",
        "metered_only",
        f"`{name}` applies to metered features only; {feature.key!r} is {feature.type}.",
    )


def _check_metered_entitlement(entitlement: Entitlement, where: str) -> list[Problem]:
    problems = []
    if entitlement.period is Period.ALL_TIME and entitlement.reset is Reset.BILLING_CYCLE:
        problems.append(
            Problem(
                f"{where}reset",
                "reset_without_period",
                "An `all_time` limit never resets; `billing_cycle` applies to periodic limits.",
            )
        )
    if entitlement.overage is not None:
        if entitlement.unlimited:
            problems.append(
                Problem(
                    f"{where}overage",
                    "overage_with_unlimited",
                    "An unlimited entitlement has no overage.",
                )
            )
        elif not entitlement.soft_limit:
            problems.append(
                Problem(
                    f"{where}overage",
                    "overage_requires_soft_limit",
                    "Overage is charged past a soft limit: set `soft_limit: true`.",
                )
            )
    return problems


def check_plan(
    plan: Plan, features: Mapping[str, Feature], already_entitled: Collection[str] = ()
) -> list[Problem]:
    """Rules of a whole plan; `features` are the environment's, by key.

    A feature the plan already had may since have been archived and stays allowed;
    newly naming an archived feature is not.
    """
    problems: list[Problem] = []
    if plan.is_default and plan.type is PlanType.ADD_ON:
        problems.append(
            Problem("is_default", "add_on_default", "An add-on cannot be a default plan.")
        )
    problems += _check_unique(
        [e.feature for e in plan.entitlements], "entitlements", "feature", "entitlement for"
    )
    for index, entitlement in enumerate(plan.entitlements):
        param = f"entitlements.{index}"
        feature = features.get(entitlement.feature)
        if feature is None:
            problems.append(
                Problem(
                    f"{param}.feature",
                    "feature_not_found",
                    f"There is no feature {entitlement.feature!r} in this environment.",
                )
            )
            continue
        if feature.status is FeatureStatus.ARCHIVED and feature.key not in already_entitled:
            problems.append(
                Problem(
                    f"{param}.feature",
                    "feature_archived",
                    f"Feature {feature.key!r} is archived; it cannot be added to a plan.",
                )
            )
        problems += check_entitlement(feature, entitlement, param)
    problems += _check_prices(plan)
    return problems


def _check_prices(plan: Plan) -> list[Problem]:
    problems = []
    offered: set[tuple[str, str]] = set()
    defaults = 0
    for index, price in enumerate(plan.prices):
        param = f"prices.{index}"
        defaults += price.default
        if price.default and defaults > 1:
            problems.append(
                Problem(
                    f"{param}.default", "duplicate_default_price", "Only one price is the default."
                )
            )
        currencies = [(price.currency, f"{param}.currency")] + [
            (r.currency, f"{param}.regional.{i}.currency") for i, r in enumerate(price.regional)
        ]
        for currency, where in currencies:
            if not is_currency(currency):
                problems.append(
                    Problem(where, "invalid_currency", f"{currency!r} is not an ISO 4217 currency.")
                )
            elif (price.interval, currency) in offered:
                problems.append(
                    Problem(
                        where,
                        "duplicate_price",
                        f"The plan already has a {price.interval} price in {currency}.",
                    )
                )
            offered.add((price.interval, currency))
    return problems


_LIST_OPERATORS = frozenset({"in", "not_in"})
_PRESENCE_OPERATORS = frozenset({"exists", "not_exists"})
_DATE_OPERATORS = frozenset({"before", "after"})


def check_rules(
    feature: Feature,
    rules: Sequence[Rule],
    features: Mapping[str, Feature],
    plans: Collection[str],
) -> list[Problem]:
    """A feature's rules: values fit the feature, conditions name what they need and exist."""
    problems: list[Problem] = []
    for index, rule in enumerate(rules):
        where = f"{index}"
        if rule.unlimited:
            problems += check_entitlement(feature, Entitlement(feature.key, unlimited=True), where)
        elif rule.value is None:
            problems.append(Problem(f"{where}.value", "value_required", "A rule needs a `value`."))
        else:
            problems += check_value(feature, rule.value, f"{where}.value")
        for g, group in enumerate(rule.conditions):
            if not group:
                problems.append(
                    Problem(
                        f"{where}.conditions.{g}",
                        "empty_condition_group",
                        "A group of conditions needs at least one condition.",
                    )
                )
            for c, condition in enumerate(group):
                problems += _check_condition(
                    condition, f"{where}.conditions.{g}.{c}", features, plans
                )
    return problems


def _check_condition(
    condition: Condition, where: str, features: Mapping[str, Feature], plans: Collection[str]
) -> list[Problem]:
    return _check_condition_subject(condition, where, features, plans) + _check_condition_value(
        condition, where
    )


def _check_condition_subject(
    condition: Condition, where: str, features: Mapping[str, Feature], plans: Collection[str]
) -> list[Problem]:
    """The condition names what its type needs, and what it names exists."""
    problems = []
    if condition.type is ConditionType.TRAIT and not condition.trait:
        problems.append(Problem(f"{where}.trait", "trait_required", "Name the `trait`."))
    if condition.type is ConditionType.USAGE:
        usage_of = features.get(condition.feature or "")
        if usage_of is None or usage_of.type is not FeatureType.METERED:
            problems.append(
                Problem(
                    f"{where}.feature",
                    "metered_feature_required",
                    "A `usage` condition names a metered feature in `feature`.",
                )
            )
    if condition.type is ConditionType.CREDITS and not condition.credit:
        problems.append(Problem(f"{where}.credit", "credit_required", "Name the `credit`."))
    if condition.type is ConditionType.PLAN:
        value = condition.value
        named = value if isinstance(value, list | tuple) else [value]
        for key in named:
            if isinstance(key, str) and key not in plans:
                problems.append(
                    Problem(f"{where}.value", "plan_not_found", f"There is no plan {key!r}.")
                )
    return problems


def _check_condition_value(condition: Condition, where: str) -> list[Problem]:
    """The value has the shape its operator takes."""
    problems = []
    op, value = condition.op.value, condition.value
    if op in _PRESENCE_OPERATORS:
        if value is not None:
            problems.append(
                Problem(f"{where}.value", "value_not_allowed", f"`{op}` takes no `value`.")
            )
    elif op in _LIST_OPERATORS:
        if not isinstance(value, list | tuple) or not value:
            problems.append(
                Problem(f"{where}.value", "list_required", f"`{op}` takes a non-empty list.")
            )
    elif value is None or isinstance(value, list | tuple):
        problems.append(Problem(f"{where}.value", "value_required", f"`{op}` takes one value."))
    elif op in _DATE_OPERATORS and not _is_iso_date(value):
        problems.append(
            Problem(
                f"{where}.value",
                "date_required",
                f"`{op}` takes an ISO date or timestamp, such as 2026-11-22.",
            )
        )
    return problems


def _is_iso_date(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True

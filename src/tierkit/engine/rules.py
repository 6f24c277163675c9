"""Targeting rules: conditions (an AND of OR-groups) and percentage rollouts.

Comparisons are typed: numbers compare as numbers (numeric strings too), ISO dates as instants,
booleans as booleans ("true"/"false" too), other strings as text. A missing subject never
matches, except with `not_exists`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from tierkit.engine.catalog import Scalar
from tierkit.engine.numbers import finite_number


class ConditionType(StrEnum):
    TRAIT = "trait"
    PLAN = "plan"
    COMPANY = "company"
    USER = "user"
    USAGE = "usage"
    CREDITS = "credits"


class Operator(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    BEFORE = "before"
    AFTER = "after"


class Entity(StrEnum):
    COMPANY = "company"
    USER = "user"


class RolloutBy(StrEnum):
    COMPANY = "company"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Condition:
    type: ConditionType
    op: Operator
    value: Any = None
    trait: str | None = None
    entity: Entity = Entity.COMPANY
    feature: str | None = None  # for `usage`
    credit: str | None = None  # for `credits`


@dataclass(frozen=True, slots=True)
class Rollout:
    percent: float
    by: RolloutBy = RolloutBy.COMPANY


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    value: Scalar | None = None
    unlimited: bool = False
    conditions: tuple[tuple[Condition, ...], ...] = ()
    rollout: Rollout | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """What conditions look at, for one evaluation."""

    company_key: str
    company_traits: Mapping[str, Scalar]
    user_key: str | None
    user_traits: Mapping[str, Scalar]
    plans: frozenset[str]
    usage: Mapping[str, float]
    credits: Mapping[str, float]


# --- typed values -------------------------------------------------------------------------


def _as_number(value: object) -> float | None:
    """A number, or a string that spells one (traits arrive as text from many sources)."""
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return finite_number(value)


def _as_instant(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _equal(subject: object, value: object) -> bool:
    if isinstance(value, bool) or isinstance(subject, bool):
        return _as_bool(subject) is not None and _as_bool(subject) == _as_bool(value)
    left, right = _as_number(subject), _as_number(value)
    if left is not None and right is not None:
        return left == right
    return isinstance(subject, str) and isinstance(value, str) and subject == value


def _order(subject: object, value: object) -> int | None:
    """-1, 0 or 1 comparing typed values; None when they don't compare."""
    left_n, right_n = _as_number(subject), _as_number(value)
    if left_n is not None and right_n is not None:
        return (left_n > right_n) - (left_n < right_n)
    left_t, right_t = _as_instant(subject), _as_instant(value)
    if left_t is not None and right_t is not None:
        return (left_t > right_t) - (left_t < right_t)
    if isinstance(subject, str) and isinstance(value, str):
        return (subject > value) - (subject < value)
    return None


def _instant_order(subject: object, value: object) -> int | None:
    left, right = _as_instant(subject), _as_instant(value)
    if left is None or right is None:
        return None
    return (left > right) - (left < right)


def _ordered(test: Callable[[int], bool], order: Callable[[object, object], int | None]) -> Any:
    def compare(subject: object, value: object) -> bool:
        result = order(subject, value)
        return result is not None and test(result)

    return compare


def _in(subject: object, value: object) -> bool:
    items = value if isinstance(value, list | tuple) else [value]
    return any(_equal(subject, item) for item in items)


def _contains(subject: object, value: object) -> bool:
    if isinstance(subject, str) and isinstance(value, str):
        return value in subject
    if isinstance(subject, list | tuple | frozenset | set):
        return any(_equal(item, value) for item in subject)
    return False


OPERATORS: Mapping[Operator, Callable[[object, object], bool]] = {
    Operator.EQ: _equal,
    Operator.NE: lambda subject, value: not _equal(subject, value),
    Operator.GT: _ordered(lambda r: r > 0, _order),
    Operator.GTE: _ordered(lambda r: r >= 0, _order),
    Operator.LT: _ordered(lambda r: r < 0, _order),
    Operator.LTE: _ordered(lambda r: r <= 0, _order),
    Operator.IN: _in,
    Operator.NOT_IN: lambda subject, value: not _in(subject, value),
    Operator.CONTAINS: _contains,
    Operator.EXISTS: lambda subject, value: True,
    Operator.BEFORE: _ordered(lambda r: r < 0, _instant_order),
    Operator.AFTER: _ordered(lambda r: r > 0, _instant_order),
}
"""How each operator compares a present subject with the condition's value."""


# --- conditions ---------------------------------------------------------------------------


def _trait_subject(condition: Condition, subject: Subject) -> object:
    traits = subject.user_traits if condition.entity is Entity.USER else subject.company_traits
    return traits.get(condition.trait or "")


def _plan_matches(condition: Condition, subject: Subject) -> bool:
    # A company has a set of plans: eq/in ask "has any of", ne/not_in "has none of".
    wanted = condition.value if isinstance(condition.value, list | tuple) else [condition.value]
    has_any = any(isinstance(plan, str) and plan in subject.plans for plan in wanted)
    if condition.op in (Operator.EQ, Operator.IN, Operator.CONTAINS):
        return has_any
    if condition.op in (Operator.NE, Operator.NOT_IN):
        return not has_any
    if condition.op is Operator.EXISTS:
        return bool(subject.plans)
    if condition.op is Operator.NOT_EXISTS:
        return not subject.plans
    return False


_SUBJECTS: Mapping[ConditionType, Callable[[Condition, Subject], object]] = {
    ConditionType.TRAIT: _trait_subject,
    ConditionType.COMPANY: lambda condition, subject: subject.company_key,
    ConditionType.USER: lambda condition, subject: subject.user_key,
    ConditionType.USAGE: lambda condition, subject: subject.usage.get(condition.feature or "", 0),
    ConditionType.CREDITS: lambda condition, subject: subject.credits.get(condition.credit or ""),
}


def condition_matches(condition: Condition, subject: Subject) -> bool:
    if condition.type is ConditionType.PLAN:
        return _plan_matches(condition, subject)
    value = _SUBJECTS[condition.type](condition, subject)
    if condition.op is Operator.NOT_EXISTS:
        return value is None
    if value is None:
        return False
    return OPERATORS[condition.op](value, condition.value)


def rollout_bucket(feature_key: str, key: str) -> int:
    """A stable bucket in [0, 10000) for (feature, key): the same on every process and machine."""
    digest = hashlib.sha256(f"{feature_key}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def in_rollout(rollout: Rollout, feature_key: str, subject: Subject) -> bool:
    """In when the bucket is under the percent: raising the percent only adds keys."""
    key = subject.company_key if rollout.by is RolloutBy.COMPANY else subject.user_key
    if key is None:
        return False
    return rollout_bucket(feature_key, key) < round(rollout.percent * 100)


def rule_matches(rule: Rule, feature_key: str, subject: Subject) -> bool:
    """Every group has a matching condition, and the subject is in the rollout (if any)."""
    for group in rule.conditions:
        if not any(condition_matches(c, subject) for c in group):
            return False
    return rule.rollout is None or in_rollout(rule.rollout, feature_key, subject)


def first_matching_rule(rules: Sequence[Rule], feature_key: str, subject: Subject) -> Rule | None:
    return next((rule for rule in rules if rule_matches(rule, feature_key, subject)), None)

"""The rivals of Tierkit's local (in-process) checks: a shared workload, adapters for the PyPI
engines `growthbook` (4.x) and `flagsmith-flag-engine` (11.x), and a timing helper.

`bench/local_eval.py` imports this module; run alone it builds the workload, cross-checks both
adapters against `Workload.expected` and times a few checks:

    .venv/bin/python bench/local_eval_rivals.py [--companies 100000] [--sample 10000] [--seconds 1]

What is sampled: the workload always has `--companies` companies (100,000 by default), and
`verify` draws its 2,000 (company, feature) pairs from all of them, building per-company engine
objects on demand. The timed loops walk `--sample` companies (10,000 by default, a random
subset in random order, see `sample_indices`) whose per-company objects were built beforehand,
as an app would hold them in a cache: building one for each of 100,000 companies costs time
and memory (a `GrowthBook` instance each) without changing what a check costs.

Neither rival has a notion of usage: for a metered feature both adapters return the limit the
plan grants (the feature's value), never whether the company is within it; `Workload.usage` is
for Tierkit, whose checks compare usage with the limit.
"""

from __future__ import annotations

import argparse
import itertools
import math
import operator
import random
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from flag_engine.context.types import (
    EvaluationContext,
    FeatureContext,
    SegmentCondition,
    SegmentContext,
    SegmentRule,
)
from flag_engine.engine import get_evaluation_result
from flag_engine.segments.types import ConditionOperator
from growthbook import Feature, GrowthBook

T = TypeVar("T")
Json = dict[str, Any]

PLANS = ("free", "pro", "enterprise")
PLAN_WEIGHTS = (0.5, 0.35, 0.15)
PLAN_NAMES = {"free": "Free", "pro": "Pro", "enterprise": "Enterprise"}
TIERS = ("gold", "silver", "bronze")
REGIONS = ("eu", "us", "apac")
ENUM_OPTIONS = ("basic", "standard", "premium")
METERED_LIMITS = {"free": 100, "pro": 10_000, "enterprise": 1_000_000}
BOOLEAN_KEYS = tuple(f"f{i:02d}" for i in range(10))
RULED_KEYS = BOOLEAN_KEYS[:5]  # f00..f04: no plan entitles them, a rule may switch them on
ENTITLED_BOOLEAN_KEYS = BOOLEAN_KEYS[5:]  # f05..f09
ENUM_KEYS = tuple(f"f{i:02d}" for i in range(10, 15))
METERED_KEYS = tuple(f"f{i:02d}" for i in range(15, 20))
FEATURE_KEYS = BOOLEAN_KEYS + ENUM_KEYS + METERED_KEYS

VERIFY_PAIRS = 2_000
SAMPLE = 10_000
BATCH = 100


# --- Workload -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Workload:
    """Catalog, companies and usage in Tierkit's API JSON shapes (plain dicts and lists)."""

    features: list[Json]
    plans: list[Json]
    rules: dict[str, list[Json]]
    companies: list[Json]
    usage: dict[str, dict[str, int]]

    def catalog(self) -> Json:
        """Features, plans and rules as one catalog document (`codec.catalog_from_json`)."""
        return {"features": self.features, "plans": self.plans, "rules": self.rules}

    def expected(self, company: Mapping[str, Any] | int, feature: str) -> object:
        """The reference answer: the first rule whose conditions hold, else the company's plan
        entitlement, else the feature's default. For a metered feature: its limit."""
        if isinstance(company, int):
            company = self.companies[company]
        traits = company["traits"]
        for rule in self.rules.get(feature, ()):
            if all(any(_holds(c, traits) for c in group) for group in rule["conditions"]):
                return rule["value"]
        for plan in self.plans:
            if plan["key"] == company["plan"]:
                for entitlement in plan["entitlements"]:
                    if entitlement["feature"] == feature:
                        return entitlement["value"]
        for definition in self.features:
            if definition["key"] == feature:
                return definition["default"]
        raise KeyError(feature)


_REFERENCE_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "in": lambda actual, allowed: actual in allowed,
    "not_in": lambda actual, allowed: actual not in allowed,
}


def _holds(condition: Mapping[str, Any], traits: Mapping[str, Any]) -> bool:
    if condition["type"] != "trait" or condition.get("entity", "company") != "company":
        raise NotImplementedError(f"the workload only has company trait conditions: {condition}")
    actual = traits.get(condition["trait"])
    return actual is not None and _REFERENCE_OPS[condition["op"]](actual, condition["value"])


def _feature_definitions() -> list[Json]:
    options = [{"key": key, "name": key.title()} for key in ENUM_OPTIONS]
    features: list[Json] = [
        {"key": key, "name": key, "type": "boolean", "default": False} for key in BOOLEAN_KEYS
    ]
    features += [
        {"key": key, "name": key, "type": "enum", "options": options, "default": "basic"}
        for key in ENUM_KEYS
    ]
    features += [
        {
            "key": key,
            "name": key,
            "type": "metered",
            "meter": {"event": f"e{key[1:]}", "aggregation": "sum", "property": None},
            "default": 0,
        }
        for key in METERED_KEYS
    ]
    return features


def _plan_definitions() -> list[Json]:
    plans = []
    for rank, plan in enumerate(PLANS):
        entitlements: list[Json] = [
            {"feature": key, "value": plan != "free"} for key in ENTITLED_BOOLEAN_KEYS
        ]
        entitlements += [{"feature": key, "value": ENUM_OPTIONS[rank]} for key in ENUM_KEYS]
        entitlements += [
            {"feature": key, "value": METERED_LIMITS[plan], "period": "month"}
            for key in METERED_KEYS
        ]
        plans.append(
            {"key": plan, "name": PLAN_NAMES[plan], "type": "base", "entitlements": entitlements}
        )
    return plans


def _gold_west_rule() -> Json:
    """tier == gold AND region in [eu, us] AND seats >= 50 (about a fifth of the companies)."""
    return {
        "name": "gold_west",
        "value": True,
        "conditions": [
            [{"type": "trait", "entity": "company", "trait": "tier", "op": "eq", "value": "gold"}],
            [
                {
                    "type": "trait",
                    "entity": "company",
                    "trait": "region",
                    "op": "in",
                    "value": ["eu", "us"],
                }
            ],
            [{"type": "trait", "entity": "company", "trait": "seats", "op": "gte", "value": 50}],
        ],
        "rollout": None,
    }


def build_workload(companies: int = 100_000, seed: int = 7) -> Workload:
    """20 features, three base plans, one rule on each of f00..f04, and `companies` companies
    with traits, a plan and this period's usage of f15..f19, all from `random.Random(seed)`.

    Tiers and regions are uniform and seats uniform in 1..500, so about 1/3 * 2/3 * 0.9 = 20%
    of the companies match the rule; plans are free 50%, pro 35%, enterprise 15%; usage is
    uniform in 0..1.3 times the plan's limit, so about a quarter of the companies are over it.
    """
    rng = random.Random(seed)
    rows: list[Json] = []
    usage: dict[str, dict[str, int]] = {}
    for number in range(1, companies + 1):
        key = f"c{number:06d}"
        traits = {
            "tier": rng.choice(TIERS),
            "region": rng.choice(REGIONS),
            "seats": rng.randint(1, 500),
        }
        plan = rng.choices(PLANS, PLAN_WEIGHTS)[0]
        rows.append({"key": key, "traits": traits, "plan": plan})
        limit = METERED_LIMITS[plan]
        usage[key] = {feature: int(limit * 1.3 * rng.random()) for feature in METERED_KEYS}
    return Workload(
        features=_feature_definitions(),
        plans=_plan_definitions(),
        rules={key: [_gold_west_rule()] for key in RULED_KEYS},
        companies=rows,
        usage=usage,
    )


def _entitled_values(workload: Workload) -> dict[str, dict[str, object]]:
    """feature -> plan -> the value that plan entitles (features no plan names are absent)."""
    values: dict[str, dict[str, object]] = {}
    for plan in workload.plans:
        for entitlement in plan["entitlements"]:
            values.setdefault(entitlement["feature"], {})[plan["key"]] = entitlement["value"]
    return values


def _rule_conditions(rule: Json) -> list[list[Json]]:
    if rule.get("rollout"):
        raise NotImplementedError("the workload's rules have no rollout")
    groups: list[list[Json]] = rule["conditions"]
    for group in groups:
        for condition in group:
            if condition["type"] != "trait" or condition.get("entity", "company") != "company":
                raise NotImplementedError(f"only company trait conditions: {condition}")
    return groups


# --- Checkers -------------------------------------------------------------------------------


class Checker(Protocol):
    """One engine's answer to "what is `feature_key` for company `company_index`?".

    `prepare(i)` builds what the engine needs per company (what an app would cache for a
    company it has seen); `check` does it on a miss, so call `prepare` on the timed companies
    first (see `prepare_sample`)."""

    name: str

    def prepare(self, company_index: int) -> None: ...

    def check(self, company_index: int, feature_key: str) -> object: ...


def _growthbook_condition(groups: list[list[Json]]) -> Json:
    """AND of ORs of trait conditions as a GrowthBook (Mongo-like) condition: a flat
    `{"tier": "gold", "region": {"$in": [...]}, "seats": {"$gte": 50}}` when every group has
    one condition on a distinct trait, else `{"$and": [{"$or": [...]}, ...]}`."""
    operators = {"ne": "$ne", "gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}
    operators |= {"in": "$in", "not_in": "$nin"}

    def one(condition: Json) -> Json:
        op, value = condition["op"], condition["value"]
        return {condition["trait"]: value if op == "eq" else {operators[op]: value}}

    traits = [group[0]["trait"] for group in groups if len(group) == 1]
    if len(traits) == len(groups) and len(set(traits)) == len(traits):
        return {key: value for group in groups for key, value in one(group[0]).items()}
    return {"$and": [{"$or": [one(c) for c in group]} for group in groups]}


def growthbook_payload(workload: Workload) -> Json:
    """The workload as a GrowthBook features payload (what `/api/features/<key>` serves):
    each feature's rules are force rules, first one per Tierkit rule (its conditions on the
    company's traits), then one per plan with `condition: {"plan": <key>}`; the feature's
    default is its `defaultValue`."""
    entitled = _entitled_values(workload)
    features: Json = {}
    for definition in workload.features:
        key = definition["key"]
        rules: list[Json] = [
            {
                "id": f"{key}-{rule['name']}",
                "condition": _growthbook_condition(_rule_conditions(rule)),
                "force": rule["value"],
            }
            for rule in workload.rules.get(key, ())
        ]
        rules += [
            {"id": f"{key}-plan-{plan}", "condition": {"plan": plan}, "force": value}
            for plan, value in entitled.get(key, {}).items()
        ]
        features[key] = {"defaultValue": definition["default"], "rules": rules}
    return {"features": features}


class GrowthBookChecker:
    """`growthbook.GrowthBook` (the synchronous SDK class) with the payload built once.

    The docs recommend one `GrowthBook` instance per request, with the user's attributes and
    the cached features; here an instance per company, built once by `prepare` with the
    company's traits plus `plan` as attributes and the features already parsed into
    `growthbook.Feature` objects (shared by every instance, as `set_features` allows). The
    timed call is `gb.get_feature_value(feature_key, None)` on that cached instance: it builds
    an evaluation context and walks the feature's force rules in order (no tracking or usage
    callbacks are registered, so none run). No value of the workload is None, so the fallback
    never hides a miss."""

    name = "growthbook"

    def __init__(self, workload: Workload) -> None:
        self.payload = growthbook_payload(workload)
        self._features = {
            key: Feature(defaultValue=data["defaultValue"], rules=data["rules"])
            for key, data in self.payload["features"].items()
        }
        self._companies = workload.companies
        self._instances: list[GrowthBook | None] = [None] * len(workload.companies)

    def _build(self, company_index: int) -> GrowthBook:
        company = self._companies[company_index]
        attributes = {"id": company["key"], "plan": company["plan"], **company["traits"]}
        instance = GrowthBook(attributes=attributes, features=self._features)
        self._instances[company_index] = instance
        return instance

    def prepare(self, company_index: int) -> None:
        if self._instances[company_index] is None:
            self._build(company_index)

    def check(self, company_index: int, feature_key: str) -> object:
        instance = self._instances[company_index] or self._build(company_index)
        return instance.get_feature_value(feature_key, None)


def growthbook_checker(workload: Workload) -> GrowthBookChecker:
    return GrowthBookChecker(workload)


_FLAGSMITH_OPERATORS: dict[str, ConditionOperator] = {
    "eq": "EQUAL",
    "ne": "NOT_EQUAL",
    "gt": "GREATER_THAN",
    "gte": "GREATER_THAN_INCLUSIVE",
    "lt": "LESS_THAN",
    "lte": "LESS_THAN_INCLUSIVE",
    "in": "IN",
}


def _flagsmith_condition(condition: Json) -> SegmentCondition:
    """Flagsmith stores condition values as strings (an IN's as a list of strings) and casts
    them to the trait's type when it compares."""
    op = _FLAGSMITH_OPERATORS[condition["op"]]
    value = condition["value"]
    if op == "IN":
        return {"property": condition["trait"], "operator": "IN", "value": [str(v) for v in value]}
    return {"property": condition["trait"], "operator": op, "value": str(value)}


def _flagsmith_rules(groups: list[list[Json]]) -> list[SegmentRule]:
    """One ALL rule: the conditions of one-condition groups directly, each larger group as an
    ANY sub-rule."""
    rule: SegmentRule = {
        "type": "ALL",
        "conditions": [_flagsmith_condition(g[0]) for g in groups if len(g) == 1],
    }
    if any_rules := [
        {"type": "ANY", "conditions": [_flagsmith_condition(c) for c in g]}
        for g in groups
        if len(g) > 1
    ]:
        rule["rules"] = any_rules  # type: ignore[typeddict-item]
    return [rule]


def _flagsmith_state(
    key: str, value: object, *, boolean: bool, priority: float | None = None
) -> FeatureContext[Any]:
    """A boolean feature is Flagsmith's on/off flag (`enabled`, no value); any other feature
    is enabled with a value (an enum option's key as a string, a limit as a number)."""
    state: FeatureContext[Any] = (
        {"key": key, "name": key, "enabled": bool(value), "value": None}
        if boolean
        else {"key": key, "name": key, "enabled": True, "value": value}
    )
    if priority is not None:
        state["priority"] = priority
    return state


def flagsmith_environment(workload: Workload) -> EvaluationContext[Any, Any]:
    """The workload as a Flagsmith evaluation context without an identity (what the SDK maps
    the environment document to): one environment default per feature, one segment per
    Tierkit rule (its conditions on the identity's traits, overriding its feature at priority
    0) and one segment per plan (`plan EQUAL <key>`, overriding every feature the plan
    entitles at priority 1; lower wins)."""
    booleans = {f["key"] for f in workload.features if f["type"] == "boolean"}
    features = {
        f["key"]: _flagsmith_state(f["key"], f["default"], boolean=f["key"] in booleans)
        for f in workload.features
    }
    segments: dict[str, SegmentContext[Any, Any]] = {}
    for feature_key, rules in workload.rules.items():
        for number, rule in enumerate(rules):
            key = f"{feature_key}-{rule['name']}"
            segments[key] = {
                "key": key,
                "name": key,
                "rules": _flagsmith_rules(_rule_conditions(rule)),
                "overrides": [
                    _flagsmith_state(
                        feature_key,
                        rule["value"],
                        boolean=feature_key in booleans,
                        priority=number,
                    )
                ],
            }
    plan_priority = 1 + max((len(rules) for rules in workload.rules.values()), default=0)
    for plan in workload.plans:
        key = f"plan-{plan['key']}"
        segments[key] = {
            "key": key,
            "name": key,
            "rules": [
                {
                    "type": "ALL",
                    "conditions": [{"property": "plan", "operator": "EQUAL", "value": plan["key"]}],
                }
            ],
            "overrides": [
                _flagsmith_state(
                    e["feature"],
                    e["value"],
                    boolean=e["feature"] in booleans,
                    priority=plan_priority,
                )
                for e in plan["entitlements"]
            ],
        }
    return {
        "environment": {"key": "bench", "name": "bench"},
        "features": features,
        "segments": segments,
    }


def _flagsmith_identity(company: Json) -> Json:
    # `key` set here spares the engine copying the context to derive it on every call.
    return {
        "identifier": company["key"],
        "key": f"bench_{company['key']}",
        "traits": {"plan": company["plan"], **company["traits"]},
    }


class FlagsmithChecker:
    """`flag_engine.get_evaluation_result` on a cached per-company evaluation context.

    flag-engine 11 has no single-feature call: `get_evaluation_result(context)` evaluates
    every segment and every feature of the context (as the old `get_identity_feature_state`
    also did internally) and the SDK's `get_identity_flags` is exactly that call. `prepare`
    builds the company's context once (the environment's features and segments, shared, plus
    an identity with the company's traits and `plan`); the timed call is
    `get_evaluation_result(context)["flags"][feature_key]`, reading `enabled` for a boolean
    feature and `value` otherwise. So one check pays for all 20 flags and 8 segments."""

    name = "flagsmith"

    def __init__(self, workload: Workload) -> None:
        self.environment = flagsmith_environment(workload)
        self._booleans = frozenset(f["key"] for f in workload.features if f["type"] == "boolean")
        self._companies = workload.companies
        self._contexts: list[EvaluationContext[Any, Any] | None] = [None] * len(workload.companies)

    def _build(self, company_index: int) -> EvaluationContext[Any, Any]:
        identity = _flagsmith_identity(self._companies[company_index])
        context: EvaluationContext[Any, Any] = {**self.environment, "identity": identity}  # type: ignore[typeddict-item]
        self._contexts[company_index] = context
        return context

    def prepare(self, company_index: int) -> None:
        if self._contexts[company_index] is None:
            self._build(company_index)

    def check(self, company_index: int, feature_key: str) -> object:
        context = self._contexts[company_index] or self._build(company_index)
        flag = get_evaluation_result(context)["flags"][feature_key]
        return flag["enabled"] if feature_key in self._booleans else flag["value"]

    def flags(self, company_index: int) -> dict[str, object]:
        """Every feature's value from one `get_evaluation_result`: how the SDK is meant to be
        used (`get_identity_flags` once per request, then read many flags from the result)."""
        context = self._contexts[company_index] or self._build(company_index)
        booleans = self._booleans
        return {
            key: flag["enabled"] if key in booleans else flag["value"]
            for key, flag in get_evaluation_result(context)["flags"].items()
        }


class FlagsmithFeatureChecker:
    """The closest flag-engine 11 gets to evaluating one feature: a context per (company,
    feature) holding only that feature and the segments that override it. Not what the SDK
    does (it always evaluates the whole environment); a lower bound for the engine itself."""

    name = "flagsmith-1-feature"

    def __init__(self, workload: Workload) -> None:
        environment = flagsmith_environment(workload)
        segments = environment.get("segments") or {}
        self._sliced: dict[str, EvaluationContext[Any, Any]] = {}
        for key, feature in (environment.get("features") or {}).items():
            overriding = {
                segment_key: {
                    **segment,
                    "overrides": [o for o in segment.get("overrides", ()) if o["name"] == key],
                }
                for segment_key, segment in segments.items()
                if any(o["name"] == key for o in segment.get("overrides", ()))
            }
            self._sliced[key] = {
                "environment": environment["environment"],
                "features": {key: feature},
                "segments": overriding,  # type: ignore[typeddict-item]
            }
        self._booleans = frozenset(f["key"] for f in workload.features if f["type"] == "boolean")
        self._companies = workload.companies
        self._contexts: list[dict[str, EvaluationContext[Any, Any]] | None] = [None] * len(
            workload.companies
        )

    def _build(self, company_index: int) -> dict[str, EvaluationContext[Any, Any]]:
        identity = _flagsmith_identity(self._companies[company_index])
        contexts: dict[str, EvaluationContext[Any, Any]] = {
            key: {**sliced, "identity": identity}  # type: ignore[typeddict-item]
            for key, sliced in self._sliced.items()
        }
        self._contexts[company_index] = contexts
        return contexts

    def prepare(self, company_index: int) -> None:
        if self._contexts[company_index] is None:
            self._build(company_index)

    def check(self, company_index: int, feature_key: str) -> object:
        contexts = self._contexts[company_index] or self._build(company_index)
        flag = get_evaluation_result(contexts[feature_key])["flags"][feature_key]
        return flag["enabled"] if feature_key in self._booleans else flag["value"]


def flagsmith_checker(workload: Workload, *, one_feature: bool = False) -> Checker:
    """The SDK-faithful adapter (every check evaluates the whole environment), or with
    `one_feature` the per-feature lower bound (`FlagsmithFeatureChecker`)."""
    if one_feature:
        return FlagsmithFeatureChecker(workload)
    return FlagsmithChecker(workload)


def verify(
    checker: Checker, workload: Workload, *, pairs: int = VERIFY_PAIRS, seed: int = 11
) -> None:
    """Compare `checker` with `workload.expected` on `pairs` random (company, feature) pairs
    drawn from all the companies; raise AssertionError on the first mismatch (type included,
    so True is not 1 and "100" is not 100)."""
    rng = random.Random(seed)
    keys = [f["key"] for f in workload.features]
    for _ in range(pairs):
        index = rng.randrange(len(workload.companies))
        key = rng.choice(keys)
        got, want = checker.check(index, key), workload.expected(index, key)
        if got != want or type(got) is not type(want):
            company = workload.companies[index]
            raise AssertionError(
                f"{checker.name}: {key} for {company['key']} ({company['plan']}, "
                f"{company['traits']}) is {got!r}, expected {want!r}"
            )


def sample_indices(workload: Workload, count: int = SAMPLE, seed: int = 3) -> tuple[int, ...]:
    """`count` distinct company indices (all of them if fewer) in random order: what the timed
    loops walk."""
    total = len(workload.companies)
    return tuple(random.Random(seed).sample(range(total), min(count, total)))


def prepare_sample(checker: Checker, indices: Iterable[int]) -> float:
    """Build the per-company objects of `indices`; the seconds it took."""
    started = time.perf_counter()
    for index in indices:
        checker.prepare(index)
    return time.perf_counter() - started


# --- Timing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Per-call times of one `measure`: the median and 99th percentile over batches of
    `BATCH` calls (each batch's time divided by `BATCH`), and calls per second over the summed
    batch times."""

    median_us: float
    p99_us: float
    per_second: float
    calls: int


def cycle(items: Iterable[T]) -> Callable[[], T]:
    """A no-argument callable returning the items in turn, forever: the `__next__` of an
    `itertools.cycle` over a tuple, so a call is one C-level call that allocates nothing (the
    items already exist). For timed closures such as `lambda: check(next_index(), "f05")`."""
    return itertools.cycle(tuple(items)).__next__


def measure(call: Callable[[], object], *, seconds: float = 1.0) -> Timing:
    """Time `call`: after a warm-up (a tenth of `seconds`, at least 10 batches), call it in
    batches of `BATCH` between two `time.perf_counter_ns()` reads until `seconds` of batch
    time have passed. The garbage collector stays on: allocation-heavy calls pay for it, as
    they would in an app (it shows in p99). The times include the closure's own cost; see
    `measure_overhead`."""
    repeat = itertools.repeat
    clock = time.perf_counter_ns
    warm_until = clock() + int(seconds * 1e8)
    warm_batches = 0
    while warm_batches < 10 or clock() < warm_until:
        for _ in repeat(None, BATCH):
            call()
        warm_batches += 1
    budget = int(seconds * 1e9)
    spent = 0
    batches: list[int] = []
    while spent < budget:
        started = clock()
        for _ in repeat(None, BATCH):
            call()
        elapsed = clock() - started
        batches.append(elapsed)
        spent += elapsed
    batches.sort()
    p99 = batches[max(0, math.ceil(0.99 * len(batches)) - 1)]
    calls = len(batches) * BATCH
    return Timing(
        median_us=statistics.median(batches) / BATCH / 1e3,
        p99_us=p99 / BATCH / 1e3,
        per_second=calls / (spent / 1e9),
        calls=calls,
    )


def _noop(company_index: int, feature_key: str) -> object:
    return None


def measure_overhead(*, seconds: float = 1.0, items: int = SAMPLE) -> Timing:
    """What the harness costs per call: the same closure as `measure_checker`'s with a no-op
    Python function of the same arity in place of `check` (so the closure call, the `cycle`
    step and one Python call frame; a bound method's frame is a little dearer than a plain
    function's). Tens of nanoseconds on a current machine; subtract it when it matters."""
    next_index = cycle(range(items))
    check = _noop
    return measure(lambda: check(next_index(), "f05"), seconds=seconds)


def measure_checker(
    checker: Checker, feature_key: str, indices: Sequence[int], *, seconds: float = 1.0
) -> Timing:
    """Prepare the companies of `indices`, then time `checker.check(i, feature_key)` walking
    them in turn (the closure is `lambda: check(next_index(), feature_key)`)."""
    prepare_sample(checker, indices)
    next_index = cycle(indices)
    check = checker.check
    return measure(lambda: check(next_index(), feature_key), seconds=seconds)


# --- Running alone --------------------------------------------------------------------------

SHOWN = (("f05", "boolean"), ("f11", "enum"), ("f16", "metered"), ("f00", "rule"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--companies", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=SAMPLE, help="companies the checks walk")
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    arguments = parser.parse_args()

    started = time.perf_counter()
    workload = build_workload(arguments.companies)
    ruled = sum(workload.expected(c, "f00") is True for c in workload.companies)
    print(
        f"workload: {len(workload.companies):,} companies ({ruled / len(workload.companies):.0%}"
        f" match the rule), built in {time.perf_counter() - started:.2f}s"
    )
    indices = sample_indices(workload, arguments.sample)
    flagsmith = FlagsmithChecker(workload)
    checkers: list[Checker] = [
        growthbook_checker(workload),
        flagsmith,
        flagsmith_checker(workload, one_feature=True),
    ]
    for checker in checkers:
        verify(checker, workload)
        prepared = prepare_sample(checker, indices)
        print(
            f"{checker.name}: {VERIFY_PAIRS:,} checks match the reference; prepared "
            f"{len(indices):,} companies in {prepared:.2f}s"
        )
    overhead = measure_overhead(seconds=arguments.seconds, items=len(indices))
    print(f"harness overhead: {overhead.median_us * 1e3:.0f} ns per call (median), not subtracted")

    print(f"{'checker':<20} {'feature':<14} {'median µs':>10} {'p99 µs':>10} {'checks/s':>12}")
    for checker in checkers:
        for key, kind in SHOWN:
            timing = measure_checker(checker, key, indices, seconds=arguments.seconds)
            print(
                f"{checker.name:<20} {f'{key} ({kind})':<14} {timing.median_us:>10.2f} "
                f"{timing.p99_us:>10.2f} {timing.per_second:>12,.0f}"
            )
    next_index = cycle(indices)
    flags = flagsmith.flags
    timing = measure(lambda: flags(next_index()), seconds=arguments.seconds)
    count = len(workload.features)
    print(
        f"{'flagsmith':<20} {f'all {count} flags':<14} {timing.median_us:>10.2f} "
        f"{timing.p99_us:>10.2f} {timing.per_second:>12,.0f}"
        f"  ({timing.median_us / count:.2f} µs a flag)"
    )


if __name__ == "__main__":
    main()

"""Invariants of the engine over generated data (attrs' discipline): rollout bucketing is
deterministic and monotone, evaluation never raises on any catalog and customer state and always
gives a reason of the contract, and a bulk evaluation equals evaluating each feature alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tierkit.engine.catalog import (
    Entitlement,
    Feature,
    FeatureOption,
    FeatureStatus,
    FeatureType,
    Period,
    Plan,
    PlanStatus,
    PlanType,
    Reset,
    Scalar,
)
from tierkit.engine.codec import decision_to_json
from tierkit.engine.customers import Override, Subscription
from tierkit.engine.evaluate import (
    Catalog,
    CompanyState,
    Decision,
    Reason,
    UserState,
    evaluate,
    evaluate_all,
)
from tierkit.engine.rules import (
    Condition,
    ConditionType,
    Entity,
    Operator,
    Rollout,
    RolloutBy,
    Rule,
    Subject,
    condition_matches,
    in_rollout,
    rollout_bucket,
)

OPTIONS = ("email", "chat", "phone")
TRAITS = ("tier", "employees", "signed_up_at", "verified", "email", "missing")
REASONS = frozenset(reason.value for reason in Reason)

keys = st.text(min_size=1, max_size=40)
percents = st.floats(min_value=0, max_value=100, allow_nan=False)
# Hypothesis takes naive bounds and attaches the zone itself.
instants = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
numbers = st.one_of(
    st.integers(min_value=0, max_value=2**53), st.floats(min_value=0, max_value=1e12)
)
typed_strings = st.sampled_from(
    ["42", "4.5", "-1", "true", "False", "gold", "2026-01-01", "2026-05-01T12:00:00+02:00", "1e400"]
)
huge_integers = st.integers(min_value=10**308, max_value=10**400)
scalars: st.SearchStrategy[Any] = st.one_of(
    st.booleans(), st.integers(), huge_integers, st.floats(), st.text(max_size=8), typed_strings
)
condition_values: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.text(max_size=4), scalars, max_size=2),
)


def fitting_values(feature_type: FeatureType) -> st.SearchStrategy[Scalar]:
    """Values that fit a feature of `feature_type` (what the catalog's validation accepts)."""
    if feature_type is FeatureType.BOOLEAN:
        return st.booleans()
    if feature_type is FeatureType.ENUM:
        return st.sampled_from(OPTIONS)
    return numbers


@st.composite
def features(draw: st.DrawFn, key: str) -> Feature:
    feature_type = draw(st.sampled_from(FeatureType))
    values = fitting_values(feature_type)
    return Feature(
        key=key,
        name=key,
        type=feature_type,
        status=draw(st.sampled_from(FeatureStatus)),
        options=tuple(FeatureOption(o, o) for o in OPTIONS)
        if feature_type is FeatureType.ENUM
        else None,
        default=draw(st.none() | values),
        # Rarely set: a global value short-circuits everything else.
        global_value=draw(values) if draw(st.integers(0, 5)) == 0 else None,
    )


@st.composite
def entitlements(draw: st.DrawFn, feature: Feature) -> Entitlement:
    limited = feature.type in (FeatureType.NUMERIC, FeatureType.METERED)
    unlimited = limited and draw(st.booleans())
    metered = feature.type is FeatureType.METERED
    return Entitlement(
        feature=feature.key,
        value=None if unlimited else draw(fitting_values(feature.type)),
        unlimited=unlimited,
        period=draw(st.none() | st.sampled_from(Period)) if metered else None,
        reset=draw(st.none() | st.sampled_from(Reset)) if metered else None,
        soft_limit=metered and draw(st.booleans()),
    )


@st.composite
def plans(draw: st.DrawFn, key: str, catalog_features: list[Feature]) -> Plan:
    plan_type = draw(st.sampled_from(PlanType))
    chosen = draw(st.lists(st.sampled_from(catalog_features), unique_by=lambda f: f.key))
    return Plan(
        key=key,
        name=key,
        type=plan_type,
        group=draw(st.sampled_from(["default", "support"])),
        status=draw(st.sampled_from(PlanStatus)),
        is_default=plan_type is PlanType.BASE and draw(st.booleans()),
        entitlements=tuple(draw(entitlements(feature)) for feature in chosen),
    )


@st.composite
def conditions(draw: st.DrawFn, feature_keys: list[str]) -> Condition:
    return Condition(
        type=draw(st.sampled_from(ConditionType)),
        op=draw(st.sampled_from(Operator)),
        value=draw(condition_values),
        trait=draw(st.none() | st.sampled_from(TRAITS)),
        entity=draw(st.sampled_from(Entity)),
        feature=draw(st.none() | st.sampled_from(feature_keys)),
        credit=draw(st.none() | st.just("ai_credits")),
    )


@st.composite
def rules(draw: st.DrawFn, feature_keys: list[str]) -> Rule:
    unlimited = draw(st.booleans())
    return Rule(
        name=draw(st.text(max_size=8)),
        value=None if unlimited else draw(st.none() | scalars),
        unlimited=unlimited,
        conditions=tuple(
            tuple(group)
            for group in draw(
                st.lists(st.lists(conditions(feature_keys), min_size=1, max_size=3), max_size=3)
            )
        ),
        rollout=draw(
            st.none() | st.builds(Rollout, percent=percents, by=st.sampled_from(RolloutBy))
        ),
    )


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    count = draw(st.integers(min_value=1, max_value=5))
    catalog_features = [draw(features(f"f{index}")) for index in range(count)]
    feature_keys = [feature.key for feature in catalog_features]
    plan_count = draw(st.integers(min_value=0, max_value=4))
    return Catalog(
        features={feature.key: feature for feature in catalog_features},
        plans={
            f"p{index}": draw(plans(f"p{index}", catalog_features)) for index in range(plan_count)
        },
        rules={
            key: tuple(draw(st.lists(rules(feature_keys), max_size=3)))
            for key in draw(st.lists(st.sampled_from(feature_keys), unique=True))
        },
    )


traits = st.dictionaries(st.sampled_from(TRAITS), scalars, max_size=4)


@st.composite
def subscriptions(draw: st.DrawFn, catalog: Catalog, index: int) -> Subscription:
    plan = catalog.plans[draw(st.sampled_from(sorted(catalog.plans)))]
    return Subscription(
        id=f"sub_{index}",
        plan=plan.key,
        plan_type=plan.type,
        group=plan.group,
        quantity=draw(st.integers(min_value=1, max_value=5)),
        started_at=draw(instants),
        trial_ends_at=draw(st.none() | instants),
        ends_at=draw(st.none() | instants),
    )


@st.composite
def overrides(draw: st.DrawFn, catalog: Catalog) -> Override:
    feature = catalog.features[draw(st.sampled_from(sorted(catalog.features)))]
    unlimited = draw(st.booleans())
    return Override(
        Entitlement(
            feature.key,
            value=None if unlimited else draw(fitting_values(feature.type) | scalars),
            unlimited=unlimited,
            period=draw(st.none() | st.sampled_from(Period)),
        ),
        expires_at=draw(st.none() | instants),
    )


@st.composite
def companies(draw: st.DrawFn, catalog: Catalog) -> CompanyState:
    subscription_count = draw(st.integers(min_value=0, max_value=4)) if catalog.plans else 0
    return CompanyState(
        key=draw(keys),
        found=draw(st.booleans()),
        traits=draw(traits),
        subscriptions=tuple(draw(subscriptions(catalog, i)) for i in range(subscription_count)),
        overrides=tuple(draw(st.lists(overrides(catalog), max_size=3))),
        usage=draw(st.dictionaries(st.sampled_from(sorted(catalog.features)), numbers)),
        credits=draw(st.dictionaries(st.just("ai_credits"), numbers)),
        timezone=draw(
            st.sampled_from([UTC, timezone(timedelta(hours=-8)), timezone(timedelta(hours=5.5))])
        ),
    )


@st.composite
def situations(
    draw: st.DrawFn,
) -> tuple[Catalog, CompanyState, UserState | None, dict[str, Scalar], datetime]:
    catalog = draw(catalogs())
    return (
        catalog,
        draw(companies(catalog)),
        draw(st.none() | st.builds(UserState, key=keys, traits=traits)),
        draw(traits),
        draw(instants),
    )


subjects = st.builds(
    Subject,
    company_key=keys,
    company_traits=traits,
    user_key=st.none() | keys,
    user_traits=traits,
    plans=st.frozensets(st.sampled_from(["free", "pro", "booster"])),
    usage=st.dictionaries(st.sampled_from(["f0", "f1"]), numbers),
    credits=st.dictionaries(st.just("ai_credits"), numbers),
)


def subject(company_key: str, user_key: str | None) -> Subject:
    return Subject(
        company_key=company_key,
        company_traits={},
        user_key=user_key,
        user_traits={},
        plans=frozenset(),
        usage={},
        credits={},
    )


# Rollouts


@settings(deadline=None, database=None)
@given(feature_key=keys, key=keys)
def test_rollout_bucket__same_inputs__same_bucket_in_range(feature_key: str, key: str) -> None:
    bucket = rollout_bucket(feature_key, key)

    assert bucket == rollout_bucket(feature_key, key)
    assert 0 <= bucket < 10_000


@settings(deadline=None, database=None)
@given(
    feature_key=keys,
    company_key=keys,
    user_key=keys,
    by=st.sampled_from(RolloutBy),
    bounds=st.lists(percents, min_size=2, max_size=2).map(sorted),
)
def test_in_rollout__raising_the_percent__only_adds_keys(
    feature_key: str, company_key: str, user_key: str, by: RolloutBy, bounds: list[float]
) -> None:
    low, high = bounds
    who = subject(company_key, user_key)

    was_in = in_rollout(Rollout(low, by), feature_key, who)
    is_in = in_rollout(Rollout(high, by), feature_key, who)

    assert not was_in or is_in


@settings(deadline=None, database=None)
@given(feature_key=keys, company_key=keys, user_key=st.none() | keys)
def test_in_rollout__0_and_100_percent__nobody_and_everybody_with_a_key(
    feature_key: str, company_key: str, user_key: str | None
) -> None:
    who = subject(company_key, user_key)

    assert in_rollout(Rollout(0, RolloutBy.COMPANY), feature_key, who) is False
    assert in_rollout(Rollout(100, RolloutBy.COMPANY), feature_key, who) is True
    assert in_rollout(Rollout(0, RolloutBy.USER), feature_key, who) is False
    assert in_rollout(Rollout(100, RolloutBy.USER), feature_key, who) is (user_key is not None)


# Conditions


@settings(deadline=None, database=None, max_examples=500)
@given(condition=conditions(["f0", "f1"]), who=subjects)
def test_condition_matches__any_condition_and_subject__answers_a_bool(
    condition: Condition, who: Subject
) -> None:
    matches = condition_matches(condition, who)

    assert matches is True or matches is False


# Evaluation


@settings(deadline=None, database=None, max_examples=300)
@given(situation=situations(), quantity=st.one_of(numbers, st.integers(0, 100)), data=st.data())
def test_evaluate__any_catalog_and_state__decision_with_a_contract_reason(
    situation: tuple[Catalog, CompanyState, UserState | None, dict[str, Scalar], datetime],
    quantity: float,
    data: st.DataObject,
) -> None:
    catalog, company, user, context, now = situation
    feature_key = data.draw(st.sampled_from(sorted(catalog.features)))

    decision = evaluate(
        catalog, company, feature_key, now=now, quantity=quantity, user=user, context=context
    )

    assert isinstance(decision, Decision)
    assert decision.feature == feature_key
    assert decision.company_found is company.found
    assert decision_to_json(decision)["reason"] in REASONS
    assert not (decision.unlimited and decision.value is not None)
    assert not (decision.reason is Reason.LIMIT_EXCEEDED and decision.allowed)
    assert (decision.usage is not None) is (
        catalog.features[feature_key].type is FeatureType.METERED
    )


@settings(deadline=None, database=None)
@given(situation=situations())
def test_evaluate_all__any_catalog_and_state__equals_each_feature_alone(
    situation: tuple[Catalog, CompanyState, UserState | None, dict[str, Scalar], datetime],
) -> None:
    catalog, company, user, context, now = situation
    live = sorted(
        key for key, f in catalog.features.items() if f.status is not FeatureStatus.ARCHIVED
    )

    bulk = evaluate_all(catalog, company, now=now, user=user, context=context)

    singles = [evaluate(catalog, company, key, now=now, user=user, context=context) for key in live]
    assert [decision_to_json(d) for d in bulk] == [decision_to_json(d) for d in singles]

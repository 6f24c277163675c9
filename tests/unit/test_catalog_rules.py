"""The catalog rules as pure functions: each rule names the field at fault with a stable code."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierkit.engine.catalog import (
    MAX_SAFE_NUMBER,
    Aggregation,
    Entitlement,
    Feature,
    FeatureOption,
    FeatureStatus,
    FeatureType,
    Meter,
    Overage,
    Period,
    Plan,
    PlanType,
    Price,
    PriceInterval,
    RegionalPrice,
    Reset,
    Scalar,
)
from tierkit.engine.catalog_rules import (
    Problem,
    check_entitlement,
    check_feature,
    check_plan,
    check_value,
    normalize_entitlement,
)

SSO = Feature("sso", "Single sign-on", FeatureType.BOOLEAN)
PROJECTS = Feature("projects", "Projects", FeatureType.NUMERIC)
SUPPORT = Feature(
    "support",
    "Support",
    FeatureType.ENUM,
    options=(FeatureOption("email", "Email"), FeatureOption("chat", "Chat")),
)
API_CALLS = Feature(
    "api_calls", "API calls", FeatureType.METERED, meter=Meter("api_call", Aggregation.COUNT)
)
FEATURES = {f.key: f for f in (SSO, PROJECTS, SUPPORT, API_CALLS)}

# Outside hypothesis' example database: these properties need no replay store in the tree.
properties = settings(database=None, max_examples=200)


def where(problems: list[Problem]) -> list[tuple[str, str]]:
    """The problems as (param, code) pairs, the part of a problem clients rely on."""
    return [(problem.param, problem.code) for problem in problems]


# check_value


@pytest.mark.parametrize("value", [True, False])
def test_check_value__boolean_feature_given_a_boolean__fits(value: bool) -> None:
    assert check_value(SSO, value, "value") == []


@pytest.mark.parametrize("value", [0, 1, "true", 0.0])
def test_check_value__boolean_feature_given_a_non_boolean__is_invalid_value(value: Scalar) -> None:
    problems = check_value(SSO, value, "entitlements.0.value")

    assert where(problems) == [("entitlements.0.value", "invalid_value")]
    assert problems[0].message == (
        f"The value {value!r} must be true or false for a boolean feature."
    )


@pytest.mark.parametrize("feature", [PROJECTS, API_CALLS], ids=["numeric", "metered"])
@pytest.mark.parametrize("value", [0, 10, 2.5, MAX_SAFE_NUMBER, float(MAX_SAFE_NUMBER)])
def test_check_value__number_within_safe_range__fits_numeric_and_metered(
    feature: Feature, value: Scalar
) -> None:
    assert check_value(feature, value, "value") == []


@pytest.mark.parametrize("feature", [PROJECTS, API_CALLS], ids=["numeric", "metered"])
@pytest.mark.parametrize(
    "value",
    [-1, -0.5, MAX_SAFE_NUMBER + 1, math.nan, math.inf, True, False, "10"],
    ids=["negative", "negative_fraction", "past_2_53", "nan", "inf", "true", "false", "string"],
)
def test_check_value__not_a_number_in_range__is_invalid_value(
    feature: Feature, value: Scalar
) -> None:
    problems = check_value(feature, value, "default")

    assert where(problems) == [("default", "invalid_value")]
    assert problems[0].message.endswith(
        f"from 0 to {MAX_SAFE_NUMBER} for a {feature.type} feature."
    )


def test_check_value__enum_given_one_of_its_option_keys__fits() -> None:
    assert check_value(SUPPORT, "chat", "value") == []


@pytest.mark.parametrize("value", ["phone", "Email", "", 1, True])
def test_check_value__enum_given_anything_but_an_option_key__names_the_options(
    value: Scalar,
) -> None:
    problems = check_value(SUPPORT, value, "global_value")

    assert where(problems) == [("global_value", "invalid_value")]
    assert problems[0].message == (
        f"The value {value!r} must be one of the feature's option keys (chat, email)."
    )


def test_check_value__enum_without_options__says_none_are_defined() -> None:
    bare = Feature("tier", "Tier", FeatureType.ENUM)

    problems = check_value(bare, "gold", "value")

    assert problems[0].message.endswith("option keys (none defined).")


# check_feature


@pytest.mark.parametrize(
    "feature",
    [
        SSO,
        PROJECTS,
        SUPPORT,
        API_CALLS,
        replace(SSO, default=True, global_value=False),
        replace(PROJECTS, default=3, global_value=2.5),
        replace(SUPPORT, default="email", global_value="chat"),
        replace(API_CALLS, default=1000),
        replace(API_CALLS, meter=Meter("api_call", Aggregation.SUM, "tokens")),
        replace(API_CALLS, meter=Meter("api_call", Aggregation.MAX)),
        replace(API_CALLS, meter=Meter("login", Aggregation.UNIQUE_COUNT, "user_id")),
        replace(API_CALLS, meter=Meter("seats", Aggregation.LATEST)),
    ],
    ids=[
        "boolean",
        "numeric",
        "enum",
        "metered",
        "boolean_with_fallbacks",
        "numeric_with_fallbacks",
        "enum_with_fallbacks",
        "metered_with_default",
        "sum_of_a_property",
        "max_of_quantity",
        "unique_count_of_a_property",
        "latest",
    ],
)
def test_check_feature__consistent_definition__has_no_problems(feature: Feature) -> None:
    assert check_feature(feature) == []


def test_check_feature__metered_without_meter__needs_a_meter() -> None:
    problems = check_feature(replace(API_CALLS, meter=None))

    assert where(problems) == [("meter", "meter_required")]


@pytest.mark.parametrize("feature", [SSO, PROJECTS, SUPPORT], ids=lambda f: str(f.type))
def test_check_feature__meter_on_a_non_metered_feature__is_not_allowed(feature: Feature) -> None:
    problems = check_feature(replace(feature, meter=Meter("e", Aggregation.COUNT)))

    assert where(problems) == [("meter", "meter_not_allowed")]


@pytest.mark.parametrize("options", [None, ()], ids=["null", "empty"])
def test_check_feature__enum_without_options__needs_options(
    options: tuple[FeatureOption, ...] | None,
) -> None:
    problems = check_feature(replace(SUPPORT, options=options))

    assert where(problems) == [("options", "options_required")]


@pytest.mark.parametrize("feature", [SSO, PROJECTS, API_CALLS], ids=lambda f: str(f.type))
@pytest.mark.parametrize("options", [(), (FeatureOption("a", "A"),)], ids=["empty", "one_option"])
def test_check_feature__options_on_a_non_enum_feature__are_not_allowed(
    feature: Feature, options: tuple[FeatureOption, ...]
) -> None:
    problems = check_feature(replace(feature, options=options))

    assert where(problems) == [("options", "options_not_allowed")]


def test_check_feature__repeated_option_keys__each_repeat_is_named_by_index() -> None:
    options = tuple(FeatureOption(key, key.upper()) for key in ("a", "b", "a", "b", "a"))

    problems = check_feature(replace(SUPPORT, options=options))

    assert where(problems) == [
        ("options.2.key", "duplicate_key"),
        ("options.3.key", "duplicate_key"),
        ("options.4.key", "duplicate_key"),
    ]
    assert problems[0].message == "Duplicate option key 'a'."


def test_check_feature__unique_count_without_property__needs_the_property() -> None:
    feature = replace(API_CALLS, meter=Meter("login", Aggregation.UNIQUE_COUNT))

    problems = check_feature(feature)

    assert where(problems) == [("meter.property", "property_required")]


@pytest.mark.parametrize("aggregation", [Aggregation.COUNT, Aggregation.LATEST])
def test_check_feature__count_or_latest_with_a_property__property_not_allowed(
    aggregation: Aggregation,
) -> None:
    feature = replace(API_CALLS, meter=Meter("api_call", aggregation, "tokens"))

    problems = check_feature(feature)

    assert where(problems) == [("meter.property", "property_not_allowed")]


@pytest.mark.parametrize(
    ("feature", "value"),
    [(SSO, 1), (PROJECTS, "lots"), (SUPPORT, "phone"), (API_CALLS, -5)],
    ids=["boolean", "numeric", "enum", "metered"],
)
@pytest.mark.parametrize("field", ["default", "global_value"])
def test_check_feature__default_or_global_value_not_fitting_the_type__is_invalid_value(
    feature: Feature, value: Scalar, field: str
) -> None:
    change: dict[str, Any] = {field: value}

    problems = check_feature(replace(feature, **change))

    assert where(problems) == [(field, "invalid_value")]


def test_check_feature__several_problems__are_all_listed_in_field_order() -> None:
    feature = Feature(
        "broken",
        "Broken",
        FeatureType.METERED,
        options=(FeatureOption("a", "A"),),
        default="a",
        global_value=True,
    )

    problems = check_feature(feature)

    assert where(problems) == [
        ("meter", "meter_required"),
        ("options", "options_not_allowed"),
        ("default", "invalid_value"),
        ("global_value", "invalid_value"),
    ]


# normalize_entitlement


def test_normalize_entitlement__metered_without_period_or_reset__gets_month_and_calendar() -> None:
    normalized = normalize_entitlement(API_CALLS, Entitlement("api_calls", 1000))

    assert normalized == Entitlement("api_calls", 1000, period=Period.MONTH, reset=Reset.CALENDAR)


def test_normalize_entitlement__metered_with_period_and_reset__keeps_them() -> None:
    entitlement = Entitlement("api_calls", 5, period=Period.DAY, reset=Reset.BILLING_CYCLE)

    assert normalize_entitlement(API_CALLS, entitlement) == entitlement


@pytest.mark.parametrize("feature", [SSO, PROJECTS, SUPPORT], ids=lambda f: str(f.type))
def test_normalize_entitlement__non_metered__is_returned_unchanged(feature: Feature) -> None:
    entitlement = Entitlement(feature.key, True)

    assert normalize_entitlement(feature, entitlement) is entitlement


# check_entitlement


@pytest.mark.parametrize(
    ("feature", "entitlement"),
    [
        (SSO, Entitlement("sso", True)),
        (SSO, Entitlement("sso", False)),
        (PROJECTS, Entitlement("projects", 10)),
        (PROJECTS, Entitlement("projects", unlimited=True)),
        (SUPPORT, Entitlement("support", "chat")),
        (API_CALLS, Entitlement("api_calls", 1000)),
        (API_CALLS, Entitlement("api_calls", unlimited=True, period=Period.DAY)),
        (
            API_CALLS,
            Entitlement("api_calls", 10, period=Period.ALL_TIME, reset=Reset.CALENDAR),
        ),
        (
            API_CALLS,
            Entitlement("api_calls", 10, soft_limit=True, overage=Overage(price=50, per=1000)),
        ),
    ],
    ids=[
        "boolean_true",
        "boolean_false",
        "numeric",
        "numeric_unlimited",
        "enum",
        "metered",
        "metered_unlimited",
        "metered_all_time",
        "metered_overage",
    ],
)
def test_check_entitlement__fitting_its_feature__has_no_problems(
    feature: Feature, entitlement: Entitlement
) -> None:
    assert check_entitlement(feature, entitlement, "entitlements.0") == []


@pytest.mark.parametrize(("param", "prefix"), [("", ""), ("entitlements.3", "entitlements.3.")])
def test_check_entitlement__param__prefixes_every_problem(param: str, prefix: str) -> None:
    problems = check_entitlement(SSO, Entitlement("sso", 1, period=Period.DAY), param)

    assert where(problems) == [
        (f"{prefix}value", "invalid_value"),
        (f"{prefix}period", "metered_only"),
    ]


@pytest.mark.parametrize("feature", [SSO, SUPPORT], ids=lambda f: str(f.type))
def test_check_entitlement__unlimited_on_boolean_or_enum__is_not_allowed(
    feature: Feature,
) -> None:
    problems = check_entitlement(feature, Entitlement(feature.key, unlimited=True), "")

    assert where(problems) == [("unlimited", "unlimited_not_allowed")]
    assert problems[0].message == f"A {feature.type} feature cannot be unlimited."


@pytest.mark.parametrize("feature", [PROJECTS, API_CALLS], ids=lambda f: str(f.type))
def test_check_entitlement__value_and_unlimited_together__asks_for_one_of_them(
    feature: Feature,
) -> None:
    problems = check_entitlement(feature, Entitlement(feature.key, 10, unlimited=True), "e")

    assert where(problems) == [("e.value", "value_with_unlimited")]


def test_check_entitlement__unlimited_boolean_with_a_value__reports_both() -> None:
    problems = check_entitlement(SSO, Entitlement("sso", True, unlimited=True), "")

    assert where(problems) == [
        ("unlimited", "unlimited_not_allowed"),
        ("value", "value_with_unlimited"),
    ]


@pytest.mark.parametrize(
    ("feature", "hint"),
    [
        (SSO, ""),
        (SUPPORT, ""),
        (PROJECTS, " or `unlimited: true`"),
        (API_CALLS, " or `unlimited: true`"),
    ],
    ids=["boolean", "enum", "numeric", "metered"],
)
def test_check_entitlement__without_value_or_unlimited__needs_a_value(
    feature: Feature, hint: str
) -> None:
    problems = check_entitlement(feature, Entitlement(feature.key), "")

    assert where(problems) == [("value", "value_required")]
    assert problems[0].message == f"Feature {feature.key!r} needs a `value`{hint}."


@pytest.mark.parametrize(
    ("feature", "value"),
    [(SSO, 1), (PROJECTS, "10"), (SUPPORT, "phone"), (API_CALLS, True)],
    ids=[
        "boolean_given_number",
        "numeric_given_string",
        "enum_given_unknown",
        "metered_given_bool",
    ],
)
def test_check_entitlement__value_not_fitting_the_type__is_invalid_value(
    feature: Feature, value: Scalar
) -> None:
    problems = check_entitlement(feature, Entitlement(feature.key, value), "")

    assert where(problems) == [("value", "invalid_value")]


@pytest.mark.parametrize("feature", [SSO, PROJECTS, SUPPORT], ids=lambda f: str(f.type))
def test_check_entitlement__metered_fields_on_a_non_metered_feature__each_is_metered_only(
    feature: Feature,
) -> None:
    values: dict[str, Scalar] = {"boolean": True, "numeric": 3, "enum": "chat"}
    value = values[feature.type]
    entitlement = Entitlement(
        feature.key,
        value,
        period=Period.MONTH,
        reset=Reset.CALENDAR,
        soft_limit=True,
        overage=Overage(price=1),
    )

    problems = check_entitlement(feature, entitlement, "")

    assert where(problems) == [
        ("period", "metered_only"),
        ("reset", "metered_only"),
        ("overage", "metered_only"),
        ("soft_limit", "metered_only"),
    ]


def test_check_entitlement__all_time_with_billing_cycle__reset_without_period() -> None:
    entitlement = Entitlement("api_calls", 10, period=Period.ALL_TIME, reset=Reset.BILLING_CYCLE)

    problems = check_entitlement(API_CALLS, entitlement, "")

    assert where(problems) == [("reset", "reset_without_period")]


def test_check_entitlement__overage_without_soft_limit__requires_soft_limit() -> None:
    entitlement = Entitlement("api_calls", 10, overage=Overage(price=50, per=1000))

    problems = check_entitlement(API_CALLS, entitlement, "entitlements.1")

    assert where(problems) == [("entitlements.1.overage", "overage_requires_soft_limit")]


@pytest.mark.parametrize("soft_limit", [True, False])
def test_check_entitlement__overage_on_unlimited__overage_with_unlimited(soft_limit: bool) -> None:
    entitlement = Entitlement(
        "api_calls", unlimited=True, soft_limit=soft_limit, overage=Overage(price=50)
    )

    problems = check_entitlement(API_CALLS, entitlement, "")

    assert where(problems) == [("overage", "overage_with_unlimited")]


# check_plan


def plan(**fields: Any) -> Plan:
    return replace(Plan("pro", "Pro"), **fields)


def test_check_plan__consistent_plan__has_no_problems() -> None:
    pro = plan(
        is_default=True,
        entitlements=(
            Entitlement("sso", True),
            Entitlement("projects", unlimited=True),
            Entitlement("support", "chat"),
            Entitlement("api_calls", 10_000, soft_limit=True, overage=Overage(50, 1000)),
        ),
        prices=(
            Price(
                PriceInterval.MONTH,
                "usd",
                2900,
                default=True,
                regional=(RegionalPrice("eur", 2700),),
            ),
            Price(PriceInterval.YEAR, "usd", 29000),
            Price(PriceInterval.YEAR, "eur", 27000),
        ),
    )

    assert check_plan(pro, FEATURES) == []


def test_check_plan__add_on_marked_default__add_on_default() -> None:
    problems = check_plan(plan(type=PlanType.ADD_ON, is_default=True), FEATURES)

    assert where(problems) == [("is_default", "add_on_default")]


def test_check_plan__two_entitlements_for_one_feature__the_second_is_a_duplicate() -> None:
    entitlements = (
        Entitlement("sso", True),
        Entitlement("projects", 3),
        Entitlement("sso", False),
    )

    problems = check_plan(plan(entitlements=entitlements), FEATURES)

    assert where(problems) == [("entitlements.2.feature", "duplicate_feature")]
    assert problems[0].message == "Duplicate entitlement for 'sso'."


def test_check_plan__unknown_feature__feature_not_found_and_nothing_more_about_it() -> None:
    entitlements = (Entitlement("sso", True), Entitlement("nope", "anything", unlimited=True))

    problems = check_plan(plan(entitlements=entitlements), FEATURES)

    assert where(problems) == [("entitlements.1.feature", "feature_not_found")]


def test_check_plan__entitlement_problems__are_prefixed_with_their_index() -> None:
    entitlements = (
        Entitlement("sso", True),
        Entitlement("support", "phone"),
        Entitlement("api_calls", 10, overage=Overage(1)),
    )

    problems = check_plan(plan(entitlements=entitlements), FEATURES)

    assert where(problems) == [
        ("entitlements.1.value", "invalid_value"),
        ("entitlements.2.overage", "overage_requires_soft_limit"),
    ]


def test_check_plan__newly_naming_an_archived_feature__feature_archived() -> None:
    features = FEATURES | {"sso": replace(SSO, status=FeatureStatus.ARCHIVED)}

    problems = check_plan(plan(entitlements=(Entitlement("sso", True),)), features)

    assert where(problems) == [("entitlements.0.feature", "feature_archived")]


def test_check_plan__archived_feature_the_plan_already_had__stays_allowed() -> None:
    features = FEATURES | {"sso": replace(SSO, status=FeatureStatus.ARCHIVED)}

    problems = check_plan(plan(entitlements=(Entitlement("sso", True),)), features, {"sso"})

    assert problems == []


@pytest.mark.parametrize("status", [FeatureStatus.DEPRECATED, FeatureStatus.COMING_SOON])
def test_check_plan__deprecated_or_coming_soon_feature__may_be_added(
    status: FeatureStatus,
) -> None:
    features = FEATURES | {"sso": replace(SSO, status=status)}

    assert check_plan(plan(entitlements=(Entitlement("sso", True),)), features) == []


def test_check_plan__second_and_third_default_price__each_duplicate_default_price() -> None:
    prices = (
        Price(PriceInterval.MONTH, "usd", 1, default=True),
        Price(PriceInterval.YEAR, "usd", 10, default=True),
        Price(PriceInterval.WEEK, "usd", 1, default=True),
    )

    problems = check_plan(plan(prices=prices), FEATURES)

    assert where(problems) == [
        ("prices.1.default", "duplicate_default_price"),
        ("prices.2.default", "duplicate_default_price"),
    ]


def test_check_plan__unknown_currency__invalid_currency_where_it_is_written() -> None:
    prices = (
        Price(PriceInterval.MONTH, "xyz", 1),
        Price(
            PriceInterval.YEAR,
            "usd",
            10,
            regional=(RegionalPrice("eur", 9), RegionalPrice("abc", 9)),
        ),
    )

    problems = check_plan(plan(prices=prices), FEATURES)

    assert where(problems) == [
        ("prices.0.currency", "invalid_currency"),
        ("prices.1.regional.1.currency", "invalid_currency"),
    ]
    assert problems[0].message == "'xyz' is not an ISO 4217 currency."


def test_check_plan__same_interval_and_currency_twice__duplicate_price() -> None:
    prices = (
        Price(PriceInterval.MONTH, "usd", 1),
        Price(PriceInterval.YEAR, "usd", 10),
        Price(PriceInterval.MONTH, "usd", 2),
    )

    problems = check_plan(plan(prices=prices), FEATURES)

    assert where(problems) == [("prices.2.currency", "duplicate_price")]
    assert problems[0].message == "The plan already has a month price in usd."


def test_check_plan__regional_price_repeating_a_currency__duplicate_price() -> None:
    prices = (
        Price(PriceInterval.MONTH, "usd", 1, regional=(RegionalPrice("usd", 2),)),
        Price(PriceInterval.YEAR, "eur", 1),
        Price(PriceInterval.MONTH, "eur", 1),
        Price(PriceInterval.YEAR, "gbp", 1, regional=(RegionalPrice("eur", 1),)),
    )

    problems = check_plan(plan(prices=prices), FEATURES)

    assert where(problems) == [
        ("prices.0.regional.0.currency", "duplicate_price"),
        ("prices.3.regional.0.currency", "duplicate_price"),
    ]


def test_check_plan__problems_of_every_kind__listed_in_plan_order() -> None:
    broken = plan(
        type=PlanType.ADD_ON,
        is_default=True,
        entitlements=(Entitlement("nope", 1), Entitlement("sso", 1), Entitlement("nope", 2)),
        prices=(Price(PriceInterval.MONTH, "xyz", 1),),
    )

    problems = check_plan(broken, FEATURES)

    assert where(problems) == [
        ("is_default", "add_on_default"),
        ("entitlements.2.feature", "duplicate_feature"),
        ("entitlements.0.feature", "feature_not_found"),
        ("entitlements.1.value", "invalid_value"),
        ("entitlements.2.feature", "feature_not_found"),
        ("prices.0.currency", "invalid_currency"),
    ]


# Properties

safe_numbers = st.one_of(
    st.integers(min_value=0, max_value=MAX_SAFE_NUMBER),
    st.floats(min_value=0, max_value=MAX_SAFE_NUMBER, allow_nan=False, allow_infinity=False),
)
unsafe_numbers = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=MAX_SAFE_NUMBER + 1),
    st.floats(max_value=-1e-300, allow_nan=False),
    st.floats(min_value=MAX_SAFE_NUMBER * (1 + 1e-15)),
    st.just(math.nan),
)
numeric_features = st.sampled_from([PROJECTS, API_CALLS])


@properties
@given(feature=numeric_features, value=safe_numbers)
def test_check_value__any_finite_number_from_0_to_2_53__fits_a_numeric_feature(
    feature: Feature, value: float
) -> None:
    assert check_value(feature, value, "value") == []


@properties
@given(feature=numeric_features, value=unsafe_numbers)
def test_check_value__any_number_outside_0_to_2_53__never_fits_a_numeric_feature(
    feature: Feature, value: float
) -> None:
    assert where(check_value(feature, value, "value")) == [("value", "invalid_value")]


@properties
@given(feature=numeric_features, value=st.booleans())
def test_check_value__any_boolean__never_fits_a_numeric_feature(
    feature: Feature, value: bool
) -> None:
    assert where(check_value(feature, value, "value")) == [("value", "invalid_value")]


@properties
@given(value=st.text(max_size=20))
def test_check_value__enum__fits_exactly_its_option_keys(value: str) -> None:
    fits = check_value(SUPPORT, value, "value") == []

    assert fits is (value in {"email", "chat"})


entitlements = st.builds(
    Entitlement,
    feature=st.sampled_from(sorted(FEATURES)),
    value=st.one_of(st.none(), st.booleans(), safe_numbers, st.sampled_from(["email", "x"])),
    unlimited=st.booleans(),
    period=st.one_of(st.none(), st.sampled_from(Period)),
    reset=st.one_of(st.none(), st.sampled_from(Reset)),
    soft_limit=st.booleans(),
    overage=st.one_of(st.none(), st.builds(Overage, st.integers(0, 100), st.integers(1, 100))),
)


@properties
@given(feature=st.sampled_from(list(FEATURES.values())), entitlement=entitlements)
def test_normalize_entitlement__applied_twice__equals_applied_once(
    feature: Feature, entitlement: Entitlement
) -> None:
    once = normalize_entitlement(feature, entitlement)

    assert normalize_entitlement(feature, once) == once


@properties
@given(feature=st.sampled_from(list(FEATURES.values())), entitlement=entitlements)
def test_normalize_entitlement__never_changes_the_verdict_of_check_entitlement(
    feature: Feature, entitlement: Entitlement
) -> None:
    before = where(check_entitlement(feature, entitlement, "e"))

    after = where(check_entitlement(feature, normalize_entitlement(feature, entitlement), "e"))

    assert after == before

"""Pricing math in the engine: intro discounts round money half up, overage is charged in whole
packages, and display values read as a pricing page shows them."""

from __future__ import annotations

import pytest

from tierkit.engine.catalog import (
    DiscountKind,
    Entitlement,
    Feature,
    FeatureOption,
    FeatureType,
    IntroOffer,
    Overage,
    Period,
    Price,
    PriceInterval,
)
from tierkit.engine.pricing import display_value, intro_discount, overage_charge


def _price(kind: DiscountKind, value: float, cycles: int = 3) -> Price:
    return Price(PriceInterval.MONTH, "usd", 2900, intro=IntroOffer(kind, value, cycles))


@pytest.mark.parametrize(
    ("value", "amount", "off"),
    [(0.5, 2900, 15), (0.5, 2700, 14), (12.34, 2900, 358), (100, 2900, 2900), (50, 1, 1)],
)
def test_intro_discount__percent__rounds_half_up_to_the_cent(
    value: float, amount: int, off: int
) -> None:
    assert intro_discount(_price(DiscountKind.PERCENT, value), amount, cycle=0) == off


def test_intro_discount__fixed__is_capped_at_the_amount() -> None:
    assert intro_discount(_price(DiscountKind.FIXED, 5000), 2900, cycle=1) == 2900


def test_intro_discount__after_its_cycles__is_nothing() -> None:
    assert intro_discount(_price(DiscountKind.PERCENT, 50, cycles=3), 2900, cycle=3) == 0


@pytest.mark.parametrize(
    ("used", "charge"), [(1000, (0, 0)), (1001, (1, 50)), (2000, (1, 50)), (2001, (2, 100))]
)
def test_overage_charge__units_past_the_limit__round_up_to_whole_packages(
    used: float, charge: tuple[int, int]
) -> None:
    entitlement = Entitlement(
        "api_calls", value=1000, soft_limit=True, overage=Overage(price=50, per=1000)
    )

    assert overage_charge(entitlement, used) == charge


METERED = Feature("api_calls", "API calls", FeatureType.METERED, unit="call")
SUPPORT = Feature(
    "support",
    "Support",
    FeatureType.ENUM,
    options=(FeatureOption("email", "Email support"), FeatureOption("chat", "Live chat")),
)
SSO = Feature("sso", "SSO", FeatureType.BOOLEAN)


@pytest.mark.parametrize(
    ("feature", "entitlement", "shown"),
    [
        (METERED, Entitlement("api_calls", value=10000), "10,000 / month"),
        (METERED, Entitlement("api_calls", value=5, period=Period.DAY), "5 / day"),
        (METERED, Entitlement("api_calls", value=20, period=Period.ALL_TIME), "20"),
        (METERED, Entitlement("api_calls", unlimited=True), "Unlimited"),
        (SUPPORT, Entitlement("support", value="chat"), "Live chat"),
        (SSO, Entitlement("sso", value=True), "Included"),
        (SSO, Entitlement("sso", value=False), "Not included"),
        (SSO, None, "Not included"),
        (METERED, None, "—"),
    ],
)
def test_display_value__each_kind__reads_as_a_pricing_page_shows_it(
    feature: Feature, entitlement: Entitlement | None, shown: str
) -> None:
    assert display_value(feature, entitlement) == shown

"""Usage periods as the engine computes them for a metered check: each period kind's
`period_start`/`resets_at` on the UTC calendar (weeks from Monday, month ends, a leap year),
calendar periods in a company's time zone across daylight-saving changes, billing cycles anchored
on the 31st through short months, usage counted over a stale window reading 0 (in the limit and in
rule conditions), and gauges (`latest`) counted over all time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tierkit.engine.catalog import (
    Aggregation,
    Entitlement,
    Feature,
    FeatureType,
    Meter,
    Period,
    Plan,
    PlanType,
    Reset,
)
from tierkit.engine.customers import Subscription
from tierkit.engine.evaluate import (
    Catalog,
    CompanyState,
    Reason,
    Usage,
    Window,
    evaluate,
    usage_period,
    usage_window,
    usage_windows,
)
from tierkit.engine.rules import Condition, ConditionType, Operator, Rule

NEW_YORK = ZoneInfo("America/New_York")
API_CALLS = Feature(
    "api_calls", "API calls", FeatureType.METERED, meter=Meter("api_call", Aggregation.COUNT)
)
SEATS = Feature("seats", "Seats", FeatureType.METERED, meter=Meter("seats", Aggregation.LATEST))
HEAVY = Feature("heavy", "Heavy user", FeatureType.BOOLEAN)
TICK = timedelta(microseconds=1)
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def catalog(
    period: Period | None = None, reset: Reset | None = None, feature: Feature = API_CALLS
) -> Catalog:
    """Feature `feature` limited to 100 on base plan `pro` with `period` and `reset`."""
    entitlement = Entitlement(feature.key, value=100, period=period, reset=reset)
    return Catalog(
        features={feature.key: feature, HEAVY.key: HEAVY},
        plans={"pro": Plan("pro", "Pro", entitlements=(entitlement,))},
    )


def on_pro(
    started_at: datetime = LONG_AGO,
    *,
    usage: dict[str, float] | None = None,
    windows: dict[str, Window] | None = None,
    zone: ZoneInfo | None = None,
) -> CompanyState:
    """Company `acme` subscribed to `pro` since `started_at`."""
    subscription = Subscription(
        id="sub_1",
        plan="pro",
        plan_type=PlanType.BASE,
        group="default",
        quantity=1,
        started_at=started_at,
    )
    return CompanyState(
        key="acme",
        subscriptions=(subscription,),
        usage=usage or {},
        usage_windows=windows or {},
        timezone=zone or UTC,
    )


def usage_at(
    now: datetime,
    period: Period | None = None,
    reset: Reset | None = None,
    company: CompanyState | None = None,
    feature: Feature = API_CALLS,
) -> Usage:
    """The `usage` of a check of `feature` at `now`."""
    decision = evaluate(catalog(period, reset, feature), company or on_pro(), feature.key, now=now)
    assert decision.usage is not None
    return decision.usage


def bounds(usage: Usage) -> Window:
    return usage.period_start, usage.resets_at


# Calendar periods in UTC

WEDNESDAY = utc(2024, 5, 15, 13, 45)


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (Period.DAY, (utc(2024, 5, 15), utc(2024, 5, 16))),
        (Period.WEEK, (utc(2024, 5, 13), utc(2024, 5, 20))),
        (Period.MONTH, (utc(2024, 5, 1), utc(2024, 6, 1))),
        (Period.YEAR, (utc(2024, 1, 1), utc(2025, 1, 1))),
        (Period.ALL_TIME, (None, None)),
        (None, (utc(2024, 5, 1), utc(2024, 6, 1))),
    ],
    ids=["day", "week", "month", "year", "all_time", "default_is_month"],
)
def test_usage__calendar_period_in_utc__starts_and_resets_at_the_period_bounds(
    period: Period | None, expected: Window
) -> None:
    # Given a 100/`period` calendar limit, When checked on Wednesday 2024-05-15 13:45Z
    usage = usage_at(WEDNESDAY, period, Reset.CALENDAR)

    # Then the usage is of the calendar period holding that instant, in UTC
    assert bounds(usage) == expected
    assert usage.period is (period or Period.MONTH)


@pytest.mark.parametrize(
    ("now", "monday"),
    [
        (utc(2024, 5, 13), utc(2024, 5, 13)),
        (utc(2024, 5, 19, 23, 59), utc(2024, 5, 13)),
        (utc(2024, 5, 20), utc(2024, 5, 20)),
        (utc(2024, 1, 3), utc(2024, 1, 1)),
        (utc(2023, 1, 1, 12), utc(2022, 12, 26)),
    ],
    ids=[
        "monday_midnight",
        "sunday_last_minute",
        "next_monday",
        "new_year_on_monday",
        "sunday_new_years_day_in_previous_year_week",
    ],
)
def test_usage__week_period__starts_on_the_monday_of_the_iso_week(
    now: datetime, monday: datetime
) -> None:
    # Given a weekly calendar limit, When checked at `now`
    usage = usage_at(now, Period.WEEK, Reset.CALENDAR)

    # Then the week runs from Monday 00:00 to the next Monday
    assert bounds(usage) == (monday, monday + timedelta(days=7))
    assert usage.period_start is not None
    assert usage.period_start.weekday() == 0


def test_usage__month_period_at_the_last_instant_of_january__resets_february_1() -> None:
    # Given a monthly calendar limit, When checked at the last microsecond of January 31
    usage = usage_at(utc(2024, 2, 1) - TICK, Period.MONTH, Reset.CALENDAR)

    # Then the period is January, resetting on February 1
    assert bounds(usage) == (utc(2024, 1, 1), utc(2024, 2, 1))


def test_usage__month_period_at_february_1_midnight__february_starts_then() -> None:
    # Given a monthly calendar limit, When checked at 2024-02-01T00:00Z
    usage = usage_at(utc(2024, 2, 1), Period.MONTH, Reset.CALENDAR)

    # Then the instant belongs to February (the period is half-open)
    assert bounds(usage) == (utc(2024, 2, 1), utc(2024, 3, 1))


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (Period.DAY, (utc(2024, 2, 29), utc(2024, 3, 1))),
        (Period.WEEK, (utc(2024, 2, 26), utc(2024, 3, 4))),
        (Period.MONTH, (utc(2024, 2, 1), utc(2024, 3, 1))),
        (Period.YEAR, (utc(2024, 1, 1), utc(2025, 1, 1))),
    ],
    ids=["day", "week", "month", "year"],
)
def test_usage__leap_day_2024_02_29__periods_hold_february_29(
    period: Period, expected: Window
) -> None:
    # Given a calendar limit, When checked at noon on the leap day
    usage = usage_at(utc(2024, 2, 29, 12), period, Reset.CALENDAR)

    # Then the day, week, month (29 days) and year (366 days) hold February 29
    assert bounds(usage) == expected


def test_usage__year_period_of_leap_2024__is_366_days() -> None:
    usage = usage_at(utc(2024, 7, 1), Period.YEAR, Reset.CALENDAR)

    assert usage.period_start is not None
    assert usage.resets_at is not None
    assert usage.resets_at - usage.period_start == timedelta(days=366)


# Calendar periods in the company's time zone


def test_usage__day_of_spring_forward_in_new_york__23_hours_from_05z_to_04z() -> None:
    # Given a company in America/New_York with a daily limit
    company = on_pro(zone=NEW_YORK)

    # When checked on 2024-03-10 (clocks go from 02:00 EST to 03:00 EDT)
    usage = usage_at(utc(2024, 3, 10, 12), Period.DAY, Reset.CALENDAR, company)

    # Then the day runs from local midnight EST to local midnight EDT: 23 hours
    assert bounds(usage) == (utc(2024, 3, 10, 5), utc(2024, 3, 11, 4))
    assert usage.resets_at is not None
    assert usage.period_start is not None
    assert usage.resets_at - usage.period_start == timedelta(hours=23)


def test_usage__day_of_fall_back_in_new_york__25_hours_from_04z_to_05z() -> None:
    # Given a company in America/New_York with a daily limit
    company = on_pro(zone=NEW_YORK)

    # When checked on 2024-11-03 (clocks go from 02:00 EDT back to 01:00 EST)
    usage = usage_at(utc(2024, 11, 3, 12), Period.DAY, Reset.CALENDAR, company)

    # Then the day lasts 25 hours
    assert bounds(usage) == (utc(2024, 11, 3, 4), utc(2024, 11, 4, 5))


def test_usage__march_2024_in_new_york__starts_05z_and_ends_april_1_04z() -> None:
    # Given a company in America/New_York with a monthly calendar limit
    company = on_pro(zone=NEW_YORK)

    # When checked in mid-March 2024
    usage = usage_at(utc(2024, 3, 15), Period.MONTH, Reset.CALENDAR, company)

    # Then March starts at local midnight EST and ends at local midnight EDT
    assert bounds(usage) == (utc(2024, 3, 1, 5), utc(2024, 4, 1, 4))


def test_usage__utc_march_1_before_new_york_midnight__still_february_there() -> None:
    # Given a company in America/New_York with a monthly calendar limit
    company = on_pro(zone=NEW_YORK)

    # When checked at 2024-03-01T03:00Z (22:00 on February 29 in New York)
    usage = usage_at(utc(2024, 3, 1, 3), Period.MONTH, Reset.CALENDAR, company)

    # Then the period is New York's February
    assert bounds(usage) == (utc(2024, 2, 1, 5), utc(2024, 3, 1, 5))


def test_usage__billing_cycle_reset__ignores_the_company_time_zone() -> None:
    # Given a company in America/New_York on a billing-cycle month anchored at 10:00Z
    company = on_pro(utc(2024, 1, 15, 10), zone=NEW_YORK)

    # When checked in February
    usage = usage_at(utc(2024, 2, 20), Period.MONTH, Reset.BILLING_CYCLE, company)

    # Then the cycle is cut at the anchor's instant, not at a local midnight
    assert bounds(usage) == (utc(2024, 2, 15, 10), utc(2024, 3, 15, 10))


# Billing cycles anchored on the 31st

LEAP_ANCHOR = utc(2024, 1, 31, 10)
PLAIN_ANCHOR = utc(2023, 1, 31, 10)


@pytest.mark.parametrize(
    ("anchor", "now", "expected"),
    [
        (LEAP_ANCHOR, utc(2024, 1, 31, 10), (utc(2024, 1, 31, 10), utc(2024, 2, 29, 10))),
        (LEAP_ANCHOR, utc(2024, 2, 15), (utc(2024, 1, 31, 10), utc(2024, 2, 29, 10))),
        (LEAP_ANCHOR, utc(2024, 2, 29, 10) - TICK, (utc(2024, 1, 31, 10), utc(2024, 2, 29, 10))),
        (LEAP_ANCHOR, utc(2024, 2, 29, 10), (utc(2024, 2, 29, 10), utc(2024, 3, 31, 10))),
        (LEAP_ANCHOR, utc(2024, 3, 15), (utc(2024, 2, 29, 10), utc(2024, 3, 31, 10))),
        (LEAP_ANCHOR, utc(2024, 4, 15), (utc(2024, 3, 31, 10), utc(2024, 4, 30, 10))),
        (LEAP_ANCHOR, utc(2024, 5, 10), (utc(2024, 4, 30, 10), utc(2024, 5, 31, 10))),
        (PLAIN_ANCHOR, utc(2023, 2, 15), (utc(2023, 1, 31, 10), utc(2023, 2, 28, 10))),
        (PLAIN_ANCHOR, utc(2023, 3, 1), (utc(2023, 2, 28, 10), utc(2023, 3, 31, 10))),
        (PLAIN_ANCHOR, utc(2024, 2, 20), (utc(2024, 1, 31, 10), utc(2024, 2, 29, 10))),
    ],
    ids=[
        "at_the_anchor",
        "leap_february",
        "last_instant_before_feb_29",
        "at_feb_29",
        "march_back_to_the_31st",
        "april_clamped_to_30",
        "may_back_to_the_31st",
        "plain_february_clamped_to_28",
        "plain_march_from_feb_28",
        "next_years_leap_february",
    ],
)
def test_usage__monthly_billing_cycle_anchored_on_the_31st__short_months_clamp(
    anchor: datetime, now: datetime, expected: Window
) -> None:
    # Given a company whose base subscription started on the 31st, with a monthly
    # billing-cycle limit
    company = on_pro(anchor)

    # When checked at `now`
    usage = usage_at(now, Period.MONTH, Reset.BILLING_CYCLE, company)

    # Then the cycle ends on the anchor day, or the month's last day when it is shorter
    assert bounds(usage) == expected


def test_usage__yearly_billing_cycle_anchored_feb_29__clamps_to_feb_28() -> None:
    # Given a subscription started on the leap day, with a yearly billing-cycle limit
    company = on_pro(utc(2024, 2, 29, 10))

    # When checked in 2025 and in 2028
    in_2025 = usage_at(utc(2025, 6, 1), Period.YEAR, Reset.BILLING_CYCLE, company)
    in_2028 = usage_at(utc(2028, 3, 1), Period.YEAR, Reset.BILLING_CYCLE, company)

    # Then non-leap years clamp to February 28, and leap years return to the 29th
    assert bounds(in_2025) == (utc(2025, 2, 28, 10), utc(2026, 2, 28, 10))
    assert bounds(in_2028) == (utc(2028, 2, 29, 10), utc(2029, 2, 28, 10))


def test_usage__billing_cycle_day_period__days_from_the_anchor_time() -> None:
    company = on_pro(utc(2024, 1, 31, 10))

    usage = usage_at(utc(2024, 3, 1, 9), Period.DAY, Reset.BILLING_CYCLE, company)

    assert bounds(usage) == (utc(2024, 2, 29, 10), utc(2024, 3, 1, 10))


def test_usage_period__billing_cycle_without_base_subscription__calendar_month() -> None:
    # Given a company with no subscription and a billing-cycle entitlement
    company = CompanyState(key="acme")
    entitlement = Entitlement(
        "api_calls", value=100, period=Period.MONTH, reset=Reset.BILLING_CYCLE
    )

    # When its period is computed, Then it falls back to the calendar month
    assert usage_period(entitlement, company, utc(2024, 2, 15)) == (
        utc(2024, 2, 1),
        utc(2024, 3, 1),
    )


# Usage counted over a window


def test_usage__counted_over_the_current_window__reads_that_usage() -> None:
    # Given 40 calls counted over February
    company = on_pro(
        usage={"api_calls": 40}, windows={"api_calls": (utc(2024, 2, 1), utc(2024, 3, 1))}
    )

    # When checked in February
    usage = usage_at(utc(2024, 2, 10), Period.MONTH, Reset.CALENDAR, company)

    # Then the usage is 40
    assert (usage.used, usage.remaining, usage.overage) == (40, 60, 0)


def test_usage__counted_over_a_stale_window__reads_zero_and_allows() -> None:
    # Given 150 calls counted over January (past the limit of 100)
    company = on_pro(
        usage={"api_calls": 150}, windows={"api_calls": (utc(2024, 1, 1), utc(2024, 2, 1))}
    )

    # When checked in February
    decision = evaluate(
        catalog(Period.MONTH, Reset.CALENDAR), company, "api_calls", now=utc(2024, 2, 10)
    )

    # Then January's usage does not count: February has used nothing
    assert decision.usage is not None
    assert (decision.usage.used, decision.usage.remaining) == (0, 100)
    assert bounds(decision.usage) == (utc(2024, 2, 1), utc(2024, 3, 1))
    assert (decision.allowed, decision.reason) == (True, Reason.PLAN)


def test_usage__counted_over_an_all_time_window_after_switch_to_month__reads_zero() -> None:
    # Given 70 calls counted over all time (the entitlement was all_time when read)
    company = on_pro(usage={"api_calls": 70}, windows={"api_calls": (None, None)})

    # When checked with a monthly entitlement
    usage = usage_at(utc(2024, 2, 10), Period.MONTH, Reset.CALENDAR, company)

    # Then the all-time count is not this month's usage
    assert usage.used == 0


def test_usage_condition__usage_counted_over_a_stale_window__does_not_match() -> None:
    # Given rule `heavy` (true when api_calls usage >= 100) and 150 calls counted over
    # January, the window of a company state read before the month rolled over
    rule = Rule(
        "heavy",
        value=True,
        conditions=((Condition(ConditionType.USAGE, Operator.GTE, 100, feature="api_calls"),),),
    )
    base = catalog(Period.MONTH, Reset.CALENDAR)
    rules_catalog = Catalog(base.features, base.plans, rules={"heavy": (rule,)})
    company = on_pro(
        usage={"api_calls": 150}, windows={"api_calls": (utc(2024, 1, 1), utc(2024, 2, 1))}
    )

    # When `heavy` is checked in January, and again in February
    in_january = evaluate(rules_catalog, company, "heavy", now=utc(2024, 1, 20))
    in_february = evaluate(rules_catalog, company, "heavy", now=utc(2024, 2, 10))

    # Then the rule matches on January's usage only: in February api_calls reads 0
    assert (in_january.value, in_january.reason, in_january.rule) == (True, Reason.RULE, "heavy")
    assert (in_february.value, in_february.reason) == (False, Reason.DEFAULT)


# Gauges


def test_usage__latest_meter_with_monthly_entitlement__all_time_window() -> None:
    # Given seats (a `latest` gauge) limited to 100 per calendar month, 12 seats set long ago
    company = on_pro(usage={"seats": 12}, windows={"seats": (None, None)})

    # When checked
    usage = usage_at(utc(2024, 2, 10), Period.MONTH, Reset.CALENDAR, company, SEATS)

    # Then the gauge never resets: no period bounds, and the value set is the usage
    assert bounds(usage) == (None, None)
    assert (usage.used, usage.remaining) == (12, 88)


def test_usage_window__latest_meter_on_billing_cycle__all_time() -> None:
    # Given a gauge on a billing-cycle day entitlement
    company = on_pro(utc(2024, 1, 31, 10))
    entitlement = Entitlement("seats", value=5, period=Period.DAY, reset=Reset.BILLING_CYCLE)

    # When its window is computed, Then it is all time, for the feature and the catalog
    now = utc(2024, 3, 1)
    assert usage_window(SEATS, entitlement, company, now) == (None, None)
    assert usage_windows(catalog(Period.DAY, Reset.BILLING_CYCLE, SEATS), company, now) == {
        "seats": (None, None)
    }

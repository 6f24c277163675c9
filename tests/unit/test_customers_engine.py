"""Customer state and calendar arithmetic as pure functions: subscriptions at their boundary
instants, which base plans a new one supersedes, trait merges, overrides at their expiry, and
billing cycles counted from an anchor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierkit.engine.catalog import Entitlement, PlanType, Scalar
from tierkit.engine.customers import (
    Override,
    Subscription,
    SubscriptionStatus,
    active_overrides,
    active_subscriptions,
    default_trial_end,
    ends_for_new_base,
    merge_traits,
)
from tierkit.engine.periods import Unit, add_intervals, add_months, cycle_bounds

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


def subscription(
    started_at: datetime = T0,
    ends_at: datetime | None = None,
    trial_ends_at: datetime | None = None,
    *,
    sub_id: str = "sub_1",
    plan: str = "pro",
    plan_type: PlanType = PlanType.BASE,
    group: str = "default",
) -> Subscription:
    return Subscription(
        id=sub_id,
        plan=plan,
        plan_type=plan_type,
        group=group,
        quantity=1,
        started_at=started_at,
        trial_ends_at=trial_ends_at,
        ends_at=ends_at,
    )


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# Subscription.is_active and status at their boundaries


@pytest.mark.parametrize(
    ("at", "active"),
    [
        (T0 - TICK, False),
        (T0, True),
        (T0 + DAY - TICK, True),
        (T0 + DAY, False),
        (T0 + 2 * DAY, False),
    ],
    ids=["before_start", "at_start", "just_before_end", "at_end", "after_end"],
)
def test_subscription_is_active__around_its_bounds__half_open_interval(
    at: datetime, active: bool
) -> None:
    # Given a subscription over [T0, T0 + 1 day)
    sub = subscription(T0, ends_at=T0 + DAY)

    # When it is asked at an instant, Then it is active from its start up to (not at) its end
    assert sub.is_active(at) is active


def test_subscription_is_active__without_end__active_forever_after_start() -> None:
    sub = subscription(T0)

    assert sub.is_active(T0) is True
    assert sub.is_active(T0 + timedelta(days=365_000)) is True
    assert sub.is_active(T0 - TICK) is False


@pytest.mark.parametrize(
    ("at", "status"),
    [
        (T0 - TICK, SubscriptionStatus.SCHEDULED),
        (T0, SubscriptionStatus.TRIALING),
        (T0 + 14 * DAY - TICK, SubscriptionStatus.TRIALING),
        (T0 + 14 * DAY, SubscriptionStatus.ACTIVE),
        (T0 + 30 * DAY - TICK, SubscriptionStatus.ACTIVE),
        (T0 + 30 * DAY, SubscriptionStatus.ENDED),
    ],
    ids=["before_start", "at_start", "trial_last_instant", "trial_end", "last_instant", "end"],
)
def test_subscription_status__with_trial_and_end__each_phase_starts_at_its_instant(
    at: datetime, status: SubscriptionStatus
) -> None:
    # Given a 30-day subscription with a 14-day trial
    sub = subscription(T0, ends_at=T0 + 30 * DAY, trial_ends_at=T0 + 14 * DAY)

    # When its status is asked, Then each phase begins exactly at its instant
    assert sub.status(at) is status


def test_subscription_status__trial_ends_at_start__active_not_trialing() -> None:
    sub = subscription(T0, trial_ends_at=T0)

    assert sub.status(T0) is SubscriptionStatus.ACTIVE
    assert sub.is_trialing(T0) is False


def test_subscription_status__trial_longer_than_subscription__ended_at_its_end() -> None:
    sub = subscription(T0, ends_at=T0 + DAY, trial_ends_at=T0 + 14 * DAY)

    assert sub.status(T0 + DAY - TICK) is SubscriptionStatus.TRIALING
    assert sub.status(T0 + DAY) is SubscriptionStatus.ENDED
    assert sub.is_trialing(T0 + DAY) is False


@pytest.mark.parametrize(
    "at", [T0 - DAY, T0 - TICK, T0, T0 + DAY], ids=["day", "tick", "at", "after"]
)
def test_subscription_status__ends_at_its_own_start__ended_at_every_instant(at: datetime) -> None:
    # Given a subscription superseded before it began (it ends at its own start)
    sub = subscription(T0, ends_at=T0)

    # When it is asked at any instant, Then it never runs: ended, never scheduled or active
    assert sub.status(at) is SubscriptionStatus.ENDED
    assert sub.is_active(at) is False


def test_active_subscriptions__history__only_those_running_at_the_instant() -> None:
    # Given an ended, a running and a scheduled subscription
    ended = subscription(T0 - 2 * DAY, ends_at=T0, sub_id="ended")
    running = subscription(T0, trial_ends_at=T0 + DAY, sub_id="running")
    scheduled = subscription(T0 + DAY, sub_id="scheduled")

    # When asked for those active at T0
    active = active_subscriptions([ended, running, scheduled], T0)

    # Then only the running one (trials count)
    assert [s.id for s in active] == ["running"]


# ends_for_new_base


def test_ends_for_new_base__running_base_of_group__ends_at_new_start() -> None:
    running = subscription(T0 - DAY, sub_id="old")

    assert ends_for_new_base([running], "default", T0) == {"old": T0}


def test_ends_for_new_base__base_ending_after_new_start__ends_earlier_at_new_start() -> None:
    running = subscription(T0 - DAY, ends_at=T0 + 30 * DAY, sub_id="old")

    assert ends_for_new_base([running], "default", T0) == {"old": T0}


@pytest.mark.parametrize("starts", [T0, T0 + DAY], ids=["at_the_new_start", "after_the_new_start"])
def test_ends_for_new_base__scheduled_base__ends_at_its_own_start(starts: datetime) -> None:
    # Given a base plan scheduled to start at or after the new one
    scheduled = subscription(starts, sub_id="later")

    # When a new base plan starts at T0, Then the scheduled one never starts
    assert ends_for_new_base([scheduled], "default", T0) == {"later": starts}


@pytest.mark.parametrize(
    "ends_at", [T0 - DAY, T0], ids=["ended_before_new_start", "ended_at_new_start"]
)
def test_ends_for_new_base__base_already_over__left_alone(ends_at: datetime) -> None:
    over = subscription(T0 - 2 * DAY, ends_at=ends_at, sub_id="over")

    assert ends_for_new_base([over], "default", T0) == {}


def test_ends_for_new_base__add_ons_and_other_groups__left_alone() -> None:
    # Given an add-on of the group and a base plan of another group
    add_on = subscription(T0 - DAY, sub_id="addon", plan_type=PlanType.ADD_ON)
    other_group = subscription(T0 - DAY, sub_id="support", group="support")

    # When a base plan of `default` starts, Then neither is touched
    assert ends_for_new_base([add_on, other_group], "default", T0) == {}


def test_ends_for_new_base__mixed_history__ends_each_that_it_supersedes() -> None:
    # Given an old ended base, a running one, a scheduled one and an add-on
    history = [
        subscription(T0 - 9 * DAY, ends_at=T0 - 5 * DAY, sub_id="ended"),
        subscription(T0 - 5 * DAY, sub_id="running"),
        subscription(T0 + 5 * DAY, sub_id="scheduled"),
        subscription(T0 - 5 * DAY, sub_id="addon", plan_type=PlanType.ADD_ON),
    ]

    # When a new base plan starts at T0
    ends = ends_for_new_base(history, "default", T0)

    # Then the running one ends at T0 and the scheduled one at its own start
    assert ends == {"running": T0, "scheduled": T0 + 5 * DAY}


def test_ends_for_new_base__no_subscriptions__nothing_to_end() -> None:
    assert ends_for_new_base([], "default", T0) == {}


# default_trial_end


@pytest.mark.parametrize("trial_days", [None, 0])
def test_default_trial_end__no_trial_days__no_trial(trial_days: int | None) -> None:
    assert default_trial_end(T0, trial_days) is None


def test_default_trial_end__14_days__14_days_after_start() -> None:
    assert default_trial_end(T0, 14) == T0 + 14 * DAY


def test_default_trial_end__start_on_the_calendars_last_day__clamped_to_the_last_instant() -> None:
    started_at = datetime(9999, 12, 31, tzinfo=UTC)

    assert default_trial_end(started_at, 14) == datetime.max.replace(tzinfo=UTC)


# merge_traits


def test_merge_traits__new_and_changed_keys__merged_key_by_key() -> None:
    current: dict[str, Scalar] = {"tier": "gold", "seats": 5}

    merged = merge_traits(current, {"seats": 10, "beta": True})

    assert merged == {"tier": "gold", "seats": 10, "beta": True}


def test_merge_traits__none_value__removes_the_trait() -> None:
    merged = merge_traits({"tier": "gold", "seats": 5}, {"tier": None})

    assert merged == {"seats": 5}


def test_merge_traits__none_for_a_missing_trait__no_change() -> None:
    merged = merge_traits({"tier": "gold"}, {"region": None})

    assert merged == {"tier": "gold"}


def test_merge_traits__falsy_values__kept_not_removed() -> None:
    merged = merge_traits({}, {"beta": False, "seats": 0, "note": ""})

    assert merged == {"beta": False, "seats": 0, "note": ""}


def test_merge_traits__any_change__leaves_the_current_mapping_untouched() -> None:
    current: dict[str, Scalar] = {"tier": "gold"}

    merged = merge_traits(current, {"tier": None, "seats": 1})

    assert current == {"tier": "gold"}
    assert merged == {"seats": 1}
    assert merged is not current


# Overrides at their expiry


def override(feature: str, expires_at: datetime | None) -> Override:
    return Override(Entitlement(feature, value=True), expires_at)


@pytest.mark.parametrize(
    ("at", "features"),
    [
        (T0 - HOUR, ["forever", "expiring"]),
        (T0 - TICK, ["forever", "expiring"]),
        (T0, ["forever"]),
        (T0 + HOUR, ["forever"]),
    ],
    ids=["hour_before", "last_instant", "expiry_instant", "after"],
)
def test_active_overrides__around_expiry__stop_applying_at_the_expiry_instant(
    at: datetime, features: list[str]
) -> None:
    # Given an override without expiry and one that expires at T0
    overrides = [override("forever", None), override("expiring", T0)]

    # When asked which apply at an instant
    active = active_overrides(overrides, at)

    # Then the expiring one applies up to, but not at, its expiry
    assert [o.feature for o in active] == features


# periods.add_months


@pytest.mark.parametrize(
    ("months", "expected"),
    [
        (0, utc(2027, 1, 31, 9)),
        (1, utc(2027, 2, 28, 9)),
        (2, utc(2027, 3, 31, 9)),
        (3, utc(2027, 4, 30, 9)),
        (13, utc(2028, 2, 29, 9)),
        (14, utc(2028, 3, 31, 9)),
        (-1, utc(2026, 12, 31, 9)),
        (-2, utc(2026, 11, 30, 9)),
        (-11, utc(2026, 2, 28, 9)),
    ],
)
def test_add_months__from_january_31__clamps_to_each_months_last_day(
    months: int, expected: datetime
) -> None:
    # Given an anchor on the 31st, When months are added, Then short months clamp, and the
    # day comes back to 31 wherever the month has it (counted from the anchor, not stepwise)
    assert add_months(utc(2027, 1, 31, 9), months) == expected


def test_add_months__across_year_end__carries_into_the_year() -> None:
    assert add_months(utc(2026, 11, 30), 3) == utc(2027, 2, 28)
    assert add_months(utc(2026, 12, 15), 1) == utc(2027, 1, 15)
    assert add_months(utc(2027, 1, 15), -1) == utc(2026, 12, 15)


def test_add_months__keeps_time_of_day_and_offset() -> None:
    paris = timezone(timedelta(hours=1))
    anchor = datetime(2026, 1, 31, 23, 59, 59, 999_999, tzinfo=paris)

    assert add_months(anchor, 1) == datetime(2026, 2, 28, 23, 59, 59, 999_999, tzinfo=paris)


@pytest.mark.parametrize(
    ("years", "expected"),
    [
        (1, utc(2029, 2, 28)),
        (2, utc(2030, 2, 28)),
        (4, utc(2032, 2, 29)),
        (-1, utc(2027, 2, 28)),
        (-4, utc(2024, 2, 29)),
    ],
)
def test_add_intervals__years_from_february_29__feb_28_except_in_leap_years(
    years: int, expected: datetime
) -> None:
    assert add_intervals(utc(2028, 2, 29), Unit.YEAR, years) == expected


def test_add_intervals__days_and_weeks__exact_durations() -> None:
    assert add_intervals(T0, Unit.DAY, 3) == T0 + 3 * DAY
    assert add_intervals(T0, Unit.WEEK, -2) == T0 - 14 * DAY


# periods.cycle_bounds


ANCHOR = utc(2026, 1, 31, 10)


@pytest.mark.parametrize(
    ("unit", "at", "bounds"),
    [
        (Unit.DAY, utc(2026, 3, 15, 9), (utc(2026, 3, 14, 10), utc(2026, 3, 15, 10))),
        (Unit.DAY, utc(2026, 3, 15, 10), (utc(2026, 3, 15, 10), utc(2026, 3, 16, 10))),
        (Unit.WEEK, utc(2026, 2, 10), (utc(2026, 2, 7, 10), utc(2026, 2, 14, 10))),
        (Unit.WEEK, ANCHOR, (ANCHOR, utc(2026, 2, 7, 10))),
        (Unit.MONTH, utc(2026, 3, 15), (utc(2026, 2, 28, 10), utc(2026, 3, 31, 10))),
        (Unit.MONTH, utc(2026, 3, 31, 10), (utc(2026, 3, 31, 10), utc(2026, 4, 30, 10))),
        (Unit.MONTH, utc(2026, 3, 31, 10) - TICK, (utc(2026, 2, 28, 10), utc(2026, 3, 31, 10))),
        (Unit.MONTH, ANCHOR, (ANCHOR, utc(2026, 2, 28, 10))),
        (Unit.MONTH, utc(2028, 2, 29, 12), (utc(2028, 2, 29, 10), utc(2028, 3, 31, 10))),
        (Unit.YEAR, utc(2027, 6, 1), (utc(2027, 1, 31, 10), utc(2028, 1, 31, 10))),
        (Unit.YEAR, utc(2027, 1, 31, 10), (utc(2027, 1, 31, 10), utc(2028, 1, 31, 10))),
    ],
)
def test_cycle_bounds__after_the_anchor__the_cycle_containing_at(
    unit: Unit, at: datetime, bounds: tuple[datetime, datetime]
) -> None:
    assert cycle_bounds(ANCHOR, unit, at) == bounds


@pytest.mark.parametrize(
    ("unit", "at", "bounds"),
    [
        (Unit.DAY, ANCHOR - TICK, (ANCHOR - DAY, ANCHOR)),
        (Unit.WEEK, utc(2026, 1, 20), (utc(2026, 1, 17, 10), utc(2026, 1, 24, 10))),
        (Unit.MONTH, utc(2025, 12, 15), (utc(2025, 11, 30, 10), utc(2025, 12, 31, 10))),
        (Unit.MONTH, utc(2025, 3, 1), (utc(2025, 2, 28, 10), utc(2025, 3, 31, 10))),
        (Unit.MONTH, ANCHOR - TICK, (utc(2025, 12, 31, 10), ANCHOR)),
        (Unit.YEAR, utc(2020, 5, 5), (utc(2020, 1, 31, 10), utc(2021, 1, 31, 10))),
    ],
)
def test_cycle_bounds__before_the_anchor__counts_cycles_backwards(
    unit: Unit, at: datetime, bounds: tuple[datetime, datetime]
) -> None:
    assert cycle_bounds(ANCHOR, unit, at) == bounds


# Properties

# Hypothesis takes naive bounds; `timezones=` makes the values it draws aware.
MIN_INSTANT = datetime(1900, 1, 1)  # noqa: DTZ001
MAX_INSTANT = datetime(2200, 1, 1)  # noqa: DTZ001
instants = st.datetimes(min_value=MIN_INSTANT, max_value=MAX_INSTANT, timezones=st.just(UTC))
units = st.sampled_from(Unit)


def intervals_between(anchor: datetime, unit: Unit, start: datetime) -> int:
    """How many whole `unit`s `start` is from `anchor` (start is a cycle boundary)."""
    if unit is Unit.DAY:
        return (start - anchor) // DAY
    if unit is Unit.WEEK:
        return (start - anchor) // (7 * DAY)
    months = (start.year - anchor.year) * 12 + start.month - anchor.month
    return months if unit is Unit.MONTH else months // 12


@given(anchor=instants, unit=units, at=instants)
def test_cycle_bounds__any_anchor_and_instant__contains_at_between_consecutive_boundaries(
    anchor: datetime, unit: Unit, at: datetime
) -> None:
    start, end = cycle_bounds(anchor, unit, at)

    assert start <= at < end
    count = intervals_between(anchor, unit, start)
    assert add_intervals(anchor, unit, count) == start
    assert add_intervals(anchor, unit, count + 1) == end


@given(anchor=instants, unit=units, at=instants)
def test_cycle_bounds__start_and_end__begin_this_cycle_and_the_next(
    anchor: datetime, unit: Unit, at: datetime
) -> None:
    start, end = cycle_bounds(anchor, unit, at)

    assert cycle_bounds(anchor, unit, start) == (start, end)
    assert cycle_bounds(anchor, unit, end)[0] == end
    assert cycle_bounds(anchor, unit, end - TICK) == (start, end)


@given(
    anchor=instants.filter(lambda d: d.day <= 28),
    unit=units,
    at=instants,
)
def test_cycle_bounds__anchor_day_in_every_month__end_is_one_interval_after_start(
    anchor: datetime, unit: Unit, at: datetime
) -> None:
    # No clamping when every month has the anchor's day: cycles are one interval long
    start, end = cycle_bounds(anchor, unit, at)

    assert end == add_intervals(start, unit, 1)


offsets = st.integers(min_value=-4, max_value=4).map(lambda n: T0 + n * HOUR)


@given(
    started_at=offsets,
    ends_at=st.none() | offsets,
    trial_ends_at=st.none() | offsets,
    at=offsets,
)
def test_subscription__any_bounds_and_instant__active_iff_status_active_or_trialing(
    started_at: datetime, ends_at: datetime | None, trial_ends_at: datetime | None, at: datetime
) -> None:
    # Instants an hour apart around T0, so bounds often meet `at` exactly
    sub = subscription(started_at, ends_at=ends_at, trial_ends_at=trial_ends_at)

    status = sub.status(at)

    assert sub.is_active(at) is (status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING))
    assert sub.is_trialing(at) is (status is SubscriptionStatus.TRIALING)
    assert (status is SubscriptionStatus.SCHEDULED) is (
        at < started_at and (ends_at is None or ends_at > started_at)
    )

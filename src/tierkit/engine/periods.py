"""Calendar arithmetic for billing cycles and usage periods: whole intervals from an anchor.

Months are counted from the anchor, not step by step, so a cycle anchored on Jan 31 runs
Feb 28 (or 29), Mar 31, Apr 30: a month shorter than the anchor day clamps to its last day.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum


class Unit(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


def add_months(anchor: datetime, months: int) -> datetime:
    """`anchor` plus whole months, clamping the day to the target month's length."""
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(index, 12)
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


_ADD: Mapping[Unit, Callable[[datetime, int], datetime]] = {
    Unit.DAY: lambda anchor, n: anchor + timedelta(days=n),
    Unit.WEEK: lambda anchor, n: anchor + timedelta(weeks=n),
    Unit.MONTH: add_months,
    Unit.YEAR: lambda anchor, n: add_months(anchor, 12 * n),
}

_APPROXIMATE_DAYS = {Unit.DAY: 1.0, Unit.WEEK: 7.0, Unit.MONTH: 30.436875, Unit.YEAR: 365.2425}


def add_intervals(anchor: datetime, unit: Unit, count: int) -> datetime:
    return _ADD[unit](anchor, count)


def cycle_number(anchor: datetime, unit: Unit, at: datetime) -> int:
    """Which cycle of `unit`s anchored at `anchor` holds `at` (0 is the first; negative
    before the anchor, so late or early timestamps have a cycle)."""
    count = int((at - anchor).total_seconds() // (_APPROXIMATE_DAYS[unit] * 86_400))
    while add_intervals(anchor, unit, count) > at:
        count -= 1
    while add_intervals(anchor, unit, count + 1) <= at:
        count += 1
    return count


def cycle_bounds(anchor: datetime, unit: Unit, at: datetime) -> tuple[datetime, datetime]:
    """The cycle of `unit`s anchored at `anchor` that contains `at`: `start <= at < end`."""
    count = cycle_number(anchor, unit, at)
    return add_intervals(anchor, unit, count), add_intervals(anchor, unit, count + 1)


_CALENDAR_START: Mapping[Unit, Callable[[datetime], datetime]] = {
    Unit.DAY: lambda t: t.replace(hour=0, minute=0, second=0, microsecond=0),
    Unit.WEEK: lambda t: (t - timedelta(days=t.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    ),
    Unit.MONTH: lambda t: t.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
    Unit.YEAR: lambda t: t.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
}


def calendar_bounds(unit: Unit, at: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The calendar `unit` containing `at` in `zone` (weeks start on Monday, ISO), in UTC."""
    local = at.astimezone(zone)
    start = _CALENDAR_START[unit](local).replace(tzinfo=None)
    end = add_intervals(start, unit, 1)
    return start.replace(tzinfo=zone).astimezone(UTC), end.replace(tzinfo=zone).astimezone(UTC)

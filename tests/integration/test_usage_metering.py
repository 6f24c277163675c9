"""Usage metering over real HTTP on both databases: events in through POST /v1/events and
/v1/metrics/set, usage out through POST /v1/check and GET /v1/companies/{key}/usage. Each
aggregation end to end, periods rolling over as the test's clock moves (late events counting in
their closed window), calendar days in the company's time zone, billing cycles anchored on the
31st, hard and soft limits, all-time usage, usage conditions in rules, and a plan's period change
recounting the events already sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import SettableClock
from tests.support.api import create_feature, create_plan, rfc3339

JAN_15 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _metered_on_pro(
    api: httpx.Client,
    meter: dict[str, Any] | None = None,
    *,
    value: int = 100,
    **entitlement: Any,
) -> None:
    """Feature `api_calls` metered by `meter` (a count of `api_call` events by default), limited
    to `value` on base plan `pro`, with `entitlement`'s period, reset and soft_limit."""
    create_feature(
        api, "api_calls", "metered", meter=meter or {"event": "api_call", "aggregation": "count"}
    )
    create_plan(api, "pro", [{"feature": "api_calls", "value": value, **entitlement}])


def _subscribe(api: httpx.Client, company: str = "acme", **fields: Any) -> None:
    """Create `company` and subscribe it to `pro` (from now, or from `started_at`)."""
    api.put(f"/v1/companies/{company}", json={}).raise_for_status()
    body = {"plan": "pro"} | {
        name: rfc3339(value) if isinstance(value, datetime) else value
        for name, value in fields.items()
    }
    response = api.post(f"/v1/companies/{company}/subscriptions", json=body)
    assert response.status_code == 201, response.text


def _track(api: httpx.Client, *events: dict[str, Any]) -> None:
    """Send `events` in one batch; every one must be accepted."""
    body = [
        {"event": "api_call", "company": "acme"}
        | {
            name: rfc3339(value) if isinstance(value, datetime) else value
            for name, value in event.items()
        }
        for event in events
    ]
    response = api.post("/v1/events", json={"events": body})
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": len(events), "duplicates": 0}


def _check(
    api: httpx.Client, feature: str = "api_calls", company: str = "acme", **fields: Any
) -> dict[str, Any]:
    response = api.post("/v1/check", json={"company": company, "feature": feature, **fields})
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()
    return decision


def _migrate_to_latest(api: httpx.Client, plan: str = "pro") -> None:
    """Move the plan's subscribers from its previous version to its latest (a plan edited
    under its subscribers makes a new version; they keep theirs until migrated)."""
    latest = api.get(f"/v1/plans/{plan}").json()["version"]
    body = {"from_version": latest - 1, "to_version": latest}
    response = api.post(f"/v1/plans/{plan}/migrations", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["done"] is True


def _usage(api: httpx.Client, feature: str = "api_calls", company: str = "acme") -> dict[str, Any]:
    usage: dict[str, Any] = _check(api, feature, company)["usage"]
    return usage


def _listed_usage(api: httpx.Client, company: str = "acme") -> dict[str, dict[str, Any]]:
    """GET /v1/companies/{company}/usage, by feature."""
    response = api.get(f"/v1/companies/{company}/usage")
    assert response.status_code == 200, response.text
    return {row["feature"]: row for row in response.json()["data"]}


def _bounds(usage: dict[str, Any]) -> tuple[str | None, str | None]:
    return usage["period_start"], usage["resets_at"]


# Each aggregation, end to end


def _props(**properties: Any) -> dict[str, Any]:
    return {"properties": properties}


AGGREGATIONS = [
    pytest.param(
        {"aggregation": "count"},
        [{"quantity": 5}, {"quantity": -2}],
        [{}, _props(tokens=9)],
        (2, 4),
        id="count",
    ),
    pytest.param(
        {"aggregation": "sum"},
        [{"quantity": 2}, {"quantity": 3.5}],
        [{"quantity": 5}, {"quantity": -0.5}],
        (5.5, 10),
        id="sum_of_quantity",
    ),
    pytest.param(
        {"aggregation": "sum", "property": "tokens"},
        [{"quantity": 100} | _props(tokens=10), _props(other=4)],
        [_props(tokens=20), _props(tokens="7"), _props(tokens=True), _props(tokens=2.5)],
        (10, 32.5),
        id="sum_of_property_ignores_missing_and_non_numeric",
    ),
    pytest.param(
        {"aggregation": "max"},
        [{"quantity": -3}, {"quantity": -1}],
        [{"quantity": 7}, {"quantity": 2}],
        (0, 7),
        id="max_of_quantity_never_negative",
    ),
    pytest.param(
        {"aggregation": "max", "property": "size"},
        [_props(size=4), _props(size="99")],
        [_props(size=9), {"quantity": 50}, _props(size=3)],
        (4, 9),
        id="max_of_property",
    ),
    pytest.param(
        {"aggregation": "unique_count", "property": "user"},
        [_props(user="u1"), _props(user="u2"), _props(user="u1")],
        [_props(user="u2"), _props(user=1), _props(user="1"), _props(user=None), {}],
        (2, 4),
        id="unique_count_number_and_text_distinct",
    ),
]


@pytest.mark.parametrize(("meter", "first", "second", "expected"), AGGREGATIONS)
def test_check_usage__each_aggregation__counts_events_sent_before_and_after_the_first_check(
    api: httpx.Client,
    clock: SettableClock,
    *,
    meter: dict[str, Any],
    first: list[dict[str, Any]],
    second: list[dict[str, Any]],
    expected: tuple[float, float],
) -> None:
    # Given api_calls metered by `meter`, and a first batch of events (counted from the raw
    # events when the first check reads the month)
    clock.now = JAN_15
    _metered_on_pro(api, {"event": "api_call"} | meter)
    _subscribe(api)
    _track(api, *first)
    after_first = _usage(api)["used"]

    # When a second batch arrives (folded into the existing counter)
    _track(api, *second)
    usage = _usage(api)

    # Then the check and the usage listing read the meter's value over all the events
    assert (after_first, usage["used"]) == expected
    assert _listed_usage(api)["api_calls"]["used"] == expected[1]
    assert (usage["period"], *_bounds(usage)) == (
        "month",
        "2024-01-01T00:00:00Z",
        "2024-02-01T00:00:00Z",
    )


def test_check_usage__latest_gauge_set_out_of_order__value_with_the_latest_time(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given seats, a `latest` gauge limited to 10 per month, set to 5 at 11:00
    clock.now = JAN_15
    create_feature(api, "seats", "metered", meter={"event": "seats", "aggregation": "latest"})
    create_plan(api, "pro", [{"feature": "seats", "value": 10, "period": "month"}])
    _subscribe(api)

    def set_seats(value: float, at: datetime) -> None:
        body = {"key": "seats", "company": "acme", "value": value, "time": rfc3339(at)}
        response = api.post("/v1/metrics/set", json=body)
        assert response.status_code == 202, response.text

    set_seats(5, utc(2024, 1, 15, 11))
    first = _usage(api, "seats")["used"]

    # When 3 is set late (for 10:00), then 8 and 6 both for 11:00 (6 received last)
    set_seats(3, utc(2024, 1, 15, 10))
    after_late = _usage(api, "seats")["used"]
    set_seats(8, utc(2024, 1, 15, 11))
    set_seats(6, utc(2024, 1, 15, 11))
    usage = _usage(api, "seats")

    # Then the value with the latest time wins, ties going to the one received last, and a
    # gauge has no period bounds
    assert (first, after_late, usage["used"]) == (5, 5, 6)
    assert (usage["remaining"], *_bounds(usage)) == (4, None, None)


def test_check_usage__gauge_set_in_an_earlier_month__still_counts_after_rollover(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given seats set to 7 in January
    clock.now = JAN_15
    create_feature(api, "seats", "metered", meter={"event": "seats", "aggregation": "latest"})
    create_plan(api, "pro", [{"feature": "seats", "value": 10, "period": "month"}])
    _subscribe(api)
    api.post("/v1/metrics/set", json={"key": "seats", "company": "acme", "value": 7})
    assert _usage(api, "seats")["used"] == 7

    # When the month rolls over
    clock.now = utc(2024, 3, 10)

    # Then the gauge keeps its value
    assert _usage(api, "seats")["used"] == 7
    assert _listed_usage(api)["seats"]["used"] == 7


# Periods rolling over


def test_check_usage__month_rolls_over__zero_and_late_events_count_in_january_only(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given 3 api calls in January 2024, read by a check in January
    clock.now = JAN_15
    _metered_on_pro(api, period="month", reset="calendar")
    _subscribe(api)
    _track(api, {"timestamp": utc(2024, 1, 2)}, {"timestamp": utc(2024, 1, 10)}, {})
    january = _usage(api)
    assert (january["used"], *_bounds(january)) == (
        3,
        "2024-01-01T00:00:00Z",
        "2024-02-01T00:00:00Z",
    )

    # When the clock moves to February
    clock.now = utc(2024, 2, 10, 9)
    february = _usage(api)

    # Then February has used nothing and resets on March 1
    assert (february["used"], february["remaining"], *_bounds(february)) == (
        0,
        100,
        "2024-02-01T00:00:00Z",
        "2024-03-01T00:00:00Z",
    )
    assert _listed_usage(api)["api_calls"]["used"] == 0

    # When an event dated January 31 arrives late, and one dated now
    _track(api, {"timestamp": utc(2024, 1, 31, 23, 59)})
    after_late = _usage(api)["used"]
    _track(api, {})

    # Then the late event leaves February alone; the February event counts in February
    assert (after_late, _usage(api)["used"], _listed_usage(api)["api_calls"]["used"]) == (0, 1, 1)

    # And January's closed counter holds the late event (read at January's last instant)
    clock.now = utc(2024, 2, 1) - timedelta(microseconds=1)
    assert _listed_usage(api)["api_calls"]["used"] == 4


def test_check_usage__day_period__counts_in_the_company_time_zone_day(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a daily limit, and the clock at 2024-03-11T03:00Z (23:00 on March 10 in New York)
    clock.now = utc(2024, 3, 11, 3)
    _metered_on_pro(api, period="day", reset="calendar")
    _subscribe(api)
    # and events at 04:30Z on March 10 (March 9 in New York), 05:30Z on March 10, and 02:30Z
    # on March 11 (both March 10 in New York)
    _track(
        api,
        {"timestamp": utc(2024, 3, 10, 4, 30)},
        {"timestamp": utc(2024, 3, 10, 5, 30)},
        {"timestamp": utc(2024, 3, 11, 2, 30)},
    )
    in_utc = _usage(api)

    # When the company's time zone becomes America/New_York
    api.put(
        "/v1/companies/acme", json={"traits": {"timezone": "America/New_York"}}
    ).raise_for_status()
    in_new_york = _usage(api)

    # Then in UTC only the March 11 event counts; in New York the two March 10 ones do, over
    # New York's 23-hour March 10 (daylight saving starts)
    assert (in_utc["used"], *_bounds(in_utc)) == (
        1,
        "2024-03-11T00:00:00Z",
        "2024-03-12T00:00:00Z",
    )
    assert (in_new_york["used"], *_bounds(in_new_york)) == (
        2,
        "2024-03-10T05:00:00Z",
        "2024-03-11T04:00:00Z",
    )


def test_check_usage__billing_cycle_anchored_on_the_31st__cycles_clamp_to_short_months(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a monthly billing-cycle limit and a subscription started 2024-01-31T10:00Z
    clock.now = utc(2024, 2, 29, 9)
    _metered_on_pro(api, period="month", reset="billing_cycle")
    _subscribe(api, started_at=utc(2024, 1, 31, 10))
    # and events just before the anchor, just after it, and just before the next cycle
    _track(
        api,
        {"timestamp": utc(2024, 1, 31, 9, 59)},
        {"timestamp": utc(2024, 1, 31, 10, 0)},
        {"timestamp": utc(2024, 2, 29, 8)},
    )

    # When checked on February 29 before 10:00, at 10:00 after one more event, and in April
    first = _usage(api)
    clock.now = utc(2024, 2, 29, 10)
    _track(api, {"timestamp": utc(2024, 2, 29, 10)})
    second = _usage(api)
    clock.now = utc(2024, 4, 15)
    fourth = _usage(api)

    # Then the first cycle ends on February 29 (leap year), the next on March 31 and the one
    # holding April 15 on April 30
    assert (first["used"], *_bounds(first)) == (
        2,
        "2024-01-31T10:00:00Z",
        "2024-02-29T10:00:00Z",
    )
    assert (second["used"], *_bounds(second)) == (
        1,
        "2024-02-29T10:00:00Z",
        "2024-03-31T10:00:00Z",
    )
    assert (fourth["used"], *_bounds(fourth)) == (
        0,
        "2024-03-31T10:00:00Z",
        "2024-04-30T10:00:00Z",
    )


def test_check_usage__all_time_period__never_resets(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given an all-time limit and 2 calls in January 2024
    clock.now = JAN_15
    _metered_on_pro(api, period="all_time")
    _subscribe(api)
    _track(api, {"timestamp": utc(2024, 1, 3)}, {})
    january = _usage(api)["used"]

    # When the clock moves to June 2025 and one more call is made
    clock.now = utc(2025, 6, 1)
    a_year_later = _usage(api)["used"]
    _track(api, {})
    usage = _usage(api)

    # Then every call still counts, and the period has no bounds
    assert (january, a_year_later, usage["used"]) == (2, 2, 3)
    assert (usage["period"], *_bounds(usage), usage["remaining"]) == ("all_time", None, None, 97)


# Limits


def test_check__at_a_hard_limit__denied_limit_exceeded_and_consume_records_nothing(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a hard limit of 5 tokens per month, and 5 tokens used
    clock.now = JAN_15
    _metered_on_pro(api, {"event": "api_call", "aggregation": "sum"}, value=5, soft_limit=False)
    _subscribe(api)
    _track(api, {"quantity": 3}, {"quantity": 2})

    # When one more token is checked, then consumed
    checked = _check(api, quantity=1)
    consumed = _check(api, quantity=1, consume=True)

    # Then both are denied with limit_exceeded and nothing is left; usage stays at 5
    for decision in (checked, consumed):
        assert (decision["allowed"], decision["reason"], decision["value"]) == (
            False,
            "limit_exceeded",
            5,
        )
        assert {k: decision["usage"][k] for k in ("used", "limit", "remaining", "overage")} == {
            "used": 5,
            "limit": 5,
            "remaining": 0,
            "overage": 0,
        }
    assert _usage(api)["used"] == 5


def test_check__one_below_a_hard_limit__allowed_then_consume_reaches_it(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a hard limit of 5 tokens per month, and 4 used
    clock.now = JAN_15
    _metered_on_pro(api, {"event": "api_call", "aggregation": "sum"}, value=5)
    _subscribe(api)
    _track(api, {"quantity": 4})

    # When 2 more are checked, then 1 is consumed, then 1 more is checked
    two_more = _check(api, quantity=2)
    consumed = _check(api, quantity=1, consume=True)
    after = _check(api, quantity=1)

    # Then 2 would pass the limit, 1 reaches it exactly, and the next is denied
    assert (two_more["allowed"], two_more["reason"], two_more["usage"]["remaining"]) == (
        False,
        "limit_exceeded",
        1,
    )
    assert (consumed["allowed"], consumed["reason"], consumed["usage"]["used"]) == (
        True,
        "plan",
        5,
    )
    assert (after["allowed"], after["usage"]["used"], after["usage"]["remaining"]) == (
        False,
        5,
        0,
    )


def test_check__past_a_soft_limit__allowed_with_overage(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a soft limit of 5 tokens per month, and 8 used
    clock.now = JAN_15
    _metered_on_pro(api, {"event": "api_call", "aggregation": "sum"}, value=5, soft_limit=True)
    _subscribe(api)
    _track(api, {"quantity": 6}, {"quantity": 2})

    # When one more is checked, then 2 are consumed
    checked = _check(api, quantity=1)
    consumed = _check(api, quantity=2, consume=True)

    # Then both are allowed; the overage is the usage past the limit
    assert (checked["allowed"], checked["reason"]) == (True, "plan")
    assert {k: checked["usage"][k] for k in ("used", "limit", "remaining", "overage")} == {
        "used": 8,
        "limit": 5,
        "remaining": 0,
        "overage": 3,
    }
    assert (consumed["allowed"], consumed["usage"]["used"], consumed["usage"]["overage"]) == (
        True,
        10,
        5,
    )
    assert _listed_usage(api)["api_calls"]["overage"] == 5


# Usage in rule conditions


def _heavy_rule(api: httpx.Client) -> None:
    """Boolean feature `heavy`, on when api_calls usage is at least 100."""
    create_feature(api, "heavy")
    rules = [
        {
            "name": "heavy",
            "value": True,
            "conditions": [[{"type": "usage", "feature": "api_calls", "op": "gte", "value": 100}]],
        }
    ]
    response = api.put("/v1/features/heavy/rules", json=rules)
    assert response.status_code == 200, response.text


def test_check__usage_condition_threshold_passed__rule_switches_the_feature_on(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given api_calls summing quantities, and `heavy` on at 100 calls this month; 99 used
    clock.now = JAN_15
    _metered_on_pro(api, {"event": "api_call", "aggregation": "sum"}, value=1000)
    _subscribe(api)
    _heavy_rule(api)
    _track(api, {"quantity": 99})
    below = _check(api, "heavy")

    # When one more call arrives
    _track(api, {"quantity": 1})
    at_threshold = _check(api, "heavy")

    # Then `heavy` is off below the threshold and on by the rule at it
    assert (below["value"], below["reason"], below["rule"]) == (False, "default", None)
    assert (at_threshold["value"], at_threshold["reason"], at_threshold["rule"]) == (
        True,
        "rule",
        "heavy",
    )


def test_check__usage_condition_after_month_rollover__reads_the_new_months_usage(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given `heavy` on at 100 calls this month, and 150 calls in January (checked then)
    clock.now = JAN_15
    _metered_on_pro(api, {"event": "api_call", "aggregation": "sum"}, value=1000)
    _subscribe(api)
    _heavy_rule(api)
    _track(api, {"quantity": 150})
    january = _check(api, "heavy")

    # When the clock moves to February, with no calls yet
    clock.now = utc(2024, 2, 10)
    february = _check(api, "heavy")

    # Then the rule no longer matches: February's usage is 0, as api_calls itself says
    assert (january["value"], january["reason"]) == (True, "rule")
    assert _usage(api)["used"] == 0
    assert (february["value"], february["reason"]) == (False, "default")


# Changing the period of an entitlement


def test_check_usage__entitlement_period_changed__recounted_in_the_new_window(
    api: httpx.Client, clock: SettableClock
) -> None:
    # Given a monthly limit and calls on 2023-12-20, 2024-01-02 and twice on 2024-01-15,
    # read by a check (monthly: 3)
    clock.now = JAN_15
    _metered_on_pro(api, period="month")
    _subscribe(api, started_at=utc(2023, 12, 1))
    _track(
        api,
        {"timestamp": utc(2023, 12, 20)},
        {"timestamp": utc(2024, 1, 2)},
        {"timestamp": utc(2024, 1, 15, 9)},
        {"timestamp": utc(2024, 1, 15, 11)},
    )
    monthly = _usage(api)

    # When the plan's entitlement becomes daily by a PUT, yearly by a PATCH of the plan,
    # and all-time by another PUT (each a new plan version, acme migrated onto it)
    response = api.put("/v1/plans/pro/entitlements/api_calls", json={"value": 100, "period": "day"})
    assert response.status_code == 200, response.text
    _migrate_to_latest(api)
    daily = _usage(api)
    response = api.patch(
        "/v1/plans/pro",
        json={"entitlements": [{"feature": "api_calls", "value": 100, "period": "year"}]},
    )
    assert response.status_code == 200, response.text
    _migrate_to_latest(api)
    yearly = _usage(api)
    response = api.put(
        "/v1/plans/pro/entitlements/api_calls", json={"value": 100, "period": "all_time"}
    )
    assert response.status_code == 200, response.text
    _migrate_to_latest(api)
    all_time = _usage(api)

    # Then each check counts the calls already sent over the new window
    assert (monthly["used"], monthly["period"]) == (3, "month")
    assert (daily["used"], daily["period"], *_bounds(daily)) == (
        2,
        "day",
        "2024-01-15T00:00:00Z",
        "2024-01-16T00:00:00Z",
    )
    assert (yearly["used"], yearly["period"], *_bounds(yearly)) == (
        3,
        "year",
        "2024-01-01T00:00:00Z",
        "2025-01-01T00:00:00Z",
    )
    assert (all_time["used"], all_time["period"], *_bounds(all_time)) == (4, "all_time", None, None)

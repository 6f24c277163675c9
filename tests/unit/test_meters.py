"""Meters as pure functions: what each aggregation (`count`, `sum`, `max`, `unique_count`,
`latest`) makes of hand-made events, what an event without a usable reading contributes
(nothing), and the invariants the server's counters rely on: `aggregate` does not depend on the
order of the events, folding chunks with `combine` equals recounting from scratch, and a gauge's
latest value is the same however its events arrive."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierkit.engine.catalog import Aggregation, Meter
from tierkit.engine.meters import MeterEvent, aggregate, combine, latest_key, reading

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def event(
    quantity: float = 1.0,
    at: datetime = T0,
    sequence: int = 0,
    **properties: Any,
) -> MeterEvent:
    return MeterEvent(timestamp=at, quantity=quantity, properties=properties, sequence=sequence)


def meter(aggregation: Aggregation, prop: str | None = None) -> Meter:
    return Meter("api_call", aggregation, prop)


# count


def test_aggregate_count__three_events__counts_each_once_whatever_they_carry() -> None:
    # Given three events of different quantities and properties
    events = [event(5), event(-2, tokens=10), event(0.5, tokens="x")]

    # When a count meter aggregates them, Then each event counts 1
    assert aggregate(meter(Aggregation.COUNT), events) == 3.0


def test_aggregate__no_events__zero_for_every_aggregation() -> None:
    # Given no events, When any meter aggregates them, Then the usage is 0
    for aggregation in Aggregation:
        assert aggregate(meter(aggregation, "tokens"), []) == 0.0, aggregation


# sum


def test_aggregate_sum__without_property__adds_quantities_negative_ones_included() -> None:
    # Given events of quantities 2, 3.5 and -1 (a correction)
    events = [event(2), event(3.5), event(-1)]

    # When a sum meter with no property aggregates them, Then it adds the quantities
    assert aggregate(meter(Aggregation.SUM), events) == 4.5


def test_aggregate_sum__with_property__adds_the_property_and_ignores_quantity() -> None:
    # Given events whose `tokens` property differs from their quantity
    events = [event(100, tokens=10), event(100, tokens=2.5)]

    # When a sum meter of `tokens` aggregates them, Then it adds the property values
    assert aggregate(meter(Aggregation.SUM, "tokens"), events) == 12.5


def test_aggregate_sum__missing_or_non_numeric_property__contributes_nothing() -> None:
    # Given one usable event and events whose `tokens` is missing, text, a boolean, null,
    # a list or an object
    events = [
        event(7, tokens=10),
        event(7),
        event(7, other=3),
        event(7, tokens="5"),
        event(7, tokens=True),
        event(7, tokens=None),
        event(7, tokens=[1, 2]),
        event(7, tokens={"n": 1}),
    ]

    # When a sum meter of `tokens` aggregates them, Then only the number counts
    assert aggregate(meter(Aggregation.SUM, "tokens"), events) == 10.0


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"tokens": 4}, 4.0),
        ({"tokens": 4.25}, 4.25),
        ({"tokens": -3}, -3.0),
        ({}, None),
        ({"tokens": "4"}, None),
        ({"tokens": False}, None),
        ({"tokens": float("inf")}, None),
        ({"tokens": float("nan")}, None),
    ],
    ids=["int", "float", "negative", "missing", "text", "boolean", "infinity", "nan"],
)
def test_reading_sum__property_value__number_or_nothing(
    properties: dict[str, Any], expected: float | None
) -> None:
    # Given an event with `properties`, When a sum meter of `tokens` reads it,
    # Then it reads a finite number as a float, and anything else as nothing
    assert reading(meter(Aggregation.SUM, "tokens"), event(9, **properties)) == expected


# max


def test_aggregate_max__quantities__the_greatest() -> None:
    # Given events of quantities 3, 7 and 2
    events = [event(3), event(7), event(2)]

    # When a max meter aggregates them, Then it is the greatest
    assert aggregate(meter(Aggregation.MAX), events) == 7.0


def test_aggregate_max__only_negative_quantities__zero_never_negative() -> None:
    # Given events of negative quantities only
    events = [event(-5), event(-2)]

    # When a max meter aggregates them, Then usage starts from 0 and stays there
    assert aggregate(meter(Aggregation.MAX), events) == 0.0


def test_aggregate_max__property_with_unusable_values__the_greatest_number() -> None:
    # Given `size` values 4, "99" (text), missing and 6, with quantities 1000
    events = [event(1000, size=4), event(1000, size="99"), event(1000), event(1000, size=6)]

    # When a max meter of `size` aggregates them, Then text and missing values are ignored
    assert aggregate(meter(Aggregation.MAX, "size"), events) == 6.0


# unique_count


def test_aggregate_unique_count__number_one_and_text_one__two_distinct_values() -> None:
    # Given `user` values 1, "1", 1 again and "1" again
    events = [event(user=1), event(user="1"), event(user=1), event(user="1")]

    # When a unique_count meter of `user` aggregates them, Then 1 and "1" are distinct
    assert aggregate(meter(Aggregation.UNIQUE_COUNT, "user"), events) == 2.0


def test_aggregate_unique_count__mixed_values__exact_distinct_count() -> None:
    # Given strings, numbers, booleans, a list and objects with keys in either order,
    # plus events without the property or with it null
    events = [
        event(user="u1"),
        event(user="u2"),
        event(user="u1"),
        event(user=True),
        event(user="true"),
        event(user=[1, 2]),
        event(user={"a": 1, "b": 2}),
        event(user={"b": 2, "a": 1}),
        event(user=None),
        event(),
    ]

    # When a unique_count meter of `user` aggregates them
    value = aggregate(meter(Aggregation.UNIQUE_COUNT, "user"), events)

    # Then it counts u1, u2, true, "true", [1, 2] and the one object: 6
    assert value == 6.0


def test_aggregate_unique_count__meter_without_property__counts_nothing() -> None:
    # Given events, When a unique_count meter with no property aggregates them, Then 0
    assert aggregate(meter(Aggregation.UNIQUE_COUNT), [event(1), event(2)]) == 0.0


# latest


def test_aggregate_latest__out_of_order_events__value_of_the_greatest_timestamp() -> None:
    # Given gauge values sent out of order: 5 at T0+2s, 9 at T0, 3 at T0+1s
    events = [
        event(5, at=T0 + 2 * SECOND, sequence=1),
        event(9, at=T0, sequence=2),
        event(3, at=T0 + SECOND, sequence=3),
    ]

    # When a latest meter aggregates them, Then the value set last in time wins
    assert aggregate(meter(Aggregation.LATEST), events) == 5.0


def test_aggregate_latest__same_timestamp__the_later_received_wins() -> None:
    # Given two values set at the same instant, 8 received after 4
    events = [event(8, sequence=11), event(4, sequence=10)]

    # When a latest meter aggregates them, Then the one with the greater sequence wins
    assert aggregate(meter(Aggregation.LATEST), events) == 8.0
    assert latest_key(events[0]) == (T0, 11)


def test_aggregate_latest__value_can_go_down_to_zero_or_below() -> None:
    # Given seats set to 12, then to 0, then to -1 (a gauge is not a running total)
    events = [event(12, sequence=1), event(0, T0 + SECOND, 2), event(-1, T0 + 2 * SECOND, 3)]

    # When a latest meter aggregates them, Then it is the last value, as is
    assert aggregate(meter(Aggregation.LATEST), events) == -1.0


def test_aggregate_latest__newest_event_without_property__the_newest_usable_value() -> None:
    # Given `seats` 4 at T0 and a newer event with no `seats`
    events = [event(seats=4, sequence=1), event(at=T0 + SECOND, sequence=2)]

    # When a latest meter of `seats` aggregates them, Then the unusable event is skipped
    assert aggregate(meter(Aggregation.LATEST, "seats"), events) == 4.0


# combine


@pytest.mark.parametrize(
    ("aggregation", "start", "readings", "expected"),
    [
        (Aggregation.COUNT, 4.0, [1.0, 1.0, 1.0], 7.0),
        (Aggregation.COUNT, 4.0, [], 4.0),
        (Aggregation.SUM, 10.0, [2.5, -1.0], 11.5),
        (Aggregation.SUM, 10.0, [], 10.0),
        (Aggregation.MAX, 6.0, [2.0, 5.0], 6.0),
        (Aggregation.MAX, 6.0, [9.0, 5.0], 9.0),
        (Aggregation.MAX, 0.0, [-3.0], 0.0),
    ],
    ids=[
        "count_adds_readings",
        "count_nothing_new",
        "sum_adds",
        "sum_nothing_new",
        "max_keeps_running_max",
        "max_takes_new_max",
        "max_stays_at_zero",
    ],
)
def test_combine__running_value_and_readings__folded_value(
    aggregation: Aggregation, start: float, readings: list[float], expected: float
) -> None:
    # Given a running value and new readings, When they are combined, Then the value is folded
    assert combine(aggregation, start, readings) == expected


# Invariants over generated events

FOLDABLE = (Aggregation.COUNT, Aggregation.SUM, Aggregation.MAX)
timestamps = st.integers(min_value=0, max_value=5).map(lambda s: T0 + s * SECOND)
whole_quantities = st.integers(min_value=-(10**6), max_value=10**6).map(float)
property_values: st.SearchStrategy[Any] = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from(["1", "a", "", True, None]),
)


@st.composite
def event_lists(draw: st.DrawFn) -> list[MeterEvent]:
    """Events with whole quantities, sometimes a `tokens` property (a number, text, a boolean
    or null), each with its own receipt sequence."""
    drawn = draw(
        st.lists(
            st.tuples(
                timestamps,
                whole_quantities,
                st.none() | property_values,
            ),
            max_size=30,
        )
    )
    return [
        MeterEvent(at, quantity, {} if value is None else {"tokens": value}, sequence)
        for sequence, (at, quantity, value) in enumerate(drawn)
    ]


meters = st.builds(
    Meter,
    event=st.just("api_call"),
    aggregation=st.sampled_from(Aggregation),
    property=st.none() | st.just("tokens"),
)


@settings(deadline=None, database=None)
@given(meter_=meters, events=event_lists(), data=st.data())
def test_aggregate__any_order_of_whole_valued_events__same_value(
    meter_: Meter, events: list[MeterEvent], data: st.DataObject
) -> None:
    # Given events with whole quantities and the same events in another order
    shuffled = data.draw(st.permutations(events))

    # When a meter aggregates both, Then it gets the same value
    assert aggregate(meter_, shuffled) == aggregate(meter_, events)


@settings(deadline=None, database=None)
@given(
    aggregation=st.sampled_from(FOLDABLE),
    prop=st.none() | st.just("tokens"),
    events=event_lists(),
    data=st.data(),
)
def test_combine__folding_any_split_into_chunks__equals_aggregate(
    aggregation: Aggregation,
    prop: str | None,
    events: list[MeterEvent],
    data: st.DataObject,
) -> None:
    # Given events cut into chunks at arbitrary points (as batches reach a counter)
    meter_ = Meter("api_call", aggregation, prop)
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(events)), max_size=6)))
    bounds = [0, *cuts, len(events)]
    chunks = [events[low:high] for low, high in itertools.pairwise(bounds)]

    # When each chunk's readings are folded into a running value, the first from 0
    value = 0.0
    for chunk in chunks:
        readings = [r for e in chunk if (r := reading(meter_, e)) is not None]
        value = combine(aggregation, value, readings)

    # Then it equals aggregating all the events from scratch
    assert value == aggregate(meter_, events)


@settings(deadline=None, database=None)
@given(prop=st.none() | st.just("tokens"), events=event_lists(), data=st.data())
def test_aggregate_latest__shuffled_events__equals_latest_of_the_sorted_events(
    prop: str | None, events: list[MeterEvent], data: st.DataObject
) -> None:
    # Given gauge events, many sharing a timestamp, and the same events shuffled
    meter_ = Meter("seats", Aggregation.LATEST, prop)
    shuffled = data.draw(st.permutations(events))
    in_order = sorted(events, key=latest_key)

    # When the latest meter aggregates the shuffled events
    value = aggregate(meter_, shuffled)

    # Then it equals the last usable reading of the events sorted by (timestamp, sequence)
    usable = [r for e in in_order if (r := reading(meter_, e)) is not None]
    assert value == (usable[-1] if usable else 0.0)
    assert value == aggregate(meter_, in_order)

"""Meters: how a metered feature's usage is aggregated from events.

A reading is what one event contributes to a meter: `count` reads 1; `sum`, `max` and
`latest` read the event's `property` (when the meter names one) or its `quantity`;
`unique_count` reads the property's value as canonical JSON text (7 and 7.0 alike). An event
without a usable reading (the property missing, or not a number where one is needed)
contributes nothing.

`aggregate` recounts a meter over events from scratch; `combine` folds new readings into a
running value. Both give the same answer in any order and any split of the events, which is
what lets the server keep pre-aggregated counters exact while events arrive late and in batches.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tierkit.engine.catalog import Aggregation, Meter


@dataclass(slots=True)  # not frozen: ingestion makes a thousand a batch, and frozen init costs 3x
class MeterEvent:
    """An event as meters read it (never changed once made). `sequence` is the order it was
    received in: it breaks ties between gauge values set at the same instant (the later one
    wins)."""

    timestamp: datetime
    quantity: float = 1.0
    properties: Mapping[str, Any] = field(default_factory=dict)
    sequence: int = 0


Reading = float | str


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _numeric_reading(meter: Meter, event: MeterEvent) -> float | None:
    if meter.property is None:
        return _number(event.quantity)
    return _number(event.properties.get(meter.property))


def _distinct_reading(meter: Meter, event: MeterEvent) -> str | None:
    if meter.property is None:
        return None
    value = event.properties.get(meter.property)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 7 and 7.0 are one number, as JSON means them
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_READERS: Mapping[Aggregation, Callable[[Meter, MeterEvent], Reading | None]] = {
    Aggregation.COUNT: lambda meter, event: 1.0,
    Aggregation.SUM: _numeric_reading,
    Aggregation.MAX: _numeric_reading,
    Aggregation.LATEST: _numeric_reading,
    Aggregation.UNIQUE_COUNT: _distinct_reading,
}


def reading(meter: Meter, event: MeterEvent) -> Reading | None:
    """What `event` contributes to `meter`, or None when it contributes nothing."""
    return _READERS[meter.aggregation](meter, event)


def _numbers(readings: Iterable[Reading]) -> list[float]:
    return [r for r in readings if isinstance(r, float)]


# How new readings fold into a running value. `max` starts from 0: usage is never negative.
_COMBINE: Mapping[Aggregation, Callable[[float, Sequence[Reading]], float]] = {
    Aggregation.COUNT: lambda value, readings: value + len(readings),
    Aggregation.SUM: lambda value, readings: value + math.fsum(_numbers(readings)),
    Aggregation.MAX: lambda value, readings: max([value, *_numbers(readings)]),
}


def combine(aggregation: Aggregation, value: float, readings: Sequence[Reading]) -> float:
    """Fold readings into a running `count`, `sum` or `max` (the other aggregations need
    more than a number: `latest` its instant, `unique_count` the values seen)."""
    return _COMBINE[aggregation](value, readings)


def latest_key(event: MeterEvent) -> tuple[datetime, int]:
    """The order of gauge values: by timestamp, then by the order received."""
    return event.timestamp, event.sequence


def aggregate(meter: Meter, events: Iterable[MeterEvent]) -> float:
    """The meter's value over `events`, from scratch."""
    read = [(event, r) for event in events if (r := reading(meter, event)) is not None]
    if meter.aggregation is Aggregation.UNIQUE_COUNT:
        return float(len({r for _, r in read}))
    if meter.aggregation is Aggregation.LATEST:
        if not read:
            return 0.0
        _, value = max(read, key=lambda item: latest_key(item[0]))
        return float(value)
    return combine(meter.aggregation, 0.0, [r for _, r in read])

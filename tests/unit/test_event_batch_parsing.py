"""The common batch's fast path reads events exactly as the event models do, and leaves
everything else (mistakes included) to them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tierkit.server.api.schemas.usage import _TRACKS, _plain_tracks, parse_events

_OFFSETS = st.sampled_from(["Z", "+00:00", "-00:00", "+05:30", "-11:00", "+14:00"])
_NAIVE = datetime(2000, 1, 2, tzinfo=UTC).replace(tzinfo=None)  # the offset is drawn apart
_MOMENTS = st.datetimes(min_value=_NAIVE, max_value=_NAIVE.replace(year=2100), timezones=st.none())


@st.composite
def _timestamps(draw: st.DrawFn) -> str:
    moment = draw(_MOMENTS)
    separator = draw(st.sampled_from(["T", "t", " "]))
    digits = draw(st.integers(0, 6))
    fraction = f".{moment.microsecond:06d}"[: digits + 1] if digits else ""
    return moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + fraction + draw(_OFFSETS)


_KEYS = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x2FF, blacklist_categories=("Cc",)),
    min_size=1,
    max_size=12,
)
_SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(-1e9, 1e9) | _KEYS
_EVENTS = st.fixed_dictionaries(
    {"event": st.from_regex(r"\A[a-z][a-z0-9_.:-]{0,10}\Z"), "company": _KEYS},
    optional={
        "type": st.just("track"),
        "user": st.none() | _KEYS,
        "quantity": st.integers(-1000, 1000) | st.floats(-1e6, 1e6),
        "properties": st.dictionaries(
            st.text(st.characters(min_codepoint=0x61, max_codepoint=0x7A), min_size=1, max_size=8),
            _SCALARS,
            max_size=5,
        ),
        "timestamp": st.none() | _timestamps(),
        "idempotency_key": st.none() | _KEYS,
    },
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(items=st.lists(_EVENTS, min_size=1, max_size=20))
def test_plain_tracks__valid_batch__same_events_as_the_models(items: list[dict[str, Any]]) -> None:
    fast = _plain_tracks(items)

    assert fast is not None
    assert fast == [event.to_new_event() for event in _TRACKS.validate_python(items)]


def test_plain_tracks__offset_timestamp__the_same_instant_in_utc() -> None:
    items = [{"event": "e", "company": "c", "timestamp": "2026-03-29T02:30:00.25+05:30"}]

    [event] = _plain_tracks(items) or []

    expected = datetime(2026, 3, 29, 2, 30, 0, 250000, tzinfo=timezone(timedelta(hours=5.5)))
    assert event.timestamp == expected.astimezone(UTC)
    assert event.timestamp is not None
    assert event.timestamp.tzinfo is UTC


def test_plain_tracks__anything_else__left_to_the_models() -> None:
    uncommon = [
        {"event": "e", "company": "c", "properties": {"nested": {"a": 1}}},  # valid, not flat
        {"event": "e", "company": "c", "timestamp": "2026-11-22T10:00Z"},  # valid, no seconds
        {"event": "e", "company": "c", "timestamp": "2026-11-22T10:00:00z"},  # valid, lowercase
        {"event": "e", "company": "c", "timestamp": "2026-11-22T25:00:00Z"},
        {"event": "e", "company": "c", "timestamp": "2026-11-22T10:00:00"},  # no offset
        {"event": "e", "company": "c", "timestamp": "0001-01-01T00:00:00+01:00"},
        {"event": "e", "company": "c", "bogus": 1},
        {"event": "e", "company": "c", "properties": None},
    ]
    for item in uncommon:
        assert _plain_tracks([item]) is None, item
    events, _, errors = parse_events({"events": uncommon[:3]})  # the valid ones
    assert len(events) == 3
    assert not errors


def test_parse_events__mistake_in_a_common_batch__located_by_the_models() -> None:
    items = [{"event": "e", "company": "c"}, {"event": "e", "company": "c", "quantity": "1"}]

    events, batch, errors = parse_events({"events": items})

    assert (events, batch) == ([], True)
    assert [error["loc"] for error in errors] == [("body", "events", 1, "quantity")]

"""Usage in and out over real HTTP on both databases: `POST /v1/events` (single events, batches,
idempotency, late events, identify), `GET /v1/events`, gauges (`/v1/metrics/set` and Kickplan's
`/api/metrics/set`), and the usage that checks and `/v1/companies/{key}/usage` read back."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import SettableClock
from tests.support.api import assert_is_a_sentence, create_feature, create_plan, error_of, rfc3339
from tierkit.server.services.api_keys import KeyKind

ClientFactory = Callable[..., httpx.Client]

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
NOVEMBER = {"period_start": "2026-11-01T00:00:00Z", "resets_at": "2026-12-01T00:00:00Z"}


# Helpers


def track(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """Post `body` to `/v1/events`, which must accept it; the reply."""
    response = client.post("/v1/events", json=body)
    assert response.status_code == 202, response.text
    reply: dict[str, Any] = response.json()
    return reply


def call(quantity: Any = 1, company: str = "acme", **fields: Any) -> dict[str, Any]:
    """A track event of `api_call`."""
    return {"event": "api_call", "company": company, "quantity": quantity, **fields}


def usage_of(client: httpx.Client, company: str = "acme", feature: str = "api_calls") -> Any:
    response = client.post("/v1/check", json={"company": company, "feature": feature})
    assert response.status_code == 200, response.text
    return response.json()["usage"]


def used(client: httpx.Client, company: str = "acme", feature: str = "api_calls") -> Any:
    return usage_of(client, company, feature)["used"]


def list_events(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/events", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def events(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """The events of one page (limit 100), which must be the last."""
    page = list_events(client, limit=100, **params)
    assert page["next_cursor"] is None
    found: list[dict[str, Any]] = page["data"]
    return found


def keys_of(client: httpx.Client, **params: Any) -> list[str | None]:
    """The idempotency keys of the events listed, in the order listed."""
    return [event["idempotency_key"] for event in events(client, **params)]


def get_json(client: httpx.Client, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def metered(api: httpx.Client, clock: SettableClock) -> httpx.Client:
    """`api_calls` sums `api_call` quantities, 100 a month on the default plan `free`; the
    clock stands at NOW (2026-11-22 10:00 UTC)."""
    clock.now = NOW
    create_feature(api, "api_calls", "metered", meter={"event": "api_call", "aggregation": "sum"})
    create_plan(
        api, "free", [{"feature": "api_calls", "value": 100, "period": "month"}], is_default=True
    )
    return api


# Tracking


def test_post_event__single_track_event__202_and_counted_in_check_and_company_usage(
    metered: httpx.Client,
) -> None:
    reply = track(metered, call(3, user="u1", properties={"path": "/v1/x"}))

    assert reply == {"accepted": 1, "duplicates": 0}
    assert usage_of(metered) == {
        "used": 3,
        "limit": 100,
        "remaining": 97,
        "overage": 0,
        "period": "month",
        **NOVEMBER,
    }
    assert get_json(metered, "/v1/companies/acme/usage") == {
        "data": [
            {
                "feature": "api_calls",
                "used": 3,
                "limit": 100,
                "unlimited": False,
                "remaining": 97,
                "overage": 0,
                "period": "month",
                **NOVEMBER,
            }
        ]
    }


def test_post_event__defaults__type_track_quantity_1_timestamp_now(
    metered: httpx.Client,
) -> None:
    track(metered, {"event": "api_call", "company": "acme"})

    (stored,) = events(metered)
    assert stored == {
        "id": stored["id"],
        "type": "track",
        "event": "api_call",
        "company": "acme",
        "user": None,
        "quantity": 1,
        "properties": {},
        "timestamp": rfc3339(NOW),
        "received_at": rfc3339(NOW),
        "idempotency_key": None,
    }
    assert stored["id"].startswith("evt_")
    assert used(metered) == 1


def test_post_event__negative_and_fractional_quantities__summed_as_sent(
    metered: httpx.Client,
) -> None:
    reply = track(metered, {"events": [call(10), call(-2.5), call(0.25)]})

    assert reply == {"accepted": 3, "duplicates": 0}
    assert used(metered) == 7.75
    assert sorted(event["quantity"] for event in events(metered)) == [-2.5, 0.25, 10]


def test_post_events__batch_of_1000__all_accepted_and_counted(metered: httpx.Client) -> None:
    batch = {"events": [call(1, idempotency_key=f"k{i}") for i in range(1000)]}

    reply = track(metered, batch)

    assert reply == {"accepted": 1000, "duplicates": 0}
    assert usage_of(metered) == {
        "used": 1000,
        "limit": 100,
        "remaining": 0,
        "overage": 900,
        "period": "month",
        **NOVEMBER,
    }
    first = list_events(metered, limit=100)
    assert len(first["data"]) == 100
    assert first["data"][0]["idempotency_key"] == "k999"
    assert first["next_cursor"] is not None


def test_post_events__batch_of_1001__400_on_events_and_nothing_stored(
    metered: httpx.Client,
) -> None:
    batch = {"events": [call(1) for _ in range(1001)]}

    response = metered.post("/v1/events", json=batch)

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("validation_failed", "events")
    assert [detail["param"] for detail in error["details"]] == ["events"]
    assert events(metered) == []
    assert metered.get("/v1/companies/acme").status_code == 404


METERS = {
    "calls_count": {"aggregation": "count"},
    "calls_sum": {"aggregation": "sum"},
    "tokens_sum": {"aggregation": "sum", "property": "tokens"},
    "calls_max": {"aggregation": "max"},
    "tokens_max": {"aggregation": "max", "property": "tokens"},
    "users_unique": {"aggregation": "unique_count", "property": "user_id"},
}
BEFORE_FIRST_READ = [
    call(5, properties={"tokens": 10, "user_id": "u1"}),
    call(-3, properties={"tokens": 2.5, "user_id": "u2"}),
    call(1, properties={"tokens": "many", "user_id": 7}),
    call(2),
]
AFTER_FIRST_READ = [
    call(4, properties={"tokens": 1, "user_id": "u1"}),
    call(9, properties={"tokens": True, "user_id": "7"}),
    call(0.5, properties={"user_id": "u3"}),
]


def used_by_feature(client: httpx.Client, company: str) -> dict[str, Any]:
    usage = get_json(client, f"/v1/companies/{company}/usage")["data"]
    return {item["feature"]: item["used"] for item in usage}


def test_post_events__every_aggregation__counters_equal_a_recount_from_raw_events(
    api: httpx.Client, clock: SettableClock
) -> None:
    clock.now = NOW
    for key, meter in METERS.items():
        create_feature(api, key, "metered", meter={"event": "api_call", **meter})
    create_plan(api, "free", [{"feature": key, "value": 1000} for key in METERS], is_default=True)

    # `folded` reads before the second batch (its counters then take events one batch at a
    # time); `recounted` reads only after both (its counters are built from the raw events).
    track(api, {"events": [e | {"company": "folded"} for e in BEFORE_FIRST_READ]})
    used_by_feature(api, "folded")
    track(api, {"events": [e | {"company": "folded"} for e in AFTER_FIRST_READ]})
    events_of_both = BEFORE_FIRST_READ + AFTER_FIRST_READ
    track(api, {"events": [e | {"company": "recounted"} for e in events_of_both]})

    expected = {
        "calls_count": 7,
        "calls_sum": 18.5,
        "tokens_sum": 13.5,
        "calls_max": 9,
        "tokens_max": 10,
        "users_unique": 5,
    }
    assert used_by_feature(api, "folded") == expected
    assert used_by_feature(api, "recounted") == expected


def test_post_events__unique_count_of_7_and_7_0__one_distinct_number(
    metered: httpx.Client,
) -> None:
    create_feature(
        metered,
        "active_users",
        "metered",
        meter={"event": "login", "aggregation": "unique_count", "property": "user_id"},
    )
    logins = [{"event": "login", "company": "acme", "properties": {"user_id": v}} for v in (7, 7.0)]

    track(
        metered,
        {
            "events": [
                *logins,
                {"event": "login", "company": "acme", "properties": {"user_id": "7"}},
            ]
        },
    )

    # JSON has one number type: 7 and 7.0 are one user; the string "7" is another value.
    assert used(metered, feature="active_users") == 2


def test_post_events__max_of_only_negative_quantities__usage_is_0(metered: httpx.Client) -> None:
    create_feature(metered, "peak", "metered", meter={"event": "load", "aggregation": "max"})
    track(metered, {"event": "load", "company": "acme", "quantity": -4})
    before = used(metered, feature="peak")

    track(metered, {"event": "load", "company": "acme", "quantity": -1})

    assert (before, used(metered, feature="peak")) == (0, 0)


def test_post_events__concurrent_batches_with_overlapping_keys__each_key_counted_once(
    metered: httpx.Client,
) -> None:
    used(metered, "acme")  # reads 0 (the company does not exist yet)
    track(metered, call(1, idempotency_key="seed"))
    assert used(metered) == 1  # the counter exists: the batches below fold into it

    def post(worker: int) -> dict[str, Any]:
        keys = [f"k{(worker * 5 + i) % 40}" for i in range(20)]
        return track(metered, {"events": [call(1, idempotency_key=key) for key in keys]})

    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(post, range(8)))

    assert sum(reply["accepted"] for reply in replies) == 40
    assert sum(reply["accepted"] + reply["duplicates"] for reply in replies) == 160
    assert used(metered) == 41
    assert used_by_feature(metered, "acme") == {"api_calls": 41}
    assert len(events(metered)) == 41


# Idempotency


def test_post_events__duplicate_keys_within_a_batch__counted_once_first_one_kept(
    metered: httpx.Client,
) -> None:
    batch = [
        call(1, idempotency_key="a"),
        call(50, idempotency_key="a"),
        call(2, idempotency_key="b"),
        call(4),
        call(2, idempotency_key="b"),
        call(8),
    ]

    reply = track(metered, {"events": batch})

    assert reply == {"accepted": 4, "duplicates": 2}
    assert used(metered) == 15
    assert [(e["idempotency_key"], e["quantity"]) for e in events(metered)] == [
        (None, 8),
        (None, 4),
        ("b", 2),
        ("a", 1),
    ]


def test_post_events__key_seen_in_an_earlier_batch__duplicate_in_the_next(
    metered: httpx.Client,
) -> None:
    first = track(metered, {"events": [call(1, idempotency_key="a"), call(2, idempotency_key="b")]})

    second = track(
        metered, {"events": [call(20, idempotency_key="b"), call(4, idempotency_key="c")]}
    )
    single = track(metered, call(100, idempotency_key="a"))

    assert (first, second, single) == (
        {"accepted": 2, "duplicates": 0},
        {"accepted": 1, "duplicates": 1},
        {"accepted": 0, "duplicates": 1},
    )
    assert used(metered) == 7
    assert keys_of(metered) == ["c", "b", "a"]


def test_post_events__stored_key_beside_a_new_company__key_skipped_company_made_once(
    metered: httpx.Client,
) -> None:
    # On PostgreSQL a batch goes in plainly first; meeting a stored key undoes that attempt
    # (the new company with it) and the batch goes in again, skipping stored keys.
    track(metered, {"events": [call(1, idempotency_key="a")]})

    second = track(
        metered,
        {"events": [call(20, idempotency_key="a"), call(3, company="newco", idempotency_key="z")]},
    )

    assert second == {"accepted": 1, "duplicates": 1}
    assert (used(metered), used(metered, "newco")) == (1, 3)
    assert keys_of(metered) == ["z", "a"]
    created = get_json(metered, "/v1/audit-log", action="company.created", resource_key="newco")
    assert len(created["data"]) == 1


def test_post_events__identical_request_retried__all_duplicates_and_usage_unchanged(
    metered: httpx.Client,
) -> None:
    batch = {"events": [call(i, idempotency_key=f"req-{i}") for i in (1, 2, 3)]}
    assert track(metered, batch) == {"accepted": 3, "duplicates": 0}
    before = events(metered)

    retried = track(metered, batch)

    assert retried == {"accepted": 0, "duplicates": 3}
    assert used(metered) == 6
    assert events(metered) == before


def test_post_events__same_key_in_two_environments__each_counts_its_own(
    metered: httpx.Client, production: httpx.Client
) -> None:
    track(metered, call(5, idempotency_key="shared"))

    reply = track(production, call(5, idempotency_key="shared"))

    assert reply == {"accepted": 1, "duplicates": 0}
    assert keys_of(production) == ["shared"]
    assert used(metered) == 5


# A batch is all or nothing


def test_post_events__batch_with_two_bad_events__400_names_both_and_stores_nothing(
    metered: httpx.Client,
) -> None:
    batch = [
        call(1, company="newco"),
        call("x", company="newco"),
        call(2, company="newco"),
        {"company": "newco", "quantity": 1},
        call(3, company="newco"),
    ]

    response = metered.post("/v1/events", json={"events": batch})

    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["code"]) == ("invalid_request", "validation_failed")
    assert error["param"] == "events.1.quantity"
    assert [detail["param"] for detail in error["details"]] == [
        "events.1.quantity",
        "events.3.event",
    ]
    assert error["message"].startswith("`events.1.quantity`: ")
    assert error["message"].endswith("(1 more in `details`)")
    for detail in error["details"]:
        assert_is_a_sentence(detail["message"])
    assert events(metered) == []
    assert events(metered, company="newco") == []
    assert metered.get("/v1/companies/newco").status_code == 404
    assert used(metered, "newco") == 0


def test_post_events__mixed_batch_with_a_bad_identify__stores_neither_kind(
    metered: httpx.Client,
) -> None:
    batch = [
        {"type": "identify", "company": {"key": "newco", "name": "New Co"}},
        call(1, company="newco"),
        {"type": "identify", "user": {"key": "u1", "name": ""}},
    ]

    response = metered.post("/v1/events", json={"events": batch})

    assert response.status_code == 400
    assert [d["param"] for d in error_of(response)["details"]] == ["events.2.user.name"]
    assert events(metered) == []
    assert metered.get("/v1/companies/newco").status_code == 404
    assert metered.get("/v1/users/u1").status_code == 404


def test_post_event__single_invalid_event__params_without_a_prefix(
    metered: httpx.Client,
) -> None:
    response = metered.post("/v1/events", json={"company": "acme", "quantity": "x"})

    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == "event"
    assert sorted(d["param"] for d in error["details"]) == ["event", "quantity"]
    assert events(metered) == []


# Late events and time series


def test_post_event__late_event_of_a_closed_month__counts_in_its_own_period_not_this_one(
    metered: httpx.Client, clock: SettableClock
) -> None:
    clock.now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    track(metered, call(2, idempotency_key="now"))
    assert used(metered) == 2  # the December counter exists before the late event arrives

    reply = track(metered, call(5, idempotency_key="late", timestamp="2026-11-30T23:00:00Z"))

    assert reply == {"accepted": 1, "duplicates": 0}
    assert usage_of(metered) == {
        "used": 2,
        "limit": 100,
        "remaining": 98,
        "overage": 0,
        "period": "month",
        "period_start": "2026-12-01T00:00:00Z",
        "resets_at": "2027-01-01T00:00:00Z",
    }
    assert get_json(metered, "/v1/companies/acme/usage")["data"][0]["used"] == 2
    late = next(e for e in events(metered) if e["idempotency_key"] == "late")
    assert (late["idempotency_key"], late["timestamp"], late["received_at"]) == (
        "late",
        "2026-11-30T23:00:00Z",
        "2026-12-02T10:00:00Z",
    )
    series = get_json(
        metered,
        "/v1/companies/acme/usage/api_calls",
        **{"from": "2026-11-29T00:00:00Z", "to": "2026-12-03T00:00:00Z", "granularity": "day"},
    )
    assert series == {
        "feature": "api_calls",
        "granularity": "day",
        "timezone": "UTC",
        "data": [
            {"start": "2026-11-29T00:00:00Z", "end": "2026-11-30T00:00:00Z", "value": 0},
            {"start": "2026-11-30T00:00:00Z", "end": "2026-12-01T00:00:00Z", "value": 5},
            {"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z", "value": 0},
            {"start": "2026-12-02T00:00:00Z", "end": "2026-12-03T00:00:00Z", "value": 2},
        ],
    }


def test_post_events__batch_spanning_two_months__each_event_counts_in_its_own_month(
    metered: httpx.Client, clock: SettableClock
) -> None:
    clock.now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    track(metered, call(2))
    assert used(metered) == 2  # the December counter exists before the batch arrives

    track(metered, {"events": [call(5, timestamp="2026-11-30T23:00:00Z"), call(3)]})

    assert used(metered) == 5


def test_post_event__late_event_of_last_month__counted_when_that_month_is_read(
    metered: httpx.Client, clock: SettableClock
) -> None:
    track(metered, call(4, timestamp="2026-11-03T08:00:00Z"))
    assert used(metered) == 4  # the November counter exists
    clock.now = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)

    track(metered, call(6, timestamp="2026-11-30T23:59:59Z"))
    december = used(metered)
    clock.now = NOW  # read November's counter again (fresh): it took the late event in
    november = get_json(metered, "/v1/companies/acme/usage")["data"][0]

    assert december == 0
    assert (november["used"], november["period_start"]) == (10, NOVEMBER["period_start"])


def test_post_event__timestamps_with_offsets__stored_in_utc_and_counted_by_the_utc_month(
    metered: httpx.Client, clock: SettableClock
) -> None:
    clock.now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    batch = [
        call(3, idempotency_key="november", timestamp="2026-12-01T00:30:00+01:00"),
        call(5, idempotency_key="december", timestamp="2026-11-30T23:30:00-01:00"),
    ]

    track(metered, {"events": batch})

    assert used(metered) == 5
    assert sorted((e["idempotency_key"], e["timestamp"]) for e in events(metered)) == [
        ("december", "2026-12-01T00:30:00Z"),
        ("november", "2026-11-30T23:30:00Z"),
    ]


def test_post_event__company_in_paris__months_and_days_cut_at_paris_midnight(
    metered: httpx.Client, clock: SettableClock
) -> None:
    clock.now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 02:00 in Paris
    identify = {
        "type": "identify",
        "company": {"key": "acme", "traits": {"timezone": "Europe/Paris"}},
    }
    track(metered, identify)

    track(metered, call(4, timestamp="2026-11-30T23:30:00Z"))  # 00:30 on 1 December in Paris
    track(metered, call(1, timestamp="2026-11-30T22:30:00Z"))  # 23:30 on 30 November in Paris

    assert usage_of(metered) == {
        "used": 4,
        "limit": 100,
        "remaining": 96,
        "overage": 0,
        "period": "month",
        "period_start": "2026-11-30T23:00:00Z",
        "resets_at": "2026-12-31T23:00:00Z",
    }
    series = get_json(
        metered,
        "/v1/companies/acme/usage/api_calls",
        **{"from": "2026-11-30T12:00:00Z", "to": "2026-12-01T01:00:00Z", "granularity": "day"},
    )
    assert series["timezone"] == "Europe/Paris"
    assert series["data"] == [
        {"start": "2026-11-29T23:00:00Z", "end": "2026-11-30T23:00:00Z", "value": 1},
        {"start": "2026-11-30T23:00:00Z", "end": "2026-12-01T23:00:00Z", "value": 4},
    ]


def test_usage_series__hour_granularity__each_event_in_its_utc_hour(
    metered: httpx.Client,
) -> None:
    track(metered, call(2, timestamp="2026-11-22T08:59:59Z"))
    track(
        metered,
        {
            "events": [
                call(3, timestamp="2026-11-22T09:00:00Z"),
                call(4, timestamp="2026-11-22T09:30:00Z"),
            ]
        },
    )

    series = get_json(
        metered,
        "/v1/companies/acme/usage/api_calls",
        **{"from": "2026-11-22T08:00:00Z", "to": "2026-11-22T10:00:00Z", "granularity": "hour"},
    )

    assert (series["granularity"], series["timezone"]) == ("hour", "UTC")
    assert [(p["start"], p["value"]) for p in series["data"]] == [
        ("2026-11-22T08:00:00Z", 2),
        ("2026-11-22T09:00:00Z", 7),
    ]


def test_company_usage__unknown_company__404_company_not_found(metered: httpx.Client) -> None:
    response = metered.get("/v1/companies/nobody/usage")

    assert response.status_code == 404
    assert error_of(response)["code"] == "company_not_found"
    assert metered.get("/v1/companies/nobody").status_code == 404


# Companies and users


def test_post_event__unknown_company__creates_it_without_a_name(metered: httpx.Client) -> None:
    track(metered, call(1, company="newco"))

    company = get_json(metered, "/v1/companies/newco")

    assert (company["key"], company["name"], company["traits"]) == ("newco", None, {})
    assert company["plan"] == "free"
    assert used(metered, "newco") == 1


def test_post_identify__company_and_user__upserts_both_and_the_membership(
    metered: httpx.Client,
) -> None:
    body = {
        "type": "identify",
        "company": {"key": "acme", "name": "Acme", "traits": {"tier": "gold"}},
        "user": {"key": "u1", "name": "Ada", "traits": {"role": "admin"}},
    }

    reply = track(metered, body)

    assert reply == {"accepted": 1, "duplicates": 0}
    company = get_json(metered, "/v1/companies/acme")
    user = get_json(metered, "/v1/users/u1")
    assert (company["name"], company["traits"], company["users"]) == (
        "Acme",
        {"tier": "gold"},
        ["u1"],
    )
    assert (user["name"], user["traits"], user["companies"]) == ("Ada", {"role": "admin"}, ["acme"])
    (stored,) = events(metered)
    assert {k: v for k, v in stored.items() if k != "id"} == {
        "type": "identify",
        "event": None,
        "company": "acme",
        "user": "u1",
        "quantity": 0,
        "properties": {
            "company": {"key": "acme", "name": "Acme", "traits": {"tier": "gold"}},
            "user": {"key": "u1", "name": "Ada", "traits": {"role": "admin"}},
        },
        "timestamp": rfc3339(NOW),
        "received_at": rfc3339(NOW),
        "idempotency_key": None,
    }
    assert used(metered) == 0


def test_post_identify__again__merges_traits_removes_nulls_and_keeps_the_name(
    metered: httpx.Client,
) -> None:
    track(
        metered,
        {
            "type": "identify",
            "company": {
                "key": "acme",
                "name": "Acme",
                "traits": {"tier": "gold", "seats": 5, "never": None},
            },
            "user": {"key": "u1", "name": "Ada", "traits": {"role": "admin", "beta": True}},
        },
    )

    track(
        metered,
        {
            "type": "identify",
            "company": {"key": "acme", "traits": {"seats": 10, "tier": None}},
            "user": {"key": "u1", "traits": {"beta": None, "lang": "en"}},
        },
    )

    company = get_json(metered, "/v1/companies/acme")
    user = get_json(metered, "/v1/users/u1")
    assert (company["name"], company["traits"]) == ("Acme", {"seats": 10})
    assert (user["name"], user["traits"]) == ("Ada", {"role": "admin", "lang": "en"})
    assert user["companies"] == ["acme"]


def test_post_identify__user_only__creates_the_user_without_companies(
    metered: httpx.Client,
) -> None:
    track(metered, {"type": "identify", "user": {"key": "u9", "name": "Bo"}})

    user = get_json(metered, "/v1/users/u9")

    assert (user["name"], user["traits"], user["companies"]) == ("Bo", {}, [])
    (stored,) = events(metered)
    assert (stored["company"], stored["user"], stored["properties"]) == (
        None,
        "u9",
        {"user": {"key": "u9", "name": "Bo"}},
    )


def test_post_identify__then_track_in_one_batch__company_named_and_usage_counted(
    metered: httpx.Client,
) -> None:
    batch = [
        {"type": "identify", "company": {"key": "acme", "name": "Acme"}},
        call(3, user="u1"),
    ]

    reply = track(metered, {"events": batch})

    assert reply == {"accepted": 2, "duplicates": 0}
    assert get_json(metered, "/v1/companies/acme")["name"] == "Acme"
    assert used(metered) == 3


def test_post_identify__retried_with_its_idempotency_key__not_applied_again(
    metered: httpx.Client,
) -> None:
    first = {
        "type": "identify",
        "company": {"key": "acme", "name": "Acme"},
        "idempotency_key": "i1",
    }
    track(metered, first)
    track(metered, {"type": "identify", "company": {"key": "acme", "name": "Acme Inc."}})

    retried = track(metered, first)

    assert retried == {"accepted": 0, "duplicates": 1}
    assert get_json(metered, "/v1/companies/acme")["name"] == "Acme Inc."
    assert len(events(metered)) == 2


# Reading events


@pytest.fixture
def stored(metered: httpx.Client) -> httpx.Client:
    """Events e1..e4, posted in order, with the timestamps that the filters below cut at."""
    track(metered, call(1, idempotency_key="e1", timestamp="2026-11-20T10:00:00Z"))
    track(
        metered,
        {
            "event": "page_view",
            "company": "acme",
            "idempotency_key": "e2",
            "timestamp": "2026-11-21T00:00:00Z",
        },
    )
    track(metered, call(1, "globex", idempotency_key="e3", timestamp="2026-11-21T12:00:00Z"))
    track(metered, call(1, idempotency_key="e4", timestamp="2026-11-22T09:00:00Z"))
    return metered


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({}, ["e4", "e3", "e2", "e1"], id="none"),
        pytest.param({"company": "acme"}, ["e4", "e2", "e1"], id="company"),
        pytest.param({"event": "api_call"}, ["e4", "e3", "e1"], id="event"),
        pytest.param({"company": "acme", "event": "api_call"}, ["e4", "e1"], id="both"),
        pytest.param(
            {"from": "2026-11-21T00:00:00Z", "to": "2026-11-22T09:00:00Z"},
            ["e3", "e2"],
            id="from_inclusive_to_exclusive",
        ),
        pytest.param({"from": "2026-11-21T12:00:01+00:00"}, ["e4"], id="from_only"),
        pytest.param({"to": "2026-11-21T01:00:00+01:00"}, ["e1"], id="to_with_an_offset"),
        pytest.param({"company": "nobody"}, [], id="unknown_company"),
        pytest.param({"event": "nothing"}, [], id="unknown_event"),
    ],
)
def test_list_events__filters__only_the_matching_events_newest_stored_first(
    stored: httpx.Client, params: dict[str, Any], expected: list[str]
) -> None:
    assert keys_of(stored, **params) == expected


def test_list_events__limit_2__walks_every_event_once_in_order(stored: httpx.Client) -> None:
    track(stored, call(1, idempotency_key="e5"))
    pages = []
    cursor = None

    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = list_events(stored, **params)
        pages.append([event["idempotency_key"] for event in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None or len(pages) > 5:
            break

    assert pages == [["e5", "e4"], ["e3", "e2"], ["e1"]]
    assert [e["idempotency_key"] for e in events(stored)] == ["e5", "e4", "e3", "e2", "e1"]


def test_list_events__events_stored_between_pages__next_pages_neither_repeat_nor_show_them(
    stored: httpx.Client,
) -> None:
    first = list_events(stored, limit=2)

    track(stored, call(1, idempotency_key="late_comer"))
    second = list_events(stored, limit=2, cursor=first["next_cursor"])

    assert [e["idempotency_key"] for e in first["data"]] == ["e4", "e3"]
    assert [e["idempotency_key"] for e in second["data"]] == ["e2", "e1"]
    assert second["next_cursor"] is None


def test_list_events__filters_with_pagination__cursor_keeps_the_filter(
    stored: httpx.Client,
) -> None:
    first = list_events(stored, company="acme", limit=2)

    second = list_events(stored, company="acme", limit=2, cursor=first["next_cursor"])

    assert [e["idempotency_key"] for e in first["data"] + second["data"]] == ["e4", "e2", "e1"]
    assert second["next_cursor"] is None


def test_get_event__by_id__the_event_as_listed(stored: httpx.Client) -> None:
    listed = events(stored, company="globex")[0]

    got = get_json(stored, f"/v1/events/{listed['id']}")

    assert got == listed
    assert {k: v for k, v in got.items() if k != "id"} == {
        "type": "track",
        "event": "api_call",
        "company": "globex",
        "user": None,
        "quantity": 1,
        "properties": {},
        "timestamp": "2026-11-21T12:00:00Z",
        "received_at": rfc3339(NOW),
        "idempotency_key": "e3",
    }


@pytest.mark.parametrize(
    "event_id",
    ["evt_999999999", "evt_0", "evt_abc", "evt_", "evt_-1", "evt_1.0", "nope", "evt_" + "9" * 19],
)
def test_get_event__unknown_or_malformed_id__404_event_not_found(
    stored: httpx.Client, event_id: str
) -> None:
    response = stored.get(f"/v1/events/{event_id}")

    assert response.status_code == 404
    error = error_of(response)
    assert (error["type"], error["code"]) == ("not_found", "event_not_found")
    assert_is_a_sentence(error["message"])


def test_events__of_development__invisible_to_a_production_key(
    stored: httpx.Client, production: httpx.Client
) -> None:
    event_id = events(stored)[0]["id"]

    got = production.get(f"/v1/events/{event_id}")

    assert got.status_code == 404
    assert error_of(got)["code"] == "event_not_found"
    assert events(production) == []
    assert events(production, company="acme") == []
    assert len(events(stored)) == 4


# Gauges


@pytest.fixture
def gauge(metered: httpx.Client) -> httpx.Client:
    """`seats`: the latest `seat_count` set, at most 10 on `free`."""
    create_feature(
        metered, "seats", "metered", meter={"event": "seat_count", "aggregation": "latest"}
    )
    metered.put("/v1/plans/free/entitlements/seats", json={"value": 10}).raise_for_status()
    return metered


def set_metric(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/metrics/set", json={"company": "acme", **body})
    assert response.status_code == 202, response.text
    reply: dict[str, Any] = response.json()
    return reply


def hours_ago(hours: float) -> str:
    return rfc3339(NOW - timedelta(hours=hours))


def test_set_metric__later_time_wins_and_an_older_late_set_does_not_override(
    gauge: httpx.Client,
) -> None:
    replies = [
        set_metric(gauge, key="seats", value=3, time=hours_ago(3)),
        set_metric(gauge, key="seats", value=7, time=hours_ago(1)),
    ]
    assert used(gauge, feature="seats") == 7

    late = set_metric(gauge, key="seats", value=1, time=hours_ago(2))

    assert replies == [{"accepted": 1, "duplicates": 0}] * 2
    assert late == {"accepted": 1, "duplicates": 0}
    assert usage_of(gauge, feature="seats") == {
        "used": 7,
        "limit": 10,
        "remaining": 3,
        "overage": 0,
        "period": "month",
        "period_start": None,
        "resets_at": None,
    }
    assert [(e["type"], e["quantity"]) for e in events(gauge, event="seat_count")] == [
        ("set", 1),
        ("set", 7),
        ("set", 3),
    ]


def test_set_metric__older_set_before_the_first_read__latest_by_time_still_wins(
    gauge: httpx.Client,
) -> None:
    set_metric(gauge, key="seats", value=9, time=hours_ago(1))
    set_metric(gauge, key="seats", value=2, time=hours_ago(5))

    assert used(gauge, feature="seats") == 9


def test_set_metric__by_event_name_and_without_time__sets_the_same_gauge_now(
    gauge: httpx.Client,
) -> None:
    set_metric(gauge, key="seats", value=4, time=hours_ago(1))

    set_metric(gauge, key="seat_count", value=6)

    assert used(gauge, feature="seats") == 6
    assert events(gauge, event="seat_count")[0]["timestamp"] == rfc3339(NOW)


def test_set_metric__same_idempotency_key__counted_once_first_value_kept(
    gauge: httpx.Client,
) -> None:
    first = set_metric(gauge, key="seats", value=5, idempotency_key="sync-1")

    again = set_metric(gauge, key="seats", value=8, idempotency_key="sync-1")

    assert (first, again) == ({"accepted": 1, "duplicates": 0}, {"accepted": 0, "duplicates": 1})
    assert used(gauge, feature="seats") == 5
    assert len(events(gauge, event="seat_count")) == 1


def test_set_metric__next_month__gauge_does_not_reset(
    gauge: httpx.Client, clock: SettableClock
) -> None:
    set_metric(gauge, key="seats", value=4)

    clock.advance(days=40)

    assert used(gauge, feature="seats") == 4
    assert get_json(gauge, "/v1/companies/acme/usage")["data"] == [
        {
            "feature": "api_calls",
            "used": 0,
            "limit": 100,
            "unlimited": False,
            "remaining": 100,
            "overage": 0,
            "period": "month",
            "period_start": "2027-01-01T00:00:00Z",
            "resets_at": "2027-02-01T00:00:00Z",
        },
        {
            "feature": "seats",
            "used": 4,
            "limit": 10,
            "unlimited": False,
            "remaining": 6,
            "overage": 0,
            "period": "month",
            "period_start": None,
            "resets_at": None,
        },
    ]


def test_usage_series__gauge__carries_the_last_value_into_later_days(
    gauge: httpx.Client,
) -> None:
    set_metric(gauge, key="seats", value=1, time="2026-11-10T12:00:00Z")
    set_metric(gauge, key="seats", value=3, time="2026-11-20T12:00:00Z")
    set_metric(gauge, key="seats", value=7, time="2026-11-22T08:00:00Z")

    series = get_json(
        gauge,
        "/v1/companies/acme/usage/seats",
        **{"from": "2026-11-19T00:00:00Z", "to": "2026-11-23T00:00:00Z", "granularity": "day"},
    )

    assert [(p["start"], p["value"]) for p in series["data"]] == [
        ("2026-11-19T00:00:00Z", 1),
        ("2026-11-20T00:00:00Z", 3),
        ("2026-11-21T00:00:00Z", 3),
        ("2026-11-22T00:00:00Z", 7),
    ]


def test_set_metric__time_out_of_range__400_names_time(gauge: httpx.Client) -> None:
    response = gauge.post(
        "/v1/metrics/set",
        json={"key": "seats", "company": "acme", "value": 1, "time": "1999-12-31T23:59:59Z"},
    )

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("timestamp_out_of_range", "time")
    assert events(gauge) == []


def test_kickplan_set_metric__numeric_string_value__202_empty_body_and_gauge_set(
    gauge: httpx.Client,
) -> None:
    response = gauge.post(
        "/api/metrics/set", json={"key": "seats", "value": "5", "account_key": "acme"}
    )

    assert (response.status_code, response.content) == (202, b"")
    assert used(gauge, feature="seats") == 5
    (stored,) = events(gauge)
    assert (stored["type"], stored["event"], stored["company"], stored["quantity"]) == (
        "set",
        "seat_count",
        "acme",
        5,
    )


def test_kickplan_set_metric__number_time_and_idempotency_key__later_set_wins_retry_ignored(
    gauge: httpx.Client,
) -> None:
    newer = {"key": "seats", "value": 8, "account_key": "acme", "time": hours_ago(1)}
    older = {"key": "seats", "value": 2.5, "account_key": "acme", "time": hours_ago(2)}

    responses = [
        gauge.post("/api/metrics/set", json=newer | {"idempotency_key": "n"}),
        gauge.post("/api/metrics/set", json=older),
        gauge.post("/api/metrics/set", json=newer | {"idempotency_key": "n", "value": 1}),
    ]

    assert [(r.status_code, r.content) for r in responses] == [(202, b"")] * 3
    assert used(gauge, feature="seats") == 8
    assert len(events(gauge)) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"key": "seats", "value": 5}, "account_key", id="missing_account_key"),
        pytest.param({"key": "seats", "account_key": "acme"}, "value", id="missing_value"),
    ],
)
def test_kickplan_set_metric__missing_field__400_in_kickplan_shape(
    gauge: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = gauge.post("/api/metrics/set", json=body)

    assert response.status_code == 400
    assert response.json() == {
        "message": "Invalid input",
        "type": "invalid_input",
        "errors": [{"field": field, "message": "is required", "type": "invalid"}],
    }
    assert events(gauge) == []


def test_kickplan_set_metric__time_out_of_range__400_in_kickplan_shape_on_time(
    gauge: httpx.Client,
) -> None:
    body = {"key": "seats", "value": 5, "account_key": "acme", "time": "2026-11-24T10:00:00Z"}

    response = gauge.post("/api/metrics/set", json=body)

    assert response.status_code == 400
    reply = response.json()
    assert (reply["message"], reply["type"]) == ("Invalid input", "invalid_input")
    assert [(e["field"], e["type"]) for e in reply["errors"]] == [("time", "invalid")]
    assert events(gauge) == []


def test_kickplan_set_metric__publishable_key__403_in_kickplan_shape(
    gauge: httpx.Client, make_client: ClientFactory
) -> None:
    browser = make_client(kind=KeyKind.PUBLISHABLE)

    response = browser.post(
        "/api/metrics/set", json={"key": "seats", "value": 1, "account_key": "acme"}
    )

    assert response.status_code == 403
    assert (response.json()["type"], response.json()["errors"]) == ("forbidden", [])
    assert events(gauge) == []


@pytest.mark.parametrize("value", ["five", "", True, None, [5], "1e400", "NaN"])
def test_kickplan_set_metric__value_not_a_number__400_on_value(
    gauge: httpx.Client, value: Any
) -> None:
    response = gauge.post(
        "/api/metrics/set", json={"key": "seats", "value": value, "account_key": "acme"}
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["type"], [e["field"] for e in body["errors"]]) == ("invalid_input", ["value"])
    assert events(gauge) == []


# Refusals


def test_post_events__timestamps_out_of_range__400_names_each_and_stores_nothing(
    metered: httpx.Client,
) -> None:
    ahead = rfc3339(NOW + timedelta(hours=24, seconds=1))
    batch = [
        call(1, timestamp="2000-01-01T00:00:00Z"),
        call(1, timestamp="1999-12-31T23:59:59Z"),
        call(1, timestamp=rfc3339(NOW + timedelta(hours=24))),
        call(1, timestamp=ahead),
    ]

    response = metered.post("/v1/events", json={"events": batch})

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("timestamp_out_of_range", "events.1.timestamp")
    assert [(d["param"], d["code"]) for d in error["details"]] == [
        ("events.1.timestamp", "timestamp_out_of_range"),
        ("events.3.timestamp", "timestamp_out_of_range"),
    ]
    assert_is_a_sentence(error["message"])
    assert events(metered) == []
    assert metered.get("/v1/companies/acme").status_code == 404


def test_post_events__timestamps_at_the_bounds__accepted(metered: httpx.Client) -> None:
    batch = [
        call(1, timestamp="2000-01-01T00:00:00Z"),
        call(2, timestamp=rfc3339(NOW + timedelta(hours=24))),
    ]

    assert track(metered, {"events": batch}) == {"accepted": 2, "duplicates": 0}
    assert keys_of(metered) == [None, None]


def test_post_event__single_timestamp_ahead__400_param_timestamp(metered: httpx.Client) -> None:
    response = metered.post("/v1/events", json=call(1, timestamp="2026-11-24T10:00:00Z"))

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("timestamp_out_of_range", "timestamp")
    assert [d["param"] for d in error["details"]] == ["timestamp"]
    assert events(metered) == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(call(1, type="page"), "type", id="single"),
        pytest.param(
            {"events": [call(1), call(1), call(1, type="alias")]}, "events.2.type", id="batch"
        ),
        pytest.param({"events": [call(1, type=None)]}, "events.0.type", id="null_in_a_batch"),
    ],
)
def test_post_events__unknown_type__400_names_the_type(
    metered: httpx.Client, body: dict[str, Any], param: str
) -> None:
    response = metered.post("/v1/events", json=body)

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("validation_failed", param)
    assert [d["param"] for d in error["details"]] == [param]
    assert events(metered) == []


def test_post_events__publishable_key__403_and_nothing_stored(
    metered: httpx.Client, make_client: ClientFactory
) -> None:
    browser = make_client(kind=KeyKind.PUBLISHABLE)

    response = browser.post("/v1/events", json=call(1))

    assert response.status_code == 403
    error = error_of(response)
    assert (error["type"], error["code"]) == ("permission", "secret_key_required")
    assert events(metered) == []
    assert (
        browser.post("/v1/metrics/set", json={"key": "x", "company": "a", "value": 1}).status_code
        == 403
    )
    assert browser.get("/v1/events").status_code == 403


def test_delete_company__its_events_and_usage_go_with_it_others_stay(
    metered: httpx.Client,
) -> None:
    track(metered, {"events": [call(4), call(2, company="globex")]})

    assert metered.delete("/v1/companies/acme").status_code == 204
    track(metered, call(1))

    assert [e["company"] for e in events(metered)] == ["acme", "globex"]
    assert used(metered) == 1
    assert used(metered, "globex") == 2

"""`/v1/companies/{key}/subscriptions` used as documented: base plans one per group at a time,
add-ons with quantities, past and future starts, trials, cancelling now or at the period's end,
the kept history and what it answers for any instant, plans in use, and environments."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from tests.conftest import SettableClock
from tests.support.api import create_customer_catalog as create_catalog
from tests.support.api import create_plan, error_of, rfc3339

ClientFactory = Callable[..., httpx.Client]


# Catalog and customers through the API


def create_company(api: httpx.Client, key: str = "acme", **fields: Any) -> None:
    response = api.put(f"/v1/companies/{key}", json=fields)
    assert response.status_code == 201, response.text


def get_company(api: httpx.Client, key: str = "acme") -> dict[str, Any]:
    response = api.get(f"/v1/companies/{key}")
    assert response.status_code == 200, response.text
    company: dict[str, Any] = response.json()
    return company


def subscribe(api: httpx.Client, plan: str, company: str = "acme", **fields: Any) -> dict[str, Any]:
    response = api.post(f"/v1/companies/{company}/subscriptions", json={"plan": plan, **fields})
    assert response.status_code == 201, response.text
    subscription: dict[str, Any] = response.json()
    return subscription


def history(
    api: httpx.Client, company: str = "acme", at: datetime | None = None
) -> list[dict[str, Any]]:
    params = {"at": rfc3339(at)} if at is not None else {}
    response = api.get(f"/v1/companies/{company}/subscriptions", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    subscriptions: list[dict[str, Any]] = response.json()["data"]
    return subscriptions


def plans_at(api: httpx.Client, at: datetime, company: str = "acme") -> list[str]:
    return [s["plan"] for s in history(api, company, at)]


def cancel(api: httpx.Client, subscription_id: str, at: str, company: str = "acme") -> Any:
    response = api.delete(f"/v1/companies/{company}/subscriptions/{subscription_id}?at={at}")
    assert response.status_code == 200, response.text
    return response.json()


def parse_utc(timestamp: str | None) -> datetime | None:
    """The instant of an RFC 3339 UTC timestamp as the API writes them (`...Z`)."""
    if timestamp is None:
        return None
    assert timestamp.endswith("Z"), timestamp
    return datetime.fromisoformat(timestamp)


def month_end_of_cycle(anchor: datetime, months: int) -> datetime:
    """`anchor` plus whole months, the day clamped to the target month's last day."""
    year, month = divmod(anchor.month - 1 + months, 12)
    year += anchor.year
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


# Base plans: one per group at a time


def test_subscribe__new_base_plan__ends_the_previous_one_exactly_at_its_start(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    start = clock.now - timedelta(days=30)
    starter = subscribe(api, "starter", started_at=rfc3339(start), trial_ends_at=None)
    switch = clock.now - timedelta(days=3, hours=2)

    pro = subscribe(api, "pro", started_at=rfc3339(switch))

    assert parse_utc(pro["started_at"]) == switch
    assert (pro["status"], pro["ends_at"]) == ("active", None)
    old, new = history(api)
    assert (old["id"], new["id"]) == (starter["id"], pro["id"])
    assert parse_utc(old["started_at"]) == start
    assert parse_utc(old["ends_at"]) == switch
    assert (old["status"], old["canceled_at"]) == ("ended", None)
    assert plans_at(api, switch - timedelta(microseconds=1)) == ["starter"]
    assert plans_at(api, switch) == ["pro"]
    assert plans_at(api, switch + timedelta(days=1)) == ["pro"]
    assert plans_at(api, start - timedelta(seconds=1)) == []
    company = get_company(api)
    assert (company["plan"], company["plan_is_default"]) == ("pro", False)
    assert [s["id"] for s in company["subscriptions"]] == [pro["id"]]


def test_subscribe__base_plan_in_another_group__leaves_the_default_group_running(
    api: httpx.Client,
) -> None:
    create_catalog(api)
    create_company(api)
    pro = subscribe(api, "pro")

    team = subscribe(api, "team")

    assert (team["group"], team["plan_type"], team["status"]) == ("seats", "base", "active")
    assert [(s["id"], s["ends_at"]) for s in history(api)] == [
        (pro["id"], None),
        (team["id"], None),
    ]
    assert get_company(api)["plan"] == "pro"


def test_subscribe__base_plan_of_group_seats__ends_only_that_groups_plan(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_plan(api, "team_plus", group="seats")
    create_company(api)
    pro = subscribe(api, "pro")
    subscribe(api, "team")
    clock.advance(hours=1)

    subscribe(api, "team_plus")

    assert [(s["plan"], s["status"]) for s in history(api)] == [
        ("pro", "active"),
        ("team", "ended"),
        ("team_plus", "active"),
    ]
    assert history(api)[0]["id"] == pro["id"]


def test_subscribe__scheduled_base_superseded_by_an_earlier_start__never_runs(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    later = clock.now + timedelta(days=10)
    scheduled = subscribe(api, "pro", started_at=rfc3339(later))
    assert scheduled["status"] == "scheduled"

    starter = subscribe(api, "starter", started_at=rfc3339(clock.now + timedelta(days=2)))

    by_id = {s["id"]: s for s in history(api)}
    superseded = by_id[scheduled["id"]]
    assert parse_utc(superseded["started_at"]) == later
    assert parse_utc(superseded["ends_at"]) == later
    assert superseded["status"] == "ended"
    assert by_id[starter["id"]]["ends_at"] is None
    assert [s["id"] for s in get_company(api)["subscriptions"]] == [starter["id"]]
    clock.advance(days=11)
    assert plans_at(api, clock.now) == ["starter"]
    assert plans_at(api, later) == ["starter"]
    assert get_company(api)["plan"] == "starter"


def test_subscribe__future_base_plan_while_on_another__old_one_runs_until_the_new_start(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    starter = subscribe(api, "starter", trial_ends_at=None)
    switch = clock.now + timedelta(days=5)

    pro = subscribe(api, "pro", started_at=rfc3339(switch))

    assert pro["status"] == "scheduled"
    company = get_company(api)
    assert company["plan"] == "starter"
    assert [(s["id"], s["status"]) for s in company["subscriptions"]] == [
        (starter["id"], "active"),
        (pro["id"], "scheduled"),
    ]
    assert parse_utc(company["subscriptions"][0]["ends_at"]) == switch
    clock.advance(days=5)
    company = get_company(api)
    assert company["plan"] == "pro"
    assert [(s["id"], s["status"]) for s in company["subscriptions"]] == [(pro["id"], "active")]


# Past and future starts, ends


def test_subscribe__future_started_at__scheduled_then_active_after_the_clock_passes_it(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    start = clock.now + timedelta(days=3)

    created = subscribe(api, "pro", started_at=rfc3339(start))

    assert created["status"] == "scheduled"
    company = get_company(api)
    assert (company["plan"], company["plan_is_default"]) == ("free", True)
    assert [(s["plan"], s["status"]) for s in company["subscriptions"]] == [("pro", "scheduled")]
    assert plans_at(api, clock.now) == []
    clock.advance(days=3, seconds=1)
    assert [s["status"] for s in history(api)] == ["active"]
    company = get_company(api)
    assert (company["plan"], company["plan_is_default"]) == ("pro", False)
    assert company["subscriptions"][0]["status"] == "active"


def test_subscribe__past_started_at__active_since_then(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    start = clock.now - timedelta(days=40)

    created = subscribe(api, "pro", started_at=rfc3339(start))

    assert (created["status"], parse_utc(created["started_at"])) == ("active", start)
    assert parse_utc(created["created_at"]) == clock.now
    assert plans_at(api, start) == ["pro"]
    assert plans_at(api, start - timedelta(microseconds=1)) == []


def test_subscribe__ends_at__active_until_then_and_the_default_plan_after(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    end = clock.now + timedelta(days=7)

    created = subscribe(api, "pro", ends_at=rfc3339(end))

    assert (created["status"], parse_utc(created["ends_at"])) == ("active", end)
    clock.advance(days=7)
    [ended] = history(api)
    assert (ended["status"], ended["canceled_at"]) == ("ended", None)
    company = get_company(api)
    assert (company["plan"], company["plan_is_default"], company["subscriptions"]) == (
        "free",
        True,
        [],
    )
    assert plans_at(api, end - timedelta(seconds=1)) == ["pro"]
    assert plans_at(api, end) == []


def test_list_subscriptions__whole_history__oldest_first_with_status_at_now(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    subscribe(api, "starter", started_at=rfc3339(clock.now - timedelta(days=60)))
    subscribe(api, "pro", started_at=rfc3339(clock.now - timedelta(days=20)))
    subscribe(api, "extra_seats", started_at=rfc3339(clock.now - timedelta(days=10)))
    subscribe(api, "team", started_at=rfc3339(clock.now + timedelta(days=1)))
    subscribe(api, "free", started_at=rfc3339(clock.now + timedelta(days=30)))

    listed = history(api)

    assert [(s["plan"], s["status"]) for s in listed] == [
        ("starter", "ended"),
        ("pro", "active"),
        ("extra_seats", "active"),
        ("team", "scheduled"),
        ("free", "scheduled"),
    ]
    assert [parse_utc(s["started_at"]) for s in listed] == sorted(
        parse_utc(s["started_at"]) for s in listed
    )
    assert {s["company"] for s in listed} == {"acme"}
    assert [s["plan"] for s in get_company(api)["subscriptions"]] == [
        "pro",
        "extra_seats",
        "team",
        "free",
    ]


def test_list_subscriptions__at_instants__answers_what_was_active_then(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    t0 = clock.now - timedelta(days=90)
    t1 = clock.now - timedelta(days=30)
    subscribe(api, "starter", started_at=rfc3339(t0), trial_ends_at=None)
    subscribe(api, "extra_seats", started_at=rfc3339(t0 + timedelta(days=10)), quantity=2)
    subscribe(api, "pro", started_at=rfc3339(t1))

    assert plans_at(api, t0 - timedelta(days=1)) == []
    assert plans_at(api, t0 + timedelta(days=1)) == ["starter"]
    assert plans_at(api, t0 + timedelta(days=11)) == ["starter", "extra_seats"]
    assert plans_at(api, t1) == ["extra_seats", "pro"]
    assert plans_at(api, clock.now + timedelta(days=365)) == ["extra_seats", "pro"]
    just_before_in_paris_summer = (t1 - timedelta(minutes=1)).astimezone(
        timezone(timedelta(hours=2))
    )
    offset = api.get(
        "/v1/companies/acme/subscriptions", params={"at": just_before_in_paris_summer.isoformat()}
    )
    assert offset.status_code == 200, offset.text
    assert [s["plan"] for s in offset.json()["data"]] == ["starter", "extra_seats"]


def test_list_subscriptions__at_without_an_offset__400_not_a_guess(api: httpx.Client) -> None:
    create_catalog(api)
    create_company(api)
    subscribe(api, "pro")

    response = api.get("/v1/companies/acme/subscriptions", params={"at": "2026-01-01T00:00:00"})

    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["type"], error["param"]) == ("invalid_request", "at")


# Trials


def test_subscribe__plan_with_trial_days__trial_defaults_to_start_plus_trial_days(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    start = clock.now - timedelta(days=2)

    created = subscribe(api, "starter", started_at=rfc3339(start))

    assert parse_utc(created["trial_ends_at"]) == start + timedelta(days=14)
    assert created["status"] == "trialing"
    assert get_company(api)["plan"] == "starter"
    clock.advance(days=12)
    assert history(api)[0]["status"] == "active"
    assert get_company(api)["plan"] == "starter"


def test_subscribe__explicit_null_trial_ends_at__no_trial(api: httpx.Client) -> None:
    create_catalog(api)
    create_company(api)

    created = subscribe(api, "starter", trial_ends_at=None)

    assert (created["trial_ends_at"], created["status"]) == (None, "active")
    assert history(api)[0]["trial_ends_at"] is None


def test_subscribe__explicit_trial_ends_at__kept_as_given(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    trial_end = clock.now + timedelta(days=3)

    created = subscribe(api, "pro", trial_ends_at=rfc3339(trial_end))

    assert (parse_utc(created["trial_ends_at"]), created["status"]) == (trial_end, "trialing")


def test_subscribe__plan_without_trial_days__no_trial(api: httpx.Client) -> None:
    create_catalog(api)
    create_company(api)

    created = subscribe(api, "pro")

    assert (created["trial_ends_at"], created["status"]) == (None, "active")


def test_subscribe__trial_via_plan_shortcut__trial_defaults_too(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)

    company = api.put("/v1/companies/acme", json={"plan": "starter"}).json()

    [subscription] = company["subscriptions"]
    assert subscription["status"] == "trialing"
    assert parse_utc(subscription["trial_ends_at"]) == clock.now + timedelta(days=14)


# Price intervals


def test_subscribe__price_interval__defaults_to_the_plans_default_price_or_takes_the_asked(
    api: httpx.Client,
) -> None:
    create_catalog(api)
    for key in ["a", "b", "c", "d"]:
        create_company(api, key)

    assert subscribe(api, "starter", "a")["price_interval"] == "month"
    assert subscribe(api, "starter", "b", price_interval="year")["price_interval"] == "year"
    assert subscribe(api, "pro", "c")["price_interval"] == "month"
    assert subscribe(api, "team", "d")["price_interval"] is None


def test_subscribe__interval_the_plan_does_not_offer__400_and_nothing_stored(
    api: httpx.Client,
) -> None:
    create_catalog(api)
    create_company(api)

    response = api.post(
        "/v1/companies/acme/subscriptions", json={"plan": "extra_seats", "price_interval": "year"}
    )

    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["code"], error["param"]) == ("price_interval_not_offered", "price_interval")
    assert history(api) == []


# Add-ons


def test_subscribe__add_on_with_quantity__stacks_on_the_base_plan(api: httpx.Client) -> None:
    create_catalog(api)
    create_company(api)
    pro = subscribe(api, "pro")

    seats = subscribe(api, "extra_seats", quantity=3)

    assert (seats["plan_type"], seats["quantity"], seats["status"]) == ("add_on", 3, "active")
    company = get_company(api)
    assert company["plan"] == "pro"
    assert [(s["id"], s["quantity"]) for s in company["subscriptions"]] == [
        (pro["id"], 1),
        (seats["id"], 3),
    ]


def test_subscribe__add_on_already_held__409_already_subscribed(api: httpx.Client) -> None:
    create_catalog(api)
    create_company(api)
    first = subscribe(api, "extra_seats", quantity=2)

    response = api.post(
        "/v1/companies/acme/subscriptions", json={"plan": "extra_seats", "quantity": 5}
    )

    assert response.status_code == 409, response.text
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == (
        "conflict",
        "already_subscribed",
        "plan",
    )
    assert [(s["id"], s["quantity"]) for s in history(api)] == [(first["id"], 2)]


def test_subscribe__add_on_scheduled_later__second_one_409_too(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    subscribe(api, "extra_seats", started_at=rfc3339(clock.now + timedelta(days=5)))

    response = api.post("/v1/companies/acme/subscriptions", json={"plan": "extra_seats"})

    assert response.status_code == 409, response.text
    assert error_of(response)["code"] == "already_subscribed"


def test_patch_subscription__quantity__changes_it_in_place(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    seats = subscribe(api, "extra_seats", quantity=2)
    clock.advance(hours=1)

    response = api.patch(f"/v1/companies/acme/subscriptions/{seats['id']}", json={"quantity": 7})

    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["id"], changed["quantity"]) == (seats["id"], 7)
    assert parse_utc(changed["updated_at"]) == clock.now
    assert changed["started_at"] == seats["started_at"]
    assert [(s["id"], s["quantity"]) for s in history(api)] == [(seats["id"], 7)]
    got = api.get(f"/v1/companies/acme/subscriptions/{seats['id']}").json()
    assert got == changed


def test_patch_subscription__ended_one__409_subscription_ended(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    seats = subscribe(api, "extra_seats", ends_at=rfc3339(clock.now + timedelta(days=1)))
    clock.advance(days=1)

    response = api.patch(f"/v1/companies/acme/subscriptions/{seats['id']}", json={"quantity": 7})

    assert response.status_code == 409, response.text
    assert error_of(response)["code"] == "subscription_ended"
    assert history(api)[0]["quantity"] == 1


def test_patch_subscription__base_ends_at_past_the_next_base_start__409_and_unchanged(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    starter = subscribe(api, "starter", trial_ends_at=None)
    switch = clock.now + timedelta(days=5)
    subscribe(api, "pro", started_at=rfc3339(switch))
    path = f"/v1/companies/acme/subscriptions/{starter['id']}"

    unended = api.patch(path, json={"ends_at": None})
    later = api.patch(path, json={"ends_at": rfc3339(switch + timedelta(days=1))})
    earlier = api.patch(path, json={"ends_at": rfc3339(switch - timedelta(days=1))})

    for refused in (unended, later):
        assert refused.status_code == 409, refused.text
        assert (error_of(refused)["code"], error_of(refused)["param"]) == (
            "subscription_overlap",
            "ends_at",
        )
    assert earlier.status_code == 200, earlier.text
    assert parse_utc(earlier.json()["ends_at"]) == switch - timedelta(days=1)
    assert plans_at(api, switch) == ["pro"]
    assert plans_at(api, switch - timedelta(hours=1)) == []


def test_patch_subscription__add_on_ends_at_into_its_successor__409_subscription_overlap(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    first = subscribe(api, "extra_seats", ends_at=rfc3339(clock.now + timedelta(days=1)))
    second = subscribe(api, "extra_seats", started_at=rfc3339(clock.now + timedelta(days=2)))

    response = api.patch(f"/v1/companies/acme/subscriptions/{first['id']}", json={"ends_at": None})

    assert response.status_code == 409, response.text
    assert error_of(response)["code"] == "subscription_overlap"
    assert [(s["id"], s["ends_at"]) for s in history(api)] == [
        (first["id"], first["ends_at"]),
        (second["id"], None),
    ]


def test_subscribe__add_on_after_the_first_was_cancelled__201(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    first = subscribe(api, "extra_seats", quantity=2)
    cancel(api, first["id"], "now")
    clock.advance(seconds=1)

    second = subscribe(api, "extra_seats", quantity=4)

    assert [(s["id"], s["status"], s["quantity"]) for s in history(api)] == [
        (first["id"], "ended", 2),
        (second["id"], "active", 4),
    ]


# Cancelling


def test_cancel__at_now__ends_it_now_and_the_company_falls_back_to_the_default_plan(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    pro = subscribe(api, "pro", started_at=rfc3339(clock.now - timedelta(days=3)))
    clock.advance(minutes=10)

    cancelled = cancel(api, pro["id"], "now")

    assert cancelled["status"] == "ended"
    assert parse_utc(cancelled["ends_at"]) == clock.now
    assert parse_utc(cancelled["canceled_at"]) == clock.now
    assert history(api) == [cancelled]
    company = get_company(api)
    assert (company["plan"], company["plan_is_default"], company["subscriptions"]) == (
        "free",
        True,
        [],
    )
    assert plans_at(api, clock.now - timedelta(seconds=1)) == ["pro"]


def test_cancel__without_at__ends_it_now(api: httpx.Client, clock: SettableClock) -> None:
    create_catalog(api)
    create_company(api)
    pro = subscribe(api, "pro")
    clock.advance(days=1)

    response = api.delete(f"/v1/companies/acme/subscriptions/{pro['id']}")

    assert response.status_code == 200, response.text
    assert parse_utc(response.json()["ends_at"]) == clock.now


def test_cancel__monthly_started_jan_31__period_end_lands_on_the_clamped_feb_date(
    api: httpx.Client, clock: SettableClock
) -> None:
    year = clock.now.year - 1
    started = datetime(year, 1, 31, 9, 30, tzinfo=UTC)
    clock.now = datetime(year, 2, 14, 12, 0, tzinfo=UTC)  # two weeks into the first cycle
    create_catalog(api)
    create_company(api)
    pro = subscribe(api, "pro", started_at=rfc3339(started), price_interval="month")

    cancelled = cancel(api, pro["id"], "period_end")

    last_feb_day = 29 if calendar.isleap(year) else 28
    assert parse_utc(cancelled["ends_at"]) == datetime(year, 2, last_feb_day, 9, 30, tzinfo=UTC)
    assert parse_utc(cancelled["canceled_at"]) == clock.now
    assert cancelled["status"] == "active"
    assert get_company(api)["plan"] == "pro"
    clock.now = datetime(year, 2, last_feb_day, 9, 30, tzinfo=UTC)
    assert history(api)[0]["status"] == "ended"
    assert get_company(api)["plan"] == "free"


def test_cancel__monthly_started_a_while_ago__period_end_is_the_current_cycles_end(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    started = datetime(clock.now.year - 1, 1, 31, 9, 30, tzinfo=UTC)
    pro = subscribe(api, "pro", started_at=rfc3339(started))
    expected = next(
        end
        for end in (month_end_of_cycle(started, months) for months in range(1, 40))
        if end > clock.now
    )

    cancelled = cancel(api, pro["id"], "period_end")

    assert parse_utc(cancelled["ends_at"]) == expected
    assert expected.day == min(31, calendar.monthrange(expected.year, expected.month)[1])
    assert cancelled["status"] == "active"


def test_cancel__yearly__period_end_is_the_next_anniversary(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    started = datetime(clock.now.year - 2, 3, 15, 8, 0, tzinfo=UTC)
    pro = subscribe(api, "pro", started_at=rfc3339(started), price_interval="year")
    anniversary = started.replace(year=clock.now.year)
    expected = anniversary if anniversary > clock.now else started.replace(year=clock.now.year + 1)

    cancelled = cancel(api, pro["id"], "period_end")

    assert parse_utc(cancelled["ends_at"]) == expected


def test_cancel__period_end_while_trialing__ends_with_the_trial(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    starter = subscribe(api, "starter", started_at=rfc3339(clock.now - timedelta(days=3)))
    clock.advance(days=1)

    cancelled = cancel(api, starter["id"], "period_end")

    assert parse_utc(cancelled["ends_at"]) == parse_utc(starter["trial_ends_at"])
    assert cancelled["status"] == "trialing"
    clock.advance(days=10)
    assert history(api)[0]["status"] == "ended"


def test_cancel__scheduled_subscription__never_starts(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    start = clock.now + timedelta(days=5)
    pro = subscribe(api, "pro", started_at=rfc3339(start))

    cancelled = cancel(api, pro["id"], "now")

    assert parse_utc(cancelled["ends_at"]) == start
    assert cancelled["status"] == "ended"
    assert get_company(api)["subscriptions"] == []
    clock.advance(days=6)
    assert plans_at(api, clock.now) == []
    assert get_company(api)["plan"] == "free"


def test_cancel__already_ended__409_subscription_ended(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    pro = subscribe(api, "pro")
    first = cancel(api, pro["id"], "now")
    clock.advance(days=1)

    response = api.delete(f"/v1/companies/acme/subscriptions/{pro['id']}?at=now")

    assert response.status_code == 409, response.text
    assert error_of(response)["code"] == "subscription_ended"
    assert history(api) == [first]


def test_cancel__unknown_subscription__404_subscription_not_found(api: httpx.Client) -> None:
    create_catalog(api)
    create_company(api)

    response = api.delete("/v1/companies/acme/subscriptions/sub_nope?at=now")

    assert response.status_code == 404
    assert error_of(response)["code"] == "subscription_not_found"


def test_cancel__subscription_of_another_company__404(api: httpx.Client) -> None:
    create_catalog(api)
    create_company(api, "acme")
    create_company(api, "globex")
    pro = subscribe(api, "pro", "globex")

    response = api.delete(f"/v1/companies/acme/subscriptions/{pro['id']}?at=now")

    assert response.status_code == 404
    assert history(api, "globex")[0]["ends_at"] is None


# Plans in use


def test_delete_plan__with_subscriptions_even_ended__409_plan_in_use(
    api: httpx.Client, clock: SettableClock
) -> None:
    create_catalog(api)
    create_company(api)
    pro = subscribe(api, "pro")
    cancel(api, pro["id"], "now")
    clock.advance(days=1)

    response = api.delete("/v1/plans/pro")

    assert response.status_code == 409, response.text
    assert (error_of(response)["type"], error_of(response)["code"]) == ("conflict", "plan_in_use")
    assert api.get("/v1/plans/pro").status_code == 200
    assert api.delete("/v1/plans/starter").status_code == 204


def test_patch_plan__type_or_group_of_a_subscribed_plan__409_plan_in_use(
    api: httpx.Client,
) -> None:
    create_catalog(api)
    create_company(api)
    subscribe(api, "pro")

    new_type = api.patch("/v1/plans/pro", json={"type": "add_on"})
    new_group = api.patch("/v1/plans/pro", json={"group": "seats"})
    renamed = api.patch("/v1/plans/pro", json={"name": "Professional"})

    assert (new_type.status_code, error_of(new_type)["code"]) == (409, "plan_in_use")
    assert error_of(new_type)["param"] == "type"
    assert (new_group.status_code, error_of(new_group)["code"]) == (409, "plan_in_use")
    assert error_of(new_group)["param"] == "group"
    assert renamed.status_code == 200, renamed.text
    plan = api.get("/v1/plans/pro").json()
    assert (plan["name"], plan["type"], plan["group"]) == ("Professional", "base", "default")
    assert api.patch("/v1/plans/starter", json={"group": "seats"}).status_code == 200


# Environments


def test_subscriptions__of_development__invisible_to_a_production_key(
    api: httpx.Client, production: httpx.Client
) -> None:
    create_catalog(api)
    create_catalog(production)
    create_company(api)
    pro = subscribe(api, "pro")
    path = f"/v1/companies/acme/subscriptions/{pro['id']}"

    responses = [
        production.get("/v1/companies/acme/subscriptions"),
        production.post("/v1/companies/acme/subscriptions", json={"plan": "pro"}),
        production.get(path),
        production.patch(path, json={"quantity": 3}),
        production.delete(f"{path}?at=now"),
    ]

    assert [(r.status_code, error_of(r)["code"]) for r in responses] == [
        (404, "company_not_found")
    ] * 5
    assert [(s["id"], s["quantity"], s["ends_at"]) for s in history(api)] == [(pro["id"], 1, None)]


def test_subscriptions__same_company_key_in_production__own_history(
    api: httpx.Client, production: httpx.Client
) -> None:
    create_catalog(api)
    create_catalog(production)
    create_company(api)
    create_company(production)
    dev_sub = subscribe(api, "pro")

    prod_sub = subscribe(production, "starter", trial_ends_at=None)
    wrong_env = production.get(f"/v1/companies/acme/subscriptions/{dev_sub['id']}")

    assert [s["id"] for s in history(api)] == [dev_sub["id"]]
    assert [s["id"] for s in history(production)] == [prod_sub["id"]]
    assert (wrong_env.status_code, error_of(wrong_env)["code"]) == (404, "subscription_not_found")
    assert get_company(api)["plan"] == "pro"
    assert get_company(production)["plan"] == "starter"

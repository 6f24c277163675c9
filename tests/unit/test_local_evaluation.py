"""Local evaluation's kept decisions: a repeated check is answered from a table, and that table
must never answer what the state or time no longer says."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import SettableClock
from tierkit.client.local import LocalEvaluation
from tierkit.engine.codec import format_time
from tierkit.engine.evaluate import Decision, Reason

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CATALOG: dict[str, Any] = {
    "features": [
        {"key": "sso", "type": "boolean"},
        {"key": "seats", "type": "numeric", "default": 1},
    ],
    "plans": [{"key": "pro", "entitlements": [{"feature": "seats", "value": 5}]}],
    "rules": {
        "sso": [
            {
                "name": "admins",
                "value": True,
                "conditions": [
                    [{"type": "trait", "entity": "user", "trait": "role", "op": "eq", "value": "a"}]
                ],
            }
        ]
    },
    "credits": [],
}


def company(key: str, *, overrides: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "key": key,
        "traits": {},
        "subscriptions": [
            {"id": f"sub_{key}", "plan": "pro", "quantity": 1, "started_at": format_time(START)}
        ],
        "overrides": overrides or [],
    }


def seats_override(value: int, expires_at: datetime | None = None) -> dict[str, Any]:
    return {
        "feature": "seats",
        "value": value,
        "unlimited": False,
        "expires_at": format_time(expires_at),
    }


@pytest.fixture
def clock() -> SettableClock:
    clock = SettableClock()
    clock.now = START
    return clock


@pytest.fixture
def local(clock: SettableClock) -> LocalEvaluation:
    evaluation = LocalEvaluation(clock)
    evaluation.set_catalog(CATALOG, '"v1"')
    return evaluation


def decided(local: LocalEvaluation, key: str, feature: str, **kwargs: Any) -> Decision:
    result = local.decide(key, feature, **kwargs)
    assert isinstance(result, Decision), result
    return result


def test_kept_decision__company_read_again_with_an_override__the_new_value(
    local: LocalEvaluation,
) -> None:
    local.put_company(company("acme"))
    assert decided(local, "acme", "seats").value == 5
    assert decided(local, "acme", "seats").value == 5  # kept

    local.put_company(company("acme", overrides=[seats_override(9)]))

    assert (decided(local, "acme", "seats").value, decided(local, "acme", "seats").reason) == (
        9,
        Reason.OVERRIDE,
    )


def test_kept_decision__override_expires__the_plan_value_from_that_instant(
    local: LocalEvaluation, clock: SettableClock
) -> None:
    # Given acme with an override expiring in an hour, and beta without one, both checked
    expiry = START + timedelta(hours=1)
    local.put_company(company("acme", overrides=[seats_override(9, expiry)]))
    local.put_company(company("beta"))
    before = (decided(local, "acme", "seats").value, decided(local, "beta", "seats").value)

    # When the clock reaches the expiry
    clock.now = expiry

    # Then acme's kept decision is gone, and beta's is still right
    after = (decided(local, "acme", "seats").value, decided(local, "beta", "seats").value)
    assert (before, after) == ((9, 5), (5, 5))


def test_kept_decision__company_dropped__needs_it_again(local: LocalEvaluation) -> None:
    local.put_company(company("acme"))
    decided(local, "acme", "seats")

    local.drop_company("acme")

    assert local.decide("acme", "seats").__class__ is not Decision


def test_kept_decision__new_catalog__decided_on_it(local: LocalEvaluation) -> None:
    local.put_company(company("acme"))
    assert decided(local, "acme", "seats").value == 5

    plans = [{"key": "pro", "entitlements": [{"feature": "seats", "value": 7}]}]
    local.set_catalog({**CATALOG, "plans": plans}, '"v2"')

    assert decided(local, "acme", "seats").value == 7


def test_kept_decision__user_traits_change__user_checks_follow_and_plain_checks_stay(
    local: LocalEvaluation,
) -> None:
    local.put_company(company("acme"))
    local.put_user({"key": "ann", "traits": {"role": "b"}})
    first = (decided(local, "acme", "sso", user="ann").value, decided(local, "acme", "sso").value)

    local.put_user({"key": "ann", "traits": {"role": "a"}})

    after = (decided(local, "acme", "sso", user="ann").value, decided(local, "acme", "sso").value)
    assert (first, after) == ((False, False), (True, False))


def test_kept_decision__states_replaced_while_checking__the_last_state_wins(
    local: LocalEvaluation,
) -> None:
    # Given checks running in four threads while the sync thread replaces acme's state
    local.put_company(company("acme"))
    stop = threading.Event()

    def check_forever() -> None:
        while not stop.is_set():
            decided(local, "acme", "seats")

    threads = [threading.Thread(target=check_forever) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for value in range(2, 400):
            local.put_company(company("acme", overrides=[seats_override(value)]))
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    # Then, once it stops, the kept decision is the last state's
    assert decided(local, "acme", "seats").value == 399

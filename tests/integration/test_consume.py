"""`consume: true` on /v1/check: decide and record atomically, never past a hard limit, once per
idempotency key, on both databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.api import (
    assert_twenty_allowed_thirty_denied,
    create_feature,
    create_plan,
    error_of,
    fifty_consumes_at_once,
)
from tierkit.server.services.api_keys import KeyKind


@pytest.fixture
def limited(api: httpx.Client) -> httpx.Client:
    """`api_calls` (sum of quantity) limited to 20 a month on the default plan; `exports`
    (count) to 3; `peak` (max) and `sso` (boolean) to show what cannot be consumed."""
    create_feature(api, "api_calls", "metered", meter={"event": "api_call", "aggregation": "sum"})
    create_feature(api, "exports", "metered", meter={"event": "export", "aggregation": "count"})
    create_feature(api, "peak", "metered", meter={"event": "load", "aggregation": "max"})
    create_feature(api, "sso")
    create_plan(
        api,
        "free",
        [
            {"feature": "api_calls", "value": 20},
            {"feature": "exports", "value": 3},
            {"feature": "peak", "value": 10},
        ],
        is_default=True,
    )
    return api


def _consume(client: httpx.Client, quantity: float = 1, **fields: Any) -> httpx.Response:
    body = {"company": "acme", "feature": "api_calls", "quantity": quantity, "consume": True}
    return client.post("/v1/check", json=body | fields)


def _used(client: httpx.Client, feature: str = "api_calls") -> float:
    response = client.post("/v1/check", json={"company": "acme", "feature": feature})
    used: float = response.json()["usage"]["used"]
    return used


def test_consume__fifty_concurrent_against_a_limit_of_twenty__exactly_twenty_recorded(
    limited: httpx.Client, make_client: ClientFactory
) -> None:
    clients = [make_client() for _ in range(10)]

    replies = fifty_consumes_at_once(lambda index: _consume(clients[index % len(clients)]))

    assert_twenty_allowed_thirty_denied(replies)
    assert _used(limited) == 20
    events = limited.get("/v1/events", params={"company": "acme", "limit": 500}).json()["data"]
    assert len(events) == 20


def test_consume__allowed__records_and_replies_with_usage_after_it(limited: httpx.Client) -> None:
    reply = _consume(limited, 5).json()

    assert reply["allowed"] is True
    assert reply["reason"] == "plan"
    assert reply["usage"]["used"] == 5
    assert reply["usage"]["remaining"] == 15
    assert _used(limited) == 5


def test_consume__past_the_hard_limit__denies_and_records_nothing(limited: httpx.Client) -> None:
    _consume(limited, 18)

    reply = _consume(limited, 3).json()

    assert reply["allowed"] is False
    assert reply["reason"] == "limit_exceeded"
    assert reply["usage"]["used"] == 18
    assert _used(limited) == 18


def test_consume__exactly_to_the_limit__allowed(limited: httpx.Client) -> None:
    _consume(limited, 18)

    reply = _consume(limited, 2).json()

    assert reply["allowed"] is True
    assert reply["usage"] == reply["usage"] | {"used": 20, "remaining": 0, "overage": 0}


def test_consume__soft_limit__allows_past_it_and_reports_overage(api: httpx.Client) -> None:
    create_feature(api, "api_calls", "metered", meter={"event": "api_call", "aggregation": "sum"})
    create_plan(
        api, "free", [{"feature": "api_calls", "value": 10, "soft_limit": True}], is_default=True
    )
    _consume(api, 8)

    reply = _consume(api, 5).json()

    assert reply["allowed"] is True
    assert reply["usage"] == reply["usage"] | {"used": 13, "remaining": 0, "overage": 3}


def test_consume__retried_with_the_same_idempotency_key__counts_once_and_answers_the_same(
    limited: httpx.Client,
) -> None:
    first = _consume(limited, 4, idempotency_key="req-1").json()

    again = _consume(limited, 4, idempotency_key="req-1").json()

    assert again == first
    assert _used(limited) == 4


def test_consume__concurrent_retries_of_one_key__count_once(limited: httpx.Client) -> None:
    def consume(_: int) -> dict[str, Any]:
        reply: dict[str, Any] = _consume(limited, 2, idempotency_key="req-1").json()
        return reply

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(consume, range(8)))

    assert all(r == replies[0] for r in replies)
    assert _used(limited) == 2


def test_consume__key_of_a_tracked_event__conflict(limited: httpx.Client) -> None:
    limited.post(
        "/v1/events", json={"event": "api_call", "company": "acme", "idempotency_key": "k1"}
    )

    response = _consume(limited, 1, idempotency_key="k1")

    assert response.status_code == 409
    assert error_of(response)["code"] == "idempotency_key_reused"
    assert _used(limited) == 1


def test_consume__unknown_company__creates_it_and_records(limited: httpx.Client) -> None:
    reply = _consume(limited, 2, company="newco").json()

    assert reply["allowed"] is True
    assert reply["company_found"] is True
    assert limited.get("/v1/companies/newco").status_code == 200


def test_consume__count_meter__records_one_event(limited: httpx.Client) -> None:
    for _ in range(3):
        assert _consume(limited, 1, feature="exports").json()["allowed"] is True

    reply = _consume(limited, 1, feature="exports").json()

    assert reply["allowed"] is False
    assert _used(limited, "exports") == 3


@pytest.mark.parametrize(
    ("feature", "quantity", "code", "param"),
    [
        ("sso", 1, "feature_not_metered", "consume"),
        ("peak", 1, "consume_unsupported", "consume"),
        ("exports", 2, "consume_quantity_unsupported", "quantity"),
    ],
)
def test_consume__what_cannot_be_recorded__400_and_nothing_stored(
    limited: httpx.Client, feature: str, quantity: float, code: str, param: str
) -> None:
    response = _consume(limited, quantity, feature=feature)

    error = error_of(response)
    assert response.status_code == 400
    assert (error["code"], error["param"]) == (code, param)
    assert limited.get("/v1/events").json()["data"] == []


def test_consume__with_a_publishable_key__403(
    limited: httpx.Client, make_client: ClientFactory
) -> None:
    browser = make_client(kind=KeyKind.PUBLISHABLE)

    response = _consume(browser, 1)

    assert response.status_code == 403
    assert error_of(response)["code"] == "secret_key_required"
    assert _used(limited) == 0


def test_consume__unknown_feature__404(limited: httpx.Client) -> None:
    response = _consume(limited, 1, feature="nope")

    assert response.status_code == 404
    assert error_of(response)["code"] == "feature_not_found"

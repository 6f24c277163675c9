"""JSON-RPC 2.0 over the `/v1/rpc` WebSocket with the real `websockets` client, on both
databases: the methods answer as their REST routes, subscriptions push `entitlements.changed`,
errors carry the JSON-RPC codes, and an unknown key closes the socket with 4401."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.api import create_feature, create_plan
from tierkit.server.services.api_keys import KeyKind

KeyFactory = Callable[..., str]

RECEIVE_TIMEOUT = 5.0
"""How long a test waits for an answer or a notification before it fails."""

_ids = itertools.count(1)


@pytest.fixture
def catalog(api: httpx.Client) -> httpx.Client:
    """Features `sso` and `api_calls` (metered, count of `api_call`); the default plan `free`
    (100 `api_calls`), `pro` (`sso`, 1000 `api_calls`); company `acme` on `free`."""
    create_feature(api, "sso")
    create_feature(api, "api_calls", "metered", meter={"event": "api_call", "aggregation": "count"})
    create_plan(api, "free", [{"feature": "api_calls", "value": 100}], is_default=True)
    create_plan(
        api, "pro", [{"feature": "sso", "value": True}, {"feature": "api_calls", "value": 1000}]
    )
    response = api.put("/v1/companies/acme", json={"name": "Acme"})
    assert response.status_code in (200, 201), response.text
    return api


def rpc_url(server_url: str, query: str = "") -> str:
    return server_url.replace("http", "ws", 1) + "/v1/rpc" + query


@contextmanager
def open_rpc(server_url: str, key: str) -> Iterator[ClientConnection]:
    with connect(rpc_url(server_url), additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        yield ws


@pytest.fixture
def rpc(catalog: httpx.Client, server_url: str, make_key: KeyFactory) -> Iterator[ClientConnection]:
    """A socket with a secret development key, on the `catalog`."""
    with open_rpc(server_url, make_key()) as ws:
        yield ws


@pytest.fixture
def bare_rpc(server_url: str, make_key: KeyFactory) -> Iterator[ClientConnection]:
    """A socket with a secret development key, on an empty catalog (protocol tests)."""
    with open_rpc(server_url, make_key()) as ws:
        yield ws


def receive(ws: ClientConnection, deadline: float) -> Any:
    """The next message, which must come in a text frame before `deadline`."""
    frame = ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
    assert isinstance(frame, str), frame
    return orjson.loads(frame)


def request(method: str, params: Any = None, request_id: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id or next(_ids), "method": method}
    if params is not None:
        message["params"] = params
    return message


def answer_to(ws: ClientConnection, message: Any) -> Any:
    """Send `message` (a request or a raw text); its response, skipping notifications."""
    ws.send(message if isinstance(message, str | bytes) else orjson.dumps(message).decode())
    deadline = time.monotonic() + RECEIVE_TIMEOUT
    while True:
        reply = receive(ws, deadline)
        if isinstance(reply, list) or "id" in reply:
            return reply


def call(ws: ClientConnection, method: str, params: Any = None) -> dict[str, Any]:
    """The result of a successful call."""
    sent = request(method, params)
    reply = answer_to(ws, sent)
    assert set(reply) == {"jsonrpc", "id", "result"}, reply
    assert (reply["jsonrpc"], reply["id"]) == ("2.0", sent["id"])
    result: dict[str, Any] = reply["result"]
    return result


def error_of(ws: ClientConnection, method: str, params: Any = None) -> dict[str, Any]:
    """The error of a failed call, with the request's id."""
    sent = request(method, params)
    reply = answer_to(ws, sent)
    assert set(reply) == {"jsonrpc", "id", "error"}, reply
    assert reply["id"] == sent["id"]
    error: dict[str, Any] = reply["error"]
    return error


def notification(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The first `entitlements.changed` notification that `predicate` accepts, skipping
    responses."""
    deadline = time.monotonic() + RECEIVE_TIMEOUT
    while True:
        message = receive(ws, deadline)
        if isinstance(message, dict) and message.get("method") == "entitlements.changed":
            assert "id" not in message
            assert message["jsonrpc"] == "2.0"
            if predicate(message["params"]):
                return message


def decision_of(params: dict[str, Any], feature: str) -> dict[str, Any]:
    decisions: list[dict[str, Any]] = [d for d in params["entitlements"] if d["feature"] == feature]
    (decision,) = decisions
    return decision


def rest_check(api: httpx.Client, body: dict[str, Any], path: str = "/v1/check") -> Any:
    response = api.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def track(api: httpx.Client, company: str = "acme", count: int = 1) -> None:
    events = [{"event": "api_call", "company": company} for _ in range(count)]
    response = api.post("/v1/events", json={"events": events})
    assert response.status_code == 202, response.text


def put_override(api: httpx.Client, company: str, feature: str, **body: Any) -> None:
    response = api.put(f"/v1/companies/{company}/overrides/{feature}", json=body)
    assert response.status_code == 200, response.text


# Methods


def test_rpc_check__metered_feature_with_usage__same_reply_as_post_check(
    rpc: ClientConnection, catalog: httpx.Client
) -> None:
    track(catalog, count=3)
    params = {"company": "acme", "feature": "api_calls", "quantity": 2}

    result = call(rpc, "check", params)

    assert result == rest_check(catalog, params)
    assert (result["allowed"], result["usage"]["used"], result["usage"]["remaining"]) == (
        True,
        3,
        97,
    )


def test_rpc_check_bulk__company__data_as_post_check_bulk(
    rpc: ClientConnection, catalog: httpx.Client
) -> None:
    result = call(rpc, "check_bulk", {"company": "acme"})

    assert result == rest_check(catalog, {"company": "acme"}, "/v1/check/bulk")
    assert set(result) == {"data"}
    assert sorted(d["feature"] for d in result["data"]) == ["api_calls", "sso"]


def test_rpc_track__one_event__accepted_once_and_usage_moves(
    rpc: ClientConnection, catalog: httpx.Client
) -> None:
    event = {"event": "api_call", "company": "acme", "idempotency_key": "k1"}

    first = call(rpc, "track", event)
    again = call(rpc, "track", event)

    assert first == {"accepted": 1, "duplicates": 0}
    assert again == {"accepted": 0, "duplicates": 1}
    usage = rest_check(catalog, {"company": "acme", "feature": "api_calls"})["usage"]
    assert (usage["used"], usage["remaining"]) == (1, 99)


def test_rpc_track__a_batch__accepts_each_event(
    rpc: ClientConnection, catalog: httpx.Client
) -> None:
    batch = {
        "events": [
            {"event": "api_call", "company": "acme"},
            {"event": "api_call", "company": "acme"},
        ]
    }

    result = call(rpc, "track", batch)

    assert result == {"accepted": 2, "duplicates": 0}
    usage = rest_check(catalog, {"company": "acme", "feature": "api_calls"})["usage"]
    assert usage["used"] == 2


def test_rpc_identify__new_company_with_traits__upserts_it(
    rpc: ClientConnection, catalog: httpx.Client
) -> None:
    company = {"key": "zed", "name": "Zed Inc", "traits": {"tier": "gold", "seats": 3}}

    result = call(rpc, "identify", {"company": company})

    assert result == {"accepted": 1, "duplicates": 0}
    stored = catalog.get("/v1/companies/zed")
    assert stored.status_code == 200, stored.text
    assert (stored.json()["name"], stored.json()["traits"]) == ("Zed Inc", company["traits"])


# Subscriptions


def test_rpc_subscribe__override_put__entitlements_changed_with_the_override(
    rpc: ClientConnection, catalog: httpx.Client
) -> None:
    assert call(rpc, "subscribe", {"company": "acme"}) == {"subscribed": "acme"}

    put_override(catalog, "acme", "api_calls", value=5)
    message = notification(rpc, lambda p: decision_of(p, "api_calls")["value"] == 5)

    params = message["params"]
    assert params["company"] == "acme"
    assert (decision_of(params, "api_calls")["reason"], decision_of(params, "sso")["value"]) == (
        "override",
        False,
    )
    assert (
        params["entitlements"] == rest_check(catalog, {"company": "acme"}, "/v1/check/bulk")["data"]
    )


def test_rpc_subscribe__tracked_event__entitlements_changed_with_the_usage(
    rpc: ClientConnection, catalog: httpx.Client
) -> None:
    call(rpc, "subscribe", {"company": "acme"})

    track(catalog, count=2)
    message = notification(rpc, lambda p: decision_of(p, "api_calls")["usage"]["used"] == 2)

    assert message["params"]["company"] == "acme"
    assert decision_of(message["params"], "api_calls")["usage"]["remaining"] == 98


def test_rpc_subscribe__catalog_change__notifies_each_subscribed_company(
    rpc: ClientConnection, catalog: httpx.Client
) -> None:
    call(rpc, "subscribe", {"company": "acme"})
    call(rpc, "subscribe", {"company": "newco"})

    response = catalog.patch("/v1/features/sso", json={"global_value": True})
    assert response.status_code == 200, response.text
    messages = [
        notification(rpc, lambda p: decision_of(p, "sso")["reason"] == "global_override")
        for _ in range(2)
    ]

    assert sorted(m["params"]["company"] for m in messages) == ["acme", "newco"]


def test_rpc_subscribe__change_that_moves_no_decision__no_notification(
    rpc: ClientConnection, catalog: httpx.Client
) -> None:
    call(rpc, "subscribe", {"company": "acme"})

    response = catalog.put("/v1/companies/acme", json={"traits": {"unused": 1}})
    assert response.status_code == 200, response.text
    track(catalog)  # the notifier handles changes in order: this one comes last
    first = notification(rpc, lambda p: True)

    assert decision_of(first["params"], "api_calls")["usage"]["used"] == 1


def test_rpc_unsubscribe__then_a_change__no_notification_and_twice_is_32004(
    rpc: ClientConnection, catalog: httpx.Client
) -> None:
    call(rpc, "subscribe", {"company": "acme"})
    call(rpc, "subscribe", {"company": "other"})
    assert call(rpc, "unsubscribe", {"company": "acme"}) == {"unsubscribed": "acme"}

    put_override(catalog, "acme", "sso", value=True)
    track(catalog, "other")  # the notifier handles changes in order: this one comes last
    first = notification(rpc, lambda p: True)
    again = error_of(rpc, "unsubscribe", {"company": "acme"})

    assert first["params"]["company"] == "other"
    assert again["code"] == -32004
    assert again["data"]["code"] == "not_subscribed"


# Errors


def test_rpc__invalid_json__32700_with_a_null_id(bare_rpc: ClientConnection) -> None:
    reply = answer_to(bare_rpc, '{"jsonrpc": "2.0", "id": 1, "method": ')

    assert reply["id"] is None
    assert reply["error"]["code"] == -32700


NOT_REQUEST_OBJECTS = [
    '"check"',
    '{"id": 1, "method": "check", "params": {"company": "acme", "feature": "sso"}}',
    '{"jsonrpc": "1.0", "id": 1, "method": "check"}',
    '{"jsonrpc": "2.0", "id": 1, "method": 7}',
    "[]",
]
"""Not an object, no `jsonrpc`, JSON-RPC 1.0, a method that is not a string, an empty batch."""


def test_rpc__not_a_request_object__32600_with_a_null_id(bare_rpc: ClientConnection) -> None:
    replies = [answer_to(bare_rpc, message) for message in NOT_REQUEST_OBJECTS]

    assert [(r["id"], r["error"]["code"]) for r in replies] == [(None, -32600)] * len(replies)


def test_rpc__unknown_method__32601(bare_rpc: ClientConnection) -> None:
    error = error_of(bare_rpc, "entitle")

    assert error["code"] == -32601
    assert "check" in error["message"]


def test_rpc_check__no_feature__32602_naming_the_field(bare_rpc: ClientConnection) -> None:
    error = error_of(bare_rpc, "check", {"company": "acme"})

    assert error["code"] == -32602
    assert error["data"]["type"] == "invalid_request"
    assert [d["param"] for d in error["data"]["details"]] == ["feature"]


def test_rpc_check__unknown_feature__32004_feature_not_found(bare_rpc: ClientConnection) -> None:
    error = error_of(bare_rpc, "check", {"company": "acme", "feature": "nope"})

    assert error["code"] == -32004
    assert (error["data"]["code"], error["data"]["param"]) == ("feature_not_found", "feature")


def test_rpc_track__publishable_key_in_a_header_or_the_query__32003_and_checks_allowed(
    catalog: httpx.Client, server_url: str, make_key: KeyFactory
) -> None:
    key = make_key(kind=KeyKind.PUBLISHABLE)
    denied, decisions = [], []

    for url, headers in (
        (rpc_url(server_url), {"Authorization": f"Bearer {key}"}),
        (rpc_url(server_url, f"?api_key={key}"), {}),
    ):
        with connect(url, additional_headers=headers) as ws:
            denied.append(error_of(ws, "track", {"event": "api_call", "company": "acme"}))
            decisions.append(call(ws, "check", {"company": "acme", "feature": "api_calls"}))

    assert [(e["code"], e["data"]["code"]) for e in denied] == [(-32003, "secret_key_required")] * 2
    assert [d["usage"]["used"] for d in decisions] == [0, 0]


def test_rpc__batch_of_two__array_of_two_responses(bare_rpc: ClientConnection) -> None:
    batch = [
        request("check_bulk", {"company": "acme"}, "a"),
        request("check", {"company": "acme", "feature": "nope"}, "b"),
    ]

    replies = answer_to(bare_rpc, orjson.dumps(batch).decode())

    assert isinstance(replies, list)
    assert [reply["id"] for reply in replies] == ["a", "b"]
    assert replies[0]["result"] == {"data": []}
    assert replies[1]["error"]["code"] == -32004


def test_rpc__notifications__no_response_even_when_they_fail(bare_rpc: ClientConnection) -> None:
    messages = [
        {"jsonrpc": "2.0", "method": method, "params": {"company": "a", "feature": "x"}}
        for method in ("check_bulk", "check", "no_such_method")
    ]
    for message in messages:
        bare_rpc.send(orjson.dumps(message).decode())
    bare_rpc.send(orjson.dumps(messages[:2]).decode())
    after = request("check_bulk", {"company": "acme"})

    reply = answer_to(bare_rpc, after)

    assert reply == {"jsonrpc": "2.0", "id": after["id"], "result": {"data": []}}


def test_rpc__binary_frame_request__answered_in_a_text_frame(bare_rpc: ClientConnection) -> None:
    sent = request("check_bulk", {"company": "acme"})

    bare_rpc.send(orjson.dumps(sent))
    frame = bare_rpc.recv(timeout=RECEIVE_TIMEOUT)

    assert isinstance(frame, str)
    assert orjson.loads(frame) == {"jsonrpc": "2.0", "id": sent["id"], "result": {"data": []}}


# Authentication


def test_rpc__secret_key_in_x_api_key__methods_answer(
    server_url: str, make_key: KeyFactory
) -> None:
    headers = {"X-Api-Key": make_key()}

    with connect(rpc_url(server_url), additional_headers=headers) as ws:
        result = call(ws, "track", {"event": "api_call", "company": "acme"})

    assert result == {"accepted": 1, "duplicates": 0}


@pytest.mark.parametrize("key", ["tk_sec_bogus", None], ids=["unknown key", "no key"])
def test_rpc__unknown_or_missing_key__socket_closed_with_4401(
    server_url: str, key: str | None
) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    with (
        connect(rpc_url(server_url), additional_headers=headers) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=RECEIVE_TIMEOUT)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401

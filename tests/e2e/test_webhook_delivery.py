"""Webhook delivery end to end: changes made over the API reach a real HTTP receiver as
Standard Webhooks, each verified with the independent `standardwebhooks` package; failed
deliveries are retried on schedule with the same `webhook-id`, given up, and retried by hand;
endpoints get only what they subscribed to; two dispatchers on one database deliver each event
exactly once; and a real `tierkit serve` process delivers on its own. Runs on SQLite and, when
configured, PostgreSQL.

The shared live server does not run app lifespans, so the tests build their own
`WebhookDispatcher` over the test's services and clock and drive it with `run_once()` (one pass,
deterministic) or `start()`/`stop()` (a thread, as in the server)."""

from __future__ import annotations

import http.server
import itertools
import logging
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import standardwebhooks

from tests.conftest import SettableClock
from tests.e2e.conftest import TIERKIT, run_tierkit
from tests.support.api import create_feature, create_plan, parse_utc
from tests.support.live_server import free_port
from tests.support.secret_key import TEST_SECRET_KEY
from tierkit.server.db import Database
from tierkit.server.services.container import Services
from tierkit.server.workers.webhooks import WebhookDispatcher

pytestmark = pytest.mark.e2e


# -- a real receiver -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """One request the receiver got, and what it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


@dataclass(frozen=True, slots=True)
class Hold:
    """Requests to a held path wait for `release` before they are answered."""

    arrived: threading.Event
    release: threading.Event


class Receiver:
    """A threaded loopback HTTP server recording every POST (headers, body). Each path answers
    its scripted status codes in order, then its default (200 unless set); a held path answers
    once released."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[int]] = {}
        self._defaults: dict[str, int] = {}
        self._holds: dict[str, Hold] = {}
        self._received: list[Received] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = receiver._answer(self.path)
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver._lock:
                    receiver._received.append(Received(self.path, headers, body, status))
                    hold = receiver._holds.get(self.path)
                if hold is not None:
                    hold.arrived.set()
                    hold.release.wait(10)
                reply = b"ok" if status < 300 else f"receiver says {status}".encode()
                self.send_response(status)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                return None

        server_class = type(
            "Server", (http.server.ThreadingHTTPServer,), {"request_queue_size": 128}
        )
        self._server = server_class(("127.0.0.1", 0), Handler)  # a backlog as a real server has
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._server.server_port}{path}"

    def script(self, path: str, *statuses: int, then: int = 200) -> None:
        """`path` answers `statuses` in order, then `then` to every later request."""
        with self._lock:
            self._scripts[path] = list(statuses)
            self._defaults[path] = then

    def hold(self, path: str) -> Hold:
        """Hold the requests to `path` until the returned hold is released."""
        hold = Hold(threading.Event(), threading.Event())
        with self._lock:
            self._holds[path] = hold
        return hold

    def _answer(self, path: str) -> int:
        with self._lock:
            script = self._scripts.get(path)
            if script:
                return script.pop(0)
            return self._defaults.get(path, 200)

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def close(self) -> None:
        with self._lock:
            for hold in self._holds.values():
                hold.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


# -- helpers ---------------------------------------------------------------------------------


DispatcherFactory = Callable[..., WebhookDispatcher]


@pytest.fixture
def make_dispatcher(services: Services, clock: SettableClock) -> Iterator[DispatcherFactory]:
    """`make_dispatcher(retry_seconds=[...], services=...)`: a dispatcher on the test's clock,
    stopped at the end of the test."""
    made: list[WebhookDispatcher] = []

    def make(
        retry_seconds: Sequence[float] = (0,),
        on: Services | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_seconds: float = 2,
    ) -> WebhookDispatcher:
        dispatcher = WebhookDispatcher(
            (on or services).webhooks,
            clock,
            poll_seconds=0.05,
            timeout_seconds=timeout_seconds,
            retry_seconds=list(retry_seconds),
            transport=transport,
        )
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.stop()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.01)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.is_success, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else {}


def create_endpoint(api: httpx.Client, url: str, **fields: Any) -> tuple[str, str]:
    """A new endpoint at `url`: its id and signing secret."""
    response = api.post("/v1/webhooks", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["secret"].startswith("whsec_")
    return created["id"], created["secret"]


def deliveries(api: httpx.Client, endpoint_id: str) -> list[dict[str, Any]]:
    """The endpoint's deliveries, oldest first (the API lists them newest first)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = ok(api.get(f"/v1/webhooks/{endpoint_id}/deliveries", params=params))
        found += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found[::-1]


def verified(requests: Sequence[Received], secret: str) -> list[dict[str, Any]]:
    """Each request's body after `standardwebhooks` checked its signature with `secret` (it
    raises on a bad or missing signature, or a timestamp more than 5 minutes off)."""
    webhook = standardwebhooks.Webhook(secret)
    bodies = []
    for request in requests:
        body: dict[str, Any] = webhook.verify(request.body, request.headers)
        assert body["id"] == request.webhook_id
        assert request.headers["content-type"] == "application/json"
        bodies.append(body)
    return bodies


def signed_with(request: Received, secret: str) -> bool:
    """Whether the request's signature is `secret`'s, as `standardwebhooks` computes it, at
    whatever time its `webhook-timestamp` says (for tests that move the clock days ahead)."""
    stamp = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
    expected = standardwebhooks.Webhook(secret).sign(
        request.webhook_id, stamp, request.body.decode()
    )
    return expected in request.headers["webhook-signature"].split(" ")


# -- every event type ------------------------------------------------------------------------


def test_webhooks__every_kind_of_change_over_the_api__each_event_delivered_once_signed(
    api: httpx.Client, receiver: Receiver, make_dispatcher: DispatcherFactory
) -> None:
    # Given an endpoint subscribed to every event type
    endpoint_id, secret = create_endpoint(api, receiver.url())

    # When a feature, a plan, a company, its subscription and its override are created,
    # changed and deleted through the API
    create_feature(api, "sso")
    ok(api.patch("/v1/features/sso", json={"name": "Single sign-on"}))
    create_plan(api, "pro")
    ok(api.patch("/v1/plans/pro", json={"name": "Pro plan"}))
    ok(api.put("/v1/plans/pro/entitlements/sso", json={"value": True}))
    ok(api.put("/v1/companies/acme", json={"name": "Acme"}))
    ok(api.put("/v1/companies/acme", json={"name": "Acme Inc"}))
    subscription = ok(api.post("/v1/companies/acme/subscriptions", json={"plan": "pro"}))["id"]
    ok(api.patch(f"/v1/companies/acme/subscriptions/{subscription}", json={"quantity": 2}))
    ok(api.delete(f"/v1/companies/acme/subscriptions/{subscription}"))
    ok(api.put("/v1/companies/acme/overrides/sso", json={"value": False}))
    ok(api.put("/v1/companies/acme/overrides/sso", json={"value": False, "note": "on hold"}))
    ok(api.delete("/v1/companies/acme/overrides/sso"))
    ok(api.delete("/v1/companies/acme"))
    ok(api.delete("/v1/plans/pro"))
    ok(api.delete("/v1/features/sso"))
    # ... and the dispatcher makes one pass
    attempted = make_dispatcher().run_once()

    # Then the receiver got one signed delivery per change, in order, each naming its resource
    expected = [
        ("feature.created", {"feature": "sso"}),
        ("feature.updated", {"feature": "sso"}),
        ("plan.created", {"plan": "pro"}),
        ("plan.updated", {"plan": "pro"}),  # PATCH
        ("plan.updated", {"plan": "pro"}),  # PUT of an entitlement
        ("company.created", {"company": "acme"}),
        ("company.updated", {"company": "acme"}),
        ("subscription.created", {"subscription": subscription, "company": "acme"}),
        ("subscription.updated", {"subscription": subscription, "company": "acme"}),
        ("subscription.canceled", {"subscription": subscription, "company": "acme"}),
        ("override.created", {"override": "sso", "company": "acme"}),
        ("override.updated", {"override": "sso", "company": "acme"}),
        ("override.deleted", {"override": "sso", "company": "acme"}),
        ("company.deleted", {"company": "acme"}),
        ("plan.deleted", {"plan": "pro"}),
        ("feature.deleted", {"feature": "sso"}),
    ]
    assert attempted == len(expected)
    requests = receiver.received()
    bodies = verified(requests, secret)
    names = [name for name, _ in expected]
    assert [body["type"] for body in bodies] == names
    for body, (name, resource) in zip(bodies, expected, strict=True):
        assert set(body) == {"id", "type", "timestamp", "data"}, body
        assert {k: body["data"][k] for k in resource} == resource, body
        verb = name.split(".")[1]
        assert (body["data"]["object"] is None) == (verb == "deleted"), body
        assert (body["data"]["previous"] is None) == (verb == "created"), body
        parse_utc(body["timestamp"])
    # ... each with its own webhook-id
    assert len({request.webhook_id for request in requests}) == len(expected)
    assert all(request.webhook_id.startswith("msg_") for request in requests)
    # ... and objects showing the change
    by_type = {body["type"]: body["data"] for body in bodies}
    assert by_type["feature.updated"]["previous"]["feature"]["name"] == "Sso"
    assert by_type["feature.updated"]["object"]["feature"]["name"] == "Single sign-on"
    assert by_type["company.updated"]["previous"]["company"]["name"] == "Acme"
    assert by_type["company.updated"]["object"]["company"]["name"] == "Acme Inc"
    assert by_type["subscription.updated"]["object"]["subscription"]["quantity"] == 2
    assert by_type["override.updated"]["object"]["override"]["note"] == "on hold"
    plan_updates = [body["data"] for body in bodies if body["type"] == "plan.updated"]
    assert plan_updates[0]["object"]["plan"]["name"] == "Pro plan"
    assert plan_updates[0]["object"]["plan"]["entitlements"] == []
    assert [e["feature"] for e in plan_updates[1]["object"]["plan"]["entitlements"]] == ["sso"]
    # And the deliveries API shows each delivered at the first attempt, as sent
    listed = deliveries(api, endpoint_id)
    assert [d["event_type"] for d in listed] == names
    assert [d["event_id"] for d in listed] == [r.webhook_id for r in requests]
    assert [d["payload"] for d in listed] == bodies
    assert {(d["status"], d["attempts"]) for d in listed} == {("succeeded", 1)}
    assert {len(d["attempt_log"]) for d in listed} == {1}
    assert {d["attempt_log"][0]["status_code"] for d in listed} == {200}


def test_webhooks__a_repeated_put_that_changes_nothing__announces_nothing(
    api: httpx.Client, receiver: Receiver, make_dispatcher: DispatcherFactory
) -> None:
    # Given an endpoint and a company
    _, secret = create_endpoint(api, receiver.url())
    ok(api.put("/v1/companies/acme", json={"name": "Acme"}))

    # When the same PUT is sent again
    ok(api.put("/v1/companies/acme", json={"name": "Acme"}))
    make_dispatcher().run_once()

    # Then only the creation was announced
    assert [body["type"] for body in verified(receiver.received(), secret)] == ["company.created"]


def test_webhooks__kickplan_account_sync_drops_a_plan_and_an_override__both_announced(
    api: httpx.Client, receiver: Receiver, make_dispatcher: DispatcherFactory
) -> None:
    # Given an endpoint, and an account synced with a plan and an override
    _, secret = create_endpoint(api, receiver.url())
    create_feature(api, "sso")
    create_plan(api, "pro")
    account = {
        "key": "acme",
        "account_plans": [{"plan_key": "pro"}],
        "feature_overrides": [{"feature_key": "sso", "variant_key": "true"}],
    }
    ok(api.post("/api/accounts", json=account))
    make_dispatcher().run_once()
    created = [b["type"] for b in verified(receiver.received(), secret)]
    assert created == [
        "feature.created",
        "plan.created",
        "company.created",
        "subscription.created",
        "override.created",
    ]

    # When the account is synced again with no plan and no override
    synced = ok(api.put("/api/accounts/acme", json={"account_plans": [], "feature_overrides": []}))
    assert (synced["plans"], synced["feature_overrides"]) == ([], [])
    make_dispatcher().run_once()

    # Then the subscription's end and the override's removal were announced like the same
    # changes made through /v1
    later = verified(receiver.received()[len(created) :], secret)
    assert sorted(b["type"] for b in later) == ["override.deleted", "subscription.canceled"]


def test_webhooks__feature_rules_replaced__feature_updated_object_is_the_feature(
    api: httpx.Client, receiver: Receiver, make_dispatcher: DispatcherFactory
) -> None:
    # Given an endpoint and a feature
    _, secret = create_endpoint(api, receiver.url())
    create_feature(api, "sso")
    ok(api.patch("/v1/features/sso", json={"name": "Single sign-on"}))

    # When its rules are replaced
    rules = [{"name": "everyone", "value": True}]
    response = api.put("/v1/features/sso/rules", json=rules)
    assert response.status_code == 200, response.text
    make_dispatcher().run_once()

    # Then `feature.updated` carries the feature as every other `feature.updated` does
    # (receivers read `data.object.feature`)
    patched, ruled = verified(receiver.received(), secret)[1:]
    assert (patched["type"], ruled["type"]) == ("feature.updated", "feature.updated")
    assert ruled["data"]["feature"] == "sso"
    # The same record as any feature.updated, with the rules (the change) added
    assert set(ruled["data"]["object"]) == set(patched["data"]["object"]) | {"rules"}
    assert [r["name"] for r in ruled["data"]["object"]["rules"]] == ["everyone"]
    assert ruled["data"]["object"]["feature"]["key"] == "sso"


# -- retries ---------------------------------------------------------------------------------


def test_webhooks__receiver_answers_500_twice__retried_on_schedule_with_the_same_webhook_id(
    api: httpx.Client,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    clock: SettableClock,
) -> None:
    # Given an endpoint whose receiver answers 500 twice, then 200
    receiver.script("/hook", 500, 500)
    endpoint_id, secret = create_endpoint(api, receiver.url())
    dispatcher = make_dispatcher(retry_seconds=[5, 30, 60])
    create_feature(api, "sso")

    # When the dispatcher runs: the first attempt fails
    assert dispatcher.run_once() == 1
    [pending] = deliveries(api, endpoint_id)
    assert (pending["status"], pending["attempts"]) == ("pending", 1)
    assert abs((parse_utc(pending["next_attempt_at"]) - clock.now).total_seconds() - 5) < 0.01
    # ... nothing is sent again before the first wait (5 s) is over
    clock.advance(seconds=4)
    assert dispatcher.run_once() == 0
    clock.advance(seconds=1)
    assert dispatcher.run_once() == 1  # the second attempt fails too
    clock.advance(seconds=29)
    assert dispatcher.run_once() == 0
    clock.advance(seconds=1)
    assert dispatcher.run_once() == 1  # the third succeeds
    clock.advance(seconds=3600)
    assert dispatcher.run_once() == 0

    # Then the receiver got the same signed message three times
    requests = receiver.received()
    assert [r.answered for r in requests] == [500, 500, 200]
    bodies = verified(requests, secret)
    assert len({r.webhook_id for r in requests}) == 1
    assert [body["type"] for body in bodies] == ["feature.created"] * 3
    assert bodies[0] == bodies[1] == bodies[2]
    # ... with the time of each attempt
    stamps = [int(r.headers["webhook-timestamp"]) for r in requests]
    assert [b - a for a, b in itertools.pairwise(stamps)] == [5, 30]
    # And the deliveries API shows three attempts, the last delivered
    [delivery] = deliveries(api, endpoint_id)
    assert delivery["event_id"] == requests[0].webhook_id
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 3)
    assert delivery["next_attempt_at"] is None
    log = delivery["attempt_log"]
    assert [a["status_code"] for a in log] == [500, 500, 200]
    assert [a["response_excerpt"] for a in log] == ["receiver says 500"] * 2 + ["ok"]
    assert [a["error"] for a in log] == [None, None, None]
    assert all(a["latency_ms"] >= 0 for a in log)


def test_webhooks__retries_with_no_wait__three_attempts_in_one_pass(
    api: httpx.Client, receiver: Receiver, make_dispatcher: DispatcherFactory
) -> None:
    # Given a receiver answering 500 twice, then 200, and retries with no wait
    receiver.script("/hook", 500, 500)
    endpoint_id, secret = create_endpoint(api, receiver.url())
    create_feature(api, "sso")

    # When the dispatcher makes one pass
    attempted = make_dispatcher(retry_seconds=[0, 0, 0]).run_once()

    # Then it made three attempts with the same webhook-id, the last delivered
    assert attempted == 3
    requests = receiver.received()
    verified(requests, secret)
    assert [r.answered for r in requests] == [500, 500, 200]
    assert len({r.webhook_id for r in requests}) == 1
    [delivery] = deliveries(api, endpoint_id)
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 3)
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]


def test_webhooks__receiver_always_500__given_up_then_a_manual_retry_delivers(
    api: httpx.Client, receiver: Receiver, make_dispatcher: DispatcherFactory
) -> None:
    # Given a receiver that always answers 500 and one retry
    receiver.script("/hook", then=500)
    endpoint_id, secret = create_endpoint(api, receiver.url())
    dispatcher = make_dispatcher(retry_seconds=[0])
    create_feature(api, "sso")

    # When the dispatcher runs
    assert dispatcher.run_once() == 2

    # Then the delivery is given up after two attempts
    [delivery] = deliveries(api, endpoint_id)
    assert (delivery["status"], delivery["attempts"]) == ("failed", 2)
    assert delivery["next_attempt_at"] is None
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500]
    assert dispatcher.run_once() == 0  # nothing more is sent
    failed = ok(api.get(f"/v1/webhooks/{endpoint_id}/deliveries", params={"status": "failed"}))
    assert [d["id"] for d in failed["data"]] == [delivery["id"]]

    # When it is retried through the API, the receiver now answering 200
    retried = api.post(f"/v1/webhooks/{endpoint_id}/deliveries/{delivery['id']}/retry")
    assert retried.status_code == 202, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 2)
    assert [d["status"] for d in deliveries(api, endpoint_id)] == ["pending"]
    receiver.script("/hook", then=200)
    assert dispatcher.run_once() == 1

    # Then it is delivered, with the same webhook-id, its earlier attempts kept
    requests = receiver.received()
    verified(requests, secret)
    assert [r.answered for r in requests] == [500, 500, 200]
    assert len({r.webhook_id for r in requests}) == 1
    [delivery] = deliveries(api, endpoint_id)
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 3)
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]


def test_webhooks__receiver_unreachable__attempt_logs_the_error_without_a_status(
    api: httpx.Client, receiver: Receiver, make_dispatcher: DispatcherFactory
) -> None:
    # Given an endpoint at a port nobody listens on
    endpoint_id, _ = create_endpoint(api, f"http://127.0.0.1:{free_port()}/hook")
    create_feature(api, "sso")

    # When the dispatcher runs with no retry left after the first
    assert make_dispatcher(retry_seconds=[]).run_once() == 1

    # Then the delivery is given up, the attempt saying why
    [delivery] = deliveries(api, endpoint_id)
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("ConnectError"), attempt


def test_webhooks__receiver_slower_than_the_timeout__attempt_fails_then_retry_delivers(
    api: httpx.Client,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    clock: SettableClock,
) -> None:
    # Given a receiver that holds its first request past the dispatcher's 0.3 s timeout
    hold = receiver.hold("/hook")
    endpoint_id, secret = create_endpoint(api, receiver.url())
    dispatcher = make_dispatcher(retry_seconds=[60], timeout_seconds=0.3)
    create_feature(api, "sso")

    # When the dispatcher runs
    assert dispatcher.run_once() == 1

    # Then the attempt failed on the timeout, with no status, and waits to be retried
    assert hold.arrived.is_set()
    [delivery] = deliveries(api, endpoint_id)
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("ReadTimeout"), attempt
    assert attempt["latency_ms"] >= 300

    # When the receiver is quick again and the retry is due
    hold.release.set()
    clock.advance(seconds=60)
    assert dispatcher.run_once() == 1

    # Then the same message is delivered
    requests = receiver.received()
    assert len(requests) == 2
    assert requests[0].webhook_id == requests[1].webhook_id
    verified(requests, secret)
    [delivery] = deliveries(api, endpoint_id)
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 2)


def test_webhooks__a_dispatcher_dies_holding_a_lease__another_sends_it_once_the_lease_ends(
    api: httpx.Client,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    services: Services,
    clock: SettableClock,
) -> None:
    # Given a delivery claimed by a dispatcher that then died (it never recorded an attempt)
    endpoint_id, secret = create_endpoint(api, receiver.url())
    create_feature(api, "sso")
    services.webhooks.fan_out()
    [claimed] = services.webhooks.claim_due(timedelta(seconds=32))
    survivor = make_dispatcher()  # timeout 2 s: its leases last 32 s

    # When another dispatcher runs while the lease lasts, then after it ended
    during = survivor.run_once()
    clock.advance(seconds=31)
    still = survivor.run_once()
    clock.advance(seconds=1)
    after = survivor.run_once()

    # Then it left the delivery alone while leased, then sent it once, under the same id
    assert (during, still, after) == (0, 0, 1)
    [request] = receiver.received()
    assert request.webhook_id == claimed.message_id
    verified([request], secret)
    [delivery] = deliveries(api, endpoint_id)
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 1)


def test_webhooks__endpoint_failing_for_3_days__disabled_until_enabled_again(
    api: httpx.Client,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    clock: SettableClock,
) -> None:
    # Given an endpoint that always answers 500, retried daily
    receiver.script("/hook", then=500)
    endpoint_id, secret = create_endpoint(api, receiver.url())
    dispatcher = make_dispatcher(retry_seconds=[86400] * 10)
    create_feature(api, "sso")
    first_failure = clock.now

    # When it fails now and every day for 3 days
    attempted = [dispatcher.run_once()]
    endpoint = ok(api.get(f"/v1/webhooks/{endpoint_id}"))
    assert endpoint["enabled"] is True
    assert parse_utc(endpoint["failing_since"]) == first_failure
    for _ in range(3):
        clock.advance(days=1)
        attempted.append(dispatcher.run_once())

    # Then after the failure 3 days on, the endpoint is disabled
    assert attempted == [1, 1, 1, 1]
    endpoint = ok(api.get(f"/v1/webhooks/{endpoint_id}"))
    assert endpoint["enabled"] is False
    assert endpoint["disabled_reason"] == "Every delivery failed for 3 days."
    # ... so neither the pending retry nor new events are sent to it
    clock.advance(days=1)
    create_plan(api, "pro")
    assert dispatcher.run_once() == 0
    [delivery] = deliveries(api, endpoint_id)
    assert (delivery["event_type"], delivery["status"], delivery["attempts"]) == (
        "feature.created",
        "pending",
        4,
    )

    # When it is enabled again, its receiver answering 200
    enabled = ok(api.patch(f"/v1/webhooks/{endpoint_id}", json={"enabled": True}))
    assert (enabled["enabled"], enabled["disabled_reason"], enabled["failing_since"]) == (
        True,
        None,
        None,
    )
    receiver.script("/hook", then=200)
    assert dispatcher.run_once() == 1

    # Then the pending delivery goes through, on the fifth attempt, with the same id
    requests = receiver.received()
    assert [r.answered for r in requests] == [500] * 4 + [200]
    assert len({r.webhook_id for r in requests}) == 1
    assert all(signed_with(r, secret) for r in requests)
    [delivery] = deliveries(api, endpoint_id)
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 5)
    assert ok(api.get(f"/v1/webhooks/{endpoint_id}"))["failing_since"] is None


def test_webhooks__endpoint_deleted_while_its_delivery_is_in_flight__the_pass_goes_on(
    api: httpx.Client, receiver: Receiver, make_dispatcher: DispatcherFactory
) -> None:
    # Given two endpoints, each with one delivery due, the first's receiver slow to answer
    hold = receiver.hold("/slow")
    slow_id, _ = create_endpoint(api, receiver.url("/slow"), event_types=["feature.created"])
    _, fast_secret = create_endpoint(api, receiver.url("/fast"), event_types=["plan.created"])
    create_feature(api, "sso")
    create_plan(api, "pro")
    dispatcher = make_dispatcher(timeout_seconds=5)
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(dispatcher.run_once())
        except Exception as failure:  # reported below
            outcome.append(failure)

    # When the first endpoint is deleted while its delivery is being sent
    thread = threading.Thread(target=run)
    thread.start()
    assert hold.arrived.wait(5)
    assert api.delete(f"/v1/webhooks/{slow_id}").status_code == 204
    hold.release.set()
    thread.join(10)

    # Then the pass ends normally and the other endpoint's delivery is made in it
    assert outcome == [2], outcome
    [body] = verified(receiver.received("/fast"), fast_secret)
    assert body["type"] == "plan.created"


# -- subscriptions and disabled endpoints ----------------------------------------------------


def test_webhooks__endpoint_subscribed_to_one_type__gets_only_that_and_disabled_gets_nothing(
    api: httpx.Client, receiver: Receiver, make_dispatcher: DispatcherFactory
) -> None:
    # Given an endpoint for every type, one for `plan.created` only, and a disabled one
    _, all_secret = create_endpoint(api, receiver.url("/all"))
    plans_id, plans_secret = create_endpoint(
        api, receiver.url("/plans"), event_types=["plan.created"]
    )
    off_id, off_secret = create_endpoint(api, receiver.url("/off"))
    assert ok(api.patch(f"/v1/webhooks/{off_id}", json={"enabled": False}))["enabled"] is False
    never_id, _ = create_endpoint(api, receiver.url("/never"), enabled=False)

    # When a feature, a plan and a company are created and the dispatcher runs
    create_feature(api, "sso")
    create_plan(api, "pro")
    ok(api.put("/v1/companies/acme", json={"name": "Acme"}))
    make_dispatcher().run_once()

    # Then the first endpoint got all three, the second the plan only, the disabled ones nothing
    assert [b["type"] for b in verified(receiver.received("/all"), all_secret)] == [
        "feature.created",
        "plan.created",
        "company.created",
    ]
    [plan] = verified(receiver.received("/plans"), plans_secret)
    assert (plan["type"], plan["data"]["plan"]) == ("plan.created", "pro")
    assert receiver.received("/off") == []
    assert receiver.received("/never") == []
    assert deliveries(api, off_id) == []
    assert deliveries(api, never_id) == []
    assert [d["event_type"] for d in deliveries(api, plans_id)] == ["plan.created"]
    # And the same event went to both subscribed endpoints under one webhook-id
    plan_ids = {r.webhook_id for r in receiver.received() if r.json()["type"] == "plan.created"}
    assert len(plan_ids) == 1

    # When the disabled endpoint is enabled again and another plan is created
    ok(api.patch(f"/v1/webhooks/{off_id}", json={"enabled": True}))
    create_plan(api, "team")
    make_dispatcher().run_once()

    # Then it gets that event only, not those made while it was disabled
    [body] = verified(receiver.received("/off"), off_secret)
    assert (body["type"], body["data"]["plan"]) == ("plan.created", "team")


def test_webhooks__endpoint_created_after_a_change__does_not_get_that_change(
    api: httpx.Client,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    clock: SettableClock,
) -> None:
    # Given an endpoint, and a feature created a second before a second endpoint exists
    _, early_secret = create_endpoint(api, receiver.url("/early"))
    create_feature(api, "sso")
    clock.advance(seconds=1)
    _, late_secret = create_endpoint(api, receiver.url("/late"))

    # When a plan is created after both, then the dispatcher runs (lagging, as after a restart)
    create_plan(api, "pro")
    make_dispatcher().run_once()

    # Then the first endpoint gets both events, the later one only the plan's: what it gets
    # does not depend on how far behind the dispatcher was
    assert [b["type"] for b in verified(receiver.received("/early"), early_secret)] == [
        "feature.created",
        "plan.created",
    ]
    assert [b["type"] for b in verified(receiver.received("/late"), late_secret)] == [
        "plan.created"
    ]


def test_webhooks__endpoint_of_another_environment__gets_only_its_own_environments_events(
    api: httpx.Client,
    production: httpx.Client,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
) -> None:
    # Given an endpoint in development and one in production
    _, development_secret = create_endpoint(api, receiver.url("/development"))
    _, production_secret = create_endpoint(production, receiver.url("/production"))

    # When a feature is created in each
    create_feature(api, "sso")
    create_feature(production, "audit_log")
    make_dispatcher().run_once()

    # Then each endpoint got its own environment's event only
    [development_event] = verified(receiver.received("/development"), development_secret)
    [production_event] = verified(receiver.received("/production"), production_secret)
    assert development_event["data"]["feature"] == "sso"
    assert production_event["data"]["feature"] == "audit_log"


def test_webhooks__secret_rotated__deliveries_signed_with_the_new_secret_only(
    api: httpx.Client, receiver: Receiver, make_dispatcher: DispatcherFactory
) -> None:
    # Given an endpoint with a delivery waiting
    endpoint_id, old_secret = create_endpoint(api, receiver.url())
    create_feature(api, "sso")

    # When its secret is rotated before the dispatcher runs
    rotated = ok(api.post(f"/v1/webhooks/{endpoint_id}/rotate-secret"))
    new_secret = rotated["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != old_secret
    assert "secret" not in ok(api.get(f"/v1/webhooks/{endpoint_id}"))
    make_dispatcher().run_once()

    # Then the delivery verifies with the new secret, not the old one
    [request] = receiver.received()
    verified([request], new_secret)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        verified([request], old_secret)


# -- exactly once across dispatchers ---------------------------------------------------------


class ErrorLog(logging.Handler):
    """Keeps the errors logged by the dispatcher threads (which log and go on)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(self.format(record))


@contextmanager
def dispatcher_errors() -> Iterator[list[str]]:
    handler = ErrorLog()
    logger = logging.getLogger("tierkit.webhooks")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


class CountingTransport(httpx.HTTPTransport):
    """The real network, counting the requests sent through it."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return super().handle_request(request)


EVENTS = 50


def test_webhooks__two_dispatchers_on_one_database__each_event_delivered_exactly_once(
    api: httpx.Client,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    database_url: str,
    clock: SettableClock,
) -> None:
    # Given an endpoint, and two dispatchers as two server processes would run them: each with
    # its own services and connection pool on the same database
    endpoint_id, secret = create_endpoint(api, receiver.url())
    second_database = Database(database_url)
    transports = [CountingTransport(), CountingTransport()]
    first = make_dispatcher(transport=transports[0])
    second = make_dispatcher(on=Services.build(second_database, clock), transport=transports[1])
    # ... with half the events waiting when they start
    for n in range(EVENTS // 2):
        create_feature(api, f"feature_{n}")

    # When both run concurrently while the other half are made
    try:
        with dispatcher_errors() as errors:
            first.start()
            second.start()
            for n in range(EVENTS // 2, EVENTS):
                create_feature(api, f"feature_{n}")
            wait_for(
                lambda: len({r.webhook_id for r in receiver.received()}) >= EVENTS,
                timeout=20,
                what=f"{EVENTS} distinct webhooks at the receiver",
            )
            first.stop()  # waits for a send in progress: nothing can arrive after this
            second.stop()
    finally:
        first.stop()
        second.stop()
        second_database.dispose()

    # Then neither dispatcher hit an error, and each event reached the receiver exactly once
    assert errors == []
    requests = receiver.received()
    counts = Counter(r.webhook_id for r in requests)
    assert [n for n in counts.values() if n != 1] == [], counts.most_common(3)
    assert len(requests) == EVENTS
    keys = sorted(body["data"]["feature"] for body in verified(requests, secret))
    assert keys == sorted(f"feature_{n}" for n in range(EVENTS))
    assert sum(t.sent for t in transports) == EVENTS, [t.sent for t in transports]
    # And each delivery was made by one attempt
    listed = deliveries(api, endpoint_id)
    assert len(listed) == EVENTS
    assert {(d["status"], d["attempts"], len(d["attempt_log"])) for d in listed} == {
        ("succeeded", 1, 1)
    }


def test_webhooks__two_dispatchers_passing_at_once__each_event_delivered_exactly_once(
    api: httpx.Client,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    database_url: str,
    clock: SettableClock,
) -> None:
    # Given 50 events waiting, and two dispatchers with their own pools on the same database
    _, secret = create_endpoint(api, receiver.url())
    for n in range(EVENTS):
        create_feature(api, f"feature_{n}")
    second_database = Database(database_url)
    try:
        dispatchers = [
            make_dispatcher(),
            make_dispatcher(on=Services.build(second_database, clock)),
        ]
        barrier = threading.Barrier(len(dispatchers))
        attempted: list[int] = []
        failures: list[BaseException] = []

        def run(dispatcher: WebhookDispatcher) -> None:
            barrier.wait()
            try:
                attempted.append(dispatcher.run_once())
            except BaseException as failure:  # reported below
                failures.append(failure)

        # When both fan out and send in the same instant, from two threads
        threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        second_database.dispose()

    # Then neither failed, and together they sent each event once
    assert failures == []
    assert sum(attempted) == EVENTS, attempted
    requests = receiver.received()
    assert len(requests) == EVENTS
    assert len({r.webhook_id for r in requests}) == EVENTS
    verified(requests, secret)


# -- a real server process -------------------------------------------------------------------


class Served:
    """`tierkit serve` in its own process, with extra TIERKIT_* settings in its environment."""

    def __init__(self, database_url: str, cwd: Path, settings: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIERKIT_")}
        env |= {
            "TIERKIT_DATABASE_URL": database_url,
            "TIERKIT_SECRET_KEY": TEST_SECRET_KEY,
            **settings,
        }
        self.log = cwd / f"server-{self.port}.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [TIERKIT, "serve", "--port", str(self.port)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

    def wait_until_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the server did not become healthy:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log_file.close()


def test_tierkit_serve__a_feature_created__the_servers_own_dispatcher_delivers_and_retries(
    tmp_path: Path, receiver: Receiver
) -> None:
    # Given `tierkit serve` on a fresh SQLite database, polling for webhooks every 0.2 s and
    # retrying after 0.5 s, a key made with the CLI, and a receiver failing its first request
    database_url = f"sqlite:///{tmp_path}/served.db"
    run_tierkit("migrate", database_url=database_url)
    key = run_tierkit(
        "keys", "create", "-e", "development", database_url=database_url
    ).stdout.strip()
    server = Served(
        database_url,
        tmp_path,
        {"TIERKIT_WEBHOOK_POLL_SECONDS": "0.2", "TIERKIT_WEBHOOK_RETRY_SECONDS": "[0.5]"},
    )
    try:
        server.wait_until_healthy()
        receiver.script("/hook", 500)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
            endpoint_id, secret = create_endpoint(api, receiver.url())

            # When a feature is created over HTTP
            create_feature(api, "sso")

            # Then, with nobody calling the dispatcher, the receiver gets `feature.created`
            # within 5 s: refused once, then delivered again with the same webhook-id
            wait_for(lambda: len(receiver.received()) >= 2, 5, "two attempts at the receiver")
            requests = receiver.received()
            assert [r.answered for r in requests] == [500, 200]
            bodies = verified(requests, secret)
            assert [b["type"] for b in bodies] == ["feature.created"] * 2
            assert bodies[0]["data"]["feature"] == "sso"
            assert requests[0].webhook_id == requests[1].webhook_id
            assert requests[0].headers["user-agent"].startswith("tierkit-webhooks/")
            # And the server's deliveries API says so
            wait_for(
                lambda: [d["status"] for d in deliveries(api, endpoint_id)] == ["succeeded"],
                5,
                "the delivery recorded as succeeded",
            )
            [delivery] = deliveries(api, endpoint_id)
            assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 200]
    finally:
        server.stop()
    # And it shut down cleanly, its dispatcher with it (uvicorn re-raises the SIGTERM it got)
    assert server.process.returncode in (0, -signal.SIGTERM), server.log.read_text()
    assert "Application shutdown complete" in server.log.read_text()
    assert "Traceback" not in server.log.read_text()

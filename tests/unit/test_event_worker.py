"""The SDK's event worker without a server: a fake `deliver` (or an httpx `MockTransport` under
a `Client`) plays the server. Events go in batches of at most `event_batch_size`, a partial
batch leaves after `flush_interval` or at `flush()`; a full queue drops and reports without
blocking; failed sends are retried with the same idempotency keys (transport failures, 429 and
5xx) or rejected (other 4xx, never retried); `close()` gives up on time and reports what it
could not send."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tierkit import (
    Client,
    ClientOptions,
    InvalidRequestError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from tierkit.client.errors import TierkitError
from tierkit.client.event_worker import EventWorker

FAST = {"backoff": 0.01, "max_backoff": 0.05, "flush_timeout": 5.0}
"""Options that keep retries quick."""

WAIT = 5.0
"""How long a test polls for the worker's work before it fails."""


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll `predicate` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {predicate}")
        time.sleep(0.005)


class FakeServer:
    """A `deliver` callable: it records every attempt (the events as sent), fails the first
    attempts with the errors of `failures` (`always` fails every one), and, while `gate` is
    cleared, blocks each attempt until the test sets it."""

    def __init__(self, failures: Sequence[TierkitError] = (), always: TierkitError | None = None):
        self.failures = list(failures)
        self.always = always
        self.attempts: list[list[dict[str, Any]]] = []
        self.stored: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, events: Sequence[Mapping[str, Any]]) -> None:
        with self._lock:
            self.attempts.append([dict(event) for event in events])
        self.entered.set()
        self.gate.wait()
        with self._lock:
            if self.always is not None:
                raise self.always
            if self.failures:
                raise self.failures.pop(0)
            self.stored.extend(dict(event) for event in events)

    def stored_batch_sizes(self) -> list[int]:
        return [len(a) for a in self.attempts]

    def numbers_stored(self) -> list[int]:
        return sorted(event["n"] for event in self.stored)


Drops = list[tuple[int, str]]
WorkerFactory = Callable[..., EventWorker]


@pytest.fixture
def make_worker() -> Iterator[WorkerFactory]:
    """`make_worker(deliver, drops=None, **options)` -> an `EventWorker` (closed after the
    test); `drops` collects what its `on_drop` hears."""
    made: list[tuple[EventWorker, Callable[..., Any]]] = []

    def make(
        deliver: Callable[[Sequence[Mapping[str, Any]]], None],
        drops: Drops | None = None,
        **options: Any,
    ) -> EventWorker:
        on_drop = None if drops is None else (lambda count, why: drops.append((count, why)))
        worker = EventWorker(deliver, ClientOptions(**(FAST | options)), on_drop=on_drop)
        made.append((worker, deliver))
        return worker

    yield make
    for worker, deliver in made:
        if isinstance(deliver, FakeServer):
            deliver.gate.set()
        worker.close(timeout=1)


def event(n: int, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "api_call", "company": "acme", "n": n, **fields}


# Batching


def test_event_worker__250_events_with_batch_size_100__go_in_batches_of_at_most_100(
    make_worker: WorkerFactory,
) -> None:
    # Given a worker sending batches of 100, whose partial batches wait a minute
    server = FakeServer()
    worker = make_worker(server, event_batch_size=100, flush_interval=60)

    # When 250 events are submitted and flushed
    accepted = [worker.submit(event(n)) for n in range(250)]
    flushed = worker.flush(timeout=WAIT)

    # Then they went as two full batches and the rest, each event once
    assert accepted == [True] * 250
    assert flushed is True
    assert server.stored_batch_sizes() == [100, 100, 50]
    assert server.numbers_stored() == list(range(250))
    stats = worker.stats()
    assert (stats.queued, stats.delivered, stats.pending, stats.dropped) == (250, 250, 0, 0)


def test_event_worker__partial_batch__is_sent_after_flush_interval_without_flush(
    make_worker: WorkerFactory,
) -> None:
    # Given a worker sending batches of 100 or whatever waited 0.2 s
    server = FakeServer()
    worker = make_worker(server, event_batch_size=100, flush_interval=0.2)

    # When 3 events are submitted and nobody flushes
    started = time.monotonic()
    for n in range(3):
        worker.submit(event(n))
    wait_for(lambda: worker.stats().delivered == 3)
    waited = time.monotonic() - started

    # Then they went as one batch, once the first had waited its flush interval
    assert server.stored_batch_sizes() == [3]
    assert server.numbers_stored() == [0, 1, 2]
    assert waited >= 0.2 * 0.9


def test_event_worker__flush__sends_a_partial_batch_at_once_and_returns_true(
    make_worker: WorkerFactory,
) -> None:
    # Given a worker whose partial batches would wait a minute, holding 3 events
    server = FakeServer()
    worker = make_worker(server, event_batch_size=100, flush_interval=60)
    for n in range(3):
        worker.submit(event(n))

    # When it is flushed
    started = time.monotonic()
    flushed = worker.flush(timeout=WAIT)

    # Then the batch went at once, and flush saw it stored
    assert flushed is True
    assert time.monotonic() - started < WAIT
    assert server.stored_batch_sizes() == [3]
    assert worker.stats().delivered == 3
    assert worker.stats().pending == 0


def test_event_worker__flush_with_nothing_queued__returns_true_at_once(
    make_worker: WorkerFactory,
) -> None:
    # Given a worker that never got an event, When it is flushed, Then there is nothing to wait
    server = FakeServer()
    worker = make_worker(server)

    assert worker.flush(timeout=0) is True
    assert server.attempts == []


# A full queue


def test_event_worker__full_queue__submit_returns_false_at_once_and_reports_the_drops(
    make_worker: WorkerFactory,
) -> None:
    # Given a worker holding at most 10 events, stuck delivering a first one
    server = FakeServer()
    server.gate.clear()
    drops: Drops = []
    worker = make_worker(server, drops, max_queued_events=10, flush_interval=0.01)
    assert worker.submit(event(0)) is True
    assert server.entered.wait(WAIT)
    accepted = [worker.submit(event(n)) for n in range(1, 11)]

    # When 1000 more events are submitted
    started = time.monotonic()
    refused = [worker.submit(event(n)) for n in range(11, 1011)]
    took = time.monotonic() - started

    # Then each is refused at once, counted and reported, and the queued ones still go
    assert accepted == [True] * 10
    assert refused == [False] * 1000
    assert took < 0.5
    stats = worker.stats()
    assert (stats.queued, stats.dropped, stats.delivered, stats.pending) == (11, 1000, 0, 11)
    assert len(drops) == 1000
    assert {count for count, _ in drops} == {1}
    assert all("full" in why for _, why in drops)
    server.gate.set()
    assert worker.flush(timeout=WAIT) is True
    assert server.numbers_stored() == list(range(11))
    assert worker.stats().delivered == 11


# Retries


def test_event_worker__transport_error_twice__retries_with_the_same_idempotency_keys(
    make_worker: WorkerFactory,
) -> None:
    # Given a server unreachable for two sends, and events one of which has its own key
    server = FakeServer([TransportError("refused"), TransportError("reset")])
    worker = make_worker(server, event_batch_size=100, flush_interval=60)
    worker.submit(event(0))
    worker.submit(event(1, idempotency_key="mine-1"))
    worker.submit(event(2, idempotency_key=None))

    # When they are flushed
    flushed = worker.flush(timeout=WAIT)

    # Then the batch was sent three times with the same keys, and stored once
    assert flushed is True
    keys = [[e["idempotency_key"] for e in attempt] for attempt in server.attempts]
    assert len(keys) == 3
    assert keys[0] == keys[1] == keys[2]
    assert keys[0][1] == "mine-1"
    assert all(isinstance(key, str) and key for key in keys[0])
    assert len(set(keys[0])) == 3
    assert server.numbers_stored() == [0, 1, 2]
    stats = worker.stats()
    assert (stats.delivered, stats.retries, stats.dropped, stats.rejected) == (3, 2, 0, 0)


@pytest.mark.parametrize(
    "error",
    [
        ServerError(500, "internal", "The server failed."),
        ServerError(503, "http_503", "The server answered 503."),
        RateLimitedError(429, "rate_limited", "Slow down.", headers={"retry-after": "0"}),
        TransportError("timed out"),
    ],
    ids=["500", "503", "429", "transport"],
)
def test_event_worker__retryable_failure__is_retried_then_delivered(
    make_worker: WorkerFactory, error: TierkitError
) -> None:
    # Given a server that fails one send with a retryable error
    server = FakeServer([error])
    worker = make_worker(server, flush_interval=60)
    worker.submit(event(0))

    # When the event is flushed
    flushed = worker.flush(timeout=WAIT)

    # Then it was sent again and stored
    assert flushed is True
    assert len(server.attempts) == 2
    assert server.numbers_stored() == [0]
    stats = worker.stats()
    assert (stats.delivered, stats.retries, stats.rejected, stats.dropped) == (1, 1, 0, 0)


def test_event_worker__invalid_request__is_rejected_never_retried_and_later_batches_go(
    make_worker: WorkerFactory,
) -> None:
    # Given a server that refuses the first batch as invalid
    invalid = InvalidRequestError(400, "invalid_request", "Bad event.", param="events.0.event")
    server = FakeServer([invalid])
    worker = make_worker(server, flush_interval=60)
    for n in range(3):
        worker.submit(event(n))

    # When it is flushed, and later events too
    first = worker.flush(timeout=WAIT)
    worker.submit(event(3))
    worker.submit(event(4))
    second = worker.flush(timeout=WAIT)

    # Then the refused batch was sent once and counted as rejected; the next one was stored
    assert (first, second) == (True, True)
    assert server.stored_batch_sizes() == [3, 2]
    assert server.numbers_stored() == [3, 4]
    stats = worker.stats()
    assert (stats.rejected, stats.delivered, stats.retries, stats.dropped) == (3, 2, 0, 0)
    assert stats.pending == 0


# Flush and close while the server fails


def test_event_worker__flush_while_delivery_is_stuck__returns_false_after_its_timeout(
    make_worker: WorkerFactory,
) -> None:
    # Given a worker stuck delivering an event
    server = FakeServer()
    server.gate.clear()
    worker = make_worker(server, flush_interval=0.01)
    worker.submit(event(0))
    assert server.entered.wait(WAIT)

    # When it is flushed for 0.2 s
    started = time.monotonic()
    flushed = worker.flush(timeout=0.2)
    took = time.monotonic() - started

    # Then flush gives up after about that long, and the event is still pending
    assert flushed is False
    assert 0.2 * 0.9 <= took < 1.0
    assert worker.stats().pending == 1
    server.gate.set()
    assert worker.flush(timeout=WAIT) is True


def test_event_worker__close_while_the_server_keeps_failing__gives_up_and_reports_drops(
    make_worker: WorkerFactory,
) -> None:
    # Given a server that never answers, and 250 events queued in batches of 100
    server = FakeServer(always=TransportError("refused"))
    drops: Drops = []
    worker = make_worker(server, drops, event_batch_size=100, flush_interval=0.01)
    for n in range(250):
        worker.submit(event(n))
    wait_for(lambda: len(server.attempts) >= 2)

    # When the worker is closed with 0.3 s to send them
    started = time.monotonic()
    stats = worker.close(timeout=0.3)
    took = time.monotonic() - started

    # Then close returns in time with every event counted as dropped and reported
    assert took < 0.3 + 1
    assert (stats.queued, stats.delivered, stats.dropped, stats.pending) == (250, 0, 250, 0)
    assert sum(count for count, _ in drops) == 250
    assert server.stored == []


def test_event_worker__close_during_a_long_backoff__still_reports_the_batch_it_held(
    make_worker: WorkerFactory,
) -> None:
    # Given a worker backing off for seconds after its batch of 10 failed
    server = FakeServer(always=TransportError("refused"))
    drops: Drops = []
    worker = make_worker(server, drops, backoff=5.0, max_backoff=10.0, flush_interval=0.01)
    for n in range(10):
        worker.submit(event(n))
    wait_for(lambda: len(server.attempts) >= 1)

    # When the worker is closed with 0.3 s to send them
    started = time.monotonic()
    stats = worker.close(timeout=0.3)
    took = time.monotonic() - started

    # Then close returns in time with the held batch counted as dropped
    assert (stats.delivered, stats.dropped, stats.pending) == (0, 10, 0)
    assert sum(count for count, _ in drops) == 10
    assert took < 0.3 + 1


def test_event_worker__after_close__submit_returns_false_and_counts_a_drop(
    make_worker: WorkerFactory,
) -> None:
    # Given a closed worker that delivered one event
    server = FakeServer()
    drops: Drops = []
    worker = make_worker(server, drops, flush_interval=0.01)
    worker.submit(event(0))
    closed = worker.close(timeout=WAIT)

    # When an event is submitted
    accepted = worker.submit(event(1))

    # Then it is refused, counted and reported; nothing more is sent
    assert (closed.delivered, closed.dropped) == (1, 0)
    assert accepted is False
    assert worker.stats().dropped == 1
    assert worker.stats().queued == 1
    assert [count for count, _ in drops] == [1]
    assert server.numbers_stored() == [0]


# Through a Client and an httpx MockTransport


class MockEventsApi:
    """An httpx handler for `POST /v1/events`: it answers each request with the next status
    of `statuses` (202 once they run out), and records each request's body."""

    def __init__(self, statuses: Sequence[int] = ()) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            body = json.loads(request.content)
            self.bodies.append(body)
            status = self.statuses.pop(0) if self.statuses else 202
        if status == 202:
            return httpx.Response(202, json={"accepted": len(body["events"]), "duplicates": 0})
        code = "invalid_request" if status == 400 else "internal"
        envelope: dict[str, Any] = {
            "type": code,
            "code": code,
            "message": "No.",
            "param": None,
            "details": [],
        }
        return httpx.Response(status, json={"error": envelope})

    def keys_of(self, index: int) -> list[str]:
        return [event["idempotency_key"] for event in self.bodies[index]["events"]]


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> Client:
    return Client(
        api_key="tk_sec_test",
        base_url="http://tierkit.test",
        transport=httpx.MockTransport(handler),
        **(FAST | options),
    )


def test_client_track__posts_batches_to_v1_events_with_the_key_and_idempotency_keys() -> None:
    # Given a client sending batches of 100 to a mock server
    api = MockEventsApi()
    with mock_client(api, event_batch_size=100, flush_interval=60) as client:
        # When it tracks 150 events, one of quantity 3, and flushes
        for n in range(149):
            assert client.track("api_call", company="acme", properties={"n": n}) is True
        client.track("api_call", company="acme", user="u1", quantity=3, idempotency_key="k-3")
        flushed = client.flush(timeout=WAIT)
        stats = client.close()

    # Then two requests carried them, each event with its own key
    assert flushed is True
    assert [(r.method, r.url.path) for r in api.requests] == [("POST", "/v1/events")] * 2
    assert {r.headers["authorization"] for r in api.requests} == {"Bearer tk_sec_test"}
    events = api.bodies[0]["events"] + api.bodies[1]["events"]
    assert [len(b["events"]) for b in api.bodies] == [100, 50]
    assert events[0] == {
        "type": "track",
        "event": "api_call",
        "company": "acme",
        "properties": {"n": 0},
        "idempotency_key": events[0]["idempotency_key"],
    }
    assert events[-1] == {
        "type": "track",
        "event": "api_call",
        "company": "acme",
        "user": "u1",
        "quantity": 3,
        "idempotency_key": "k-3",
    }
    assert len({e["idempotency_key"] for e in events}) == 150
    assert (stats.queued, stats.delivered, stats.dropped, stats.rejected) == (150, 150, 0, 0)


def test_client_track__server_answers_503_twice__resends_the_same_batch_once_stored() -> None:
    # Given a mock server that answers 503 twice, then stores
    api = MockEventsApi([503, 503])
    with mock_client(api, flush_interval=60) as client:
        # When two events are tracked and flushed
        client.track("api_call", company="acme")
        client.track("api_call", company="acme")
        flushed = client.flush(timeout=WAIT)
        stats = client.close()

    # Then the same batch went three times, and each event counts as delivered once
    assert flushed is True
    assert len(api.bodies) == 3
    assert api.keys_of(0) == api.keys_of(1) == api.keys_of(2)
    assert (stats.delivered, stats.retries, stats.dropped, stats.rejected) == (2, 2, 0, 0)


def test_client_track__server_answers_400__rejects_the_batch_and_sends_the_next() -> None:
    # Given a mock server that refuses the first batch as invalid
    api = MockEventsApi([400])
    with mock_client(api, flush_interval=60) as client:
        # When an event is tracked and flushed, then another
        client.track("api_call", company="acme")
        first = client.flush(timeout=WAIT)
        client.track("api_call", company="acme")
        second = client.flush(timeout=WAIT)
        stats = client.close()

    # Then the first was sent once and rejected, the second stored
    assert (first, second) == (True, True)
    assert len(api.bodies) == 2
    assert (stats.rejected, stats.delivered, stats.retries, stats.dropped) == (1, 1, 0, 0)


def test_client_track__server_unreachable_then_back__delivers_with_the_same_keys() -> None:
    # Given a server whose first connection is refused
    api = MockEventsApi()
    refused = [True]

    def handler(request: httpx.Request) -> httpx.Response:
        if refused and refused.pop():
            raise httpx.ConnectError("refused", request=request)
        return api(request)

    with mock_client(handler, flush_interval=60) as client:
        # When an event is tracked and flushed
        client.track("api_call", company="acme", idempotency_key="once")
        flushed = client.flush(timeout=WAIT)
        stats = client.close()

    # Then it was sent again and stored once
    assert flushed is True
    assert [api.keys_of(i) for i in range(len(api.bodies))] == [["once"]]
    assert (stats.delivered, stats.retries, stats.dropped) == (1, 1, 0)


def test_client_track__a_property_json_cannot_hold__does_not_stop_later_events() -> None:
    # Given a client whose first tracked event has a property JSON cannot encode
    api = MockEventsApi()
    with mock_client(api, flush_interval=60) as client:
        queued = client.track("api_call", company="acme", properties={"at": object()})
        client.flush(timeout=0.5)

        # When a good event is tracked after it
        client.track("api_call", company="acme", properties={"n": 1})
        flushed = client.flush(timeout=1)
        stats = client.close()

    # Then the good event is stored, and the bad one is counted, not delivered
    assert flushed is True
    assert queued is False
    assert [e.get("properties") for b in api.bodies for e in b["events"]] == [{"n": 1}]
    assert stats.delivered == 1
    assert stats.rejected + stats.dropped == 1


def test_client_track__a_datetime_property__sent_as_an_rfc3339_string() -> None:
    # Given a client tracking an event with a datetime property
    api = MockEventsApi()
    at = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    with mock_client(api, flush_interval=60) as client:
        client.track("api_call", company="acme", properties={"at": at})
        client.close()

    # Then the property arrives as the instant's RFC 3339 text
    assert [e["properties"] for b in api.bodies for e in b["events"]] == [
        {"at": "2026-03-10T12:00:00+00:00"}
    ]

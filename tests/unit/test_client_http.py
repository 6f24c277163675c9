"""The SDK's HTTP layer without a server (httpx's `MockTransport`): which failures are retried
and how long it waits, what every request carries, keys as one URL path segment, options from
the environment, and error replies turned into the error classes."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tierkit import (
    ApiError,
    AsyncClient,
    AuthenticationError,
    Client,
    ClientOptions,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    Reason,
    ServerError,
    TransportError,
)
from tierkit.client import http as client_http
from tierkit.client.http import retry_delay

BASE_URL = "http://tierkit.test"
CHECK_REPLY = {
    "feature": "sso",
    "company": "acme",
    "company_found": True,
    "allowed": True,
    "value": True,
    "unlimited": False,
    "reason": "plan",
    "plan": "pro",
    "rule": None,
    "override_expires_at": None,
    "usage": None,
    "credits": None,
}
FAST = {"backoff": 0.001, "max_backoff": 0.001}
"""Retries without noticeable waits."""

Step = httpx.Response | type[httpx.TransportError]


class Script:
    """A transport handler that answers each request with its next step (the last one
    repeats): a reply, or a transport error class to raise. It keeps every request."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, httpx.Response):
            return step
        raise step("scripted failure", request=request)


def ok(body: Any = None, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"ok": True} if body is None else body)


def envelope(status: int, code: str, **error: Any) -> httpx.Response:
    body = {"type": "t", "code": code, "message": f"Error {code}.", "param": None, "details": []}
    return httpx.Response(status, json={"error": body | error})


ClientFactory = Callable[..., Client]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """`make_client(script, **options)` -> a `Client` whose requests go to `script`."""
    clients: list[Client] = []

    def make(script: Script, **options: Any) -> Client:
        fields = {"api_key": "tk_sec_test", "base_url": BASE_URL} | options
        client = Client(transport=httpx.MockTransport(script), **fields)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def run_async(script: Script, scenario: Callable[[AsyncClient], Any], **options: Any) -> Any:
    """Run `scenario(client)` on an `AsyncClient` whose requests go to `script`."""
    fields = {"api_key": "tk_sec_test", "base_url": BASE_URL} | options

    async def main() -> Any:
        async with AsyncClient(async_transport=httpx.MockTransport(script), **fields) as client:
            return await scenario(client)

    return asyncio.run(main())


# Retries of replies


def test_send__429_with_retry_after_0_then_200__one_retry_and_the_reply(
    make_client: ClientFactory,
) -> None:
    # Given a server that rate-limits once, asking to retry at once
    script = Script(httpx.Response(429, headers={"Retry-After": "0"}), ok())
    client = make_client(script)

    # When a call is made
    reply = client.environment.get()

    # Then it was retried once and answered the second reply
    assert reply == {"ok": True}
    assert len(script.requests) == 2


def test_send__503_twice_then_200_with_3_retries__succeeds_after_2_retries(
    make_client: ClientFactory,
) -> None:
    # Given a server unavailable twice, and a client allowed 3 retries
    script = Script(envelope(503, "unavailable"), envelope(503, "unavailable"), ok())
    client = make_client(script, max_retries=3, **FAST)

    # When a call is made
    reply = client.features.list()

    # Then the third request succeeded
    assert reply == {"ok": True}
    assert len(script.requests) == 3


def test_send__503_with_no_retries__server_error_after_one_request(
    make_client: ClientFactory,
) -> None:
    # Given a server that answers 503, and a client allowed no retries
    script = Script(envelope(503, "unavailable"))
    client = make_client(script, max_retries=0)

    # When a call is made
    with pytest.raises(ServerError) as raised:
        client.features.list()

    # Then the 503 is raised after one request
    assert (raised.value.status, raised.value.code) == (503, "unavailable")
    assert len(script.requests) == 1


def test_send__503_every_time__server_error_after_max_retries_plus_one_requests(
    make_client: ClientFactory,
) -> None:
    # Given a server that always answers 503
    script = Script(envelope(503, "unavailable"))
    client = make_client(script, max_retries=2, **FAST)

    # When a call is made
    with pytest.raises(ServerError):
        client.features.list()

    # Then it gave up after the first request and 2 retries
    assert len(script.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_send__4xx_other_than_429__raised_without_a_retry(
    make_client: ClientFactory, status: int
) -> None:
    # Given a server that refuses the call
    script = Script(envelope(status, "refused"), ok())
    client = make_client(script, **FAST)

    # When it is made
    with pytest.raises(ApiError) as raised:
        client.features.get("sso")

    # Then the refusal is final
    assert raised.value.status == status
    assert len(script.requests) == 1


def test_send__429_with_retry_after__waits_what_the_header_says(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server asking to retry in 3 s, then in 60 s (past max_backoff 10 s)
    waits: list[float] = []
    monkeypatch.setattr(client_http, "time", SimpleNamespace(sleep=waits.append))
    limited = [httpx.Response(429, headers={"Retry-After": s}) for s in ("3", "60")]
    script = Script(*limited, ok())
    client = make_client(script, max_backoff=10)

    # When a call is made
    client.environment.get()

    # Then it waited the header's seconds, capped at max_backoff
    assert waits == [3.0, 10.0]


def test_async_send__503_twice_then_200__succeeds_after_2_retries() -> None:
    # Given a server unavailable twice
    script = Script(envelope(503, "unavailable"), httpx.Response(502, text="bad gateway"), ok())

    # When an async call is made
    async def scenario(client: AsyncClient) -> Any:
        return await client.features.list()

    reply = run_async(script, scenario, max_retries=3, **FAST)

    # Then the third request succeeded
    assert reply == {"ok": True}
    assert len(script.requests) == 3


# Retry delays


@pytest.mark.parametrize(
    ("header", "expected"),
    [("0", 0.0), ("2", 2.0), ("2.5", 2.5), ("10", 10.0), ("60", 10.0), ("-3", 0.0)],
)
def test_retry_delay__retry_after_header__the_header_capped_at_max_backoff(
    header: str, expected: float
) -> None:
    # Given options with a 10 s ceiling
    options = ClientOptions(backoff=0.2, max_backoff=10)

    # When the delay of any attempt is asked with the header
    delays = {retry_delay(attempt, options, header) for attempt in range(5)}

    # Then it is the header, capped
    assert delays == {expected}


@pytest.mark.parametrize("header", [None, "Wed, 21 Oct 2015 07:28:00 GMT", "soon"])
def test_retry_delay__no_numeric_header__jittered_within_half_to_full_ceiling(
    header: str | None,
) -> None:
    # Given a first delay of 0.2 s doubling up to 2 s
    options = ClientOptions(backoff=0.2, max_backoff=2)

    for attempt, ceiling in enumerate([0.2, 0.4, 0.8, 1.6, 2.0, 2.0]):
        # When the delay of that attempt is drawn many times
        delays = [retry_delay(attempt, options, header) for _ in range(200)]

        # Then each lies in [ceiling/2, ceiling], and they differ (jitter)
        assert min(delays) >= ceiling / 2, attempt
        assert max(delays) <= ceiling, attempt
        assert len(set(delays)) > 100, attempt


def test_retry_delay__successive_attempts__grow_until_max_backoff() -> None:
    # Given a first delay of 0.1 s and a 5 s ceiling
    options = ClientOptions(backoff=0.1, max_backoff=5)

    # When many delays are drawn for each attempt
    means = [statistics.mean(retry_delay(a, options) for _ in range(300)) for a in range(9)]

    # Then they double each attempt (about 0.075, 0.15, 0.3...) until the ceiling holds them
    for attempt in range(5):
        assert means[attempt + 1] == pytest.approx(2 * means[attempt], rel=0.15), means
    assert means[7] == pytest.approx(means[8], rel=0.1)
    assert max(means) <= 5


# Retries of transport failures


def test_send__post_without_idempotency_keys_after_read_timeout__not_retried(
    make_client: ClientFactory,
) -> None:
    # Given a server that may have stored the batch before its reply was lost
    script = Script(httpx.ReadTimeout, ok({"accepted": 1, "duplicates": 0}, 202))
    client = make_client(script, **FAST)

    # When events without idempotency keys are sent
    with pytest.raises(TransportError):
        client.events.send([{"event": "api_call", "company": "acme"}])

    # Then they were sent once: repeating could count them twice
    assert len(script.requests) == 1


def test_send__post_after_connect_error__retried(make_client: ClientFactory) -> None:
    # Given a server that refused the first connection
    script = Script(httpx.ConnectError, ok({"accepted": 1, "duplicates": 0}, 202))
    client = make_client(script, **FAST)

    # When events without idempotency keys are sent
    reply = client.events.send([{"event": "api_call", "company": "acme"}])

    # Then they were sent again: the first request never reached the server
    assert reply == {"accepted": 1, "duplicates": 0}
    assert len(script.requests) == 2


def test_send__post_with_idempotency_keys_after_read_timeout__retried(
    make_client: ClientFactory,
) -> None:
    # Given a server whose first reply was lost
    script = Script(httpx.ReadTimeout, ok({"accepted": 0, "duplicates": 1}, 202))
    client = make_client(script, **FAST)

    # When events that all carry idempotency keys are sent
    reply = client.events.send([{"event": "api_call", "company": "acme", "idempotency_key": "e1"}])

    # Then they were sent again: the server counts them once
    assert reply == {"accepted": 0, "duplicates": 1}
    assert len(script.requests) == 2


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_send__get_after_a_lost_reply__retried(
    make_client: ClientFactory, failure: type[httpx.TransportError]
) -> None:
    # Given a server whose first reply was lost
    script = Script(failure, ok())
    client = make_client(script, **FAST)

    # When a GET is made
    reply = client.features.get("sso")

    # Then it was made again
    assert reply == {"ok": True}
    assert len(script.requests) == 2


def test_send__transport_failure_every_time__transport_error_after_all_retries(
    make_client: ClientFactory,
) -> None:
    # Given a server that never answers in time
    script = Script(httpx.ReadTimeout)
    client = make_client(script, max_retries=2, **FAST)

    # When a GET is made
    with pytest.raises(TransportError) as raised:
        client.features.get("sso")

    # Then it gave up after 3 requests, with the cause kept
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)
    assert len(script.requests) == 3


@pytest.mark.parametrize(
    ("fields", "requests", "allowed"),
    [
        ({}, 2, True),
        ({"consume": True, "idempotency_key": "c1"}, 2, True),
        ({"consume": True}, 1, False),
    ],
    ids=["check", "keyed_consume", "unkeyed_consume"],
)
def test_check__read_timeout__retried_unless_an_unkeyed_consume(
    make_client: ClientFactory, fields: dict[str, Any], requests: int, allowed: bool
) -> None:
    # Given a server whose first reply was lost
    script = Script(httpx.ReadTimeout, ok(CHECK_REPLY))
    client = make_client(script, **FAST)

    # When a check is made
    decision = client.check("acme", "sso", **fields)

    # Then a check or a keyed consume is asked again; an unkeyed consume answers the fallback
    assert len(script.requests) == requests
    assert decision.allowed is allowed
    if not allowed:
        assert (decision.reason, decision.error_code) == (Reason.ERROR, "unavailable")


def test_check_bulk__read_timeout__retried(make_client: ClientFactory) -> None:
    # Given a server whose first reply was lost
    script = Script(httpx.ReadTimeout, ok({"data": [CHECK_REPLY]}))
    client = make_client(script, **FAST)

    # When several features are checked (which records nothing)
    decisions = client.check_bulk("acme", ["sso"])

    # Then the check is asked again, as AsyncClient.check_bulk does
    assert [(d.feature, d.allowed, d.reason) for d in decisions] == [("sso", True, Reason.PLAN)]
    assert len(script.requests) == 2


def test_async_check_bulk__read_timeout__retried() -> None:
    # Given a server whose first reply was lost
    script = Script(httpx.ReadTimeout, ok({"data": [CHECK_REPLY]}))

    # When several features are checked
    async def scenario(client: AsyncClient) -> Any:
        return await client.check_bulk("acme", ["sso"])

    decisions = run_async(script, scenario, **FAST)

    # Then the check is asked again
    assert [(d.feature, d.allowed) for d in decisions] == [("sso", True)]
    assert len(script.requests) == 2


def test_async_send__post_without_idempotency_keys_after_read_timeout__not_retried() -> None:
    # Given a server whose replies are lost
    script = Script(httpx.ReadTimeout)

    # When events without keys are sent, then a consume without a key
    async def scenario(client: AsyncClient) -> Any:
        with pytest.raises(TransportError):
            await client.events.send([{"event": "api_call", "company": "acme"}])
        return await client.check("acme", "sso", consume=True)

    decision = run_async(script, scenario, **FAST)

    # Then neither was repeated
    assert len(script.requests) == 2
    assert (decision.reason, decision.error_code) == (Reason.ERROR, "unavailable")


# What requests carry


def test_request__any_call__bearer_key_and_tierkit_python_user_agent(
    make_client: ClientFactory,
) -> None:
    # Given a client with a key
    script = Script(ok(CHECK_REPLY))
    client = make_client(script, api_key="tk_sec_abc")

    # When it checks and reads
    client.check("acme", "sso")
    client.features.list(limit=5)

    # Then every request carries the key as a bearer token and the SDK's user agent
    for request in script.requests:
        assert request.headers["Authorization"] == "Bearer tk_sec_abc"
        assert request.headers["User-Agent"].startswith("tierkit-python/")
        assert request.url.host == "tierkit.test"
    assert script.requests[1].url.params["limit"] == "5"
    assert "cursor" not in script.requests[1].url.params


def test_async_request__any_call__bearer_key_and_tierkit_python_user_agent() -> None:
    # Given an async client with a key
    script = Script(ok(CHECK_REPLY))

    # When it checks
    async def scenario(client: AsyncClient) -> Any:
        return await client.check("acme", "sso")

    run_async(script, scenario, api_key="tk_sec_abc")

    # Then the request carries the key and the SDK's user agent
    (request,) = script.requests
    assert request.headers["Authorization"] == "Bearer tk_sec_abc"
    assert request.headers["User-Agent"].startswith("tierkit-python/")


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda c: c.companies.get("a/b c é"), "/v1/companies/a%2Fb%20c%20%C3%A9"),
        (lambda c: c.users.get("x/../y?z#w"), "/v1/users/x%2F..%2Fy%3Fz%23w"),
        (
            lambda c: c.overrides.set("50% off/é", "sso", value=True),
            "/v1/companies/50%25%20off%2F%C3%A9/overrides/sso",
        ),
        (lambda c: c.usage.get(".."), "/v1/companies/%2E%2E/usage"),
        (lambda c: c.overrides.list("."), "/v1/companies/%2E/overrides"),
    ],
    ids=["slash_space_unicode", "dots_query_fragment", "percent_two_segments", "dot_dot", "dot"],
)
def test_resources__keys_with_url_characters__one_encoded_path_segment(
    make_client: ClientFactory, call: Callable[[Client], Any], path: str
) -> None:
    # Given a client
    script = Script(ok())
    client = make_client(script)

    # When a company or user key holding URL characters is named in a path
    call(client)

    # Then the key is one percent-encoded path segment (a bare `.` or `..` segment would be
    # removed as a dot segment, and the call would reach another route or company)
    (request,) = script.requests
    assert request.url.raw_path.decode("ascii") == path


def test_options__no_key_or_url_given__from_tierkit_key_and_tierkit_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the key and URL in the environment
    monkeypatch.setenv("TIERKIT_KEY", "tk_sec_from_env")
    monkeypatch.setenv("TIERKIT_URL", "http://env.example:9000/")
    script = Script(ok())

    # When a client is made without them
    with Client(transport=httpx.MockTransport(script)) as client:
        client.environment.get()

    # Then it used them
    (request,) = script.requests
    assert str(request.url) == "http://env.example:9000/v1/environment"
    assert request.headers["Authorization"] == "Bearer tk_sec_from_env"
    assert client.options.api_key == "tk_sec_from_env"


def test_options__key_and_url_given__win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given another key and URL in the environment
    monkeypatch.setenv("TIERKIT_KEY", "tk_sec_from_env")
    monkeypatch.setenv("TIERKIT_URL", "http://env.example:9000")
    script = Script(ok())

    # When a client is made with its own
    with Client("tk_sec_given", "http://given.example", transport=httpx.MockTransport(script)) as c:
        c.environment.get()

    # Then its own are used
    (request,) = script.requests
    assert str(request.url) == "http://given.example/v1/environment"
    assert request.headers["Authorization"] == "Bearer tk_sec_given"


def test_options__no_key_anywhere__no_authorization_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no key in the environment
    monkeypatch.delenv("TIERKIT_KEY", raising=False)
    script = Script(ok())

    # When a client without a key calls
    with Client(base_url=BASE_URL, transport=httpx.MockTransport(script)) as client:
        client.environment.get()

    # Then no Authorization header is sent (the server answers 401)
    assert "Authorization" not in script.requests[0].headers


# Error replies


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, InvalidRequestError),
        (422, ApiError),
        (429, RateLimitedError),
        (500, ServerError),
        (502, ServerError),
    ],
)
def test_errors__envelope_of_each_status__its_class_with_the_envelope_fields(
    make_client: ClientFactory, status: int, error_class: type[ApiError]
) -> None:
    # Given a server that answers an error envelope
    details = [{"param": "key", "message": "Bad."}]
    script = Script(envelope(status, "some_code", param="key", details=details))
    client = make_client(script, max_retries=0)

    # When a call is made
    with pytest.raises(ApiError) as raised:
        client.features.create("sso", type="boolean")

    # Then the error is of the status's class and holds the envelope
    error = raised.value
    assert type(error) is error_class
    assert (error.status, error.code, error.message) == (status, "some_code", "Error some_code.")
    assert (error.param, error.details) == ("key", details)
    assert str(error) == f"{status} some_code: Error some_code."


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(500, text="<html>Internal Server Error</html>"),
        httpx.Response(500, json=["not", "an", "envelope"]),
        httpx.Response(500, json={"error": "a string"}),
        httpx.Response(500),
    ],
    ids=["html", "json_list", "error_not_an_object", "empty"],
)
def test_errors__500_without_an_envelope__server_error_with_status_500(
    make_client: ClientFactory, reply: httpx.Response
) -> None:
    # Given a proxy or crash answering 500 without the API's envelope
    client = make_client(Script(reply), max_retries=0)

    # When a call is made
    with pytest.raises(ServerError) as raised:
        client.environment.get()

    # Then it is still a ServerError with the status
    assert (raised.value.status, raised.value.code) == (500, "http_500")


def test_errors__429__retry_after_in_seconds(make_client: ClientFactory) -> None:
    # Given a server that keeps rate-limiting, asking for 0 s
    reply = httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"code": "slow"}})
    client = make_client(Script(reply), max_retries=1)

    # When a call is made
    with pytest.raises(RateLimitedError) as raised:
        client.environment.get()

    # Then the error holds the header's seconds
    assert (raised.value.status, raised.value.code, raised.value.retry_after) == (429, "slow", 0.0)


def test_check__error_replies__fallback_with_the_code_never_raised(
    make_client: ClientFactory,
) -> None:
    # Given a server that answers 404, then a non-JSON 500, with fallbacks configured
    script = Script(
        envelope(404, "feature_not_found"), httpx.Response(500, text="oops"), ok(CHECK_REPLY)
    )
    client = make_client(script, max_retries=0, fallback_values={"projects": 3})

    # When two checks are made
    missing = client.check("acme", "ghost")
    broken = client.check("acme", "projects")

    # Then each answers its fallback with the error's code
    assert (missing.reason, missing.error_code, missing.allowed) == (
        Reason.ERROR,
        "feature_not_found",
        False,
    )
    assert (broken.reason, broken.error_code, broken.allowed, broken.value) == (
        Reason.ERROR,
        "http_500",
        True,
        3,
    )


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, text="<html>Sign in to the Wi-Fi</html>"),
        httpx.Response(200, json={"unexpected": True}),
        httpx.Response(204),
    ],
    ids=["html", "other_json", "no_content"],
)
def test_check__200_reply_that_is_not_a_check__the_fallback_not_an_exception(
    make_client: ClientFactory, reply: httpx.Response
) -> None:
    # Given something other than Tierkit answering 200 at the base URL (a proxy, a portal)
    client = make_client(Script(reply), fallback_allowed=True)

    # When a check is made (checks never raise)
    decision = client.check("acme", "sso")

    # Then it answers the fallback
    assert (decision.reason, decision.allowed, decision.feature) == (Reason.ERROR, True, "sso")


# Closing


def test_check__after_close__the_fallback_not_an_exception() -> None:
    # Given a client that was closed
    script = Script(ok(CHECK_REPLY))
    client = Client(api_key="tk_sec_test", base_url=BASE_URL, transport=httpx.MockTransport(script))
    client.close()

    # When it checks (checks never raise)
    decision = client.check("acme", "sso")

    # Then it answers the fallback, without a request
    assert (decision.reason, decision.allowed) == (Reason.ERROR, False)
    assert script.requests == []


def test_async_client__only_an_async_transport__tracked_events_go_through_it() -> None:
    # Given an async client whose transport is a mock, on a URL where nothing listens
    script = Script(ok({"accepted": 1, "duplicates": 0}, 202))

    # When it tracks an event and flushes
    async def scenario(client: AsyncClient) -> Any:
        client.track("api_call", company="acme")
        return await client.flush(1)

    flushed = run_async(
        script, scenario, base_url="http://127.0.0.1:9", max_retries=0, flush_timeout=0.5
    )

    # Then the event was sent through the transport the client was given, not the network
    assert flushed is True
    assert [r.url.path for r in script.requests] == ["/v1/events"]

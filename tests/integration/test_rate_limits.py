"""Rate limits per API key, over real HTTP on both databases, counted in this process's memory
and in Redis (TIERKIT_REDIS_URL)."""

from __future__ import annotations

import asyncio
import math
import os
import secrets
from collections.abc import Iterator

import httpx
import orjson
import pytest
import redis
from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.sync.client import connect

from tests.support.live_server import LiveServer
from tierkit.server.app import create_app
from tierkit.server.rate_limits import RateLimiter, RedisRateLimiter
from tierkit.server.services.api_keys import KeyKind, Principal
from tierkit.server.services.container import Services
from tierkit.server.settings import Settings

REDIS_URL = os.environ.get("TIERKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# A slow rate (one request each 10 s) and a burst of 3: the 4th request of a quick burst is
# over the limit however slow the machine is, and its wait is several seconds.
_LIMITS = {"rate_limit_per_second": 0.1, "rate_limit_burst": 3}


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _redis_url(store: str) -> str | None:
    if store == "memory":
        return None
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {error}")
    return REDIS_URL


def _serve(live_server: LiveServer, database_url: str, **settings: object) -> Iterator[str]:
    app = create_app(Settings(database_url=database_url, **settings))  # type: ignore[arg-type]
    live_server.mount(app)
    yield live_server.url
    live_server.mount(_closing(app.state.rate_limiter))
    # The limiter's Redis connections live on the server's event loop: closed there.
    assert httpx.get(f"{live_server.url}/close").status_code == 204
    live_server.mount(None)
    app.state.services.database.dispose()


def _closing(limiter: RateLimiter) -> ASGIApp:
    """An app that closes `limiter` (what the app's lifespan does when served for real)."""

    async def close(scope: Scope, receive: Receive, send: Send) -> None:
        await limiter.close()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return close


@pytest.fixture
def limited_url(live_server: LiveServer, database_url: str, store: str) -> Iterator[str]:
    """A server whose keys may make 3 requests at once, then one each 10 s."""
    yield from _serve(live_server, database_url, redis_url=_redis_url(store), **_LIMITS)


def _client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_rate_limit__burst_past_the_limit__429_with_retry_after_and_other_keys_unaffected(
    limited_url: str, services: Services
) -> None:
    # Given two secret keys of one environment, each limited to a burst of 3
    _, first = services.api_keys.create_key("development", KeyKind.SECRET, "first")
    _, second = services.api_keys.create_key("development", KeyKind.SECRET, "second")
    with _client(limited_url, first) as api, _client(limited_url, second) as other:
        # When the first key makes 4 requests at once
        answers = [api.get("/v1/environment") for _ in range(4)]

        # Then the first 3 are answered and the 4th is refused with 429 in the envelope
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        refused = answers[3]
        error = refused.json()["error"]
        assert error["type"] == "rate_limited"
        assert error["code"] == "rate_limited"
        assert error["message"].endswith(".")
        # And it says when to retry: Retry-After in whole seconds, the exact wait in details
        [detail] = error["details"]
        assert detail["param"] == "retry_after"
        assert 0 < detail["retry_after"] <= 10
        assert refused.headers["Retry-After"] == str(math.ceil(detail["retry_after"]))
        assert refused.headers["X-Request-Id"]

        # And another key of the same environment is not limited by the first key's requests
        assert [other.get("/v1/environment").status_code for _ in range(3)] == [200] * 3
        # And the first key stays limited on every route it authenticates, checks included
        check = api.post("/v1/check", json={"company": "acme", "feature": "sso"})
        assert check.status_code == 429
        assert check.json()["error"]["type"] == "rate_limited"
        # And OFREP answers its own error shape, with the same header
        ofrep = api.post("/ofrep/v1/evaluate/flags/sso", json={"context": {"targetingKey": "a"}})
        assert ofrep.status_code == 429
        assert ofrep.json()["errorCode"] == "GENERAL"
        assert int(ofrep.headers["Retry-After"]) >= 1


@pytest.fixture
def memory_limited_url(live_server: LiveServer, database_url: str) -> Iterator[str]:
    yield from _serve(live_server, database_url, **_LIMITS)


def test_rate_limit__unknown_key__401_not_counted(memory_limited_url: str) -> None:
    # Given a server with limits, when a missing or unknown key calls 5 times
    with _client(memory_limited_url, "tk_sec_" + "x" * 40) as stranger:
        statuses = {stranger.get("/v1/environment").status_code for _ in range(5)}
    # Then it is told who it is not (401), never 429: limits count authenticated keys
    assert statuses == {401}


@pytest.fixture
def publishable_limited_url(
    live_server: LiveServer, database_url: str, store: str
) -> Iterator[str]:
    """Publishable keys limited (burst 2), secret keys not."""
    yield from _serve(
        live_server,
        database_url,
        redis_url=_redis_url(store),
        rate_limit_per_second=0,
        rate_limit_publishable_per_second=0.1,
        rate_limit_burst=2,
    )


def test_rate_limit__publishable_limit_only__secret_keys_unlimited(
    publishable_limited_url: str, services: Services
) -> None:
    _, publishable = services.api_keys.create_key("development", KeyKind.PUBLISHABLE, "web")
    _, secret = services.api_keys.create_key("development", KeyKind.SECRET, "backend")
    body = {"company": "acme", "feature": "sso"}
    with (
        _client(publishable_limited_url, publishable) as browser,
        _client(publishable_limited_url, secret) as backend,
    ):
        create = backend.post("/v1/features", json={"key": "sso", "name": "SSO", "type": "boolean"})
        assert create.status_code == 201, create.text
        # When each key checks 4 times
        from_browser = [browser.post("/v1/check", json=body).status_code for _ in range(4)]
        from_backend = [backend.post("/v1/check", json=body).status_code for _ in range(4)]
    # Then the publishable key is cut after its burst of 2, the secret key never
    assert from_browser == [200, 200, 429, 429]
    assert from_backend == [200] * 4


def test_rate_limit__redis__two_limiters_share_one_count() -> None:
    """Two processes' limiters on one Redis: a key's burst is spent across both."""
    url = _redis_url("redis")
    assert url is not None
    settings = Settings(rate_limit_per_second=0.1, rate_limit_burst=3, redis_url=url)
    key = Principal(f"key_{secrets.token_hex(8)}", KeyKind.SECRET, "env_1", "development")
    other = Principal(f"key_{secrets.token_hex(8)}", KeyKind.SECRET, "env_1", "development")

    async def burst() -> tuple[list[float], float]:
        first, second = RedisRateLimiter(settings, url), RedisRateLimiter(settings, url)
        try:
            waits = [await limiter.wait_time(key) for limiter in (first, second, first, second)]
            return waits, await second.wait_time(other)
        finally:
            await first.close()
            await second.close()

    waits, other_wait = asyncio.run(burst())
    assert waits[:3] == [0, 0, 0]
    assert 0 < waits[3] <= 10
    assert other_wait == 0


def test_rate_limit__default_settings__no_limit(server_url: str, api: httpx.Client) -> None:
    # Given the default settings, a burst of 30 requests from one key is all answered
    assert {api.get("/v1/environment").status_code for _ in range(30)} == {200}


def test_rate_limit__json_rpc_websocket__each_request_counts_and_is_refused_32029(
    limited_url: str, services: Services
) -> None:
    # Given a key limited to a burst of 3, on the JSON-RPC WebSocket
    _, key = services.api_keys.create_key("development", KeyKind.SECRET, "socket")
    url = limited_url.replace("http", "ws", 1) + "/v1/rpc"
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        # When it sends 4 requests (a method that fails fast: no such feature)
        answers = []
        for number in range(4):
            params = {"company": "acme", "feature": "nope"}
            message = {"jsonrpc": "2.0", "id": number, "method": "check", "params": params}
            ws.send(orjson.dumps(message))
            answers.append(orjson.loads(ws.recv(timeout=10)))
    # Then the first 3 are answered (feature not found), the 4th refused as rate limited
    assert [a["error"]["code"] for a in answers] == [-32004, -32004, -32004, -32029]
    assert answers[3]["error"]["data"]["type"] == "rate_limited"


def test_rate_limit__redis_unreachable__requests_let_through_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(rate_limit_per_second=0.1, rate_limit_burst=1)
    key = Principal(f"key_{secrets.token_hex(8)}", KeyKind.SECRET, "env_1", "development")

    async def burst() -> list[float]:
        limiter = RedisRateLimiter(settings, "redis://127.0.0.1:1/0")  # nobody listens
        try:
            return [await limiter.wait_time(key) for _ in range(3)]
        finally:
            await limiter.close()

    with caplog.at_level("WARNING", logger="tierkit.rate_limits"):
        waits = asyncio.run(burst())
    # Then past the burst of 1, nothing is refused (a limiter must not take the API down)
    assert waits == [0, 0, 0]
    # And it is said once, not once per request
    warnings = [r for r in caplog.records if r.name == "tierkit.rate_limits"]
    assert len(warnings) == 1
    assert "Redis" in warnings[0].getMessage()

"""What the operations layer adds to each request: the request-id and metrics middlewares
around a trivial ASGI app, and one rate-limit decision in memory and in Redis.

    .venv/bin/python bench/ops_overhead.py [--calls 20000] [--rounds 5] [--redis URL]

Each figure is the median over the rounds of the time per call; rounds alternate the variants
so that a busy machine slows them alike. A warm check costs about 27 µs in-process and a few
hundred µs over HTTP (bench/RESULTS.md): compare with that.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tierkit.server.metrics import Metrics, RequestMetrics
from tierkit.server.rate_limits import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tierkit.server.request_ids import RequestIds
from tierkit.server.services.api_keys import KeyKind, Principal
from tierkit.server.settings import Settings

_SCOPE: Scope = {
    "type": "http",
    "method": "POST",
    "path": "/v1/check",
    "headers": [(b"content-type", b"application/json")],
}


async def _trivial(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    return None


async def _per_request(app: ASGIApp, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await app(dict(_SCOPE), _receive, _send)
    return (time.perf_counter() - start) / calls


async def _per_decision(make: Callable[[], RateLimiter], calls: int) -> float:
    limiter = make()
    principal = Principal("key_bench", KeyKind.SECRET, "env_bench", "development")
    try:
        await limiter.wait_time(principal)  # connects, loads the script
        start = time.perf_counter()
        for _ in range(calls):
            await limiter.wait_time(principal)
        return (time.perf_counter() - start) / calls
    finally:
        await limiter.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    settings = Settings(rate_limit_per_second=1e9, redis_url=args.redis)
    metrics = Metrics()
    variants: dict[str, Callable[[], Awaitable[float]]] = {
        "trivial ASGI app": lambda: _per_request(_trivial, args.calls),
        "+ request ids": lambda: _per_request(RequestIds(_trivial), args.calls),
        "+ request ids + metrics": lambda: _per_request(
            RequestIds(RequestMetrics(_trivial, metrics)), args.calls
        ),
        "rate limit, memory (one decision)": lambda: _per_decision(
            lambda: MemoryRateLimiter(settings), args.calls
        ),
        "rate limit, Redis (one decision)": lambda: _per_decision(
            lambda: RedisRateLimiter(settings, args.redis), args.calls // 10
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():
            times[name].append(asyncio.run(run()))
    print(f"| what | µs per call (median of {args.rounds} rounds) |")
    print("|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values) * 1e6:.1f} |")


if __name__ == "__main__":
    main()

"""Rate limits per API key, by the generic cell rate algorithm (GCRA): each key may make
`rate` requests a second on average, and `burst` at once after a rest.

GCRA keeps one number per key (the "theoretical arrival time" of its next request), so a
limit is one read and one write: in this process's memory, or in Redis (one atomic Lua script,
timed by Redis's clock) when `TIERKIT_REDIS_URL` is set, shared by every process and machine.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tierkit.server.services.api_keys import KeyKind, Principal
from tierkit.server.settings import Settings

logger = logging.getLogger("tierkit.rate_limits")


@dataclass(frozen=True, slots=True)
class Limit:
    per_second: float
    burst: int

    @property
    def interval(self) -> float:
        """The steady time between two requests, in seconds."""
        return 1 / self.per_second


class RateLimiter(Protocol):
    async def wait_time(self, principal: Principal) -> float:
        """0 when the key may make a request now (and it is counted), else the seconds until
        it may."""

    async def close(self) -> None: ...


def limit_of(settings: Settings, kind: KeyKind) -> Limit | None:
    rate = settings.rate_limit_per_second
    if kind is KeyKind.PUBLISHABLE and settings.rate_limit_publishable_per_second is not None:
        rate = settings.rate_limit_publishable_per_second
    if rate <= 0:
        return None
    burst = settings.rate_limit_burst or max(1, math.ceil(rate))
    return Limit(rate, burst)


class _Limits:
    def __init__(self, settings: Settings) -> None:
        self._limits = {kind: limit_of(settings, kind) for kind in KeyKind}

    def of(self, principal: Principal) -> Limit | None:
        return self._limits[principal.kind]


class NoRateLimiter:
    async def wait_time(self, principal: Principal) -> float:
        return 0.0

    async def close(self) -> None:
        return None


_KEYS_KEPT = 100_000


class MemoryRateLimiter:
    """One process's counts. It runs on the event loop only (no await inside), so no lock."""

    def __init__(self, settings: Settings) -> None:
        self._limits = _Limits(settings)
        self._arrivals: OrderedDict[str, float] = OrderedDict()

    async def wait_time(self, principal: Principal) -> float:
        limit = self._limits.of(principal)
        if limit is None:
            return 0.0
        now = time.monotonic()
        arrival = max(self._arrivals.get(principal.key_id, now), now)
        allowed_at = arrival + limit.interval - limit.burst * limit.interval
        if now < allowed_at:
            return allowed_at - now
        self._arrivals[principal.key_id] = arrival + limit.interval
        self._arrivals.move_to_end(principal.key_id)
        if len(self._arrivals) > _KEYS_KEPT:
            # The least recently used key: a key idle this long has no debt left anyway.
            self._arrivals.popitem(last=False)
        return 0.0

    async def close(self) -> None:
        return None


# KEYS[1]: the key's arrival time (µs); ARGV: the interval (µs), the burst.
# Returns 0 (counted) or the µs to wait. Redis's own clock: every process agrees.
_GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local arrival = tonumber(redis.call('GET', KEYS[1]) or now)
if arrival < now then arrival = now end
local allowed_at = arrival + interval - burst * interval
if now < allowed_at then return allowed_at - now end
local next_arrival = arrival + interval
redis.call('SET', KEYS[1], string.format('%d', next_arrival),
           'PX', math.ceil((next_arrival - now) / 1000) + 1)
return 0
"""


_WARN_EVERY_SECONDS = 60.0


class RedisRateLimiter:
    """Counts shared by every process and machine on one Redis. When Redis cannot be reached
    requests are let through (and it is logged): a limiter must not take the API down."""

    def __init__(self, settings: Settings, url: str) -> None:
        self._limits = _Limits(settings)
        self._redis: Redis = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._script = self._redis.register_script(_GCRA)
        self._warned_at = -math.inf

    async def wait_time(self, principal: Principal) -> float:
        limit = self._limits.of(principal)
        if limit is None:
            return 0.0
        interval = max(1, round(limit.interval * 1_000_000))
        try:
            wait = await self._script(
                keys=[f"tierkit:rate:{principal.key_id}"], args=[interval, limit.burst]
            )
        except RedisError as error:
            now = time.monotonic()
            if now - self._warned_at >= _WARN_EVERY_SECONDS:  # once a while, not per request
                self._warned_at = now
                logger.warning("rate limits are not applied: Redis fails (%s)", error)
            return 0.0
        return int(wait) / 1_000_000

    async def close(self) -> None:
        await self._redis.aclose()


def build_rate_limiter(settings: Settings) -> RateLimiter:
    if all(limit_of(settings, kind) is None for kind in KeyKind):
        return NoRateLimiter()
    if settings.redis_url:
        return RedisRateLimiter(settings, settings.redis_url)
    return MemoryRateLimiter(settings)

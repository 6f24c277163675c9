"""One options object for the SDK's clients."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import httpx

from tierkit.engine.catalog import Scalar

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How a `Client` or `AsyncClient` talks to the server. Every field has a default;
    `api_key` and `base_url` also come from `TIERKIT_KEY` and `TIERKIT_URL`."""

    api_key: str | None = None
    base_url: str = DEFAULT_BASE_URL
    local: bool = False
    """Evaluate checks in-process from a synchronised snapshot (needs a secret key)."""

    timeout: float = 5.0
    """Seconds for one request (connect, read, write each)."""
    max_retries: int = 3
    """Retries of a call after 429, 5xx or a connection failure (with backoff)."""
    backoff: float = 0.2
    """The first retry's delay; each next one doubles, with jitter, up to `max_backoff`."""
    max_backoff: float = 10.0

    fallback_allowed: bool = False
    """What a check answers when it cannot decide (server unreachable, no snapshot)."""
    fallback_values: Mapping[str, Scalar | None] = field(default_factory=dict)
    """Per feature: the value a check answers when it cannot decide (allowed if truthy)."""

    event_batch_size: int = 500
    """Events sent per request (at most 1000)."""
    flush_interval: float = 1.0
    """Seconds a tracked event may wait for its batch to fill."""
    max_queued_events: int = 10_000
    """Events held for sending; beyond it `track` drops and counts (it never blocks)."""
    flush_timeout: float = 5.0
    """How long `close()` and interpreter exit wait for queued events to be sent."""

    ready_timeout: float = 5.0
    """Local mode: how long the first check waits for the snapshot."""
    stream: bool = True
    """Local mode: follow `/v1/sdk/stream`; without it, poll every `poll_interval`."""
    poll_interval: float = 30.0
    """Local mode: a full resynchronisation at least this often, stream or not."""

    clock: Callable[[], datetime] | None = None
    """What local evaluation takes as now (tests set it; default: the system clock)."""
    transport: httpx.BaseTransport | None = None
    """For tests: an httpx transport (e.g. `httpx.MockTransport`) instead of the network."""
    async_transport: httpx.AsyncBaseTransport | None = None
    """For tests of `AsyncClient`. Its background threads (sync, events) use `transport`, or
    this one when it is also a sync transport (as `httpx.MockTransport` is)."""

    def with_changes(self, **changes: Any) -> ClientOptions:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def resolve_options(options: ClientOptions | None, **changes: Any) -> ClientOptions:
    """`options` with the keyword arguments given (None: keep), and the key and URL from the
    environment when neither names them."""
    resolved = (options or ClientOptions()).with_changes(**changes)
    if resolved.api_key is None and os.environ.get("TIERKIT_KEY"):
        resolved = replace(resolved, api_key=os.environ["TIERKIT_KEY"])
    if resolved.base_url == DEFAULT_BASE_URL and os.environ.get("TIERKIT_URL"):
        resolved = replace(resolved, base_url=os.environ["TIERKIT_URL"])
    return replace(resolved, base_url=resolved.base_url.rstrip("/"))


def headers_of(options: ClientOptions) -> dict[str, str]:
    from tierkit import __version__

    headers = {"User-Agent": f"tierkit-python/{__version__}", "Accept": "application/json"}
    if options.api_key:
        headers["Authorization"] = f"Bearer {options.api_key}"
    return headers


def blocking_http(options: ClientOptions) -> httpx.Client:
    """An HTTP client for the background threads (sync and events), whichever client owns
    them."""
    transport = options.transport
    either: object = options.async_transport  # a class may be both kinds
    if transport is None and isinstance(either, httpx.BaseTransport):
        transport = either
    return httpx.Client(
        base_url=options.base_url,
        headers=headers_of(options),
        timeout=options.timeout,
        transport=transport,
    )

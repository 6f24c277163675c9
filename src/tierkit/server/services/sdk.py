"""What the SDK's local evaluation reads: the environment's catalog as one document with an
ETag, and each company's and user's state in the engine's own terms (`tierkit.engine.codec`)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tierkit.engine.codec import catalog_to_json, company_to_json, format_time, user_to_json
from tierkit.engine.evaluate import Catalog
from tierkit.server.services.checks import CheckService
from tierkit.server.services.clock import Clock
from tierkit.server.services.events import EventService


@dataclass(frozen=True, slots=True)
class Snapshot:
    etag: str
    """A strong ETag of the catalog: equal catalogs, equal tags (also across processes)."""
    body: bytes
    """`{"etag", "catalog"}` as JSON."""


class SdkService:
    def __init__(self, clock: Clock, checks: CheckService, events: EventService) -> None:
        self._clock = clock
        self._checks = checks
        self._events = events
        self._snapshots: dict[str, tuple[Catalog, Snapshot]] = {}
        self._lock = threading.Lock()

    def snapshot(self, environment_id: str) -> Snapshot:
        """The environment's catalog; built once per compiled catalog."""
        catalog = self._checks.catalog(environment_id)
        cached = self._snapshots.get(environment_id)
        if cached is not None and cached[0] is catalog:
            return cached[1]
        document = orjson.dumps(catalog_to_json(catalog), option=orjson.OPT_SORT_KEYS)
        etag = f'"{hashlib.sha256(document).hexdigest()[:32]}"'
        body = b'{"etag":' + orjson.dumps(etag) + b',"catalog":' + document + b"}"
        snapshot = Snapshot(etag, body)
        with self._lock:
            self._snapshots[environment_id] = (catalog, snapshot)
        return snapshot

    def company_state(
        self, environment_id: str, key: str, pending: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The company's state read anew, with its usage in each metered feature's current
        window, and `refresh_at`: the instant its credits change next (a grant expires, a
        plan's new period), when a reader must read it again. An unknown company has
        `found: false` and evaluates like the server's unknown companies.

        `pending` names events (by idempotency key) the reader has tracked and not yet seen
        acknowledged; `stored` says which of them this state already counts. They are looked
        up before the counters are read: one stored in between is counted by the counters and
        reported pending, so the reader errs towards counting it twice, never not at all."""
        stored = self._events.stored_keys(environment_id, pending)
        loaded = self._checks.load_company(environment_id, key)
        return company_to_json(loaded.state) | {
            "refresh_at": format_time(loaded.refresh_at),
            "read_at": format_time(self._clock()),
            "stored": sorted(stored),
        }

    def user_state(self, environment_id: str, key: str) -> dict[str, Any]:
        """A user's traits (none for an unknown user)."""
        return user_to_json(self._checks.load_user(environment_id, key))

"""What changed, as it happens: every write that can change a decision is published here once
its transaction has ended, for the SDK stream and WebSocket subscribers of this process.

Listeners are called in the writer's thread and must not block (the API's hand each change to
its event loop). Changes reach the listeners of this process only; other processes learn of
them when scale-out (issue 11) relays them through the database.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger("tierkit.changes")


class ChangeKind(StrEnum):
    CATALOG = "catalog"
    COMPANY = "company"
    SUBSCRIPTION = "subscription"
    OVERRIDE = "override"
    USAGE = "usage"
    CREDITS = "credits"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    """Increases with each change this process publishes."""
    environment_id: str
    kind: ChangeKind
    company: str | None = None
    user: str | None = None


Listener = Callable[[Change], None]


class ChangeFeed:
    def __init__(self) -> None:
        self._listeners: dict[int, Listener] = {}
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every change from now on; returns what stops it."""
        with self._lock:
            token = next(self._ids)
            self._listeners[token] = listener

        def stop() -> None:
            with self._lock:
                self._listeners.pop(token, None)

        return stop

    def publish(
        self,
        environment_id: str,
        kind: ChangeKind,
        *,
        company: str | None = None,
        user: str | None = None,
    ) -> None:
        with self._lock:
            change = Change(next(self._seq), environment_id, kind, company, user)
            listeners = list(self._listeners.values())
        for listener in listeners:
            try:
                listener(change)
            except Exception:  # a listener's failure must not fail the write that published
                logger.exception("a change listener failed")

    def catalog_hook(self, invalidate: Callable[[str], None]) -> Callable[[str], None]:
        """A service's catalog-write callback: drop the cache, then publish."""

        def changed(environment_id: str) -> None:
            invalidate(environment_id)
            self.publish(environment_id, ChangeKind.CATALOG)

        return changed

    def customer_hook(
        self, invalidate: Callable[[str, str], None], kind: ChangeKind
    ) -> Callable[[str, str], None]:
        """A service's company-write callback: drop the cached state, then publish `kind`."""

        def changed(environment_id: str, key: str) -> None:
            invalidate(environment_id, key)
            self.publish(environment_id, kind, company=key)

        return changed

    def user_hook(self, invalidate: Callable[[str, str], None]) -> Callable[[str, str], None]:
        def changed(environment_id: str, key: str) -> None:
            invalidate(environment_id, key)
            self.publish(environment_id, ChangeKind.USER, user=key)

        return changed

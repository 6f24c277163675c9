"""What changed, as it happens: every write that can change a decision is published here once
its transaction has ended, for the SDK stream and WebSocket subscribers of this process.

Listeners are called in the writer's thread and must not block (the API's hand each change to
its event loop). Other processes learn of a change through the notes a write stages
(`staging`): the relay (`change_relay.py`) sends them with the write's transaction, and each
process's listener (`workers/change_listener.py`) drops what it cached and republishes them
here, so its SDK streams hear of them too.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
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
    RESET = "reset"
    """Changes may have been missed (a notification channel dropped): read everything again."""


ALL_ENVIRONMENTS = "*"
"""The environment of a `reset`: it concerns them all."""


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    """Increases with each change this process publishes."""
    environment_id: str
    kind: ChangeKind
    company: str | None = None
    user: str | None = None
    heard: bool = False
    """Made by another process (its note was heard), not by this one."""

    def concerns(self, environment_id: str) -> bool:
        return self.environment_id in (environment_id, ALL_ENVIRONMENTS)


@dataclass(frozen=True, slots=True)
class ChangeNote:
    """A change as other processes hear of it: what to drop from their caches."""

    environment_id: str
    kind: ChangeKind
    company: str | None = None
    user: str | None = None


_staged: ContextVar[tuple[list[ChangeNote], ...]] = ContextVar("tierkit_staged", default=())


@contextlib.contextmanager
def staging(notes: Iterable[ChangeNote] = ()) -> Iterator[list[ChangeNote]]:
    """Within the block, every write transaction that commits carries these notes (and any
    added to the yielded list before it commits) to other processes."""
    scope = list(notes)
    token = _staged.set((*_staged.get(), scope))
    try:
        yield scope
    finally:
        _staged.reset(token)


def staged_notes() -> list[ChangeNote]:
    """The notes of every enclosing `staging` block, each once, in order."""
    return list(dict.fromkeys(note for scope in _staged.get() for note in scope))


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
        heard: bool = False,
    ) -> None:
        with self._lock:
            change = Change(next(self._seq), environment_id, kind, company, user, heard)
            listeners = list(self._listeners.values())
        for listener in listeners:
            try:
                listener(change)
            except Exception:  # a listener's failure must not fail the write that published
                logger.exception("a change listener failed")

    def publish_note(self, note: ChangeNote, *, heard: bool = False) -> None:
        self.publish(
            note.environment_id, note.kind, company=note.company, user=note.user, heard=heard
        )

    def catalog_hook(self, invalidate: Callable[[str], None]) -> CatalogHook:
        """A service's catalog-write callback: drop the cache, then publish."""
        return CatalogHook(self, invalidate)

    def customer_hook(self, invalidate: Callable[[str, str], None], kind: ChangeKind) -> KeyHook:
        """A service's company-write callback: drop the cached state, then publish `kind`."""
        return KeyHook(self, invalidate, kind)

    def user_hook(self, invalidate: Callable[[str, str], None]) -> KeyHook:
        return KeyHook(self, invalidate, ChangeKind.USER)


class CatalogHook:
    """Called once a catalog write's transaction has ended; `note` is what the write stages
    for other processes."""

    def __init__(self, feed: ChangeFeed, invalidate: Callable[[str], None]) -> None:
        self._feed = feed
        self._invalidate = invalidate

    def __call__(self, environment_id: str) -> None:
        self._invalidate(environment_id)
        self._feed.publish(environment_id, ChangeKind.CATALOG)

    @staticmethod
    def note(environment_id: str) -> ChangeNote:
        return ChangeNote(environment_id, ChangeKind.CATALOG)


class KeyHook:
    """Called once a write to a company (or a user, for `ChangeKind.USER`) has ended."""

    def __init__(
        self, feed: ChangeFeed, invalidate: Callable[[str, str], None], kind: ChangeKind
    ) -> None:
        self._feed = feed
        self._invalidate = invalidate
        self.kind = kind

    def __call__(self, environment_id: str, key: str) -> None:
        self._invalidate(environment_id, key)
        self._feed.publish_note(self.note(environment_id, key))

    def note(self, environment_id: str, key: str) -> ChangeNote:
        if self.kind is ChangeKind.USER:
            return ChangeNote(environment_id, self.kind, user=key)
        return ChangeNote(environment_id, self.kind, company=key)

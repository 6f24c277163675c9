"""The change listener: a thread with its own connection that hears the change notes other
processes' writes send (`services/change_relay.py`) and drops what this process cached.

Each time it (re)subscribes, it resyncs: every cached catalog and state is dropped, because
notes sent while it was not listening are lost. While the channel is down, cached entries
still expire after TIERKIT_CACHE_SECONDS: that is the staleness bound until it is back.
"""

from __future__ import annotations

import logging
import os
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import psycopg
import redis
from psycopg import sql

from tierkit.server.services.change_relay import ChangeRelay, decode_notes
from tierkit.server.services.changes import ALL_ENVIRONMENTS, ChangeKind, ChangeNote
from tierkit.server.services.container import Services
from tierkit.server.workers.background import BackgroundThread

logger = logging.getLogger("tierkit.changes")

_POLL_SECONDS = 1.0
"""How often the thread looks up from its connection (to stop, or to ping)."""
_PING_SECONDS = 5.0
"""An idle PostgreSQL connection is pinged this often, so a dead one is noticed."""
_FIRST_RETRY_SECONDS = 0.1
_LAST_RETRY_SECONDS = 5.0


def listener_name() -> str:
    """The connection's `application_name` (PostgreSQL) or client name (Redis)."""
    return f"tierkit-listener-{os.getpid()}"


class ChangeListener(BackgroundThread):
    def __init__(
        self,
        relay: ChangeRelay,
        on_notes: Callable[[list[ChangeNote]], None],
        on_resync: Callable[[], None],
    ) -> None:
        self._relay = relay
        self._on_notes = on_notes
        self._on_resync = on_resync
        self._delay = _FIRST_RETRY_SECONDS
        self.resyncs = 0
        """How many times this listener (re)subscribed and dropped every cached entry."""
        super().__init__("tierkit-changes")

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception as error:
                if self._stopping.is_set():
                    break
                logger.warning(
                    "the %s change channel dropped (%s): cached entries fall back on their "
                    "TTL until it is back; everything is dropped when it is",
                    self._relay.transport,
                    error,
                )
            self._stopping.wait(self._delay)
            self._delay = min(self._delay * 2, _LAST_RETRY_SECONDS)

    @abstractmethod
    def _listen(self) -> None:
        """Subscribe, call `_subscribed` once notes can arrive, then `_heard` with each
        payload until stopped; raise if the channel drops."""

    def _subscribed(self) -> None:
        self._delay = _FIRST_RETRY_SECONDS
        self.resyncs += 1
        if self.resyncs > 1:
            logger.info(
                "the %s change channel is back: cached entries dropped", self._relay.transport
            )
        self._on_resync()

    def _heard(self, payload: str | bytes) -> None:
        try:
            origin, notes = decode_notes(payload)
        except ValueError:
            logger.warning("a change payload was not understood: cached entries dropped")
            self._on_resync()
            return
        if origin != self._relay.origin:
            self._on_notes(notes)


class PostgresListener(ChangeListener):
    """`LISTEN` on a connection of its own (not one of the pool's)."""

    def _listen(self) -> None:
        url = self._relay.database.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        with psycopg.connect(
            conninfo,
            autocommit=True,
            application_name=listener_name(),
            connect_timeout=5,
            # A connection that died without a word (a network fault) is noticed in seconds.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
            tcp_user_timeout=10_000,
        ) as connection:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._relay.channel)))
            self._subscribed()
            idle = 0.0
            while not self._stopping.is_set():
                heard = False
                for notify in connection.notifies(timeout=_POLL_SECONDS, stop_after=1000):
                    self._heard(notify.payload)
                    heard = True
                idle = 0.0 if heard else idle + _POLL_SECONDS
                if idle >= _PING_SECONDS:
                    connection.execute("SELECT 1")
                    idle = 0.0


class RedisListener(ChangeListener):
    """`SUBSCRIBE` on a connection of its own. redis-py reconnects and resubscribes by itself
    after a drop: every subscribe confirmation, first or not, resyncs."""

    def __init__(
        self,
        relay: ChangeRelay,
        url: str,
        on_notes: Callable[[list[ChangeNote]], None],
        on_resync: Callable[[], None],
    ) -> None:
        super().__init__(relay, on_notes, on_resync)
        self._url = url

    def _listen(self) -> None:
        client = redis.Redis.from_url(
            self._url,
            client_name=listener_name(),
            socket_connect_timeout=5,
            socket_timeout=10,
            socket_keepalive=True,
            health_check_interval=int(_PING_SECONDS),
        )
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self._relay.channel)
            while not self._stopping.is_set():
                message: dict[str, Any] | None = pubsub.get_message(timeout=_POLL_SECONDS)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    self._subscribed()
                elif message["type"] == "message":
                    self._heard(message["data"])
        finally:
            pubsub.close()
            client.close()


def start_change_listener(services: Services, redis_url: str | None) -> ChangeListener | None:
    """Listen for other processes' changes (none without a relay: SQLite alone). What they
    change is dropped from this process's caches and published to its SDK streams."""
    relay = services.relay
    if relay is None:
        return None

    def on_notes(notes: list[ChangeNote]) -> None:
        for note in notes:
            services.checks.forget(note)
            services.changes.publish_note(note, heard=True)

    def on_resync() -> None:
        services.checks.forget_everything()
        services.changes.publish(ALL_ENVIRONMENTS, ChangeKind.RESET, heard=True)

    listener: ChangeListener
    if redis_url:
        listener = RedisListener(relay, redis_url, on_notes, on_resync)
    else:
        listener = PostgresListener(relay, on_notes, on_resync)
    listener.start()
    return listener

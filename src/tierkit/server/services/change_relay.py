"""How a write's change notes reach the other processes on the same database.

Each write transaction that commits inside `changes.staging` carries its notes: on PostgreSQL
as `pg_notify` calls in the transaction itself (delivered on commit, never for a rollback), or,
when Redis is configured, as one `PUBLISH` per payload right after the commit. Every process's
listener (`workers/change_listener.py`) hears them and drops what it cached.

The channel is named after the database and schema the processes share (a hash of them), so
deployments (and tests, one schema each) that share a PostgreSQL server or a Redis never hear
each other. A payload names its sender (`origin`), which ignores its own: it dropped its entries
when the write ended.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import redis
from sqlalchemy import text
from sqlalchemy.orm import Session

from tierkit.server.db import Database
from tierkit.server.db.text_arrays import text_array_parameters
from tierkit.server.db.upserts import execute_on_postgres
from tierkit.server.services.changes import ChangeKind, ChangeNote, staged_notes

logger = logging.getLogger("tierkit.changes")

MAX_PAYLOAD_BYTES = 7_000
"""PostgreSQL refuses NOTIFY payloads of 8000 bytes or more: larger sets of notes are split."""

_PENDING = "tierkit_pending_payloads"


def new_origin() -> str:
    """A name for this process's relay, unique enough that no two processes share it."""
    return secrets.token_hex(8)


def channel_of(database: Database) -> str:
    """The channel every process on this database and schema shares."""
    if database.is_sqlite:
        identity = f"sqlite:{Path(database.url.database or '').resolve()}"
    else:
        with database.engine.connect() as connection:
            name, schema = connection.execute(
                text("SELECT current_database(), current_schema()")
            ).one()
        identity = f"postgresql:{name}/{schema}"
    return "tierkit_changes_" + hashlib.sha256(identity.encode()).hexdigest()[:24]


def encode_notes(origin: str, notes: Sequence[ChangeNote]) -> list[str]:
    """JSON payloads of at most `MAX_PAYLOAD_BYTES` each, holding every note once."""
    payloads: list[str] = []
    items: list[bytes] = []
    size = 0
    budget = MAX_PAYLOAD_BYTES - len(origin) - 32

    def flush() -> None:
        body = b'{"origin":' + orjson.dumps(origin) + b',"notes":[' + b",".join(items) + b"]}"
        payloads.append(body.decode())
        items.clear()

    for note in dict.fromkeys(notes):
        item = orjson.dumps([note.environment_id, note.kind.value, note.company, note.user])
        if items and size + len(item) + 1 > budget:
            flush()
            size = 0
        items.append(item)
        size += len(item) + 1
    if items:
        flush()
    return payloads


def decode_notes(payload: str | bytes) -> tuple[str, list[ChangeNote]]:
    """The sender and notes of a payload; ValueError if it is not one of ours."""
    try:
        document: Any = orjson.loads(payload)
        notes = [
            ChangeNote(environment, ChangeKind(kind), company, user)
            for environment, kind, company, user in document["notes"]
        ]
        origin = document["origin"]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not a change payload: {str(payload)[:80]!r}") from error
    if not isinstance(origin, str):
        raise ValueError("not a change payload: no origin")
    return origin, notes


class ChangeRelay:
    """Installed on a database: sends the staged notes of each committed write."""

    transport: str

    def __init__(self, database: Database, origin: str | None = None) -> None:
        self.database = database
        self.origin = origin or new_origin()
        self._channel: str | None = None

    @property
    def channel(self) -> str:
        if self._channel is None:  # two threads may both ask: they get the same name
            self._channel = channel_of(self.database)
        return self._channel

    def install(self) -> None:
        self.database.on_write_commit(self._before_commit, self._after_commit, self._rolled_back)

    def _before_commit(self, session: Session) -> None:
        raise NotImplementedError

    def _after_commit(self, session: Session) -> None:
        """Nothing to do once committed, unless the transport says otherwise."""

    def _rolled_back(self, session: Session) -> None:
        """Nothing was sent, unless the transport says otherwise."""

    def close(self) -> None:
        """Release what the transport holds."""


class PostgresRelay(ChangeRelay):
    """`pg_notify` inside the write transaction: delivered if and only if it commits."""

    transport = "postgresql"

    def _before_commit(self, session: Session) -> None:
        notes = staged_notes()
        if not notes:
            return
        # The payloads as joined text: a list of JSON would be escaped quote by quote.
        execute_on_postgres(
            session,
            "SELECT pg_notify(%(channel)s, payload) FROM unnest("
            "(string_to_array(%(p)s, %(p_separator)s, %(p_null)s))[2:]) AS payload",
            {
                "channel": self.channel,
                **text_array_parameters("p", encode_notes(self.origin, notes)),
            },
        )


class RedisRelay(ChangeRelay):
    """`PUBLISH` once the write has committed. A process that dies between its commit and its
    publish, or a Redis that is down, loses the notes: others then rely on their TTL."""

    transport = "redis"

    def __init__(self, database: Database, url: str, origin: str | None = None) -> None:
        super().__init__(database, origin)
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    @property
    def channel(self) -> str:
        return "tierkit:" + super().channel

    def _before_commit(self, session: Session) -> None:
        notes = staged_notes()
        if notes:
            session.info[_PENDING] = encode_notes(self.origin, notes)

    def _after_commit(self, session: Session) -> None:
        payloads: list[str] | None = session.info.pop(_PENDING, None)
        if not payloads:
            return
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for payload in payloads:
                    pipe.publish(self.channel, payload)
                pipe.execute()
        except redis.RedisError as error:  # the write stands; others fall back on their TTL
            logger.warning("could not publish changes to Redis: %s", error)

    def _rolled_back(self, session: Session) -> None:
        session.info.pop(_PENDING, None)

    def close(self) -> None:
        self._client.close()


def build_relay(database: Database, redis_url: str | None) -> ChangeRelay | None:
    """Redis pub/sub when configured, else NOTIFY on PostgreSQL; nothing on SQLite alone (one
    machine: the TTL bounds how stale another process is)."""
    if redis_url:
        return RedisRelay(database, redis_url)
    if not database.is_sqlite:
        return PostgresRelay(database)
    return None

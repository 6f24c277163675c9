"""A write's change notes reach other processes only if the write commits: on PostgreSQL
inside its transaction (pg_notify), with Redis right after its commit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
import redis
from psycopg import sql

from tierkit.engine.catalog import Entitlement, Feature, FeatureType
from tierkit.engine.customers import Override
from tierkit.server.db import Database
from tierkit.server.services.change_relay import (
    ChangeRelay,
    PostgresRelay,
    RedisRelay,
    decode_notes,
)
from tierkit.server.services.changes import ALL_ENVIRONMENTS, ChangeKind, ChangeNote
from tierkit.server.services.container import Services
from tierkit.server.services.data_transfer import DataTransferService
from tierkit.server.services.errors import NotFound

REDIS_URL = "redis://127.0.0.1:6379/0"
Inbox = Callable[[int, float], list[ChangeNote]]
"""`inbox(count, seconds)`: the notes another process hears, read until `count` have come or
`seconds` have passed."""


def _postgres_inbox(relay: ChangeRelay) -> Iterator[Inbox]:
    url = relay.database.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(relay.channel)))

        def read(count: int, seconds: float) -> list[ChangeNote]:
            notes: list[ChangeNote] = []
            deadline = time.monotonic() + seconds
            while len(notes) < count and time.monotonic() < deadline:
                for notify in connection.notifies(timeout=0.05):
                    notes += decode_notes(notify.payload)[1]
            return notes

        yield read


def _redis_inbox(relay: ChangeRelay) -> Iterator[Inbox]:
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(relay.channel)

    def read(count: int, seconds: float) -> list[ChangeNote]:
        notes: list[ChangeNote] = []
        deadline = time.monotonic() + seconds
        while len(notes) < count and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.05)
            if message is not None:
                notes += decode_notes(message["data"])[1]
        return notes

    yield read
    pubsub.close()
    client.close()


@pytest.fixture(params=["postgresql", "redis"])
def relayed(request: pytest.FixtureRequest, database: Database) -> Iterator[tuple[Services, Inbox]]:
    """Services whose writes are relayed, and what another process hears of them."""
    if request.param == "postgresql":
        if database.is_sqlite:
            pytest.skip("LISTEN/NOTIFY is PostgreSQL's (SQLite alone relays nothing)")
        relay: ChangeRelay = PostgresRelay(database)
        inboxes = _postgres_inbox(relay)
    else:
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        except redis.RedisError:
            pytest.skip(f"no Redis at {REDIS_URL}")
        relay = RedisRelay(database, REDIS_URL)
        inboxes = _redis_inbox(relay)
    services = Services.build(database, relay=relay)
    inbox = next(inboxes)
    yield services, inbox
    inboxes.close()
    relay.close()


def test_change_relay__write_rolled_back__nothing_heard_then_committed_write__heard_once(
    relayed: tuple[Services, Inbox],
) -> None:
    services, inbox = relayed
    environment_id = services.environments.get_environment("development").id
    services.features.create_feature(environment_id, Feature("seats", "Seats", FeatureType.NUMERIC))
    services.customers.upsert_company(environment_id, "acme", {})
    assert inbox(2, 2) == [
        ChangeNote(environment_id, ChangeKind.CATALOG),
        ChangeNote(environment_id, ChangeKind.COMPANY, company="acme"),
    ]

    # A write that fails inside its transaction (no such feature) tells no one...
    with pytest.raises(NotFound):
        services.overrides.put_override(
            environment_id, "acme", Override(Entitlement("no_such_feature", value=1))
        )
    # ...and the next one that commits is heard, with what it changed.
    services.overrides.put_override(environment_id, "acme", Override(Entitlement("seats", value=5)))

    assert inbox(2, 1) == [ChangeNote(environment_id, ChangeKind.OVERRIDE, company="acme")]


def test_change_relay__data_imported__heard_as_a_reset_of_every_environment(
    relayed: tuple[Services, Inbox],
) -> None:
    services, inbox = relayed
    transfer = DataTransferService(services.database)
    export = list(transfer.export_lines())  # the default environments only: merged by name

    transfer.import_lines(export)

    assert inbox(2, 1) == [ChangeNote(ALL_ENVIRONMENTS, ChangeKind.RESET)]

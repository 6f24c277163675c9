"""Webhook signing secrets are sealed at rest (`services/secret_box.py`): the stored column is
not the secret, deliveries still verify with the `standardwebhooks` library, keys rotate,
rows written in clear by earlier versions are sealed at start, and a database without a key
gets one beside it (SQLite) or does not serve (PostgreSQL)."""

from __future__ import annotations

import stat
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook

from tests.conftest import SettableClock
from tests.support.secret_key import TEST_SECRET_KEY
from tierkit.server.app import create_app
from tierkit.server.db import Database
from tierkit.server.db.migrate import create_schema
from tierkit.server.db.tables import WebhookEndpointRow
from tierkit.server.secret_keys import secret_box, sqlite_key_file
from tierkit.server.services.container import Services
from tierkit.server.services.data_transfer import DataTransferService
from tierkit.server.services.errors import Conflict
from tierkit.server.services.secret_box import SecretBox, SecretKeyError, generate_key
from tierkit.server.services.webhooks import Endpoint, sign
from tierkit.server.settings import Settings

NEW_KEY = generate_key()


def stored_secret(database: Database, endpoint_id: str) -> str:
    with database.read() as session:
        return session.scalars(
            select(WebhookEndpointRow.secret).where(WebhookEndpointRow.id == endpoint_id)
        ).one()


def new_endpoint(services: Services) -> Endpoint:
    environment = services.environments.get_environment("development")
    endpoint = services.webhooks.create_endpoint(environment.id, url="https://example.com/h")
    services.webhooks.send_test(environment.id, endpoint.id)
    return endpoint


def verified_by_standardwebhooks(services: Services, secret: str) -> bool:
    """Claim the due delivery and check its signature as a receiver would."""
    [due] = services.webhooks.claim_due(timedelta(seconds=30))
    now = int(time.time())  # standardwebhooks checks the timestamp against its own clock
    headers = {
        "webhook-id": due.message_id,
        "webhook-timestamp": str(now),
        "webhook-signature": sign(due.secret, due.message_id, now, due.body),
    }
    return bool(Webhook(secret).verify(due.body, headers)["type"] == "webhook.test")


def with_keys(database: Database, clock: SettableClock, keys: str) -> Services:
    return Services.build(database, clock, secret_box=SecretBox.of_keys(keys))


def test_create_endpoint__stored_column_is_sealed__delivery_verifies_with_shown_secret(
    services: Services, database: Database
) -> None:
    # When an endpoint is created
    endpoint = new_endpoint(services)

    # Then its row holds neither the secret nor its key bytes, but a sealed value
    assert endpoint.secret is not None
    stored = stored_secret(database, endpoint.id)
    assert stored.startswith("aesgcm1:")
    assert endpoint.secret not in stored
    assert endpoint.secret.removeprefix("whsec_") not in stored
    assert len(stored) <= 100  # the column's width
    # and its delivery is signed with the secret the creator was shown
    assert verified_by_standardwebhooks(services, endpoint.secret)


def test_rotated_key__old_secrets_open_then_are_resealed_with_the_new_key(
    database: Database, clock: SettableClock
) -> None:
    # Given an endpoint sealed with the test key
    endpoint = new_endpoint(with_keys(database, clock, TEST_SECRET_KEY))
    assert endpoint.secret is not None
    old = stored_secret(database, endpoint.id)

    # When a new key is put first, the old one kept after it
    rotated = with_keys(database, clock, f"{NEW_KEY},{TEST_SECRET_KEY}")

    # Then the old seal still opens, and reseal moves it to the new key (once)
    assert rotated.webhooks.reseal_secrets() == 1
    assert rotated.webhooks.reseal_secrets() == 0
    resealed = stored_secret(database, endpoint.id)
    assert resealed != old
    assert resealed.split(":")[1] != old.split(":")[1]  # another key id
    # and the new key alone signs the delivery with the same secret
    assert verified_by_standardwebhooks(with_keys(database, clock, NEW_KEY), endpoint.secret)


def test_unknown_key__delivery_waits_unsigned_and_nothing_crashes(
    database: Database, clock: SettableClock
) -> None:
    # Given an endpoint sealed with the test key and a due delivery
    new_endpoint(with_keys(database, clock, TEST_SECRET_KEY))

    # When a process holding another key only looks for due deliveries
    stranger = with_keys(database, clock, NEW_KEY)

    # Then it claims nothing (nothing is sent unsigned), and the right key still can
    assert stranger.webhooks.claim_due(timedelta(seconds=30)) == []
    with pytest.raises(SecretKeyError) as unknown:
        stranger.webhooks.reseal_secrets()
    assert unknown.value.code == "secret_key_unknown"
    assert len(with_keys(database, clock, TEST_SECRET_KEY).webhooks.claim_due(timedelta())) == 1


def test_secret_in_clear_from_an_earlier_version__read_then_sealed_at_reseal(
    services: Services, database: Database
) -> None:
    # Given a row holding its secret in clear, as before sealing existed
    endpoint = new_endpoint(services)
    assert endpoint.secret is not None
    with database.write() as session:
        session.execute(
            update(WebhookEndpointRow)
            .where(WebhookEndpointRow.id == endpoint.id)
            .values(secret=endpoint.secret)
        )

    # When the server starts (reseal)
    assert services.webhooks.reseal_secrets() == 1

    # Then it is sealed, and deliveries still verify with it
    assert stored_secret(database, endpoint.id).startswith("aesgcm1:")
    assert verified_by_standardwebhooks(services, endpoint.secret)


def test_sealed_secret_copied_to_another_endpoint__does_not_open(
    services: Services, database: Database
) -> None:
    # Given two endpoints, the first one's sealed secret copied onto the second's row
    first, second = new_endpoint(services), new_endpoint(services)
    with database.write() as session:
        session.execute(
            update(WebhookEndpointRow)
            .where(WebhookEndpointRow.id == second.id)
            .values(secret=stored_secret(database, first.id))
        )

    # Then only the first's delivery is claimed: the copy is bound to the first's id
    claimed = services.webhooks.claim_due(timedelta(seconds=30))
    assert [due.endpoint_id for due in claimed] == [first.id]


def test_no_key__sqlite_file_gets_a_0600_key_file_beside_it__reused(tmp_path: Path) -> None:
    # Given a SQLite database and no key setting
    url = f"sqlite:///{tmp_path}/tierkit.db"
    settings = Settings(database_url=url, secret_key=None)

    # When two boxes seal and open
    first, second = secret_box(settings), secret_box(settings)
    sealed = first.seal(b"payload", bound_to="whe_1")

    # Then one key file was written beside the database, readable by its owner only
    key_file = sqlite_key_file(url)
    assert key_file == tmp_path / "tierkit.db.secret-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert second.open(sealed, bound_to="whe_1") == b"payload"


def test_no_key__postgresql__the_app_is_not_built() -> None:
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none", secret_key=None)

    with pytest.raises(SecretKeyError) as missing:
        create_app(settings)

    assert missing.value.code == "secret_key_missing"
    assert "TIERKIT_SECRET_KEY" in missing.value.message


def test_import__secrets_sealed_with_a_key_the_target_lacks__refused_nothing_written(
    services: Services, database: Database, tmp_path: Path, clock: SettableClock
) -> None:
    # Given an export holding a sealed webhook secret, and a fresh target with another key
    new_endpoint(services)
    exported = list(DataTransferService(database).export_lines("development"))
    target = Database(f"sqlite:///{tmp_path}/target.db")
    create_schema(target)
    with_keys(target, clock, NEW_KEY).environments.ensure_default_environments()
    before = list(DataTransferService(target).export_lines())

    # When it is imported there
    with pytest.raises(Conflict) as refused:
        DataTransferService(target, SecretBox.of_keys(NEW_KEY)).import_lines(iter(exported))

    # Then it is refused, naming the fix, and nothing is written
    assert refused.value.code == "secret_key_unknown"
    assert "TIERKIT_SECRET_KEY" in refused.value.message
    assert list(DataTransferService(target).export_lines()) == before
    # and with the source's key after the target's, it imports (ciphertext kept as is)
    both = SecretBox.of_keys(f"{NEW_KEY},{TEST_SECRET_KEY}")
    assert DataTransferService(target, both).import_lines(iter(exported)).rows > 0
    target.dispose()

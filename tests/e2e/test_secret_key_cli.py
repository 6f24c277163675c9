"""The key sealing webhook secrets, as an operator meets it: `tierkit serve` on SQLite without
one creates a 0600 key file beside the database and seals with it; restarted with a new key
first, it reseals every secret as it starts; on PostgreSQL without one it refuses to start."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import POSTGRES_URL
from tests.e2e.conftest import run_tierkit
from tierkit.server.db import Database
from tierkit.server.db.migrate import create_schema
from tierkit.server.db.tables import WebhookEndpointRow
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.container import Services
from tierkit.server.services.secret_box import SecretBox, generate_key
from tierkit.server.services.webhooks import open_secret

NO_KEY = {"TIERKIT_SECRET_KEY": ""}


def stored_secret(url: str, endpoint_id: str) -> str:
    database = Database(url)
    try:
        with database.read() as session:
            return session.scalars(
                select(WebhookEndpointRow.secret).where(WebhookEndpointRow.id == endpoint_id)
            ).one()
    finally:
        database.dispose()


def test_secret_key__prints_a_key_that_seals() -> None:
    key = run_tierkit("secret-key").stdout.strip()

    assert SecretBox.of_keys(key).seal(b"x", bound_to="y").startswith("aesgcm1:")


def test_serve_sqlite_without_key__key_file_created__restart_with_new_key_reseals(
    tmp_path: Path, start_server: Any
) -> None:
    # Given a migrated SQLite database and no secret key setting
    url = f"sqlite:///{tmp_path}/tierkit.db"
    database = Database(url)
    create_schema(database)  # as `tierkit migrate` does, without a process's start-up
    services = Services.build(database)
    services.environments.ensure_default_environments()
    key = services.api_keys.create_key("development", KeyKind.SECRET, "test")[1]
    database.dispose()

    # When the server starts and an endpoint is created
    server = start_server("serve", database_url=url, env=NO_KEY)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as api:
        created = api.post("/v1/webhooks", json={"url": "https://example.com/h"})
    assert created.status_code == 201, created.text
    endpoint = created.json()
    server.stop()

    # Then a key file readable by its owner only sits beside the database, and opens the
    # endpoint's sealed secret
    key_file = tmp_path / "tierkit.db.secret-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    file_key = key_file.read_text().strip()
    sealed = stored_secret(url, endpoint["id"])
    assert open_secret(SecretBox.of_keys(file_key), sealed, endpoint["id"]) == endpoint["secret"]

    # When it restarts with a new key first and the file's after it
    new_key = generate_key()
    restarted = start_server(
        "serve", database_url=url, env={"TIERKIT_SECRET_KEY": f"{new_key},{file_key}"}
    )
    restarted.stop()

    # Then it resealed the secret with the new key at start, and says so
    assert "sealed 1 webhook signing secrets" in restarted.log.read_text()
    resealed = stored_secret(url, endpoint["id"])
    assert open_secret(SecretBox.of_keys(new_key), resealed, endpoint["id"]) == endpoint["secret"]


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs TIERKIT_TEST_DATABASE_URL")
def test_serve_postgresql_without_key__exits_1_naming_the_setting() -> None:
    assert POSTGRES_URL is not None

    refused = run_tierkit("serve", database_url=POSTGRES_URL, env=NO_KEY, check=False)

    assert refused.returncode == 1
    assert "No secret key: set TIERKIT_SECRET_KEY" in refused.stderr

"""`tierkit plans migrate` and `tierkit plans versions` against a real server process."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.e2e.conftest import ServerProcess, run_tierkit

StartServer = Callable[..., ServerProcess]


def _server_with_a_new_version(
    empty_database_url: str, start_server: StartServer
) -> tuple[ServerProcess, httpx.Client]:
    """A server whose plan `pro` has five subscribers on version 1 (sso, 10 seats) and a
    version 2 (no sso, 20 seats)."""
    run_tierkit("migrate", database_url=empty_database_url)
    server = start_server("serve", database_url=empty_database_url)
    key = run_tierkit(
        "keys", "create", "-e", "development", database_url=empty_database_url
    ).stdout.strip()
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"})
    for feature in ({"key": "sso", "type": "boolean"}, {"key": "seats", "type": "numeric"}):
        api.post("/v1/features", json=feature | {"name": feature["key"]}).raise_for_status()
    entitlements = [{"feature": "sso", "value": True}, {"feature": "seats", "value": 10}]
    api.post("/v1/plans", json={"key": "pro", "name": "Pro", "entitlements": entitlements})
    for index in range(5):
        api.put(f"/v1/companies/c{index}", json={"plan": "pro"}).raise_for_status()
    changed = [{"feature": "sso", "value": False}, {"feature": "seats", "value": 20}]
    api.patch("/v1/plans/pro", json={"entitlements": changed}).raise_for_status()
    return server, api


def test_plans_migrate__dry_run_then_real_run__reports_then_moves_everyone(
    empty_database_url: str, start_server: StartServer
) -> None:
    # Given five companies on pro version 1 and a version 2
    server, api = _server_with_a_new_version(empty_database_url, start_server)
    key = api.headers["Authorization"].removeprefix("Bearer ")
    remote = ("--url", server.url, "--key", key)

    # When the migration is dry-run
    dry = run_tierkit("plans", "migrate", "pro", "--from", "1", "--to", "2", "--dry-run", *remote)

    # Then the CLI shows the impact and nothing moved
    assert "5 companies change, 5 lose access" in dry.stdout
    assert "sso: yes -> no (loss)" in dry.stdout
    assert "seats: 10 -> 20 (gain)" in dry.stdout
    assert api.get("/v1/plans/pro/versions").json()["data"][1]["subscribers"] == 5

    # When it runs for real in batches of 2
    real = run_tierkit(
        "plans", "migrate", "pro", "--from", "1", "--to", "2", "--batch-size", "2", *remote
    )

    # Then everyone moved, the progress bar counted them, and the versions say so
    assert "Migrated 5 subscriptions of pro from version 1 to 2." in real.stdout
    assert "5/5" in real.stderr
    assert [v["subscribers"] for v in api.get("/v1/plans/pro/versions").json()["data"]] == [5, 0]
    check = api.post("/v1/check", json={"company": "c3", "feature": "seats"}).json()
    assert check["value"] == 20
    listed = run_tierkit("plans", "versions", "pro", *remote).stdout
    assert "2 (current)" in listed
    assert "seats=20" in listed

    # And a bad request gets the server's message and exit code 1
    same = run_tierkit("plans", "migrate", "pro", "--from", "2", "--to", "2", *remote, check=False)
    assert same.returncode == 1
    assert "400: `from_version` and `to_version` are the same version." in same.stderr
    api.close()

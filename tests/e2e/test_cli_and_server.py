"""The `tierkit` command and a real server process, as a user runs them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ServerProcess, run_tierkit
from tierkit.server.services.api_keys import AUTH_CACHE_SECONDS

pytestmark = pytest.mark.e2e

StartServer = Callable[..., ServerProcess]


def test_keys_create__prints_the_key_alone_on_stdout(empty_database_url: str) -> None:
    run_tierkit("migrate", database_url=empty_database_url)

    secret = run_tierkit(
        "keys", "create", "--environment", "development", "--kind", "secret",
        database_url=empty_database_url,
    )  # fmt: skip
    publishable = run_tierkit(
        "keys", "create", "--environment", "production", "--kind", "publishable",
        database_url=empty_database_url,
    )  # fmt: skip

    assert re.fullmatch(r"tk_sec_[A-Za-z0-9]{40}\n", secret.stdout)
    assert re.fullmatch(r"tk_pub_[A-Za-z0-9]{40}\n", publishable.stdout)
    listed = run_tierkit("keys", "list", database_url=empty_database_url).stdout
    assert secret.stdout.strip() not in listed
    assert secret.stdout.strip()[-4:] in listed
    assert "production" in listed


def test_keys_revoke__then_the_key_is_refused(
    empty_database_url: str, start_server: StartServer
) -> None:
    run_tierkit("migrate", database_url=empty_database_url)
    key = run_tierkit(
        "keys", "create", "-e", "development", database_url=empty_database_url
    ).stdout.strip()
    server = start_server("serve", database_url=empty_database_url)
    headers = {"Authorization": f"Bearer {key}"}
    key_id = httpx.get(f"{server.url}/v1/api-keys", headers=headers).json()["data"][0]["id"]

    run_tierkit("keys", "revoke", key_id, database_url=empty_database_url)

    # Another process revoked it: the server's key cache honours that within its bound.
    deadline = time.monotonic() + AUTH_CACHE_SECONDS + 5
    status = 200
    while status != 401 and time.monotonic() < deadline:
        status = httpx.get(f"{server.url}/v1/features", headers=headers).status_code
        time.sleep(0.1)
    assert status == 401
    listed = run_tierkit("keys", "list", "--all", database_url=empty_database_url).stdout
    assert key_id in listed


def test_environments__create_and_list(empty_database_url: str) -> None:
    run_tierkit("migrate", database_url=empty_database_url)

    run_tierkit("environments", "create", "staging", database_url=empty_database_url)
    bad = run_tierkit(
        "environments", "create", "Not Valid", database_url=empty_database_url, check=False
    )

    listed = run_tierkit("environments", "list", database_url=empty_database_url).stdout.split()
    assert listed == ["development", "production", "staging"]
    assert bad.returncode == 1
    assert "not a valid environment name" in bad.stderr


def test_keys_create__for_an_unknown_environment__fails_with_a_message(
    empty_database_url: str,
) -> None:
    run_tierkit("migrate", database_url=empty_database_url)

    result = run_tierkit(
        "keys", "create", "-e", "nope", database_url=empty_database_url, check=False
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert "no environment 'nope'" in result.stderr


def test_serve__before_migrate__refuses_and_says_what_to_run(empty_database_url: str) -> None:
    result = run_tierkit("serve", "--port", "9", database_url=empty_database_url, check=False)

    assert result.returncode == 1
    assert "tierkit migrate" in result.stderr


def test_help__lists_the_commands() -> None:
    result = run_tierkit("--help")

    for command in ("serve", "migrate", "keys", "environments", "demo", "dev"):
        assert command in result.stdout


def test_serve__the_contract_walkthrough__over_real_http(
    empty_database_url: str, start_server: StartServer, request: pytest.FixtureRequest
) -> None:
    """The issue's walkthrough: keys from the CLI, a catalog over HTTP, auth and isolation."""
    run_tierkit("migrate", database_url=empty_database_url)

    def key(environment: str, kind: str) -> str:
        result = run_tierkit(
            "keys", "create", "--environment", environment, "--kind", kind,
            database_url=empty_database_url,
        )  # fmt: skip
        return result.stdout.strip()

    secret, publishable, production = (
        key("development", "secret"),
        key("development", "publishable"),
        key("production", "secret"),
    )
    server = start_server("serve", "--workers", "2", database_url=empty_database_url)
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {secret}"})
    request.addfinalizer(api.close)

    features: list[dict[str, Any]] = [
        {"key": "sso", "name": "SSO", "type": "boolean"},
        {"key": "projects", "name": "Projects", "type": "numeric"},
        {
            "key": "support",
            "name": "Support",
            "type": "enum",
            "options": [{"key": "email", "name": "Email"}, {"key": "chat", "name": "Chat"}],
        },
        {
            "key": "api_calls",
            "name": "API calls",
            "type": "metered",
            "meter": {"event": "api_call", "aggregation": "count", "property": None},
        },
    ]
    for body in features:
        assert api.post("/v1/features", json=body).status_code == 201
    plan = {
        "key": "pro",
        "name": "Pro",
        "entitlements": [
            {"feature": "sso", "value": True},
            {"feature": "projects", "value": 10},
            {"feature": "support", "value": "chat"},
            {"feature": "api_calls", "value": 10000},
        ],
        "prices": [
            {"interval": "month", "currency": "usd", "amount": 2900,
             "regional": [{"currency": "eur", "amount": 2700}]},
        ],
    }  # fmt: skip
    created = api.post("/v1/plans", json=plan)
    assert created.status_code == 201
    assert api.get("/v1/plans/pro").json() == created.json()
    for body in features:
        got = api.get(f"/v1/features/{body['key']}").json()
        assert {k: got[k] for k in body} == body

    as_publishable = httpx.post(
        f"{server.url}/v1/features",
        json={"key": "x", "name": "X", "type": "boolean"},
        headers={"Authorization": f"Bearer {publishable}"},
    )
    no_key = httpx.get(f"{server.url}/v1/plans")
    other_environment = httpx.get(
        f"{server.url}/v1/plans/pro", headers={"Authorization": f"Bearer {production}"}
    )
    assert (as_publishable.status_code, as_publishable.json()["error"]["type"]) == (
        403,
        "permission",
    )
    assert (no_key.status_code, no_key.json()["error"]["type"]) == (401, "authentication")
    assert (other_environment.status_code, other_environment.json()["error"]["code"]) == (
        404,
        "plan_not_found",
    )
    assert httpx.get(f"{server.url}/readyz").json()["status"] == "ready"


def test_dev__as_make_run__loads_the_demo_and_prints_a_working_key(
    empty_database_url: str, start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server("dev", database_url=empty_database_url)

    printed = server.log.read_text()
    match = re.search(r"Bearer (tk_sec_[A-Za-z0-9]{40})", printed)
    assert match is not None, printed
    reply = httpx.get(
        f"{server.url}/v1/plans", headers={"Authorization": f"Bearer {match.group(1)}"}
    )
    assert reply.status_code == 200
    assert [p["key"] for p in reply.json()["data"]][:4] == ["free", "starter", "pro", "enterprise"]
    assert (tmp_path / ".tierkit" / "dev-key").read_text().strip() == match.group(1)

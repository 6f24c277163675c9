"""A local client against a real `tierkit serve` process that is killed and restarted: it
answers the last good state, marked stale, while the server is down, and resynchronises when
it is back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import ServerProcess, run_tierkit
from tests.support.live_server import PATIENT_TIMEOUT
from tierkit import Client, Reason

pytestmark = pytest.mark.e2e

StartServer = Callable[..., ServerProcess]

NOTICE = 5.0
"""Seconds the client may take to notice the server went away, or came back."""


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def test_local_client__server_killed_then_restarted__stale_answers_then_resynchronises(
    tmp_path: Path, start_server: StartServer
) -> None:
    # Given a served database with `projects` (10 on `pro`), `acme` on `pro`, and a local
    # client (quick to reconnect) that has checked `acme`
    url = f"sqlite:///{tmp_path}/tierkit.db"
    run_tierkit("migrate", database_url=url)
    key = run_tierkit(
        "keys", "create", "--environment", "development", "--kind", "secret", database_url=url
    ).stdout.strip()
    server = start_server("serve", database_url=url)
    with Client(api_key=key, base_url=server.url, timeout=PATIENT_TIMEOUT) as remote:
        remote.features.create("projects", name="Projects", type="numeric", default=1)
        remote.plans.create("pro", name="Pro", entitlements=[{"feature": "projects", "value": 10}])
        remote.companies.upsert("acme", plan="pro")
    local = Client(
        api_key=key, base_url=server.url, local=True, backoff=0.05, max_backoff=0.5, timeout=2
    )
    try:
        local.wait_until_ready()
        before = local.check("acme", "projects")
        assert (before.value, before.reason, before.stale) == (10, Reason.PLAN, False)

        # When the server is killed
        server.kill()

        # Then the client soon says it is stale, and answers the last good state, marked so
        assert wait_for(lambda: local.stale, NOTICE)
        kept = local.check("acme", "projects")
        assert (kept.value, kept.allowed, kept.reason, kept.plan) == (10, True, Reason.PLAN, "pro")
        assert (kept.stale, kept.error_code) == (True, None)
        # and a company it never saw gets the fallback
        unseen = local.check("globex", "projects")
        assert (unseen.reason, unseen.error_code) == (Reason.ERROR, "unavailable")
        assert (unseen.allowed, unseen.value, unseen.stale) == (False, None, True)

        # When the server is back on the same port, and an override is set through the API
        restarted = start_server("serve", database_url=url, port=server.port)
        with Client(api_key=key, base_url=restarted.url, timeout=PATIENT_TIMEOUT) as remote:
            remote.overrides.set("acme", "projects", value=50)

        # Then the client is in sync again and answers the override
        assert wait_for(
            lambda: not local.stale and local.check("acme", "projects").value == 50, NOTICE
        )
        after = local.check("acme", "projects")
        assert (after.value, after.reason, after.stale) == (50, Reason.OVERRIDE, False)
    finally:
        local.close()

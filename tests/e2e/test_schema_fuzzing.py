"""Schema fuzzing: schemathesis, driven by the live server's own `/openapi.json`, sends every
route valid and invalid requests (with a secret key, over the demo catalog) and finds no 500,
no reply that breaks its documented schema, and no request accepted that the schema rejects.
A fixed seed keeps the run repeatable; its command line is printed on failure to replay it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import ServerProcess, run_tierkit

StartServer = Callable[..., ServerProcess]
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CHECKS = "not_a_server_error,response_schema_conformance,negative_data_rejection"


def test_schemathesis__every_route_fuzzed__no_500_no_schema_breach_nothing_invalid_accepted(
    empty_database_url: str, start_server: StartServer, tmp_path: Path
) -> None:
    # Given a server on the demo catalog, without background work (deliveries, jobs)
    run_tierkit("migrate", database_url=empty_database_url)
    run_tierkit("demo", database_url=empty_database_url)
    key = run_tierkit(
        "keys", "create", "-e", "development", database_url=empty_database_url
    ).stdout.strip()
    quiet = {"TIERKIT_WEBHOOK_DISPATCH": "false", "TIERKIT_JOBS": "false"}
    server = start_server("serve", database_url=empty_database_url, env=quiet)

    # When schemathesis fuzzes every operation of its OpenAPI (the SSE stream never ends)
    command = [
        SCHEMATHESIS, "run", f"{server.url}/openapi.json",
        "--header", f"Authorization: Bearer {key}",
        "--checks", CHECKS,
        "--phases", "examples,fuzzing",
        "--max-examples", "10",
        "--seed", "20261205",
        "--exclude-path", "/v1/sdk/stream",
        "--request-timeout", "20",
        "--workers", "1",  # one order, so a failure replays; races have their own tests
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )

    # Then every case passed
    replay = " ".join(command).replace(key, "$KEY")
    assert result.returncode == 0, f"{replay}\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    assert "passed" in result.stdout

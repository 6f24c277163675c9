"""`tierkit catalog diff|apply|export` against a real server process: the demo file applied to
an empty environment, diffs with their exit codes, a refused archive, a bad file's line.

On SQLite only: the commands speak HTTP, and the server side runs on both databases in
tests/integration/test_catalog_apply.py."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import httpx

from tests.e2e.conftest import ServerProcess, run_tierkit
from tierkit.server.db import Database
from tierkit.server.db.migrate import create_schema
from tierkit.server.services.api_keys import KeyKind
from tierkit.server.services.container import Services

StartServer = Callable[..., ServerProcess]


def _body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("#")).strip()


def _empty_database_and_key(url: str) -> str:
    """Migrated, with the default environments; a secret key of development."""
    database = Database(url)
    try:
        create_schema(database)
        services = Services.build(database)
        services.environments.ensure_default_environments()
        return services.api_keys.create_key("development", KeyKind.SECRET, "e2e")[1]
    finally:
        database.dispose()


def test_catalog_cli__demo_file_diffed_applied_exported__same_file_back(
    start_server: StartServer, tmp_path: Path
) -> None:
    # Given a server on an empty database, and the demo's catalog file
    database_url = f"sqlite:///{tmp_path}/tierkit.db"
    key = _empty_database_and_key(database_url)
    server = start_server("serve", database_url=database_url)
    remote = ("--url", server.url, "--key", key)
    demo = resources.files("tierkit.server.demo").joinpath("catalog.yaml").read_text()
    file = tmp_path / "catalog.yaml"
    file.write_text(demo)

    # When it is diffed, applied, diffed again and exported
    before = run_tierkit("catalog", "diff", str(file), *remote, check=False)
    run_tierkit("catalog", "apply", str(file), *remote)
    after = run_tierkit("catalog", "diff", str(file), *remote, check=False)
    exported = run_tierkit("catalog", "export", *remote).stdout

    # Then the first diff plans the creates (exit 2), the second none (exit 0), and the
    # export is the file
    assert before.returncode == 2
    assert "+ create plan pro" in before.stdout
    assert "24 to create, 0 to update, 0 to archive" in before.stdout
    assert (after.returncode, "No changes" in after.stdout) == (0, True)
    assert exported.splitlines()[0] == (
        f"# yaml-language-server: $schema={server.url}/catalog.schema.json"
    )
    assert _body(exported) == _body(demo)

    # When a plan is dropped from the file and its price changed
    edited = demo.replace("        amount: 2900\n", "        amount: 3900\n")
    start = edited.index("  - key: ai_pack")
    edited = edited[:start] + edited[edited.index("\nbundles:") :]
    file.write_text(edited)
    diff = run_tierkit("catalog", "diff", str(file), *remote, check=False)
    refused = run_tierkit("catalog", "apply", str(file), *remote, check=False)
    run_tierkit("catalog", "apply", str(file), *remote, "--allow-archive")
    archived = httpx.get(f"{server.url}/v1/plans/ai_pack", headers={"X-Api-Key": key})

    # Then the diff shows both, apply refuses the archive until allowed
    assert diff.returncode == 2
    assert "- archive plan ai_pack" in diff.stdout
    assert "~ update plan pro" in diff.stdout
    assert "prices.0.amount: 2900 -> 3900" in diff.stdout
    assert refused.returncode == 1
    assert "--allow-archive" in refused.stderr
    assert archived.json()["status"] == "archived"

    # When a file has a bad value, the error names its line and path, without a traceback
    bad = edited.replace("{feature: projects, value: 5}", "{feature: projects, value: lots}")
    file.write_text(bad)
    failed = run_tierkit("catalog", "apply", str(file), *remote, check=False)
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "value: lots" in text)
    assert failed.returncode == 1
    assert f"{file}:{line}: plans.1.entitlements.1.value" in failed.stderr
    assert "Traceback" not in failed.stderr

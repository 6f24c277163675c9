"""`tierkit catalog diff|apply|export` against a real server process: the demo file applied to
an empty environment, diffs with their exit codes, a refused archive, a bad file's line."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

from tests.e2e.conftest import ServerProcess, run_tierkit

StartServer = Callable[..., ServerProcess]


def _body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("#")).strip()


def test_catalog_cli__demo_file_diffed_applied_exported__same_file_back(
    empty_database_url: str, start_server: StartServer, tmp_path: Path
) -> None:
    # Given a server on an empty database, and the demo's catalog file
    run_tierkit("migrate", database_url=empty_database_url)
    server = start_server("serve", database_url=empty_database_url)
    key = run_tierkit(
        "keys", "create", "-e", "development", database_url=empty_database_url
    ).stdout.strip()
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

    # Then the diff shows both, apply refuses the archive until allowed
    assert diff.returncode == 2
    assert "- archive plan ai_pack" in diff.stdout
    assert "~ update plan pro" in diff.stdout
    assert '"amount": 2900' in diff.stdout
    assert '"amount": 3900' in diff.stdout
    assert refused.returncode == 1
    assert "--allow-archive" in refused.stderr
    assert "status: archived" in run_tierkit("catalog", "export", *remote).stdout

    # When a file has a bad value, the error names its line and path, without a traceback
    bad = edited.replace("{feature: projects, value: 5}", "{feature: projects, value: lots}")
    file.write_text(bad)
    failed = run_tierkit("catalog", "apply", str(file), *remote, check=False)
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "value: lots" in text)
    assert failed.returncode == 1
    assert f"{file}:{line}: plans.1.entitlements.1.value" in failed.stderr
    assert "Traceback" not in failed.stderr

"""`tierkit export-data` and `tierkit import-data` as an operator runs them: the demo moves to
a freshly migrated database, which then answers the same; a second import is refused, unless
`--replace`."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.e2e.conftest import run_tierkit


def test_export_then_import__demo_moves_to_a_new_database__refused_twice_unless_replace(
    tmp_path: Path,
) -> None:
    # Given the demo in one database and a freshly migrated other one
    source, target = f"sqlite:///{tmp_path}/source.db", f"sqlite:///{tmp_path}/target.db"
    run_tierkit("migrate", database_url=source)
    run_tierkit("demo", database_url=source)
    run_tierkit("migrate", database_url=target)

    # When development is exported to a file and imported into the other database
    export = tmp_path / "development.jsonl"
    run_tierkit("export-data", "-e", "development", "-o", str(export), database_url=source)
    imported = run_tierkit("import-data", str(export), database_url=target)

    # Then it says what it did, and the target exports the same features and plans
    header = orjson.loads(export.read_bytes().splitlines()[0])
    assert f"imported: {sum(header['rows'].values())} rows of development" in imported.stderr
    again = run_tierkit("export-data", "-e", "development", database_url=target).stdout

    def keys(lines: list[str], table: str) -> list[str]:
        rows = [orjson.loads(line) for line in lines[1:]]
        return [r["row"]["key"] for r in rows if r["table"] == table]

    written = export.read_text().splitlines()
    for table in ("features", "plans", "companies"):
        assert keys(again.splitlines(), table) == keys(written, table) != []

    # and a second import is refused with a message, writing nothing
    repeated = run_tierkit("import-data", str(export), database_url=target, check=False)
    assert repeated.returncode == 1
    assert "already holds data in 'development' (" in repeated.stderr
    assert "--replace" in repeated.stderr

    # and with --replace it says what it deleted and leaves the same catalog
    replaced = run_tierkit("import-data", str(export), "--replace", database_url=target)
    assert "replaced:" in replaced.stderr
    assert "rows that development held were deleted" in replaced.stderr
    assert f"imported: {sum(header['rows'].values())} rows of development" in replaced.stderr
    after = run_tierkit("export-data", "-e", "development", database_url=target).stdout
    for table in ("features", "plans", "companies"):
        assert keys(after.splitlines(), table) == keys(written, table)

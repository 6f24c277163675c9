"""`tierkit export-data` / `import-data` (`DataTransferService`): an environment full of every
kind of data moves between databases exactly (SQLite to PostgreSQL and back when PostgreSQL is
configured, SQLite to SQLite otherwise), the target keeps working after it, and a bad or
repeated import writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.engine import Engine

from tests.conftest import POSTGRES_URL, drop_postgres_schema, postgres_schema_url
from tierkit.server.db import Database
from tierkit.server.db.migrate import create_schema
from tierkit.server.demo import load_demo_catalog
from tierkit.server.services.container import Services
from tierkit.server.services.data_transfer import DataTransferService
from tierkit.server.services.errors import Conflict, InvalidRequest
from tierkit.server.services.usage_verify import UsageVerifyService


@pytest.fixture
def target(database: Database, tmp_path: Path, postgres_admin: Engine | None) -> Iterator[Database]:
    """A fresh database as `tierkit migrate` leaves it, of the other backend when there is
    one (PostgreSQL for a SQLite source and the reverse)."""
    to_postgres = POSTGRES_URL is not None and database.dialect_name == "sqlite"
    schema = None
    if to_postgres:
        assert postgres_admin is not None
        schema, url = postgres_schema_url(postgres_admin)
    else:
        url = f"sqlite:///{tmp_path}/target.db"
    fresh = Database(url)
    create_schema(fresh)
    Services.build(fresh).environments.ensure_default_environments()
    yield fresh
    fresh.dispose()
    if schema is not None and postgres_admin is not None:
        drop_postgres_schema(postgres_admin, schema)


@pytest.fixture
def full(api: httpx.Client, services: Services) -> Services:
    """Development holding every kind of data: the demo (catalog, customers, usage), a plan
    version, credits and their ledger, rules, a webhook endpoint with deliveries, audit
    entries, a console user."""
    environment = services.environments.get_environment("development")
    load_demo_catalog(services, environment.id)
    assert api.post("/v1/webhooks", json={"url": "https://example.com/hooks"}).is_success
    assert api.put("/v1/plans/pro/entitlements/projects", json={"value": 77}).is_success
    grant = {"credit": "ai_credits", "amount": 40, "note": "goodwill"}
    assert api.post("/v1/companies/acme/credit-grants", json=grant).is_success
    check = {"company": "acme", "feature": "api_calls", "consume": True, "quantity": 3}
    assert api.post("/v1/check", json=check).status_code == 200
    services.webhooks.fan_out()
    services.console_users.create_user("ops@example.com", "correct horse battery")
    return services


def normalized(lines: list[bytes]) -> dict[str, list[dict[str, Any]]]:
    """Rows by table, environment ids replaced by names (a target keeps its own ids for
    environments it already had)."""
    header = orjson.loads(lines[0])
    names = {environment_id: name for name, environment_id in header["environments"].items()}
    tables: dict[str, list[dict[str, Any]]] = {}
    for line in lines[1:]:
        entry = orjson.loads(line)
        row = entry["row"]
        for column in (
            ("environment_id", "id") if entry["table"] == "environments" else ("environment_id",)
        ):
            if column in row:
                row[column] = names.get(row[column], row[column])
        tables.setdefault(entry["table"], []).append(row)
    return tables


def test_export_import__every_kind_of_data__the_same_rows_in_the_other_database(
    full: Services, database: Database, target: Database
) -> None:
    # When the whole database is exported and imported into a fresh one
    exported = list(DataTransferService(database).export_lines())
    progress: list[tuple[int, int]] = []
    result = DataTransferService(target).import_lines(
        iter(exported), progress=lambda *p: progress.append(p)
    )

    # Then the target exports the same rows, table by table
    again = list(DataTransferService(target).export_lines())
    source_rows, target_rows = normalized(exported), normalized(again)
    assert source_rows.keys() == target_rows.keys()
    for table in source_rows.keys() - {"environments"}:
        assert target_rows[table] == source_rows[table], table
    # (the target's own development and production took the rows: their ids and times stay)
    names = [
        sorted(row["name"] for row in rows["environments"]) for rows in (source_rows, target_rows)
    ]
    assert names[0] == names[1] == ["development", "production"]
    assert {"events", "credit_ledger", "plan_versions", "webhook_deliveries", "audit_log"} <= set(
        source_rows
    )
    assert result.rows == len(exported) - 1
    assert progress[-1] == (result.rows, result.rows)

    # and it keeps working: a new company's audit entry and webhook event are numbered after
    # the imported ones
    services = Services.build(target)
    environment = services.environments.get_environment("development")
    _, created = services.customers.upsert_company(environment.id, "newco", {"name": "New Co"})
    assert created
    assert services.customers.get_company(environment.id, "newco").plan == "free"


def test_export_one_environment__only_its_rows(full: Services, database: Database) -> None:
    lines = list(DataTransferService(database).export_lines("production"))

    header = orjson.loads(lines[0])
    assert list(header["environments"]) == ["production"]
    assert [orjson.loads(line)["table"] for line in lines[1:]] == ["environments"]
    development = normalized(list(DataTransferService(database).export_lines("development")))
    assert "console_users" not in development  # global rows go with the whole database only
    assert {row["environment_id"] for row in development["companies"]} == {"development"}


def test_import__twice_or_cut_short_or_not_an_export__refused_and_nothing_written(
    full: Services, database: Database, target: Database
) -> None:
    exported = list(DataTransferService(database).export_lines("development"))
    before = list(DataTransferService(target).export_lines())

    with pytest.raises(InvalidRequest) as cut:
        DataTransferService(target).import_lines(iter(exported[:-5]))
    assert cut.value.code == "truncated_export"
    with pytest.raises(InvalidRequest) as foreign:
        DataTransferService(target).import_lines(iter([b'{"hello": 1}', *exported[1:]]))
    assert foreign.value.code == "not_an_export"
    assert list(DataTransferService(target).export_lines()) == before

    DataTransferService(target).import_lines(iter(exported))
    with pytest.raises(Conflict) as repeated:
        DataTransferService(target).import_lines(iter(exported))
    assert repeated.value.code == "environment_not_empty"


# Importing into an environment that already holds data


def without_numbering(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Rows without the numeric ids an import may renumber (nor the columns that follow them)."""
    dropped = {"seq", "id", "latest_seq", "event_seq", "counter_id"}
    return {
        table: [
            {k: v for k, v in row.items() if k not in dropped or isinstance(v, str)} for row in rows
        ]
        for table, rows in tables.items()
    }


def test_import__into_environment_holding_data__refused_naming_what_it_holds_nothing_written(
    full: Services, database: Database, target: Database
) -> None:
    # Given a target whose development holds the demo (catalog, companies, usage)
    services = Services.build(target)
    load_demo_catalog(services, services.environments.get_environment("development").id)
    before = list(DataTransferService(target).export_lines())
    exported = list(DataTransferService(database).export_lines("development"))

    # When development's export is imported without --replace
    with pytest.raises(Conflict) as refused:
        DataTransferService(target).import_lines(iter(exported))

    # Then it is refused, naming the environment and what it holds, and nothing is written
    assert refused.value.code == "environment_not_empty"
    assert "'development' (" in refused.value.message
    assert "--replace" in refused.value.message
    held = {detail.param for detail in refused.value.details}
    assert {"development.features", "development.companies"} <= held
    assert list(DataTransferService(target).export_lines()) == before


def test_import_replace__environment_holding_data__becomes_the_files_others_untouched(
    full: Services, database: Database, target: Database
) -> None:
    # Given a target whose development and production both hold the demo (so its events,
    # ledger and audit log already use the numeric ids the file's rows have)
    services = Services.build(target)
    development = services.environments.get_environment("development")
    load_demo_catalog(services, development.id)
    load_demo_catalog(services, services.environments.get_environment("production").id)
    production_before = list(DataTransferService(target).export_lines("production"))
    exported = list(DataTransferService(database).export_lines("development"))

    # When development's export is imported with replace
    result = DataTransferService(target).import_lines(iter(exported), replace=True)

    # Then development holds exactly the file's rows (numeric ids moved past production's)
    assert result.replaced["development"] > 0
    assert {"events", "audit_log"} <= set(result.renumbered)
    again = list(DataTransferService(target).export_lines("development"))
    source_rows, target_rows = normalized(exported), normalized(again)
    assert source_rows.keys() == target_rows.keys()
    for table in source_rows.keys() - {"environments"}:
        assert without_numbering(target_rows)[table] == without_numbering(source_rows)[table], table
    # with its numbering consistent: every counter equals a recount of its moved events
    report = UsageVerifyService(target).verify("development")
    assert report.counters > 0
    assert report.drifts == []
    # and production is untouched
    assert list(DataTransferService(target).export_lines("production")) == production_before
    # and the environment keeps working: new rows are numbered after the imported ones
    _, created = services.customers.upsert_company(development.id, "newco", {"name": "New Co"})
    assert created


def test_import__into_empty_target__numeric_ids_kept_not_renumbered(
    full: Services, database: Database, target: Database
) -> None:
    exported = list(DataTransferService(database).export_lines("development"))

    result = DataTransferService(target).import_lines(iter(exported))

    assert (result.replaced, result.renumbered) == ({}, [])
    assert (
        normalized(list(DataTransferService(target).export_lines("development")))["events"]
        == normalized(exported)["events"]
    )

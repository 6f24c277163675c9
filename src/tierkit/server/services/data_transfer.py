"""Export and import of a database's data, all of it or one environment's, streamed as JSON
Lines: a header, then one line per row, tables in dependency order. It moves a deployment
between SQLite and PostgreSQL (or backs one up) exactly: ids, timestamps and JSON are kept.

Import writes in one transaction into a database at the same schema revision. An environment
of the file whose name the target already has takes the file's rows if it holds nothing yet
(as a fresh database's `development` and `production`); if it holds data, the import is
refused with what it holds, unless `replace` is set: then its rows are deleted first, in the
same transaction (the environment keeps its id; its keys become the file's). Numeric ids
(events, the ledger, the audit log...) are kept when the target holds none as high; else the
file's are renumbered after the target's, in order, and the columns that refer to them follow.

Webhook signing secrets travel sealed, as stored: the target must hold the key that sealed
them (the import checks each opens, and refuses otherwise), so an export holds no secret in
clear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Table, delete, func, insert, select, text, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tierkit.server.db import Database
from tierkit.server.db.migrate import head_revision
from tierkit.server.db.tables import Base, EnvironmentRow
from tierkit.server.db.types import UTCDateTime
from tierkit.server.db.upserts import is_postgres
from tierkit.server.services.changes import ALL_ENVIRONMENTS, ChangeKind, ChangeNote, staging
from tierkit.server.services.environments import find_environment_row
from tierkit.server.services.errors import Conflict, DomainError, ErrorDetail, InvalidRequest
from tierkit.server.services.secret_box import SecretBox
from tierkit.server.services.webhooks import open_secret

FORMAT = "tierkit-data"
FORMAT_VERSION = 1
_RUNTIME = frozenset({"job_leases", "console_sessions"})
"""Process state, not data: leases of running jobs and console sign-ins."""
_GLOBAL = frozenset({"console_users"})
"""Tables of no environment: exported with the whole database only."""
_BATCH = 1000
_KEYS = orjson.OPT_NON_STR_KEYS
"""SQLAlchemy's names are `str` subclasses, which orjson takes as keys only with this."""

Progress = Callable[[int, int], None]
"""`progress(rows_done, rows_total)`."""


_RENUMBERED_WITH = {
    ("webhook_deliveries", "event_seq"): "webhook_events",
    ("usage_uniques", "counter_id"): "usage_counters",
    ("usage_counters", "latest_seq"): "events",
    ("credit_ledger", "event_seq"): "events",
}
"""Columns holding a numeric id of another table (a foreign key or not): renumbered with it."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    environments: list[str]
    rows: int
    replaced: dict[str, int]
    """Rows deleted from each replaced environment (with `replace`)."""
    renumbered: list[str]
    """Tables whose numeric ids were moved past the target's own."""


def _tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in _RUNTIME]


def _scope(table: Table, environment_ids: list[str]) -> ColumnElement[bool] | None:
    """Which of the table's rows belong to the environments: by `environment_id`, or through
    the first foreign key that leads to a table that has one. None: no path (global rows)."""
    if table.name == "environments":
        return table.c.id.in_(environment_ids)
    if "environment_id" in table.c:
        return table.c.environment_id.in_(environment_ids)
    for key in sorted(table.foreign_keys, key=lambda fk: fk.parent.name):
        parent = key.column.table
        parent_scope = _scope(parent, environment_ids)
        if parent_scope is not None and isinstance(parent, Table):
            return key.parent.in_(select(key.column).where(parent_scope))
    return None


def _selected(table: Table, environment_ids: list[str] | None) -> ColumnElement[bool] | None:
    """The rows to export: all of them for the whole database, else the environments' own
    (global tables then export nothing: None)."""
    if environment_ids is None:
        return true()
    return _scope(table, environment_ids)


class DataTransferService:
    def __init__(self, database: Database, secret_box: SecretBox | None = None) -> None:
        """`secret_box`: the target's, to check that imported webhook secrets open."""
        self._database = database
        self._box = secret_box

    def export_lines(
        self, environment: str | None = None, progress: Progress | None = None
    ) -> Iterator[bytes]:
        """The header, then each row, as JSON lines (without their newline)."""
        with self._database.read() as session:
            environment_ids = self._environment_ids(session, environment)
            scopes = {
                table.name: where
                for table in _tables()
                if (where := _selected(table, environment_ids)) is not None
            }
            counts: dict[str, int] = {
                table.name: session.scalar(
                    select(func.count()).select_from(table).where(scopes[table.name])
                )
                or 0
                for table in _tables()
                if table.name in scopes
            }
            environments = session.execute(
                select(EnvironmentRow.id, EnvironmentRow.name)
                .where(
                    true() if environment_ids is None else EnvironmentRow.id.in_(environment_ids)
                )
                .order_by(EnvironmentRow.name)
            ).all()
            total = sum(counts.values())
            yield orjson.dumps(
                {
                    "format": FORMAT,
                    "version": FORMAT_VERSION,
                    "schema": head_revision(),
                    "environments": {name: id_ for id_, name in environments},
                    "rows": counts,
                },
                option=_KEYS,
            )
            done = 0
            for table in _tables():
                if table.name not in scopes:
                    continue
                rows = session.execute(
                    select(table).where(scopes[table.name]).order_by(*table.primary_key.columns),
                    execution_options={"yield_per": _BATCH},
                ).mappings()
                for row in rows:
                    yield orjson.dumps({"table": table.name, "row": dict(row)}, option=_KEYS)
                    done += 1
                    if progress is not None and done % _BATCH == 0:
                        progress(done, total)
            if progress is not None:
                progress(done, total)

    def _environment_ids(self, session: Session, environment: str | None) -> list[str] | None:
        if environment is None:
            return None
        return [find_environment_row(session, environment).id]

    def import_lines(
        self,
        lines: Iterable[bytes],
        progress: Progress | None = None,
        *,
        replace: bool = False,
    ) -> ImportResult:
        """Write an export's rows in one transaction (nothing on any error). `replace`: an
        environment of the target that holds data is emptied first instead of refused."""
        stream = iter(line for line in lines if line.strip())
        header = _header(next(stream, b""))
        total = sum(int(count) for count in header["rows"].values())
        tables = {table.name: table for table in _tables()}
        exported: dict[str, str] = header["environments"]
        # Rows of every kind arrive at once: other processes drop everything they cached.
        reset = ChangeNote(ALL_ENVIRONMENTS, ChangeKind.RESET)
        with staging([reset]), self._database.write() as session:
            renamed = self._environments_to_merge(session, exported)
            replaced = self._empty(session, renamed, replace=replace)
            numbering = _Renumbering(session)
            pending: list[dict[str, Any]] = []
            current: Table | None = None
            done = 0
            for number, line in enumerate(stream, start=2):
                table, row = _row(line, number, tables)
                if table.name == "environments" and row["id"] in renamed:
                    done += 1
                    continue  # merged into the target's environment of that name
                if "environment_id" in row:
                    row["environment_id"] = renamed.get(
                        row["environment_id"], row["environment_id"]
                    )
                numbering.apply(table, row)
                if table.name == "webhook_endpoints":
                    self._check_secret(row, number)
                if table is not current:
                    self._write(session, current, pending)
                    current, pending = table, []
                pending.append(row)
                done += 1
                if len(pending) >= _BATCH:
                    self._write(session, current, pending)
                    pending = []
                    if progress is not None:
                        progress(done, total)
            self._write(session, current, pending)
            if done != total:
                raise InvalidRequest(
                    f"The file is cut short: its header announces {total} rows, it holds {done}.",
                    code="truncated_export",
                )
            if is_postgres(session):
                _advance_sequences(session)
        if progress is not None:
            progress(done, total)
        return ImportResult(sorted(exported), done, replaced, numbering.renumbered)

    def _check_secret(self, row: dict[str, Any], number: int) -> None:
        if self._box is None or not isinstance(row.get("secret"), str):
            return
        try:
            open_secret(self._box, row["secret"], str(row["id"]))
        except DomainError as error:
            raise Conflict(
                f"Line {number}: {error.message} Import with the secret key(s) of the database "
                "that wrote the export (TIERKIT_SECRET_KEY=<this one's>,<that one's>).",
                code="secret_key_unknown",
            ) from error

    def _environments_to_merge(self, session: Session, exported: dict[str, str]) -> dict[str, str]:
        """Exported environment id -> the target's id, for the names the target already has."""
        rows = session.execute(
            select(EnvironmentRow.name, EnvironmentRow.id).where(
                EnvironmentRow.name.in_(list(exported))
            )
        ).all()
        existing: dict[str, str] = {row.name: row.id for row in rows}
        return {exported[name]: environment_id for name, environment_id in existing.items()}

    def _empty(self, session: Session, renamed: dict[str, str], *, replace: bool) -> dict[str, int]:
        """Make the target's environments that the file fills empty (`replace`), or refuse if
        one holds data, naming what it holds. Rows deleted per environment name."""
        rows = session.execute(
            select(EnvironmentRow.id, EnvironmentRow.name).where(
                EnvironmentRow.id.in_(list(renamed.values()))
            )
        ).all()
        names = {row.id: row.name for row in rows}
        held: dict[str, dict[str, int]] = {}
        for environment_id in renamed.values():
            for table in _tables():
                scope = _scope(table, [environment_id])
                if table.name == "environments" or scope is None:
                    continue
                count = session.scalar(select(func.count()).select_from(table).where(scope))
                if count:
                    held.setdefault(names[environment_id], {})[table.name] = count
        if held and not replace:
            raise Conflict(
                "The target already holds data in "
                + "; ".join(
                    f"'{name}' ({', '.join(f'{n} {t}' for t, n in sorted(tables.items()))})"
                    for name, tables in sorted(held.items())
                )
                + ". Import into an empty environment, or replace its contents with the "
                "file's (`--replace`: deleted and written in one transaction).",
                code="environment_not_empty",
                details=[
                    ErrorDetail(f"{name}.{table}", f"{count} rows")
                    for name, tables in sorted(held.items())
                    for table, count in sorted(tables.items())
                ],
            )
        by_id = {name: environment_id for environment_id, name in names.items()}
        for name in held:
            for table in reversed(_tables()):
                scope = _scope(table, [by_id[name]])
                if table.name != "environments" and scope is not None:
                    session.execute(delete(table).where(scope))
        return {name: sum(tables.values()) for name, tables in held.items()}

    def _write(self, session: Session, table: Table | None, rows: list[dict[str, Any]]) -> None:
        if table is None or not rows:
            return
        try:
            session.execute(insert(table), rows)
        except IntegrityError as error:
            raise Conflict(
                f"The target database already holds rows of {table.name} with the same keys "
                "as the file's; import into a database without them.",
                code="rows_exist",
            ) from error


class _Renumbering:
    """Moves a table's numeric ids past the target's own when they would collide. Rows of a
    table come in id order, so its first row tells the file's lowest id."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._offsets: dict[str, int] = {}
        self.renumbered: list[str] = []

    def apply(self, table: Table, row: dict[str, Any]) -> None:
        serial = _serial_column(table)
        if serial is not None and table.name not in self._offsets:
            self._offsets[table.name] = self._offset(table, serial, row[serial])
        if serial is not None:
            row[serial] += self._offsets[table.name]
        for (name, column), source in _RENUMBERED_WITH.items():
            if name == table.name and row.get(column) is not None:
                row[column] += self._offsets.get(source, 0)

    def _offset(self, table: Table, serial: str, lowest: int) -> int:
        highest = self._session.scalar(select(func.max(table.c[serial]))) or 0
        if highest < lowest:
            return 0
        self.renumbered.append(table.name)
        return highest - lowest + 1


def _serial_column(table: Table) -> str | None:
    """The name of the table's autoincremented integer key, if it has one."""
    columns = list(table.primary_key.columns)
    if len(columns) == 1 and columns[0].autoincrement is True:
        return columns[0].name
    if len(columns) == 1 and columns[0].type.python_type is int and not columns[0].foreign_keys:
        return columns[0].name
    return None


def _header(line: bytes) -> dict[str, Any]:
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidRequest(
            "This is not a Tierkit data export (its first line is not the export header).",
            code="not_an_export",
        )
    if header.get("version") != FORMAT_VERSION:
        raise InvalidRequest(
            f"This export has format version {header.get('version')}; this Tierkit reads "
            f"version {FORMAT_VERSION}.",
            code="unsupported_export_version",
        )
    if header.get("schema") != head_revision():
        raise InvalidRequest(
            f"This export is of schema {header.get('schema')}, the database is at "
            f"{head_revision()}: import with the Tierkit version that wrote it, then upgrade.",
            code="schema_mismatch",
        )
    return header


def _row(line: bytes, number: int, tables: dict[str, Table]) -> tuple[Table, dict[str, Any]]:
    try:
        entry = orjson.loads(line)
        table = tables[entry["table"]]
        row = {name: _decoded(table, name, value) for name, value in entry["row"].items()}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise InvalidRequest(
            f"Line {number} of the export is not a row of a known table ({error}).",
            code="invalid_export_line",
        ) from error
    return table, row


def _decoded(table: Table, name: str, value: Any) -> Any:
    if isinstance(value, str) and isinstance(table.c[name].type, UTCDateTime):
        return datetime.fromisoformat(value)
    return value


def _advance_sequences(session: Session) -> None:
    """PostgreSQL's sequences continue after the imported ids (SQLite's rowids do by
    themselves)."""
    for table in _tables():
        for column in table.primary_key.columns:
            sequence = session.scalar(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": column.name},
            )
            if sequence is None:
                continue
            session.execute(
                text(
                    f'SELECT setval(:sequence, COALESCE((SELECT max("{column.name}") '  # noqa: S608
                    f'FROM "{table.name}"), 0) + 1, false)'
                ),
                {"sequence": sequence},
            )

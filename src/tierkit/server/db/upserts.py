"""Dialect-specific statements the services need on both databases: inserts that skip rows
conflicting with a unique constraint, row locks, and membership in a long list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import ColumnElement, Table, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from tierkit.server.db.tables import Base, CompanyRow
from tierkit.server.db.text_arrays import text_array_parameters


def insert_ignoring_conflicts(session: Session, entity: type[Base], columns: Sequence[str]) -> Any:
    """`INSERT ... ON CONFLICT (columns) DO NOTHING` into the entity's table (a Core insert:
    executed with a list of rows, it becomes one multi-row statement per thousand rows)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = cast(Table, entity.__table__)
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(columns))


def is_in(
    session: Session,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    values: Sequence[str],
) -> ColumnElement[bool]:
    """`column IN values` as one parameter whatever the number of values (an array on
    PostgreSQL, a JSON array on SQLite), so the statement is compiled and prepared once
    instead of once per length: batches look up a hundred companies at a time."""
    if is_postgres(session):
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    each = func.json_each(bindparam(None, orjson.dumps(list(values)).decode())).table_valued(
        "value"
    )
    return column.in_(select(each.c.value))


B = TypeVar("B", bound=Base)


def insert_unless_exists(
    session: Session, entity: type[B], values: dict[str, Any], unique: Sequence[str]
) -> tuple[B, bool]:
    """The row whose `unique` columns hold these values: inserted with `values` unless it
    exists, also when a concurrent transaction inserts it first (PostgreSQL waits for that
    one to end, then skips); and whether this call inserted it. Two first PUTs of one key
    at once thus make one row, never a unique violation."""
    table = cast(Table, entity.__table__)
    statement = insert_ignoring_conflicts(session, entity, unique).values(**values)
    inserted = session.execute(statement.returning(table.c.id)).scalar()
    found = session.scalars(
        select(entity).where(*(table.c[column] == values[column] for column in unique))
    ).one()
    return found, inserted is not None


def lock_companies(session: Session, company_ids: Sequence[str]) -> set[str]:
    """Hold the companies' rows until the transaction ends, so usage writers for one company
    take turns (in id order: two batches never wait on each other crosswise). Returns the ids
    locked: those of `company_ids` that still exist (ingestion may hold ids read in an earlier
    transaction). SQLite needs no row locks: a write transaction there holds the whole
    database, so those found cannot vanish before it ends."""
    if not company_ids:
        return set()
    if not is_postgres(session):
        found = select(CompanyRow.id).where(is_in(session, CompanyRow.id, company_ids))
        return set(session.scalars(found))
    # Straight to the driver: ingestion locks a hundred companies a batch, many times a second.
    rows = execute_on_postgres(session, _LOCK_COMPANIES, text_array_parameters("i", company_ids))
    return {company_id for (company_id,) in rows}


_LOCK_COMPANIES = """
SELECT id FROM companies
WHERE id = ANY((string_to_array(%(i)s, %(i_separator)s, %(i_null)s))[2:])
ORDER BY id
FOR UPDATE
"""


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error, raised through SQLAlchemy or by psycopg directly
    (`execute_on_postgres`); None for anything else."""
    state = getattr(error, "sqlstate", None) or getattr(
        getattr(error, "orig", None), "sqlstate", None
    )
    return state if isinstance(state, str) else None


def violated_constraint(error: BaseException) -> str | None:
    """The constraint a unique violation names (PostgreSQL), or None."""
    original = getattr(error, "orig", error)
    name = getattr(getattr(original, "diag", None), "constraint_name", None)
    return name if isinstance(name, str) else None


def execute_on_postgres(session: Session, sql: str, parameters: dict[str, Any]) -> list[Any]:
    """Run `sql` on the session's psycopg connection, bypassing SQLAlchemy's statement cache,
    for whole-batch statements over arrays (`%(name)b`: binary, no per-element escaping).
    Returns the rows it returns, if any."""
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, parameters)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        cursor.close()


def execute_many_on_sqlite(session: Session, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run `sql` once per row on the session's sqlite3 connection, with the rows' values as
    they are (already in the column's stored form): SQLAlchemy's per-value processing costs
    more than SQLite's insert."""
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()

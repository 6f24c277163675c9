"""Users: upserted by their external key, with merged traits and memberships of companies."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import Scalar
from tierkit.engine.customers import merge_traits
from tierkit.server.db import Database
from tierkit.server.db.tables import CompanyRow, MembershipRow, UserRow
from tierkit.server.db.upserts import insert_unless_exists
from tierkit.server.services.audit import ChangeLog
from tierkit.server.services.catalog_cache import changes_customer
from tierkit.server.services.clock import Clock
from tierkit.server.services.companies import get_company_row
from tierkit.server.services.errors import ErrorDetail, InvalidRequest, NotFound
from tierkit.server.services.pagination import Page, paginate, to_page
from tierkit.server.services.rows import new_customer_values
from tierkit.server.services.search import matches_text


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    key: str
    name: str | None
    traits: Mapping[str, Scalar]
    companies: list[str]
    created_at: datetime
    updated_at: datetime


def _companies_of(session: Session, user_id: str) -> list[str]:
    return list(
        session.scalars(
            select(CompanyRow.key)
            .join(MembershipRow, MembershipRow.company_id == CompanyRow.id)
            .where(MembershipRow.user_id == user_id)
            .order_by(CompanyRow.key)
        )
    )


def _to_record(session: Session, row: UserRow) -> UserRecord:
    return UserRecord(
        row.id,
        row.key,
        row.name,
        dict(row.traits),
        _companies_of(session, row.id),
        row.created_at,
        row.updated_at,
    )


def _find(session: Session, environment_id: str, key: str) -> UserRow:
    row = session.scalar(
        select(UserRow).where(UserRow.environment_id == environment_id, UserRow.key == key)
    )
    if row is None:
        raise NotFound(f"There is no user {key!r}.", code="user_not_found")
    return row


def company_member_keys(session: Session, company_id: str) -> list[str]:
    return list(
        session.scalars(
            select(UserRow.key)
            .join(MembershipRow, MembershipRow.user_id == UserRow.id)
            .where(MembershipRow.company_id == company_id)
            .order_by(UserRow.key)
        )
    )


def _set_memberships(
    session: Session, row: UserRow, company_keys: Sequence[str], now: datetime
) -> None:
    rows = {}
    missing = []
    for index, key in enumerate(company_keys):
        company = get_company_row(session, row.environment_id, key)
        if company is None:
            missing.append(ErrorDetail(f"companies.{index}", f"There is no company {key!r}."))
        else:
            rows[company.id] = company
    if missing:
        raise InvalidRequest(
            missing[0].message if len(missing) == 1 else f"{len(missing)} companies do not exist.",
            code="company_not_found",
            param=missing[0].param,
            details=missing,
        )
    session.execute(delete(MembershipRow).where(MembershipRow.user_id == row.id))
    session.add_all(
        MembershipRow(user_id=row.id, company_id=company_id, created_at=now) for company_id in rows
    )


def upsert_user_in(
    session: Session, environment_id: str, key: str, fields: Mapping[str, Any], now: datetime
) -> tuple[UserRow, bool]:
    """`UserService.upsert_user` inside a caller's transaction."""
    row = session.scalar(
        select(UserRow).where(UserRow.environment_id == environment_id, UserRow.key == key)
    )
    created = False
    if row is None:
        values = new_customer_values("usr", environment_id, key, now)
        row, created = insert_unless_exists(session, UserRow, values, ["environment_id", "key"])
    before = None if created else _to_record(session, row)
    if "name" in fields:
        row.name = fields["name"]
    if fields.get("traits"):
        row.traits = merge_traits(row.traits, fields["traits"])
    row.updated_at = now
    session.flush()
    if fields.get("companies") is not None:
        _set_memberships(session, row, fields["companies"], now)
        session.flush()
    ChangeLog(session, environment_id, now).record(
        "user.created" if created else "user.updated",
        ("user", key),
        before,
        _to_record(session, row),
    )
    return row, created


def add_membership_in(session: Session, user: UserRow, company_id: str, now: datetime) -> None:
    """Make the user a member of the company, keeping its other memberships."""
    if session.get(MembershipRow, (user.id, company_id)) is None:
        session.add(MembershipRow(user_id=user.id, company_id=company_id, created_at=now))
        session.flush()


class UserService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        on_customer_change: Callable[[str, str], None] = lambda environment_id, key: None,
    ) -> None:
        self._db = database
        self._clock = clock
        self._customer_changed = on_customer_change

    @changes_customer
    def upsert_user(
        self, environment_id: str, key: str, fields: Mapping[str, Any]
    ) -> tuple[UserRecord, bool]:
        """Create or update a user: `name`, `traits` (merged, `None` removes), `companies`
        (the whole set of memberships, when given)."""
        with self._db.write() as session:
            row, created = upsert_user_in(session, environment_id, key, fields, self._clock())
            return _to_record(session, row), created

    def get_user(self, environment_id: str, key: str) -> UserRecord:
        with self._db.read() as session:
            return _to_record(session, _find(session, environment_id, key))

    @changes_customer
    def delete_user(self, environment_id: str, key: str) -> None:
        with self._db.write() as session:
            row = _find(session, environment_id, key)
            before = _to_record(session, row)
            session.delete(row)
            ChangeLog(session, environment_id, self._clock()).record(
                "user.deleted", ("user", key), before, None
            )

    def list_users(
        self,
        environment_id: str,
        *,
        company: str | None = None,
        q: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[UserRecord]:
        with self._db.read() as session:
            query = select(UserRow).where(UserRow.environment_id == environment_id)
            if company is not None:
                company_row = get_company_row(session, environment_id, company)
                query = query.where(
                    UserRow.id.in_(
                        select(MembershipRow.user_id).where(
                            MembershipRow.company_id == (company_row.id if company_row else "")
                        )
                    )
                )
            if q:
                query = query.where(matches_text(q, UserRow.key, UserRow.name))
            query, limit = paginate(query, [UserRow.key], cursor, limit)
            page = to_page(session.scalars(query).all(), limit, lambda row: [row.key])
            return Page([_to_record(session, row) for row in page.items], page.next_cursor)

"""Credits: credit types, grants to companies, debits in burn order, and the ledger in which
every change is a row, so that a balance is always the sum of its ledger."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tierkit.engine.catalog import PlanCreditGrant
from tierkit.engine.credits import Grant, GrantSource, balances, plan_debit
from tierkit.engine.customers import Subscription
from tierkit.engine.evaluate import Catalog, current_plans
from tierkit.engine.periods import Unit, cycle_bounds
from tierkit.server.db import Database
from tierkit.server.db.ids import new_id
from tierkit.server.db.tables import (
    CompanyRow,
    CreditBundleRow,
    CreditGrantRow,
    CreditLedgerRow,
    CreditTypeRow,
)
from tierkit.server.db.upserts import lock_companies
from tierkit.server.services.audit import ChangeLog
from tierkit.server.services.catalog_cache import CatalogCache, changes_catalog, changes_customer
from tierkit.server.services.clock import Clock
from tierkit.server.services.companies import find_company_row
from tierkit.server.services.errors import Conflict, InvalidRequest, NotFound
from tierkit.server.services.pagination import Page, paginate, to_page
from tierkit.server.services.subscriptions import company_subscription_rows, to_subscription


@dataclass(frozen=True, slots=True)
class CreditTypeRecord:
    id: str
    key: str
    name: str
    unit: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewGrant:
    credit: str
    amount: float
    expires_at: datetime | None = None
    priority: int = 0
    source: GrantSource = GrantSource.MANUAL
    note: str = ""


@dataclass(frozen=True, slots=True)
class GrantRecord:
    id: str
    company: str
    credit: str
    amount: float
    remaining: float
    priority: int
    source: str
    note: str
    expires_at: datetime | None
    voided_at: datetime | None
    created_at: datetime
    status: str
    """`active`, `depleted`, `expired` or `voided`."""


@dataclass(frozen=True, slots=True)
class NewBundle:
    key: str
    name: str
    credit: str
    amount: float
    currency: str
    price: int
    expires_in_days: int | None = None


@dataclass(frozen=True, slots=True)
class BundleRecord:
    id: str
    key: str
    name: str
    credit: str
    amount: float
    currency: str
    price: int
    expires_in_days: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Purchase:
    bundle: BundleRecord
    grant: GrantRecord


@dataclass(frozen=True, slots=True)
class CreditBalance:
    credit: str
    balance: float
    next_expiry: datetime | None
    """When the next grant that still counts expires."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    credit: str
    grant: str
    kind: str
    amount: float
    at: datetime
    event: str | None
    feature: str | None
    note: str


def credit_not_found(key: str, param: str | None = None) -> NotFound | InvalidRequest:
    message = f"There is no credit type {key!r}; create it with POST /v1/credits."
    if param is not None:
        return InvalidRequest(message, code="credit_not_found", param=param)
    return NotFound(message, code="credit_not_found")


def _credit_type(session: Session, environment_id: str, key: str) -> CreditTypeRow | None:
    return session.scalar(
        select(CreditTypeRow).where(
            CreditTypeRow.environment_id == environment_id, CreditTypeRow.key == key
        )
    )


def to_grant(row: CreditGrantRow) -> Grant:
    return Grant(
        id=row.id,
        credit=row.credit_type.key,
        remaining=row.remaining,
        created_at=row.created_at,
        priority=row.priority,
        expires_at=row.expires_at,
        voided=row.voided_at is not None,
    )


def company_grant_rows(session: Session, company_id: str) -> Sequence[CreditGrantRow]:
    return session.scalars(
        select(CreditGrantRow)
        .where(CreditGrantRow.company_id == company_id)
        .order_by(CreditGrantRow.created_at, CreditGrantRow.id)
    ).all()


def _ledger(
    row: CreditGrantRow,
    kind: str,
    amount: float,
    at: datetime,
    *,
    note: str = "",
    event_seq: int | None = None,
    feature: str | None = None,
) -> CreditLedgerRow:
    return CreditLedgerRow(
        company_id=row.company_id,
        grant_id=row.id,
        credit_type_id=row.credit_type_id,
        kind=kind,
        amount=amount,
        at=at,
        note=note,
        event_seq=event_seq,
        feature=feature,
    )


@dataclass(frozen=True, slots=True)
class DuePlanGrant:
    """A plan's grant for the current period, identified by `key`."""

    key: str
    plan: str
    spec: PlanCreditGrant
    anchor: datetime
    start: datetime
    end: datetime


def due_plan_grants(
    catalog: Catalog, subscriptions: Sequence[Subscription], created_at: datetime, now: datetime
) -> list[DuePlanGrant]:
    """The grants the company's plans owe it for their current periods. A period is a cycle
    anchored at the subscription's start (a default plan's: the company's creation)."""
    due = []
    for plan, subscription in current_plans(catalog, subscriptions, now):
        anchor = subscription.started_at if subscription else created_at
        for spec in plan.credit_grants:
            start, end = cycle_bounds(anchor, Unit(spec.period.value), now)
            key = f"{plan.key}:{spec.credit}:{start.isoformat()}"
            due.append(DuePlanGrant(key, plan.key, spec, anchor, start, end))
    return due


def credits_need_refresh(
    rows: Sequence[CreditGrantRow], due: Sequence[DuePlanGrant], now: datetime
) -> bool:
    """Whether a plan grant is owed or an expiry is not in the ledger yet."""
    issued = {row.issue_key for row in rows}
    if any(grant.key not in issued for grant in due):
        return True
    return any(
        row.expires_at is not None
        and row.expires_at <= now
        and not row.expiry_recorded
        and row.voided_at is None
        for row in rows
    )


def refresh_credits_in(
    session: Session, company: CompanyRow, catalog: Catalog, now: datetime
) -> None:
    """Write expiries (and rollovers) into the ledger, then issue what the plans owe for the
    current periods: ledger rows stay in the order things happened. The caller holds the
    company's lock."""
    settle_expiries_in(session, company.id, now)
    issued = {row.issue_key for row in company_grant_rows(session, company.id)}
    subscriptions = [to_subscription(s) for s in company_subscription_rows(session, company.id)]
    for due in due_plan_grants(catalog, subscriptions, company.created_at, now):
        credit = _credit_type(session, company.environment_id, due.spec.credit)
        if due.key in issued or credit is None:
            continue
        row = CreditGrantRow(
            id=new_id("grt"),
            environment_id=company.environment_id,
            company_id=company.id,
            credit_type=credit,
            amount=due.spec.amount,
            remaining=due.spec.amount,
            priority=0,
            source=GrantSource.PLAN.value,
            note=f"Plan {due.plan}",
            expires_at=due.end,
            voided_at=None,
            expiry_recorded=False,
            created_at=now,
            issue_key=due.key,
            period=due.spec.period.value,
            anchor=due.anchor,
            rollover_max=due.spec.rollover_max,
        )
        session.add(row)
        session.flush()
        session.add(_ledger(row, "grant", due.spec.amount, now, note=row.note))
    session.flush()


def _roll_over(session: Session, row: CreditGrantRow, expired_at: datetime, now: datetime) -> None:
    """Carry up to `rollover_max` of an expiring plan grant into a grant for the next period
    (the rolled-over credits roll no further)."""
    if not row.rollover_max or row.remaining <= 0 or row.anchor is None or row.period is None:
        return
    _, next_end = cycle_bounds(row.anchor, Unit(row.period), expired_at)
    carry = min(row.remaining, row.rollover_max)
    if next_end <= now:
        return  # the next period is over too: what rolled over would have expired with it
    rolled = CreditGrantRow(
        id=new_id("grt"),
        environment_id=row.environment_id,
        company_id=row.company_id,
        credit_type_id=row.credit_type_id,
        amount=carry,
        remaining=carry,
        priority=row.priority,
        source=GrantSource.PLAN.value,
        note=f"Rolled over from {row.id}",
        expires_at=next_end,
        voided_at=None,
        expiry_recorded=False,
        created_at=expired_at,
    )
    session.add(rolled)
    session.flush()
    session.add(_ledger(rolled, "rollover", carry, expired_at, note=rolled.note))


def settle_expiries_in(session: Session, company_id: str, now: datetime) -> None:
    """Write the ledger's `expiry` rows of grants that expired by `now` with credits left:
    they stop counting at their instant, and the ledger says so. A plan grant's rollover is
    written with its expiry."""
    for row in company_grant_rows(session, company_id):
        expired = row.expires_at is not None and row.expires_at <= now
        if expired and not row.expiry_recorded and row.voided_at is None:
            assert row.expires_at is not None  # noqa: S101 (expired implies it)
            _roll_over(session, row, row.expires_at, now)
            if row.remaining > 0:
                session.add(_ledger(row, "expiry", -row.remaining, row.expires_at))
                row.remaining = 0.0
            row.expiry_recorded = True
    session.flush()


def debit_in(
    session: Session,
    company_id: str,
    credit: str,
    amount: float,
    now: datetime,
    *,
    event_seq: int | None,
    feature: str | None,
) -> bool:
    """Take `amount` of `credit` from the company's grants in burn order, all or nothing.
    The caller holds the company's lock."""
    settle_expiries_in(session, company_id, now)
    rows = {row.id: row for row in company_grant_rows(session, company_id)}
    taken = plan_debit([to_grant(row) for row in rows.values()], credit, amount, now)
    if taken is None:
        return False
    for grant, take in taken:
        row = rows[grant.id]
        row.remaining -= take
        session.add(_ledger(row, "debit", -take, now, event_seq=event_seq, feature=feature))
    session.flush()
    return True


def _status(row: CreditGrantRow, now: datetime) -> str:
    if row.voided_at is not None:
        return "voided"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active" if row.remaining > 0 else "depleted"


def _grant_record(row: CreditGrantRow, company: str, now: datetime) -> GrantRecord:
    return GrantRecord(
        id=row.id,
        company=company,
        credit=row.credit_type.key,
        amount=row.amount,
        remaining=row.remaining,
        priority=row.priority,
        source=row.source,
        note=row.note,
        expires_at=row.expires_at,
        voided_at=row.voided_at,
        created_at=row.created_at,
        status=_status(row, now),
    )


def _bundle_record(row: CreditBundleRow) -> BundleRecord:
    return BundleRecord(
        id=row.id,
        key=row.key,
        name=row.name,
        credit=row.credit_type.key,
        amount=row.amount,
        currency=row.currency,
        price=row.price,
        expires_in_days=row.expires_in_days,
        created_at=row.created_at,
    )


def _write_bundle(
    session: Session, environment_id: str, row: CreditBundleRow, new: NewBundle
) -> None:
    credit = _credit_type(session, environment_id, new.credit)
    if credit is None:
        raise credit_not_found(new.credit, "credit")
    row.name = new.name
    row.credit_type = credit
    row.amount = new.amount
    row.currency = new.currency
    row.price = new.price
    row.expires_in_days = new.expires_in_days


def _type_record(row: CreditTypeRow) -> CreditTypeRecord:
    return CreditTypeRecord(row.id, row.key, row.name, row.unit, row.created_at)


class CreditService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        catalogs: CatalogCache,
        on_catalog_change: Callable[[str], None] = lambda environment_id: None,
        on_customer_change: Callable[[str, str], None] = lambda environment_id, key: None,
    ) -> None:
        self._db = database
        self._clock = clock
        self._catalogs = catalogs
        self._catalog_changed = on_catalog_change
        self._customer_changed = on_customer_change

    def _locked_and_refreshed(
        self, session: Session, environment_id: str, company_key: str, now: datetime
    ) -> CompanyRow:
        """The company, locked, with its plan grants issued and its expiries written."""
        company = find_company_row(session, environment_id, company_key)
        lock_companies(session, [company.id])
        refresh_credits_in(session, company, self._catalogs.get(environment_id), now)
        return company

    @changes_catalog
    def create_credit_type(
        self, environment_id: str, key: str, name: str, unit: str | None
    ) -> CreditTypeRecord:
        try:
            with self._db.write() as session:
                return self.create_credit_type_in(session, environment_id, key, name, unit)
        except IntegrityError as error:
            raise Conflict(
                f"A credit type {key!r} exists already.", code="credit_exists", param="key"
            ) from error

    def create_credit_type_in(
        self, session: Session, environment_id: str, key: str, name: str, unit: str | None
    ) -> CreditTypeRecord:
        """`create_credit_type` in the caller's transaction (which invalidates the catalog)."""
        row = CreditTypeRow(
            id=new_id("crd"),
            environment_id=environment_id,
            key=key,
            name=name,
            unit=unit,
            created_at=self._clock(),
        )
        session.add(row)
        session.flush()
        created = _type_record(row)
        ChangeLog(session, environment_id, row.created_at).record(
            "credit_type.created", ("credit_type", key), None, created
        )
        return created

    def update_credit_type_in(
        self, session: Session, environment_id: str, key: str, name: str, unit: str | None
    ) -> CreditTypeRecord:
        """Rename a credit type or change its unit, in the caller's transaction."""
        row = _credit_type(session, environment_id, key)
        if row is None:
            raise credit_not_found(key)
        before = _type_record(row)
        row.name, row.unit = name, unit
        session.flush()
        after = _type_record(row)
        ChangeLog(session, environment_id, self._clock()).record(
            "credit_type.updated", ("credit_type", key), before, after
        )
        return after

    def list_credit_types(self, environment_id: str) -> list[CreditTypeRecord]:
        with self._db.read() as session:
            rows = session.scalars(
                select(CreditTypeRow)
                .where(CreditTypeRow.environment_id == environment_id)
                .order_by(CreditTypeRow.key)
            ).all()
            return [_type_record(row) for row in rows]

    def get_credit_type(self, environment_id: str, key: str) -> CreditTypeRecord:
        with self._db.read() as session:
            row = _credit_type(session, environment_id, key)
            if row is None:
                raise credit_not_found(key)
            return _type_record(row)

    def create_bundle(self, environment_id: str, new: NewBundle) -> BundleRecord:
        """A bundle: `amount` credits sold for `price` minor units of `currency`."""
        try:
            with self._db.write() as session:
                return self.create_bundle_in(session, environment_id, new)
        except IntegrityError as error:
            raise Conflict(
                f"A bundle {new.key!r} exists already.", code="bundle_exists", param="key"
            ) from error

    def create_bundle_in(
        self, session: Session, environment_id: str, new: NewBundle
    ) -> BundleRecord:
        """`create_bundle` in the caller's transaction."""
        row = CreditBundleRow(
            id=new_id("bnd"), environment_id=environment_id, key=new.key, created_at=self._clock()
        )
        _write_bundle(session, environment_id, row, new)
        session.add(row)
        session.flush()
        bundle = _bundle_record(row)
        ChangeLog(session, environment_id, row.created_at).record(
            "credit_bundle.created", ("credit_bundle", new.key), None, bundle
        )
        return bundle

    def update_bundle_in(
        self, session: Session, environment_id: str, new: NewBundle
    ) -> BundleRecord:
        """Change bundle `new.key` to `new` (purchases made already keep their grants)."""
        row = session.scalar(
            select(CreditBundleRow).where(
                CreditBundleRow.environment_id == environment_id, CreditBundleRow.key == new.key
            )
        )
        if row is None:
            raise NotFound(f"There is no bundle {new.key!r}.", code="bundle_not_found")
        before = _bundle_record(row)
        _write_bundle(session, environment_id, row, new)
        session.flush()
        after = _bundle_record(row)
        ChangeLog(session, environment_id, self._clock()).record(
            "credit_bundle.updated", ("credit_bundle", new.key), before, after
        )
        return after

    def list_bundles(self, environment_id: str) -> list[BundleRecord]:
        with self._db.read() as session:
            rows = session.scalars(
                select(CreditBundleRow)
                .where(CreditBundleRow.environment_id == environment_id)
                .order_by(CreditBundleRow.key)
            ).all()
            return [_bundle_record(row) for row in rows]

    @changes_customer
    def purchase(self, environment_id: str, company_key: str, bundle_key: str) -> Purchase:
        """Turn a bundle into a `purchase` grant for the company (charging for it is the
        billing system's part: the reply says what to charge)."""
        now = self._clock()
        with self._db.write() as session:
            bundle = session.scalar(
                select(CreditBundleRow).where(
                    CreditBundleRow.environment_id == environment_id,
                    CreditBundleRow.key == bundle_key,
                )
            )
            if bundle is None:
                raise NotFound(f"There is no bundle {bundle_key!r}.", code="bundle_not_found")
            days = bundle.expires_in_days
            new = NewGrant(
                credit=bundle.credit_type.key,
                amount=bundle.amount,
                expires_at=now + timedelta(days=days) if days else None,
                source=GrantSource.PURCHASE,
                note=f"Bundle {bundle.key}",
            )
            grant = self._grant_in(session, environment_id, company_key, new, now)
            return Purchase(_bundle_record(bundle), grant)

    @changes_customer
    def grant(self, environment_id: str, company_key: str, new: NewGrant) -> GrantRecord:
        """Grant credits to a company: a `grant` row in the ledger."""
        now = self._clock()
        with self._db.write() as session:
            return self._grant_in(session, environment_id, company_key, new, now)

    @staticmethod
    def _grant_in(
        session: Session, environment_id: str, company_key: str, new: NewGrant, now: datetime
    ) -> GrantRecord:
        company = find_company_row(session, environment_id, company_key)
        lock_companies(session, [company.id])
        settle_expiries_in(session, company.id, now)  # earlier expiries come first in the ledger
        credit = _credit_type(session, environment_id, new.credit)
        if credit is None:
            raise credit_not_found(new.credit, "credit")
        if new.expires_at is not None and new.expires_at <= now:
            raise InvalidRequest(
                "`expires_at` is in the past: the grant would never count.",
                code="expires_in_past",
                param="expires_at",
            )
        row = CreditGrantRow(
            id=new_id("grt"),
            environment_id=environment_id,
            company_id=company.id,
            credit_type=credit,
            amount=new.amount,
            remaining=new.amount,
            priority=new.priority,
            source=new.source.value,
            note=new.note,
            expires_at=new.expires_at,
            voided_at=None,
            expiry_recorded=False,
            created_at=now,
        )
        session.add(row)
        session.flush()
        session.add(_ledger(row, "grant", new.amount, now, note=new.note))
        session.flush()
        granted = _grant_record(row, company_key, now)
        ChangeLog(session, environment_id, now).record(
            "credit_grant.created", ("credit_grant", row.id), None, granted
        )
        return granted

    @changes_customer
    def void(self, environment_id: str, company_key: str, grant_id: str) -> GrantRecord:
        """Zero a grant out: a `void` row takes what was left of it."""
        now = self._clock()
        with self._db.write() as session:
            company = self._locked_and_refreshed(session, environment_id, company_key, now)
            row = session.get(CreditGrantRow, grant_id)
            if row is None or row.company_id != company.id:
                raise NotFound(f"There is no grant {grant_id!r}.", code="grant_not_found")
            if row.voided_at is None:
                before = _grant_record(row, company_key, now)
                if row.remaining > 0:
                    session.add(_ledger(row, "void", -row.remaining, now))
                row.remaining = 0.0
                row.voided_at = now
                session.flush()
                ChangeLog(session, environment_id, now).record(
                    "credit_grant.voided",
                    ("credit_grant", row.id),
                    before,
                    _grant_record(row, company_key, now),
                )
            return _grant_record(row, company_key, now)

    def list_grants(self, environment_id: str, company_key: str) -> list[GrantRecord]:
        now = self._clock()
        with self._db.write() as session:
            company = self._locked_and_refreshed(session, environment_id, company_key, now)
            rows = company_grant_rows(session, company.id)
            return [_grant_record(row, company_key, now) for row in rows]

    def balances(self, environment_id: str, company_key: str) -> list[CreditBalance]:
        """Each credit type's balance (types the company has grants of)."""
        now = self._clock()
        with self._db.write() as session:
            company = self._locked_and_refreshed(session, environment_id, company_key, now)
            grants = [to_grant(row) for row in company_grant_rows(session, company.id)]
        return [
            CreditBalance(
                credit,
                amount,
                min(
                    (
                        g.expires_at
                        for g in grants
                        if g.credit == credit and g.expires_at and g.remaining > 0
                        and g.counts_at(now)
                    ),
                    default=None,
                ),
            )
            for credit, amount in balances(grants, now).items()
        ]  # fmt: skip

    def ledger(
        self,
        environment_id: str,
        company_key: str,
        *,
        credit: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[LedgerEntry]:
        """The company's ledger, oldest first (expiries written up to now)."""
        now = self._clock()
        with self._db.write() as session:
            company = self._locked_and_refreshed(session, environment_id, company_key, now)
            query = (
                select(CreditLedgerRow, CreditTypeRow.key)
                .join(CreditTypeRow, CreditTypeRow.id == CreditLedgerRow.credit_type_id)
                .where(CreditLedgerRow.company_id == company.id)
            )
            if credit is not None:
                query = query.where(CreditTypeRow.key == credit)
            query, limit = paginate(query, [CreditLedgerRow.seq], cursor, limit)
            page = to_page(session.execute(query).all(), limit, lambda row: [row[0].seq])
            return Page(
                [
                    LedgerEntry(
                        id=row.seq,
                        credit=key,
                        grant=row.grant_id,
                        kind=row.kind,
                        amount=row.amount,
                        at=row.at,
                        event=f"evt_{row.event_seq}" if row.event_seq is not None else None,
                        feature=row.feature,
                        note=row.note,
                    )
                    for row, key in page.items
                ],
                page.next_cursor,
            )

"""`credits.low` and `credits.depleted`: a company's balance of a credit type fell under
`LOW_FRACTION` of what its unexpired grants gave (voided ones included), or to nothing.
Each is announced once per fall: the alert is kept while it holds and removed when the
balance recovers (a new grant), so the next fall is announced again.

A job follows the credit ledger by sequence number and looks again at each company and credit
type with new rows (debits, grants, expiries, voids), reading only up to a number below which
nothing is left to commit (`newest_settled`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tierkit.server.db.tables import (
    CompanyRow,
    CreditAlertRow,
    CreditGrantRow,
    CreditLedgerRow,
    CreditTypeRow,
)
from tierkit.server.db.upserts import insert_ignoring_conflicts
from tierkit.server.services.audit import add_event
from tierkit.server.services.jobs import JobRun, newest_settled

LOW_FRACTION = 0.2
_TOLERANCE = 1e-9
_LEDGER_ROWS_PER_RUN = 20_000


def announce_credit_alerts(run: JobRun) -> None:
    """The `credit_alerts` job's work. A first run starts after the newest ledger row."""
    session = run.session
    newest = newest_settled(session, CreditLedgerRow.seq)
    if newest is None:
        return  # a write still running may commit lower numbers: the next run covers them
    if run.position is None:
        run.position = newest
        return
    rows = session.execute(
        select(CreditLedgerRow.seq, CreditLedgerRow.company_id, CreditLedgerRow.credit_type_id)
        .where(CreditLedgerRow.seq > run.position, CreditLedgerRow.seq <= newest)
        .order_by(CreditLedgerRow.seq)
        .limit(_LEDGER_ROWS_PER_RUN)
    ).all()
    if not rows:
        return
    run.position = rows[-1][0]
    for company_id, credit_type_id in sorted({(c, t) for _, c, t in rows}):
        _check(session, company_id, credit_type_id, run.until)


def _check(session: Session, company_id: str, credit_type_id: str, now: datetime) -> None:
    company = session.get(CompanyRow, company_id)
    credit = session.get(CreditTypeRow, credit_type_id)
    if company is None or credit is None:
        return
    grants = session.scalars(
        select(CreditGrantRow).where(
            CreditGrantRow.company_id == company_id,
            CreditGrantRow.credit_type_id == credit_type_id,
        )
    ).all()
    current = [g for g in grants if g.expires_at is None or g.expires_at > now]
    granted = sum(g.amount for g in current)  # voided ones too: voiding empties a balance
    balance = sum(g.remaining for g in current if g.voided_at is None)
    levels = set()
    if granted > 0 and balance < LOW_FRACTION * granted:
        levels.add("low")
    if granted > 0 and balance <= _TOLERANCE:
        levels.add("depleted")
    key = (company.environment_id, company.key, credit.key)
    session.execute(
        delete(CreditAlertRow).where(
            CreditAlertRow.environment_id == key[0],
            CreditAlertRow.company_key == key[1],
            CreditAlertRow.credit == key[2],
            CreditAlertRow.level.not_in(levels),
        )
    )
    for level in sorted(levels):
        new = session.execute(
            insert_ignoring_conflicts(
                session, CreditAlertRow, ["environment_id", "company_key", "credit", "level"]
            ).returning(CreditAlertRow.id),
            [
                {
                    "environment_id": key[0],
                    "company_key": key[1],
                    "credit": key[2],
                    "level": level,
                    "created_at": now,
                }
            ],
        ).first()
        if new is not None:
            data = {
                "company": company.key,
                "credit": credit.key,
                "balance": balance,
                "granted": granted,
            }
            add_event(session, company.environment_id, f"credits.{level}", data, now)

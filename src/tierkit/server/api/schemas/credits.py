"""Credit types, grants, balances and the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from tierkit.engine.catalog import MAX_SAFE_NUMBER
from tierkit.engine.credits import GrantSource
from tierkit.server.api.schemas.checks import Number
from tierkit.server.api.schemas.common import (
    Description,
    InputModel,
    Key,
    Name,
    OutputModel,
    Timestamp,
    Unit,
    WholeNumber,
)
from tierkit.server.services.credits import (
    CreditBalance,
    CreditTypeRecord,
    GrantRecord,
    LedgerEntry,
    NewGrant,
)


class CreditTypeCreate(InputModel):
    key: Key
    name: Name
    unit: Unit | None = None


class CreditTypeOut(OutputModel):
    id: str
    key: str
    name: str
    unit: str | None
    created_at: datetime

    @classmethod
    def of(cls, record: CreditTypeRecord) -> CreditTypeOut:
        return cls.model_validate(record)


class GrantCreate(InputModel):
    credit: Key
    amount: Annotated[Number, Field(gt=0, le=MAX_SAFE_NUMBER)]
    expires_at: Timestamp | None = Field(default=None, description="It stops counting then.")
    priority: WholeNumber = Field(
        default=0, ge=-1_000_000, le=1_000_000, description="Lower burns first."
    )
    source: GrantSource = GrantSource.MANUAL
    note: Description = ""

    def to_new_grant(self) -> NewGrant:
        return NewGrant(
            credit=self.credit,
            amount=float(self.amount),
            expires_at=self.expires_at,
            priority=self.priority,
            source=self.source,
            note=self.note,
        )


class GrantOut(OutputModel):
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
    status: str = Field(description="active, depleted, expired or voided.")

    @classmethod
    def of(cls, record: GrantRecord) -> GrantOut:
        return cls.model_validate(record)


class BalanceOut(OutputModel):
    credit: str
    balance: float
    next_expiry: datetime | None

    @classmethod
    def of(cls, record: CreditBalance) -> BalanceOut:
        return cls.model_validate(record)


class LedgerEntryOut(OutputModel):
    id: int
    credit: str
    grant: str
    kind: str = Field(description="grant, debit, expiry, void or rollover.")
    amount: float = Field(description="Signed: what the row adds to the balance.")
    at: datetime
    event: str | None = Field(description="The consume event behind a debit.")
    feature: str | None
    note: str

    @classmethod
    def of(cls, record: LedgerEntry) -> LedgerEntryOut:
        return cls.model_validate(record)

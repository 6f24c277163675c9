"""Credit types, grants, balances and the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from tierkit.engine.catalog import MAX_SAFE_NUMBER
from tierkit.engine.credits import GrantSource
from tierkit.server.api.schemas.checks import Number
from tierkit.server.api.schemas.common import (
    Amount,
    Currency,
    Description,
    InputModel,
    Key,
    Measure,
    Name,
    OutputModel,
    Timestamp,
    Unit,
    WholeNumber,
)
from tierkit.server.services.credits import (
    BundleRecord,
    CreditBalance,
    CreditTypeRecord,
    GrantRecord,
    LedgerEntry,
    NewBundle,
    NewGrant,
    Purchase,
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
    amount: Measure
    remaining: Measure
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
    balance: Measure
    next_expiry: datetime | None

    @classmethod
    def of(cls, record: CreditBalance) -> BalanceOut:
        return cls.model_validate(record)


class LedgerEntryOut(OutputModel):
    id: int
    credit: str
    grant: str
    kind: str = Field(description="grant, debit, expiry, void or rollover.")
    amount: Measure = Field(description="Signed: what the row adds to the balance.")
    at: datetime
    event: str | None = Field(description="The consume event behind a debit.")
    feature: str | None
    note: str

    @classmethod
    def of(cls, record: LedgerEntry) -> LedgerEntryOut:
        return cls.model_validate(record)


class MoneyBody(InputModel):
    currency: Currency
    amount: Amount


class BundleCreate(InputModel):
    key: Key
    name: Name
    credit: Key
    amount: Annotated[Number, Field(gt=0, le=MAX_SAFE_NUMBER)] = Field(
        description="Credits the bundle grants."
    )
    price: MoneyBody
    expires_in_days: WholeNumber | None = Field(
        default=None, ge=1, le=36_500, description="Purchased credits expire this long after."
    )

    def to_new_bundle(self) -> NewBundle:
        return NewBundle(
            key=self.key,
            name=self.name,
            credit=self.credit,
            amount=float(self.amount),
            currency=self.price.currency,
            price=self.price.amount,
            expires_in_days=self.expires_in_days,
        )


class MoneyOut(OutputModel):
    currency: str
    amount: int


class BundleOut(OutputModel):
    id: str
    key: str
    name: str
    credit: str
    amount: Measure
    price: MoneyOut
    expires_in_days: int | None
    created_at: datetime

    @classmethod
    def of(cls, record: BundleRecord) -> BundleOut:
        return cls(
            id=record.id,
            key=record.key,
            name=record.name,
            credit=record.credit,
            amount=record.amount,
            price=MoneyOut(currency=record.currency, amount=record.price),
            expires_in_days=record.expires_in_days,
            created_at=record.created_at,
        )


class PurchaseOut(OutputModel):
    bundle: BundleOut
    charge: MoneyOut = Field(description="What to charge the customer for it.")
    grant: GrantOut

    @classmethod
    def of(cls, purchase: Purchase) -> PurchaseOut:
        bundle = BundleOut.of(purchase.bundle)
        return cls(bundle=bundle, charge=bundle.price, grant=GrantOut.of(purchase.grant))

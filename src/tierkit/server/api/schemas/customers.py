"""Company, subscription, override and user bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from tierkit.engine.catalog import Entitlement, Period, PlanType, PriceInterval, Reset
from tierkit.engine.customers import Override, SubscriptionStatus
from tierkit.server.api.schemas.common import (
    ExternalKey,
    Flag,
    InputModel,
    Key,
    OutputModel,
    ScalarValue,
    Timestamp,
    Traits,
    WholeNumber,
)
from tierkit.server.services.companies import CompanyRecord
from tierkit.server.services.customers import CompanyDetail
from tierkit.server.services.overrides import OverrideRecord
from tierkit.server.services.subscriptions import NewSubscription, SubscriptionRecord
from tierkit.server.services.users import UserRecord

CustomerName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")
]
Note = Annotated[str, StringConstraints(max_length=1000, pattern=r"^[^\x00\x7f]*$")]
Quantity = Annotated[WholeNumber, Field(ge=1, le=1_000_000)]


class CompanyUpsert(InputModel):
    """Omitted fields are kept."""

    name: CustomerName | None = None
    traits: Traits | None = None
    plan: Key | None = Field(
        default=None, description="A base plan to put the company on now (a shortcut)."
    )


class SubscriptionOut(OutputModel):
    id: str
    company: str
    plan: str
    plan_version: int | None = Field(description="The version of the plan it holds.")
    plan_type: PlanType
    group: str
    quantity: int
    price_interval: PriceInterval | None
    status: SubscriptionStatus = Field(description="At the time of the reply.")
    started_at: datetime
    trial_ends_at: datetime | None
    ends_at: datetime | None
    canceled_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: SubscriptionRecord, now: datetime) -> SubscriptionOut:
        sub = record.subscription
        return cls(
            id=sub.id,
            company=record.company,
            plan=sub.plan,
            plan_version=sub.plan_version,
            plan_type=sub.plan_type,
            group=sub.group,
            quantity=sub.quantity,
            price_interval=sub.price_interval,
            status=sub.status(now),
            started_at=sub.started_at,
            trial_ends_at=sub.trial_ends_at,
            ends_at=sub.ends_at,
            canceled_at=sub.canceled_at,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class SubscriptionCreate(InputModel):
    plan: Key
    quantity: Quantity = 1
    started_at: Timestamp | None = Field(default=None, description="Default: now.")
    trial_ends_at: Timestamp | None = Field(
        default=None,
        description="Default: `started_at` plus the plan's `trial_days`; `null`: no trial.",
    )
    ends_at: Timestamp | None = None
    price_interval: PriceInterval | None = Field(
        default=None, description="One of the plan's price intervals; default: its default."
    )

    def to_request(self) -> NewSubscription:
        return NewSubscription(
            plan=self.plan,
            quantity=self.quantity,
            started_at=self.started_at,
            trial_ends_at=self.trial_ends_at,
            plan_trial="trial_ends_at" not in self.model_fields_set,
            ends_at=self.ends_at,
            price_interval=self.price_interval,
        )


class SubscriptionUpdate(InputModel):
    quantity: Quantity | None = None
    trial_ends_at: Timestamp | None = None
    ends_at: Timestamp | None = None

    not_null = frozenset({"quantity"})


class OverrideBody(InputModel):
    """An entitlement-shaped value for one company, replacing its plans' until it expires."""

    value: ScalarValue | None = None
    unlimited: Flag = False
    period: Period | None = None
    reset: Reset | None = None
    soft_limit: Flag = False
    expires_at: Timestamp | None = Field(
        default=None, description="The override stops applying at this instant."
    )
    note: Note = ""

    def to_override(self, feature: str) -> Override:
        entitlement = Entitlement(
            feature=feature,
            value=self.value,
            unlimited=self.unlimited,
            period=self.period,
            reset=self.reset,
            soft_limit=self.soft_limit,
        )
        return Override(entitlement, self.expires_at, self.note)


class OverrideOut(OutputModel):
    feature: str
    value: ScalarValue | None
    unlimited: bool
    period: Period | None
    reset: Reset | None
    soft_limit: bool
    expires_at: datetime | None
    note: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: OverrideRecord) -> OverrideOut:
        override, entitlement = record.override, record.override.entitlement
        return cls(
            feature=override.feature,
            value=entitlement.value,
            unlimited=entitlement.unlimited,
            period=entitlement.period,
            reset=entitlement.reset,
            soft_limit=entitlement.soft_limit,
            expires_at=override.expires_at,
            note=override.note,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class CompanySummaryOut(OutputModel):
    id: str
    key: str
    name: str | None
    traits: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: CompanyRecord) -> CompanySummaryOut:
        company = record.company
        return cls(
            id=record.id,
            key=company.key,
            name=company.name,
            traits=dict(company.traits),
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class CompanyOut(CompanySummaryOut):
    plan: str | None = Field(description="The base plan of group `default` now.")
    plan_is_default: bool = Field(
        description="True when `plan` is the default plan because the company has no base plan."
    )
    subscriptions: list[SubscriptionOut] = Field(description="Active and scheduled ones.")
    overrides: list[OverrideOut] = Field(description="Those in force now.")
    users: list[str] = Field(description="Keys of the company's users.")

    @classmethod
    def of_detail(cls, detail: CompanyDetail, now: datetime) -> CompanyOut:
        summary = CompanySummaryOut.of(detail.record)
        return cls(
            **summary.model_dump(),
            plan=detail.plan,
            plan_is_default=detail.plan_is_default,
            subscriptions=[SubscriptionOut.of(s, now) for s in detail.subscriptions],
            overrides=[OverrideOut.of(o) for o in detail.overrides],
            users=detail.users,
        )


class UserUpsert(InputModel):
    """Omitted fields are kept; `companies`, when given, is the user's whole set."""

    name: CustomerName | None = None
    traits: Traits | None = None
    companies: list[ExternalKey] | None = Field(default=None, max_length=100)


class UserOut(OutputModel):
    id: str
    key: str
    name: str | None
    traits: dict[str, Any]
    companies: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: UserRecord) -> UserOut:
        return cls.model_validate(record)

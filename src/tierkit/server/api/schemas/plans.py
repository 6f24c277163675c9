"""Plan bodies: plans, entitlements, prices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from tierkit.engine.catalog import (
    MAX_SAFE_NUMBER,
    DiscountKind,
    Entitlement,
    FeatureType,
    IntroOffer,
    Overage,
    Period,
    Plan,
    PlanCreditGrant,
    PlanStatus,
    PlanType,
    Price,
    PriceInterval,
    RegionalPrice,
    Reset,
    Visibility,
)
from tierkit.server.api.schemas.checks import Number
from tierkit.server.api.schemas.common import (
    Amount,
    Currency,
    Description,
    Flag,
    InputModel,
    Key,
    Measure,
    Metadata,
    Name,
    OutputModel,
    ScalarValue,
    WholeNumber,
)
from tierkit.server.services.plans import PlanFeature, PlanRecord


class OverageBody(InputModel):
    price: Amount = Field(description="Minor units charged per `per` units past the limit.")
    per: WholeNumber = Field(default=1, ge=1, le=10**9)


class EntitlementValue(InputModel):
    """An entitlement without its feature key (the path names the feature)."""

    value: ScalarValue | None = Field(
        default=None, description="Typed by the feature: boolean, number, option key or limit."
    )
    unlimited: Flag = False
    period: Period | None = Field(default=None, description="Metered only; default `month`.")
    reset: Reset | None = Field(default=None, description="Metered only; default `calendar`.")
    soft_limit: Flag = Field(default=False, description="Metered only: allow past the limit.")
    overage: OverageBody | None = None
    credit: Key | None = Field(
        default=None, description="A credit type each unit costs (with `credit_cost`)."
    )
    credit_cost: Annotated[Number, Field(gt=0, le=MAX_SAFE_NUMBER)] | None = Field(
        default=None, description="Credits per unit: a check needs `quantity` times `credit_cost`."
    )

    def to_entitlement(self, feature: str) -> Entitlement:
        return Entitlement(
            feature=feature,
            value=self.value,
            unlimited=self.unlimited,
            period=self.period,
            reset=self.reset,
            soft_limit=self.soft_limit,
            overage=Overage(self.overage.price, self.overage.per) if self.overage else None,
            credit=self.credit,
            credit_cost=self.credit_cost,
        )


class EntitlementBody(EntitlementValue):
    feature: Key


class RegionalPriceBody(InputModel):
    currency: Currency
    amount: Amount


class IntroBody(InputModel):
    """A discount for the first `cycles` billing cycles."""

    kind: DiscountKind
    value: Annotated[Number, Field(gt=0, le=10**12)] = Field(
        description="Percent off (up to 100), or minor units off (`fixed`)."
    )
    cycles: WholeNumber = Field(ge=1, le=1000)

    @model_validator(mode="after")
    def _percent_at_most_100(self) -> IntroBody:
        if self.kind is DiscountKind.PERCENT and self.value > 100:
            raise ValueError("a percent discount is at most 100")
        return self


class PriceBody(InputModel):
    interval: PriceInterval
    currency: Currency
    amount: Amount
    default: Flag = False
    regional: list[RegionalPriceBody] = Field(default_factory=list, max_length=50)
    trial_days: WholeNumber | None = Field(
        default=None, ge=0, le=3650, description="A trial at this price (over the plan's)."
    )
    intro: IntroBody | None = None

    def to_price(self) -> Price:
        intro = self.intro
        return Price(
            interval=self.interval,
            currency=self.currency,
            amount=self.amount,
            default=self.default,
            regional=tuple(RegionalPrice(r.currency, r.amount) for r in self.regional),
            trial_days=self.trial_days,
            intro=IntroOffer(intro.kind, float(intro.value), intro.cycles) if intro else None,
        )


class CreditGrantSpec(InputModel):
    credit: Key
    amount: Annotated[Number, Field(gt=0, le=MAX_SAFE_NUMBER)]
    period: Period = Field(default=Period.MONTH, description="day, week, month or year.")
    rollover_max: Annotated[Number, Field(ge=0, le=MAX_SAFE_NUMBER)] | None = Field(
        default=None, description="At most this much of what is left carries into the next."
    )

    @field_validator("period")
    @classmethod
    def _periodic(cls, period: Period) -> Period:
        if period is Period.ALL_TIME:
            raise ValueError("credits are granted each day, week, month or year")
        return period

    def to_spec(self) -> PlanCreditGrant:
        rollover = None if self.rollover_max is None else float(self.rollover_max)
        return PlanCreditGrant(self.credit, float(self.amount), self.period, rollover)


class CreditGrantSpecOut(OutputModel):
    credit: str
    amount: Measure
    period: Period
    rollover_max: Measure | None


class PlanUpdate(InputModel):
    """Fields to change; omitted fields are kept. `entitlements`/`prices` replace the lists."""

    name: Name | None = None
    description: Description | None = None
    type: PlanType | None = None
    group: Key | None = None
    status: PlanStatus | None = None
    visibility: Visibility | None = None
    is_default: Flag | None = None
    trial_days: WholeNumber | None = Field(default=None, ge=0, le=3650)
    sort_order: WholeNumber | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    metadata: Metadata | None = None
    entitlements: list[EntitlementBody] | None = Field(default=None, max_length=500)
    prices: list[PriceBody] | None = Field(default=None, max_length=100)
    credit_grants: list[CreditGrantSpec] | None = Field(default=None, max_length=20)

    not_null = frozenset(
        {"name", "description", "type", "group", "status", "visibility", "is_default",
         "sort_order", "metadata", "entitlements", "prices", "credit_grants"}
    )  # fmt: skip

    def to_changes(self) -> dict[str, Any]:
        changes = self.provided()
        if self.entitlements is not None:
            changes["entitlements"] = tuple(e.to_entitlement(e.feature) for e in self.entitlements)
        if self.prices is not None:
            changes["prices"] = tuple(p.to_price() for p in self.prices)
        if self.credit_grants is not None:
            changes["credit_grants"] = tuple(g.to_spec() for g in self.credit_grants)
        return changes


class PlanCreate(InputModel):
    key: Key
    name: Name
    description: Description = ""
    type: PlanType = PlanType.BASE
    group: Key = "default"
    status: PlanStatus = PlanStatus.ACTIVE
    visibility: Visibility = Visibility.PUBLIC
    is_default: Flag = False
    trial_days: WholeNumber | None = Field(default=None, ge=0, le=3650)
    sort_order: WholeNumber = Field(default=0, ge=-1_000_000, le=1_000_000)
    metadata: Metadata = Field(default_factory=dict)
    entitlements: list[EntitlementBody] = Field(default_factory=list, max_length=500)
    prices: list[PriceBody] = Field(default_factory=list, max_length=100)
    credit_grants: list[CreditGrantSpec] = Field(
        default_factory=list,
        max_length=20,
        description="Credits issued to subscribers each period.",
    )

    def to_plan(self) -> Plan:
        return Plan(
            key=self.key,
            name=self.name,
            type=self.type,
            description=self.description,
            group=self.group,
            status=self.status,
            visibility=self.visibility,
            is_default=self.is_default,
            trial_days=self.trial_days,
            sort_order=self.sort_order,
            metadata=self.metadata,
            entitlements=tuple(e.to_entitlement(e.feature) for e in self.entitlements),
            prices=tuple(p.to_price() for p in self.prices),
            credit_grants=tuple(g.to_spec() for g in self.credit_grants),
        )


class OverageOut(OutputModel):
    price: int
    per: int


class EntitlementOut(OutputModel):
    feature: str
    value: ScalarValue | None
    unlimited: bool
    period: Period | None
    reset: Reset | None
    soft_limit: bool
    overage: OverageOut | None
    credit: str | None = Field(default=None, description="Only on credit-priced entitlements.")
    credit_cost: Measure | None = Field(default=None, description="Credits per unit.")

    @model_serializer(mode="wrap")
    def _credit_only_when_priced(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and self.credit is None:
            data.pop("credit", None)
            data.pop("credit_cost", None)
        return data

    @classmethod
    def of(cls, entitlement: Entitlement) -> EntitlementOut:
        return cls.model_validate(entitlement)


class RegionalPriceOut(OutputModel):
    currency: str
    amount: int


class IntroOut(OutputModel):
    kind: DiscountKind
    value: float
    cycles: int


class PriceOut(OutputModel):
    interval: PriceInterval
    currency: str
    amount: int
    default: bool
    regional: list[RegionalPriceOut]
    trial_days: int | None = None
    intro: IntroOut | None = None

    @model_serializer(mode="wrap")
    def _offers_only_when_set(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Prices without a trial or an intro offer read as they always have.
        data = handler(self)
        if isinstance(data, dict):
            for name in ("trial_days", "intro"):
                if data.get(name) is None:
                    data.pop(name, None)
        return data


class PlanOut(OutputModel):
    id: str
    key: str
    name: str
    description: str
    type: PlanType
    group: str
    status: PlanStatus
    visibility: Visibility
    is_default: bool
    trial_days: int | None
    sort_order: int
    metadata: dict[str, Any]
    entitlements: list[EntitlementOut]
    prices: list[PriceOut]
    credit_grants: list[CreditGrantSpecOut]
    version: int = Field(
        description="The current version of the entitlements, prices and credit grants."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: PlanRecord) -> PlanOut:
        plan = record.plan
        return cls(
            id=record.id,
            key=plan.key,
            name=plan.name,
            description=plan.description,
            type=plan.type,
            group=plan.group,
            status=plan.status,
            visibility=plan.visibility,
            is_default=plan.is_default,
            trial_days=plan.trial_days,
            sort_order=plan.sort_order,
            metadata=dict(plan.metadata),
            entitlements=[EntitlementOut.of(e) for e in plan.entitlements],
            prices=[PriceOut.model_validate(p) for p in plan.prices],
            credit_grants=[CreditGrantSpecOut.model_validate(g) for g in plan.credit_grants],
            version=record.version,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class PlanFeatureOut(OutputModel):
    """A feature as the plan offers it, for pricing pages."""

    feature: str
    name: str
    description: str
    type: FeatureType
    unit: str | None
    visibility: Visibility
    included: bool = Field(description="Whether the plan itself sets this feature.")
    value: ScalarValue | None = Field(description="The plan's value, or the feature's fallback.")
    unlimited: bool
    period: Period | None
    soft_limit: bool

    @classmethod
    def of(cls, offered: PlanFeature) -> PlanFeatureOut:
        feature, entitlement = offered.feature, offered.entitlement
        return cls(
            feature=feature.key,
            name=feature.name,
            description=feature.description,
            type=feature.type,
            unit=feature.unit,
            visibility=feature.visibility,
            included=entitlement is not None,
            value=offered.value,
            unlimited=bool(entitlement and entitlement.unlimited),
            period=entitlement.period if entitlement else None,
            soft_limit=bool(entitlement and entitlement.soft_limit),
        )

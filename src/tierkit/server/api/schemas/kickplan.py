"""Kickplan's account bodies, as its public API documents them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

from tierkit.engine.catalog import MAX_SAFE_NUMBER
from tierkit.server.api.schemas.common import EventName, ExternalKey, Key, Timestamp, Traits
from tierkit.server.api.schemas.customers import CustomerName
from tierkit.server.services.accounts import Account, FeatureVariant


def _variant_text(value: object) -> object:
    # Kickplan clients send variant keys as strings, and sometimes as bare JSON scalars.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


VariantKey = Annotated[
    str,
    BeforeValidator(_variant_text),
    StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$"),
]


class _KickplanBody(BaseModel):
    # Kickplan clients may send fields Tierkit has no use for: they are ignored, not refused.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class AccountPlan(_KickplanBody):
    plan_key: Key


class FeatureOverride(_KickplanBody):
    feature_key: Key
    variant_key: VariantKey


class AccountUpdate(_KickplanBody):
    name: CustomerName | None = None
    custom_fields: Traits | None = None
    account_plans: list[AccountPlan] | None = Field(default=None, max_length=100)
    feature_overrides: list[FeatureOverride] | None = Field(default=None, max_length=500)

    def to_fields(self) -> dict[str, object]:
        fields: dict[str, object] = {}
        if "name" in self.model_fields_set:
            fields["name"] = self.name
        if self.custom_fields:
            fields["traits"] = self.custom_fields
        return fields

    def plan_keys(self) -> list[str] | None:
        return None if self.account_plans is None else [p.plan_key for p in self.account_plans]

    def variants(self) -> list[FeatureVariant] | None:
        if self.feature_overrides is None:
            return None
        return [FeatureVariant(o.feature_key, o.variant_key) for o in self.feature_overrides]


class AccountCreate(AccountUpdate):
    key: ExternalKey


class AccountOut(BaseModel):
    key: str
    name: str | None
    plans: list[str]
    feature_overrides: list[str] = Field(description='`"feature/variant"` for each override.')
    inserted_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls.model_validate(account, from_attributes=True)


def _flag(value: object) -> object:
    # Kickplan's docs send `"detailed": "true"`; JSON booleans work too (and nothing else).
    if value in ("true", "false"):
        return value == "true"
    return value


Flag = Annotated[
    StrictBool,
    BeforeValidator(_flag),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false"]}]}),
]


class ResolveContext(_KickplanBody):
    account_key: ExternalKey | None = None


class ResolveRequest(_KickplanBody):
    detailed: Flag = False
    context: ResolveContext | None = None

    @property
    def account_key(self) -> str:
        # No account: resolve globally, as a company Tierkit has no record of.
        return (self.context.account_key if self.context else None) or ""


class ResolvedFeature(BaseModel):
    key: str
    value: Any
    variant: str | None = None
    metadata: dict[str, Any] | None = None
    error_code: str | None = None


def _number_or_numeric_text(value: object) -> object:
    # Kickplan's Ruby sample sends `value: "5"`: a numeric string is read as its number.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError("must be a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


class KickplanMetricSet(_KickplanBody):
    """`POST /api/metrics/set`: a gauge value for an account."""

    key: EventName
    value: Annotated[
        float,
        BeforeValidator(_number_or_numeric_text),
        Field(ge=-MAX_SAFE_NUMBER, le=MAX_SAFE_NUMBER),
    ]
    account_key: ExternalKey
    idempotency_key: ExternalKey | None = None
    time: Timestamp | None = None

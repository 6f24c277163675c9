"""Check and rule bodies."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, Strict, StringConstraints

from tierkit.engine.catalog import MAX_SAFE_NUMBER, Period, Scalar
from tierkit.engine.codec import rule_to_json
from tierkit.engine.rules import (
    Condition,
    ConditionType,
    Entity,
    Operator,
    Rollout,
    RolloutBy,
    Rule,
)
from tierkit.server.api.schemas.common import (
    ExternalKey,
    Flag,
    InputModel,
    Key,
    OutputModel,
    ScalarValue,
    TraitName,
)

Number = Annotated[float, Strict()]
"""A JSON number: an int or a float, never a boolean or a numeric string (checked natively:
event batches hold a thousand)."""

ConditionValue = ScalarValue | Annotated[list[ScalarValue], Field(min_length=1, max_length=100)]


class ConditionBody(InputModel):
    type: ConditionType
    op: Operator
    value: ConditionValue | None = Field(
        default=None, description="One value, a list for `in`/`not_in`, none for `exists`."
    )
    trait: TraitName | None = Field(default=None, description="For `trait` conditions.")
    entity: Entity = Field(default=Entity.COMPANY, description="Whose trait: company or user.")
    feature: Key | None = Field(default=None, description="For `usage`: a metered feature.")
    credit: Key | None = Field(default=None, description="For `credits`: a credit type.")

    def to_condition(self) -> Condition:
        value: Any = list(self.value) if isinstance(self.value, list) else self.value
        return Condition(
            type=self.type,
            op=self.op,
            value=value,
            trait=self.trait,
            entity=self.entity,
            feature=self.feature,
            credit=self.credit,
        )


class RolloutBody(InputModel):
    percent: Annotated[Number, Field(ge=0, le=100)]
    by: RolloutBy = RolloutBy.COMPANY


class RuleBody(InputModel):
    name: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    ]
    value: ScalarValue | None = None
    unlimited: Flag = False
    conditions: list[Annotated[list[ConditionBody], Field(max_length=20)]] = Field(
        default_factory=list,
        max_length=20,
        description="An AND of OR-groups: every group needs one matching condition.",
    )
    rollout: RolloutBody | None = None

    def to_rule(self) -> Rule:
        return Rule(
            name=self.name,
            value=self.value,
            unlimited=self.unlimited,
            conditions=tuple(tuple(c.to_condition() for c in group) for group in self.conditions),
            rollout=Rollout(self.rollout.percent, self.rollout.by) if self.rollout else None,
        )


class RuleOut(OutputModel):
    name: str
    value: Scalar | None
    unlimited: bool
    conditions: list[list[dict[str, Any]]]
    rollout: dict[str, Any] | None

    @classmethod
    def of(cls, rule: Rule) -> RuleOut:
        return cls.model_validate(rule_to_json(rule))


class CheckContext(InputModel):
    traits: dict[TraitName, ScalarValue] = Field(
        default_factory=dict,
        max_length=100,
        description="Traits for this check only; they win over stored ones in rules.",
    )


Quantity = Annotated[Number, Field(gt=0, le=MAX_SAFE_NUMBER)]


class CheckBody(InputModel):
    company: ExternalKey
    feature: Key
    user: ExternalKey | None = None
    quantity: Quantity = 1
    context: CheckContext | None = None
    consume: Flag = Field(
        default=False,
        description="Record `quantity` units of the feature's meter if allowed, atomically.",
    )
    idempotency_key: ExternalKey | None = Field(
        default=None, description="With `consume`: a retry with this key counts once."
    )


class CheckBulkBody(InputModel):
    company: ExternalKey
    user: ExternalKey | None = None
    features: list[Key] | None = Field(
        default=None, max_length=500, description="Default: every feature not archived."
    )
    context: CheckContext | None = None


class UsageOut(OutputModel):
    used: float
    limit: float | None
    remaining: float | None
    overage: float
    period: Period
    period_start: str | None
    resets_at: str | None


class CheckOut(OutputModel):
    """The decision for one feature (documentation of the reply)."""

    feature: str
    company: str
    company_found: bool
    allowed: bool
    value: Scalar | None
    unlimited: bool
    reason: str = Field(
        description="global_override, override, plan, rule, default, limit_exceeded or "
        "insufficient_credits."
    )
    plan: str | None
    rule: str | None
    override_expires_at: str | None
    usage: UsageOut | None
    credits: dict[str, Any] | None


class CheckBulkOut(OutputModel):
    data: list[CheckOut]

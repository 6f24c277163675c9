"""Commet's request bodies as its SDK (`commet-sdk`) sends them (camelCase), and Tierkit's
answers in Commet's shapes inside its `{"success": true, "data": ...}` envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tierkit.engine.catalog import Entitlement, Feature, FeatureType, Plan, Visibility
from tierkit.engine.codec import format_time, json_number
from tierkit.engine.evaluate import Catalog, Decision
from tierkit.server.api.schemas.common import (
    Description,
    ExternalKey,
    Key,
    Metadata,
    Name,
    Timestamp,
)
from tierkit.server.services.plans import PlanRecord

PropertyText = Annotated[str, StringConstraints(max_length=1000)]


class _CommetBody(BaseModel):
    # Commet's SDK sends fields Tierkit has no use for (token counts, models): ignored.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, populate_by_name=False)


class UsageCheckBody(_CommetBody):
    """`POST /usage/check`: may the customer consume `quantity` more of the feature."""

    customer_id: ExternalKey = Field(alias="customerId")
    feature_code: Key = Field(alias="featureCode")
    quantity: int = Field(default=1, ge=1, le=1_000_000_000)


class UsageProperty(_CommetBody):
    property: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    value: PropertyText


class UsageEventBody(_CommetBody):
    """`POST /usage/events`: `value` units (1 by default) of a metered feature."""

    feature_code: Key = Field(alias="featureCode")
    customer_id: ExternalKey = Field(alias="customerId")
    event_id: ExternalKey | None = Field(default=None, alias="eventId")
    timestamp: Timestamp | None = None
    value: float | None = Field(default=None, ge=0, le=1_000_000_000)
    properties: list[UsageProperty] | None = Field(default=None, max_length=50)


class PlanCreateBody(_CommetBody):
    """`POST /plans` (the SDK's path) and `POST /plans/manage` (the docs')."""

    name: Name
    code: Key
    description: Description | None = None
    consumption_model: Literal["metered", "credits", "balance"] | None = Field(
        default=None, alias="consumptionModel"
    )
    is_public: bool | None = Field(default=None, alias="isPublic")
    is_free: bool | None = Field(default=None, alias="isFree")
    block_on_exhaustion: bool | None = Field(default=None, alias="blockOnExhaustion")
    plan_group_id: Key | None = Field(default=None, alias="planGroupId")
    metadata: Metadata | None = None

    def to_plan(self) -> Plan:
        return Plan(
            key=self.code,
            name=self.name,
            description=self.description or "",
            group=self.plan_group_id or "default",
            visibility=Visibility.PRIVATE if self.is_public is False else Visibility.PUBLIC,
            metadata=self.metadata or {},
        )


def ok(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data}


def _entitlement(catalog: Catalog, decision: Decision) -> Entitlement | None:
    plan = catalog.plans.get(decision.plan) if decision.plan else None
    return plan.entitlement_for(decision.feature) if plan else None


def _number(value: Any) -> Any:
    return json_number(value) if isinstance(value, int | float) else 0


def feature_access_of(catalog: Catalog, decision: Decision) -> dict[str, Any]:
    """A decision as Commet's `FeatureAccess`: `boolean` (booleans and enums), `usage`
    (metered: its period's use, limit and overage) or `quota` (numeric: the allowed number)."""
    feature: Feature = catalog.features[decision.feature]
    access: dict[str, Any] = {
        "code": feature.key,
        "name": feature.name,
        "unitName": feature.unit,
        "allowed": decision.allowed,
        "object": "feature_access",
        "livemode": False,
    }
    usage = decision.usage
    if feature.type is FeatureType.METERED and usage is not None:
        entitlement = _entitlement(catalog, decision)
        soft = bool(entitlement and entitlement.soft_limit)
        return access | {
            "type": "usage",
            "consumption": {
                "model": "metered",
                "period": {
                    "start": format_time(usage.period_start),
                    "end": format_time(usage.resets_at),
                },
                "unitsUsed": _number(usage.used),
                "includedUnits": _number(usage.limit),
                "remainingUnits": None if usage.remaining is None else _number(usage.remaining),
                "unlimited": decision.unlimited,
                "overage": {"enabled": soft, "units": _number(usage.overage)},
            },
        }
    if feature.type is FeatureType.NUMERIC:
        included = 0 if decision.unlimited else _number(decision.value)
        return access | {
            "type": "quota",
            "usage": {
                "period": None,
                "unitsUsed": 0,
                "includedUnits": included,
                "remainingUnits": None if decision.unlimited else included,
                "unlimited": decision.unlimited,
                "overage": {"enabled": False, "units": 0},
                "billedUnits": 0,
            },
        }
    return access | {"type": "boolean", "enabled": decision.allowed}


def usage_check_of(catalog: Catalog, decision: Decision, quantity: int) -> dict[str, Any]:
    """A decision as Commet's metered `UsageCheck`."""
    usage = decision.usage
    entitlement = _entitlement(catalog, decision)
    overage = entitlement.overage if entitlement else None
    return {
        "allowed": decision.allowed,
        "subscriptionStatus": "active" if decision.plan else "none",
        "featureCode": decision.feature,
        "quantity": quantity,
        "reason": decision.reason,
        "message": None,
        "consumptionModel": "metered",
        "current": _number(usage.used) if usage else 0,
        "remaining": _number(usage.remaining) if usage and usage.remaining is not None else 0,
        "unlimited": decision.unlimited,
        "included": _number(usage.limit) if usage and usage.limit is not None else 0,
        "overageEnabled": bool(entitlement and entitlement.soft_limit),
        "overageUnitPrice": overage.price / overage.per if overage else None,
        "object": "usage_check",
        "livemode": False,
    }


def usage_event_of(
    body: UsageEventBody, event_id: str, quantity: float, received: datetime
) -> dict[str, Any]:
    """The recorded event as Commet's `UsageEvent`."""
    at = format_time(body.timestamp or received)
    return {
        "id": event_id,
        "featureCode": body.feature_code,
        "value": json_number(quantity),
        "customerId": body.customer_id,
        "eventId": body.event_id,
        "ts": at,
        "createdAt": format_time(received),
        "properties": [p.model_dump() for p in body.properties or []],
        "object": "usage_event",
        "livemode": False,
    }


def plan_out(record: PlanRecord, body: PlanCreateBody) -> dict[str, Any]:
    """A created plan as Commet's `Plan` (no features or prices yet)."""
    plan = record.plan
    return {
        "id": plan.key,
        "name": plan.name,
        "code": plan.key,
        "description": plan.description,
        "consumptionModel": body.consumption_model or "metered",
        "isPublic": plan.visibility is Visibility.PUBLIC,
        "isDefault": plan.is_default,
        "isFree": bool(body.is_free),
        "blockOnExhaustion": bool(body.block_on_exhaustion),
        "sortOrder": plan.sort_order,
        "planGroupId": plan.group,
        "metadata": dict(plan.metadata),
        "createdAt": format_time(record.created_at),
        "updatedAt": format_time(record.updated_at),
        "features": [],
        "prices": [],
        "exchangeRates": [],
        "object": "plan",
        "livemode": False,
    }

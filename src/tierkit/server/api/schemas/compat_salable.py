"""Salable's plan feature shape (`GET /plans/{plan}/features` of its API docs)."""

from __future__ import annotations

from typing import Any

from tierkit.engine.catalog import FeatureStatus, FeatureType, Scalar
from tierkit.engine.codec import format_time, json_number
from tierkit.server.services.features import FeatureRecord
from tierkit.server.services.plans import PlanFeature, PlanRecord

_VALUE_TYPES = {
    FeatureType.BOOLEAN: "boolean",
    FeatureType.NUMERIC: "numerical",
    FeatureType.METERED: "numerical",
    FeatureType.ENUM: "enum",
}


def _text(value: Scalar | None) -> str:
    """Salable's values are text: `"true"`, `"10"`, `""` when there is none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(json_number(value))


def salable_plan_feature(
    plan: PlanRecord, record: FeatureRecord, offered: PlanFeature, environment_id: str
) -> dict[str, Any]:
    """One feature of a plan as Salable lists it. Ids are Tierkit's ids; an enum option's id
    is `<feature id>:<option key>`; `productUuid` is the environment's id."""
    feature = record.feature
    value = offered.value
    unlimited = offered.entitlement is not None and offered.entitlement.unlimited
    updated = format_time(max(plan.updated_at, record.updated_at))
    enum_value = None
    if feature.type is FeatureType.ENUM and isinstance(value, str):
        names = {option.key: option.name for option in feature.options or ()}
        enum_value = {
            "uuid": f"{record.id}:{value}",
            "name": names.get(value, value),
            "featureUuid": record.id,
            "updatedAt": format_time(record.updated_at),
        }
    return {
        "planUuid": plan.id,
        "featureUuid": record.id,
        "value": "" if enum_value is not None else _text(value),
        "enumValueUuid": enum_value["uuid"] if enum_value else None,
        "isUnlimited": unlimited,
        "updatedAt": updated,
        "feature": {
            "uuid": record.id,
            "name": feature.name,
            "description": feature.description,
            "displayName": feature.name,
            "variableName": feature.key,
            "status": _status(feature.status),
            "visibility": feature.visibility.value,
            "valueType": _VALUE_TYPES[feature.type],
            "defaultValue": _text(feature.default),
            "showUnlimited": unlimited,
            "productUuid": environment_id,
            "updatedAt": format_time(record.updated_at),
            "featureEnumOptions": [
                {
                    "uuid": f"{record.id}:{option.key}",
                    "name": option.name,
                    "featureUuid": record.id,
                    "updatedAt": format_time(record.updated_at),
                }
                for option in feature.options or ()
            ],
        },
        "enumValue": enum_value,
    }


def _status(status: FeatureStatus) -> str:
    # Salable's statuses are ACTIVE, DEPRECATED and COMING_SOON; an archived feature a plan
    # still entitles reads as deprecated.
    if status is FeatureStatus.ARCHIVED:
        return "DEPRECATED"
    return status.value.upper()

"""Tierkit's answers in the reply shapes of Schematic's API, as its Python SDK parses them.
Ids are Tierkit's keys: a Schematic id is opaque to its clients."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from tierkit.engine.catalog import Feature, FeatureType, Period, Plan, PlanType, Reset
from tierkit.engine.codec import format_time
from tierkit.engine.evaluate import Catalog, Decision
from tierkit.server.api.schemas.compat_schematic import FlagCheckBody
from tierkit.server.services.customers import CompanyDetail
from tierkit.server.services.features import FeatureRecord
from tierkit.server.services.plans import PlanRecord
from tierkit.server.services.users import UserRecord

_PERIODS: dict[Period, str] = {
    Period.DAY: "current_day",
    Period.WEEK: "current_week",
    Period.MONTH: "current_month",
    Period.ALL_TIME: "all_time",
}

_RULE_TYPES = {
    "global_override": "global_override",
    "override": "company_override",
    "plan": "plan_entitlement",
    "rule": "standard",
    "default": "default",
    "insufficient_credits": "plan_entitlement",
}


def _whole(value: Any) -> int | None:
    """Schematic's counts are integers: a fraction rounds up (a limit of 2.5 allows 2)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if math.isinf(value):
        return None
    return math.ceil(value) if value >= 0 else math.floor(value)


def _rule_type(decision: Decision) -> str:
    if decision.reason == "limit_exceeded":
        overridden = decision.override_expires_at is not None or decision.plan is None
        exceeded = "company_override" if overridden else "plan_entitlement"
        return f"{exceeded}_usage_exceeded"
    return _RULE_TYPES.get(decision.reason, "default")


def _reason_text(decision: Decision) -> str:
    texts = {
        "global_override": "Global override",
        "override": "Matched company override",
        "plan": f"Matched plan entitlement ({decision.plan})",
        "rule": f"Matched rule {decision.rule}",
        "default": "No rule matched, using default value",
        "limit_exceeded": "Usage limit exceeded",
        "insufficient_credits": "Insufficient credits",
    }
    return texts.get(decision.reason, decision.reason)


def _value_type(feature: Feature, decision: Decision) -> str:
    if decision.credits is not None:
        return "credit"
    if decision.unlimited:
        return "unlimited"
    if feature.type is FeatureType.BOOLEAN:
        return "boolean"
    if feature.type in (FeatureType.NUMERIC, FeatureType.METERED):
        return "numeric"
    return "trait"


def _month_reset(catalog: Catalog, decision: Decision) -> str | None:
    """How a monthly period resets: on the billing cycle or on the first of the month."""
    usage = decision.usage
    if usage is None or usage.period is not Period.MONTH:
        return None
    plan = catalog.plans.get(decision.plan) if decision.plan else None
    entitlement = plan.entitlement_for(decision.feature) if plan else None
    by_cycle = entitlement is not None and entitlement.reset is Reset.BILLING_CYCLE
    return "billing_cycle" if by_cycle else "first_of_month"


def entitlement_of(catalog: Catalog, decision: Decision) -> dict[str, Any]:
    """Schematic's `entitlement` details of a decision: allocation, usage, its period."""
    feature = catalog.features[decision.feature]
    usage = decision.usage
    credits = decision.credits
    numeric = feature.type in (FeatureType.NUMERIC, FeatureType.METERED)
    entitlement: dict[str, Any] = {
        "feature_id": feature.key,
        "feature_key": feature.key,
        "value_type": _value_type(feature, decision),
        "allocation": _whole(decision.value) if numeric and not decision.unlimited else None,
        "usage": _whole(usage.used) if usage else None,
        "event_name": feature.meter.event if feature.meter else None,
        "metric_period": _PERIODS.get(usage.period) if usage else None,
        "metric_reset_at": format_time(usage.resets_at) if usage else None,
        "month_reset": _month_reset(catalog, decision),
    }
    if credits is not None:
        entitlement |= {
            "credit_id": credits.credit,
            "credit_remaining": credits.balance,
            "credit_settled": credits.balance,
            "credit_reserved": 0,
            "consumption_rate": credits.cost,
        }
    return entitlement


def flag_of(catalog: Catalog, decision: Decision) -> dict[str, Any]:
    """A decision as Schematic's `CheckFlagResponseData`: `value` is whether the company may
    use one more (or the preflight's `usage` more) of the feature."""
    feature = catalog.features[decision.feature]
    entitled = decision.reason not in ("default", "rule")
    entitlement = entitlement_of(catalog, decision) if entitled else None
    usage = decision.usage
    return {
        "flag": decision.feature,
        "flag_id": decision.feature,
        "value": decision.allowed,
        "reason": _reason_text(decision),
        "rule_type": _rule_type(decision),
        "rule_id": decision.rule,
        "company_id": decision.company if decision.company_found else None,
        "user_id": None,
        "error": None,
        "entitlement": entitlement,
        "feature_allocation": entitlement["allocation"] if entitlement else None,
        "feature_usage": _whole(usage.used) if usage else None,
        "feature_usage_event": feature.meter.event if feature.meter else None,
        "feature_usage_period": _PERIODS.get(usage.period) if usage else None,
        "feature_usage_reset_at": format_time(usage.resets_at) if usage else None,
    }


def check_reply(data: Any, body: FlagCheckBody) -> dict[str, Any]:
    return {"data": data, "params": body.model_dump(exclude_none=True)}


def flags_reply(catalog: Catalog, decisions: list[Decision], body: FlagCheckBody) -> dict[str, Any]:
    """`POST /flags/check`: every flag, and the company's credit spend policies (Tierkit has
    none: always empty)."""
    data = {
        "flags": [flag_of(catalog, d) for d in decisions],
        "credit_spend_policies": [],
    }
    return check_reply(data, body)


def _time(moment: datetime) -> str | None:
    return format_time(moment)


def company_of(detail: CompanyDetail, environment_id: str, key_name: str) -> dict[str, Any]:
    """Schematic's `CompanyDetailResponseData`: what Tierkit holds of a company; billing lists
    (subscriptions, payment methods, custom billings) are empty."""
    record = detail.record
    created, updated = _time(record.created_at), _time(record.updated_at)
    key = record.company.key
    return {
        "id": key,
        "name": record.company.name or key,
        "environment_id": environment_id,
        "created_at": created,
        "updated_at": updated,
        "traits": dict(record.company.traits),
        "keys": [_entity_key("company", key, key_name, environment_id, created, updated)],
        "plans": [{"id": detail.plan, "name": detail.plan}] if detail.plan else [],
        "user_count": len(detail.users),
        "add_ons": [],
        "billing_subscriptions": [],
        "custom_plan_billings": [],
        "entitlements": [],
        "entity_traits": [],
        "metrics": [],
        "payment_methods": [],
        "rules": [],
    }


def user_of(record: UserRecord, environment_id: str, key_name: str) -> dict[str, Any]:
    """Schematic's `UserDetailResponseData`."""
    created, updated = _time(record.created_at), _time(record.updated_at)
    return {
        "id": record.key,
        "name": record.name or record.key,
        "environment_id": environment_id,
        "created_at": created,
        "updated_at": updated,
        "traits": dict(record.traits),
        "keys": [_entity_key("user", record.key, key_name, environment_id, created, updated)],
        "company_memberships": [
            {
                "id": f"{company}/{record.key}",
                "company_id": company,
                "user_id": record.key,
                "created_at": created,
                "updated_at": updated,
            }
            for company in record.companies
        ],
        "entity_traits": [],
    }


def _entity_key(
    entity: str, key: str, name: str, environment_id: str, created: Any, updated: Any
) -> dict[str, Any]:
    return {
        "id": f"{entity}:{name}:{key}",
        "definition_id": name,
        "entity_id": key,
        "entity_type": entity,
        "environment_id": environment_id,
        "key": name,
        "value": key,
        "created_at": created,
        "updated_at": updated,
    }


_FEATURE_TYPES = {
    FeatureType.BOOLEAN: "boolean",
    FeatureType.METERED: "event",
    FeatureType.NUMERIC: "trait",
    FeatureType.ENUM: "trait",
}


def feature_of(record: FeatureRecord, plans: list[dict[str, str]]) -> dict[str, Any]:
    """Schematic's `FeatureDetailResponseData`: a Tierkit feature is also its one flag."""
    feature = record.feature
    created, updated = _time(record.created_at), _time(record.updated_at)
    return {
        "id": feature.key,
        "name": feature.name,
        "description": feature.description,
        "feature_type": _FEATURE_TYPES[feature.type],
        "event_source": "track",
        "event_subtype": feature.meter.event if feature.meter else None,
        "icon": "",
        "created_at": created,
        "updated_at": updated,
        "plans": plans,
        "flags": [
            {
                "id": feature.key,
                "key": feature.key,
                "name": feature.name,
                "description": feature.description,
                "default_value": bool(feature.default),
                "flag_type": "boolean",
                "feature_id": feature.key,
                "rules": [],
                "created_at": created,
                "updated_at": updated,
            }
        ],
    }


def plan_of(record: PlanRecord, catalog: Catalog) -> dict[str, Any]:
    """Schematic's `PlanDetailResponseData`: with its features, without billing details."""
    plan: Plan = record.plan
    created, updated = _time(record.created_at), _time(record.updated_at)
    default_price = next((p for p in plan.prices if p.default), None) or next(
        iter(plan.prices), None
    )
    features = []
    for entitlement in plan.entitlements:
        feature = catalog.features.get(entitlement.feature)
        if feature is None:
            continue
        features.append(
            {
                "id": feature.key,
                "name": feature.name,
                "description": feature.description,
                "feature_type": _FEATURE_TYPES[feature.type],
                "event_source": "track",
                "icon": "",
                "flags": [],
                "plans": [{"id": plan.key, "name": plan.name}],
                "created_at": created,
                "updated_at": updated,
            }
        )
    return {
        "id": plan.key,
        "name": plan.name,
        "description": plan.description,
        "plan_type": "add_on" if plan.type is PlanType.ADD_ON else "plan",
        "is_default": plan.is_default,
        "is_trialable": bool(plan.trial_days),
        "trial_days": plan.trial_days,
        "billing_strategy": "no_billing",
        "charge_type": "recurring" if default_price and default_price.amount else "free",
        "controlled_by": "schematic",
        "company_count": 0,
        "icon": "blue",
        "created_at": created,
        "updated_at": updated,
        "credits": [],
        "currency_prices": [],
        "features": features,
        "versions": [],
    }

"""Engine types from and to the API's JSON shapes: for the SDK's snapshots, language-neutral
test vectors, and the check reply. Input is trusted (the server validated it)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tierkit.engine.catalog import (
    Aggregation,
    Entitlement,
    Feature,
    FeatureOption,
    FeatureStatus,
    FeatureType,
    Meter,
    Overage,
    Period,
    Plan,
    PlanStatus,
    PlanType,
    Price,
    PriceInterval,
    RegionalPrice,
    Reset,
    Visibility,
)
from tierkit.engine.customers import Override, Subscription
from tierkit.engine.evaluate import (
    Catalog,
    CompanyState,
    CreditUse,
    Decision,
    Reason,
    Usage,
    UserState,
)
from tierkit.engine.rules import (
    Condition,
    ConditionType,
    Entity,
    Operator,
    Rollout,
    RolloutBy,
    Rule,
)

Json = Mapping[str, Any]


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def format_time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def feature_from_json(data: Json) -> Feature:
    meter = data.get("meter")
    options = data.get("options")
    return Feature(
        key=data["key"],
        name=data.get("name", data["key"]),
        type=FeatureType(data["type"]),
        description=data.get("description", ""),
        unit=data.get("unit"),
        status=FeatureStatus(data.get("status", "active")),
        visibility=Visibility(data.get("visibility", "public")),
        meter=(
            Meter(meter["event"], Aggregation(meter["aggregation"]), meter.get("property"))
            if meter
            else None
        ),
        options=tuple(FeatureOption(o["key"], o.get("name", o["key"])) for o in options)
        if options is not None
        else None,
        default=data.get("default"),
        global_value=data.get("global_value"),
    )


def entitlement_from_json(data: Json, feature: str | None = None) -> Entitlement:
    overage = data.get("overage")
    return Entitlement(
        feature=feature or data["feature"],
        value=data.get("value"),
        unlimited=bool(data.get("unlimited", False)),
        period=Period(data["period"]) if data.get("period") else None,
        reset=Reset(data["reset"]) if data.get("reset") else None,
        soft_limit=bool(data.get("soft_limit", False)),
        overage=Overage(overage["price"], overage.get("per", 1)) if overage else None,
        credit=data.get("credit"),
        credit_cost=data.get("credit_cost"),
    )


def plan_from_json(data: Json) -> Plan:
    return Plan(
        key=data["key"],
        name=data.get("name", data["key"]),
        type=PlanType(data.get("type", "base")),
        description=data.get("description", ""),
        group=data.get("group", "default"),
        status=PlanStatus(data.get("status", "active")),
        visibility=Visibility(data.get("visibility", "public")),
        is_default=bool(data.get("is_default", False)),
        trial_days=data.get("trial_days"),
        sort_order=data.get("sort_order", 0),
        metadata=dict(data.get("metadata", {})),
        entitlements=tuple(entitlement_from_json(e) for e in data.get("entitlements", ())),
        prices=tuple(
            Price(
                interval=PriceInterval(p["interval"]),
                currency=p["currency"],
                amount=p["amount"],
                default=bool(p.get("default", False)),
                regional=tuple(
                    RegionalPrice(r["currency"], r["amount"]) for r in p.get("regional", ())
                ),
            )
            for p in data.get("prices", ())
        ),
    )


def condition_from_json(data: Json) -> Condition:
    return Condition(
        type=ConditionType(data["type"]),
        op=Operator(data["op"]),
        value=data.get("value"),
        trait=data.get("trait"),
        entity=Entity(data.get("entity", "company")),
        feature=data.get("feature"),
        credit=data.get("credit"),
    )


def rule_from_json(data: Json) -> Rule:
    rollout = data.get("rollout")
    return Rule(
        name=data.get("name", ""),
        value=data.get("value"),
        unlimited=bool(data.get("unlimited", False)),
        conditions=tuple(
            tuple(condition_from_json(c) for c in group) for group in data.get("conditions", ())
        ),
        rollout=Rollout(float(rollout["percent"]), RolloutBy(rollout.get("by", "company")))
        if rollout
        else None,
    )


def rule_to_json(rule: Rule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "value": rule.value,
        "unlimited": rule.unlimited,
        "conditions": [
            [
                {
                    key: value
                    for key, value in (
                        ("type", c.type.value),
                        ("op", c.op.value),
                        ("value", c.value),
                        ("trait", c.trait),
                        ("entity", c.entity.value if c.type is ConditionType.TRAIT else None),
                        ("feature", c.feature),
                        ("credit", c.credit),
                    )
                    if value is not None or key == "value"
                }
                for c in group
            ]
            for group in rule.conditions
        ],
        "rollout": (
            {"percent": rule.rollout.percent, "by": rule.rollout.by.value} if rule.rollout else None
        ),
    }


def catalog_from_json(data: Json) -> Catalog:
    return Catalog(
        features={f["key"]: feature_from_json(f) for f in data.get("features", ())},
        plans={p["key"]: plan_from_json(p) for p in data.get("plans", ())},
        rules={
            key: tuple(rule_from_json(r) for r in rules)
            for key, rules in data.get("rules", {}).items()
        },
    )


def company_from_json(data: Json, catalog: Catalog) -> CompanyState:
    subscriptions = []
    for index, sub in enumerate(data.get("subscriptions", ())):
        plan = catalog.plans[sub["plan"]]
        started_at = parse_time(sub["started_at"])
        assert started_at is not None  # noqa: S101 - trusted input
        subscriptions.append(
            Subscription(
                id=sub.get("id", f"sub_{index}"),
                plan=plan.key,
                plan_type=plan.type,
                group=plan.group,
                quantity=sub.get("quantity", 1),
                started_at=started_at,
                trial_ends_at=parse_time(sub.get("trial_ends_at")),
                ends_at=parse_time(sub.get("ends_at")),
            )
        )
    return CompanyState(
        key=data["key"],
        found=bool(data.get("found", True)),
        traits=dict(data.get("traits", {})),
        subscriptions=tuple(subscriptions),
        overrides=tuple(
            Override(
                entitlement_from_json(o),
                parse_time(o.get("expires_at")),
                o.get("note", ""),
            )
            for o in data.get("overrides", ())
        ),
        usage=dict(data.get("usage", {})),
        credits=dict(data.get("credits", {})),
    )


def user_from_json(data: Json | None) -> UserState | None:
    return None if data is None else UserState(data["key"], dict(data.get("traits", {})))


def json_number(value: Any) -> Any:
    """Whole numbers as integers (JSON clients type 10.0 as a float); anything else as is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def decision_to_json(decision: Decision) -> dict[str, Any]:
    """The check reply of API.md ("Checks")."""
    usage = decision.usage
    return {
        "feature": decision.feature,
        "company": decision.company,
        "company_found": decision.company_found,
        "allowed": decision.allowed,
        "value": decision.value,
        "unlimited": decision.unlimited,
        "reason": decision.reason.value,
        "plan": decision.plan,
        "rule": decision.rule,
        "override_expires_at": format_time(decision.override_expires_at),
        "usage": None
        if usage is None
        else {
            "used": json_number(usage.used),
            "limit": json_number(usage.limit),
            "remaining": json_number(usage.remaining),
            "overage": json_number(usage.overage),
            "period": usage.period.value,
            "period_start": format_time(usage.period_start),
            "resets_at": format_time(usage.resets_at),
        },
        "credits": None
        if decision.credits is None
        else {
            "credit": decision.credits.credit,
            "balance": json_number(decision.credits.balance),
            "cost": json_number(decision.credits.cost),
        },
    }


def decision_from_json(data: Json) -> Decision:
    """A check reply back into a `Decision` (`decision_to_json`'s inverse)."""
    usage = data.get("usage")
    return Decision(
        feature=data["feature"],
        company=data["company"],
        company_found=bool(data.get("company_found", True)),
        allowed=bool(data["allowed"]),
        value=data.get("value"),
        unlimited=bool(data.get("unlimited", False)),
        reason=Reason(data["reason"]),
        plan=data.get("plan"),
        rule=data.get("rule"),
        override_expires_at=parse_time(data.get("override_expires_at")),
        usage=None
        if usage is None
        else Usage(
            used=usage["used"],
            limit=usage.get("limit"),
            remaining=usage.get("remaining"),
            overage=usage.get("overage", 0),
            period=Period(usage["period"]),
            period_start=parse_time(usage.get("period_start")),
            resets_at=parse_time(usage.get("resets_at")),
        ),
        credits=None
        if data.get("credits") is None
        else CreditUse(
            data["credits"]["credit"], data["credits"]["balance"], data["credits"]["cost"]
        ),
    )

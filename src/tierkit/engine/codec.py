"""Engine types from and to the API's JSON shapes: for the SDK's snapshots and company states,
language-neutral test vectors, and the check reply. Input is trusted (the server validated it).

Every `*_to_json` has a `*_from_json` inverse: `x_from_json(x_to_json(x)) == x`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from tierkit.engine.catalog import (
    Aggregation,
    CreditType,
    DiscountKind,
    Entitlement,
    Feature,
    FeatureOption,
    FeatureStatus,
    FeatureType,
    IntroOffer,
    Meter,
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
from tierkit.engine.credits import Grant
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


def price_from_json(data: Json) -> Price:
    intro = data.get("intro")
    return Price(
        interval=PriceInterval(data["interval"]),
        currency=data["currency"],
        amount=data["amount"],
        default=bool(data.get("default", False)),
        regional=tuple(RegionalPrice(r["currency"], r["amount"]) for r in data.get("regional", ())),
        trial_days=data.get("trial_days"),
        intro=IntroOffer(DiscountKind(intro["kind"]), intro["value"], intro["cycles"])
        if intro
        else None,
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
        **_plan_parts_from_json(data),
    )


def _plan_parts_from_json(data: Json) -> dict[str, Any]:
    return {
        "entitlements": tuple(entitlement_from_json(e) for e in data.get("entitlements", ())),
        "prices": tuple(price_from_json(p) for p in data.get("prices", ())),
        "credit_grants": tuple(
            PlanCreditGrant(
                g["credit"], g["amount"], Period(g.get("period", "month")), g.get("rollover_max")
            )
            for g in data.get("credit_grants", ())
        ),
    }


def plan_at_version(plan: Plan, parts: Json) -> Plan:
    """`plan` with the versioned parts of one of its versions (`plan_parts_to_json`'s shape):
    a version differs from the latest in its entitlements, prices and credit grants only."""
    return replace(plan, **_plan_parts_from_json(parts))


def feature_to_json(feature: Feature) -> dict[str, Any]:
    meter = feature.meter
    return {
        "key": feature.key,
        "name": feature.name,
        "description": feature.description,
        "type": feature.type.value,
        "unit": feature.unit,
        "status": feature.status.value,
        "visibility": feature.visibility.value,
        "meter": None
        if meter is None
        else {
            "event": meter.event,
            "aggregation": meter.aggregation.value,
            "property": meter.property,
        },
        "options": None
        if feature.options is None
        else [{"key": o.key, "name": o.name} for o in feature.options],
        "default": feature.default,
        "global_value": feature.global_value,
    }


def entitlement_to_json(entitlement: Entitlement) -> dict[str, Any]:
    overage = entitlement.overage
    return {
        "feature": entitlement.feature,
        "value": entitlement.value,
        "unlimited": entitlement.unlimited,
        "period": entitlement.period.value if entitlement.period else None,
        "reset": entitlement.reset.value if entitlement.reset else None,
        "soft_limit": entitlement.soft_limit,
        "overage": None if overage is None else {"price": overage.price, "per": overage.per},
        "credit": entitlement.credit,
        "credit_cost": entitlement.credit_cost,
    }


def price_to_json(price: Price) -> dict[str, Any]:
    intro = price.intro
    return {
        "interval": price.interval.value,
        "currency": price.currency,
        "amount": price.amount,
        "default": price.default,
        "regional": [{"currency": r.currency, "amount": r.amount} for r in price.regional],
        "trial_days": price.trial_days,
        "intro": None
        if intro is None
        else {"kind": intro.kind.value, "value": intro.value, "cycles": intro.cycles},
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        "key": plan.key,
        "name": plan.name,
        "description": plan.description,
        "type": plan.type.value,
        "group": plan.group,
        "status": plan.status.value,
        "visibility": plan.visibility.value,
        "is_default": plan.is_default,
        "trial_days": plan.trial_days,
        "sort_order": plan.sort_order,
        "metadata": dict(plan.metadata),
        **plan_parts_to_json(plan),
    }


def plan_parts_to_json(plan: Plan) -> dict[str, Any]:
    """The versioned parts of a plan: its entitlements, prices and credit grants."""
    return {
        "entitlements": [entitlement_to_json(e) for e in plan.entitlements],
        "prices": [price_to_json(p) for p in plan.prices],
        "credit_grants": [
            {
                "credit": g.credit,
                "amount": json_number(g.amount),
                "period": g.period.value,
                "rollover_max": json_number(g.rollover_max),
            }
            for g in plan.credit_grants
        ],
    }


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
    plans = {p["key"]: plan_from_json(p) for p in data.get("plans", ())}
    return Catalog(
        features={f["key"]: feature_from_json(f) for f in data.get("features", ())},
        plans=plans,
        plan_versions={
            key: {v["version"]: plan_at_version(plans[key], v) for v in versions}
            for key, versions in data.get("plan_versions", {}).items()
            if key in plans
        },
        rules={
            key: tuple(rule_from_json(r) for r in rules)
            for key, rules in data.get("rules", {}).items()
        },
        credits={
            c["key"]: CreditType(c["key"], c.get("name", c["key"]), c.get("unit"))
            for c in data.get("credits", ())
        },
    )


def catalog_to_json(catalog: Catalog) -> dict[str, Any]:
    """The catalog as the SDK snapshot carries it (keys sorted, so equal catalogs give equal
    documents)."""
    return {
        "features": [feature_to_json(catalog.features[k]) for k in sorted(catalog.features)],
        "plans": [plan_to_json(catalog.plans[k]) for k in sorted(catalog.plans)],
        "rules": {
            key: [rule_to_json(rule) for rule in catalog.rules[key]]
            for key in sorted(catalog.rules)
            if catalog.rules[key]
        },
        "credits": [
            {"key": c.key, "name": c.name, "unit": c.unit}
            for c in (catalog.credits[k] for k in sorted(catalog.credits))
        ],
    } | _plan_versions_to_json(catalog)


def _plan_versions_to_json(catalog: Catalog) -> dict[str, Any]:
    """The older plan versions subscriptions hold (no key at all when there are none)."""
    versions = {
        key: [
            {"version": number} | plan_parts_to_json(catalog.plan_versions[key][number])
            for number in sorted(catalog.plan_versions[key])
        ]
        for key in sorted(catalog.plan_versions)
        if catalog.plan_versions[key]
    }
    return {"plan_versions": versions} if versions else {}


def _utc_only(name: str) -> tzinfo:
    return UTC


def company_from_json(
    data: Json, catalog: Catalog, zone: Callable[[str], tzinfo] = _utc_only
) -> CompanyState:
    """A company's state. `zone` turns its `timezone` name into a zone (the engine reads no
    time zone database itself; the SDK passes `zoneinfo.ZoneInfo`)."""
    subscriptions = []
    for index, sub in enumerate(data.get("subscriptions", ())):
        plan = catalog.plans.get(sub["plan"])
        started_at = parse_time(sub["started_at"])
        assert started_at is not None  # noqa: S101 - trusted input
        interval = sub.get("price_interval")
        subscriptions.append(
            Subscription(
                id=sub.get("id", f"sub_{index}"),
                plan=sub["plan"],
                plan_type=PlanType(sub["plan_type"]) if "plan_type" in sub else _type_of(plan),
                group=sub["group"] if "group" in sub else _group_of(plan),
                quantity=sub.get("quantity", 1),
                started_at=started_at,
                trial_ends_at=parse_time(sub.get("trial_ends_at")),
                ends_at=parse_time(sub.get("ends_at")),
                price_interval=PriceInterval(interval) if interval else None,
                canceled_at=parse_time(sub.get("canceled_at")),
                plan_version=sub.get("plan_version"),
            )
        )
    windows = data.get("usage_windows", {})
    timezone = data.get("timezone")
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
        usage_windows={
            key: (parse_time(start), parse_time(end)) for key, (start, end) in windows.items()
        },
        credits=dict(data.get("credits", {})),
        grants=tuple(
            Grant(
                id=g["id"],
                credit=g["credit"],
                remaining=g["remaining"],
                created_at=parse_time(g["created_at"]) or datetime.min.replace(tzinfo=UTC),
                priority=g.get("priority", 0),
                expires_at=parse_time(g.get("expires_at")),
                voided=bool(g.get("voided", False)),
            )
            for g in data.get("grants", ())
        ),
        timezone=UTC if timezone in (None, "UTC") else zone(timezone),
    )


def _type_of(plan: Plan | None) -> PlanType:
    return plan.type if plan is not None else PlanType.BASE


def _group_of(plan: Plan | None) -> str:
    return plan.group if plan is not None else "default"


def zone_name(zone: tzinfo) -> str:
    """The IANA name of a zone (`ZoneInfo.key`), or its `tzname` (UTC)."""
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) else (zone.tzname(None) or "UTC")


def company_to_json(company: CompanyState) -> dict[str, Any]:
    """A company's state as the SDK's local evaluation reads it."""
    return {
        "key": company.key,
        "found": company.found,
        "traits": dict(company.traits),
        "timezone": zone_name(company.timezone),
        "subscriptions": [
            {
                "id": s.id,
                "plan": s.plan,
                "plan_type": s.plan_type.value,
                "group": s.group,
                "quantity": s.quantity,
                "started_at": format_time(s.started_at),
                "trial_ends_at": format_time(s.trial_ends_at),
                "ends_at": format_time(s.ends_at),
                "price_interval": s.price_interval.value if s.price_interval else None,
                "canceled_at": format_time(s.canceled_at),
                "plan_version": s.plan_version,
            }
            for s in company.subscriptions
        ],
        "overrides": [
            entitlement_to_json(o.entitlement)
            | {"expires_at": format_time(o.expires_at), "note": o.note}
            for o in company.overrides
        ],
        "usage": {key: json_number(value) for key, value in company.usage.items()},
        "usage_windows": {
            key: [format_time(start), format_time(end)]
            for key, (start, end) in company.usage_windows.items()
        },
        "credits": {key: json_number(value) for key, value in company.credits.items()},
        "grants": [
            {
                "id": g.id,
                "credit": g.credit,
                "remaining": json_number(g.remaining),
                "created_at": format_time(g.created_at),
                "priority": g.priority,
                "expires_at": format_time(g.expires_at),
                "voided": g.voided,
            }
            for g in company.grants
        ],
    }


def user_from_json(data: Json | None) -> UserState | None:
    return None if data is None else UserState(data["key"], dict(data.get("traits", {})))


def user_to_json(user: UserState) -> dict[str, Any]:
    return {"key": user.key, "traits": dict(user.traits)}


def json_number(value: Any) -> Any:
    """Whole numbers as integers (JSON clients type 10.0 as a float); anything else as is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def decision_to_json(decision: Decision) -> dict[str, Any]:
    """The check reply of API.md ("Checks"); an SDK fallback or stale answer adds
    `error_code` and `stale`."""
    reply = _decision_reply(decision)
    if decision.error_code is not None or decision.stale:
        reply |= {"error_code": decision.error_code, "stale": decision.stale}
    return reply


def _decision_reply(decision: Decision) -> dict[str, Any]:
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
        error_code=data.get("error_code"),
        stale=bool(data.get("stale", False)),
    )

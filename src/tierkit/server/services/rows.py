"""Conversions between rows and engine types, shared by the services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tierkit.engine.catalog import (
    Aggregation,
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
from tierkit.engine.customers import Override
from tierkit.server.db.ids import new_id
from tierkit.server.db.tables import EntitlementRow, FeatureRow, OverrideRow, PlanRow, PriceRow


def to_feature(row: FeatureRow) -> Feature:
    meter = None
    if row.meter_event is not None and row.meter_aggregation is not None:
        meter = Meter(row.meter_event, Aggregation(row.meter_aggregation), row.meter_property)
    options = None
    if row.options is not None:
        options = tuple(FeatureOption(o["key"], o["name"]) for o in row.options)
    return Feature(
        key=row.key,
        name=row.name,
        type=FeatureType(row.type),
        description=row.description,
        unit=row.unit,
        status=FeatureStatus(row.status),
        visibility=Visibility(row.visibility),
        meter=meter,
        options=options,
        default=row.default,
        global_value=row.global_value,
    )


def write_feature_row(row: FeatureRow, feature: Feature) -> None:
    row.key = feature.key
    row.name = feature.name
    row.description = feature.description
    row.type = feature.type.value
    row.unit = feature.unit
    row.status = feature.status.value
    row.visibility = feature.visibility.value
    row.meter_event = feature.meter.event if feature.meter else None
    row.meter_aggregation = feature.meter.aggregation.value if feature.meter else None
    row.meter_property = feature.meter.property if feature.meter else None
    row.options = (
        None
        if feature.options is None
        else [{"key": o.key, "name": o.name} for o in feature.options]
    )
    row.default = feature.default
    row.global_value = feature.global_value


def to_entitlement(row: EntitlementRow) -> Entitlement:
    overage = None
    if row.overage_price is not None:
        overage = Overage(price=row.overage_price, per=row.overage_per or 1)
    return Entitlement(
        feature=row.feature.key,
        value=row.value,
        unlimited=row.unlimited,
        period=Period(row.period) if row.period else None,
        reset=Reset(row.reset) if row.reset else None,
        soft_limit=row.soft_limit,
        overage=overage,
        credit=row.credit,
        credit_cost=row.credit_cost,
    )


def new_entitlement_row(entitlement: Entitlement, feature_id: str, position: int) -> EntitlementRow:
    return EntitlementRow(
        id=new_id("ent"),
        feature_id=feature_id,
        position=position,
        value=entitlement.value,
        unlimited=entitlement.unlimited,
        period=entitlement.period.value if entitlement.period else None,
        reset=entitlement.reset.value if entitlement.reset else None,
        soft_limit=entitlement.soft_limit,
        overage_price=entitlement.overage.price if entitlement.overage else None,
        overage_per=entitlement.overage.per if entitlement.overage else None,
        credit=entitlement.credit,
        credit_cost=entitlement.credit_cost,
    )


def to_price(row: PriceRow) -> Price:
    return Price(
        interval=PriceInterval(row.interval),
        currency=row.currency,
        amount=row.amount,
        default=row.is_default,
        regional=tuple(RegionalPrice(r["currency"], r["amount"]) for r in row.regional),
        trial_days=row.trial_days,
        intro=IntroOffer(DiscountKind(row.intro["kind"]), row.intro["value"], row.intro["cycles"])
        if row.intro
        else None,
    )


def new_price_row(price: Price, position: int) -> PriceRow:
    return PriceRow(
        id=new_id("price"),
        position=position,
        interval=price.interval.value,
        currency=price.currency,
        amount=price.amount,
        is_default=price.default,
        regional=[{"currency": r.currency, "amount": r.amount} for r in price.regional],
        trial_days=price.trial_days,
        intro=None
        if price.intro is None
        else {
            "kind": price.intro.kind.value,
            "value": price.intro.value,
            "cycles": price.intro.cycles,
        },
    )


def to_plan(row: PlanRow) -> Plan:
    return Plan(
        key=row.key,
        name=row.name,
        type=PlanType(row.type),
        description=row.description,
        group=row.plan_group,
        status=PlanStatus(row.status),
        visibility=Visibility(row.visibility),
        is_default=row.is_default,
        trial_days=row.trial_days,
        sort_order=row.sort_order,
        metadata=dict(row.plan_metadata),
        entitlements=tuple(to_entitlement(e) for e in row.entitlements),
        prices=tuple(to_price(p) for p in row.prices),
        credit_grants=tuple(
            PlanCreditGrant(g["credit"], g["amount"], Period(g["period"]), g.get("rollover_max"))
            for g in row.credit_grants or ()
        ),
    )


def write_plan_fields(row: PlanRow, plan: Plan) -> None:
    """Copy the plan's own fields (not its entitlements or prices) onto the row."""
    row.key = plan.key
    row.name = plan.name
    row.description = plan.description
    row.type = plan.type.value
    row.plan_group = plan.group
    row.status = plan.status.value
    row.visibility = plan.visibility.value
    row.is_default = plan.is_default
    row.trial_days = plan.trial_days
    row.sort_order = plan.sort_order
    row.plan_metadata = dict(plan.metadata)
    row.credit_grants = [
        {
            "credit": g.credit,
            "amount": g.amount,
            "period": g.period.value,
            "rollover_max": g.rollover_max,
        }
        for g in plan.credit_grants
    ]


def to_override(row: OverrideRow) -> Override:
    entitlement = Entitlement(
        feature=row.feature.key,
        value=row.value,
        unlimited=row.unlimited,
        period=Period(row.period) if row.period else None,
        reset=Reset(row.reset) if row.reset else None,
        soft_limit=row.soft_limit,
    )
    return Override(entitlement, row.expires_at, row.note)


def new_customer_values(
    id_prefix: str, environment_id: str, key: str, now: datetime
) -> dict[str, Any]:
    """The columns of a company (`co`) or user (`usr`) first seen now: no name, no traits."""
    return {
        "id": new_id(id_prefix),
        "environment_id": environment_id,
        "key": key,
        "name": None,
        "traits": {},
        "created_at": now,
        "updated_at": now,
    }

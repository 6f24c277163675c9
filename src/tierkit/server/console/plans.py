"""Plans: list in display order with a pricing-table preview; one screen for a plan's fields,
entitlements and prices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from tierkit.engine.catalog import (
    FeatureStatus,
    Period,
    Plan,
    PlanStatus,
    PlanType,
    Price,
    PriceInterval,
    Reset,
    Visibility,
)
from tierkit.server.api.dependencies import ServicesDep
from tierkit.server.api.routes.plans import PlanKey
from tierkit.server.api.schemas.plans import EntitlementOut, PlanCreate, PlanUpdate, PriceOut
from tierkit.server.console.features import all_features, every
from tierkit.server.console.forms import (
    Problems,
    flag,
    number,
    show_value,
    text,
    typed_value,
    validated,
)
from tierkit.server.console.web import PREFIX, ConsoleRoute, FormDep, SessionDep, page, redirect
from tierkit.server.services.console_users import ConsoleSession
from tierkit.server.services.container import Services
from tierkit.server.services.errors import DomainError
from tierkit.server.services.features import FeatureRecord
from tierkit.server.services.pagination import MAX_LIMIT
from tierkit.server.services.plans import PlanRecord

router = APIRouter(prefix=f"{PREFIX}/plans", route_class=ConsoleRoute, include_in_schema=False)

CHOICES = {
    "plan_types": [t.value for t in PlanType],
    "plan_statuses": [s.value for s in PlanStatus],
    "visibilities": [v.value for v in Visibility],
    "periods": [p.value for p in Period],
    "resets": [r.value for r in Reset],
    "intervals": [i.value for i in PriceInterval],
}


def all_plans(services: Services, environment_id: str) -> list[PlanRecord]:
    return every(
        lambda cursor: services.plans.list_plans(environment_id, cursor=cursor, limit=MAX_LIMIT)
    )


@router.get("")
def list_plans(
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    currency: str = "usd",
    interval: str = "month",
) -> Response:
    plans = all_plans(services, session.environment_id)
    chosen = PriceInterval(interval) if interval in CHOICES["intervals"] else PriceInterval.MONTH
    currency = currency if len(currency) == 3 and currency.isalpha() else "usd"
    table = services.pricing.pricing_table(session.environment_id, currency.lower(), chosen)
    return page(
        request,
        session,
        "plans.html",
        {
            "section": "plans",
            "plans": plans,
            "table": table,
            "currency": currency.lower(),
            "interval": chosen.value,
            **CHOICES,
        },
    )


def _plan_values(plan: Plan | None) -> dict[str, str]:
    if plan is None:
        return {"type": "base", "status": "active", "visibility": "public", "group": "default"}
    return {
        "key": plan.key,
        "name": plan.name,
        "description": plan.description,
        "type": plan.type.value,
        "group": plan.group,
        "status": plan.status.value,
        "visibility": plan.visibility.value,
        "is_default": "true" if plan.is_default else "",
        "trial_days": show_value(plan.trial_days),
        "sort_order": show_value(plan.sort_order),
    }


def _entitlement_rows(
    features: list[FeatureRecord], plan: Plan | None, form: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """One row per feature (archived ones only where the plan still has them)."""
    rows = []
    for record in features:
        feature = record.feature
        held = plan.entitlement_for(feature.key) if plan is not None else None
        if feature.status is FeatureStatus.ARCHIVED and held is None:
            continue
        prefix = f"entitlements.{feature.key}."
        if form is not None:
            values = {
                name: text(form, prefix + name) or ""
                for name in ("included", "value", "unlimited", "period", "reset", "soft_limit")
            }
        else:
            values = {
                "included": "true" if held else "",
                "value": show_value(held.value) if held else "",
                "unlimited": "true" if held and held.unlimited else "",
                "period": held.period.value if held and held.period else "",
                "reset": held.reset.value if held and held.reset else "",
                "soft_limit": "true" if held and held.soft_limit else "",
            }
        rows.append({"feature": feature, "prefix": prefix, **values})
    return rows


def _price_rows(plan: Plan | None, form: Mapping[str, Any] | None) -> list[dict[str, str]]:
    if form is not None:
        raw = text(form, "price_count") or "0"
        count = min(int(raw), 100) if raw.isdigit() else 0
        return [
            {
                name: text(form, f"prices.{i}.{name}") or ""
                for name in ("interval", "currency", "amount", "default", "remove")
            }
            for i in range(count)
        ]
    prices = plan.prices if plan is not None else ()
    rows = [
        {
            "interval": p.interval.value,
            "currency": p.currency,
            "amount": str(p.amount),
            "default": "true" if p.default else "",
            "remove": "",
        }
        for p in prices
    ]
    return [
        *rows,
        {"interval": "month", "currency": "usd", "amount": "", "default": "", "remove": ""},
    ]


def _entitlements_body(
    form: Mapping[str, Any], features: list[FeatureRecord], plan: Plan | None
) -> list[dict[str, Any]]:
    body = []
    for record in features:
        feature = record.feature
        prefix = f"entitlements.{feature.key}."
        if not flag(form, prefix + "included"):
            continue
        # What this screen does not edit (overage, credit pricing) is kept as it was.
        held = plan.entitlement_for(feature.key) if plan is not None else None
        kept = (
            EntitlementOut.of(held).model_dump(include={"overage", "credit", "credit_cost"})
            if held
            else {}
        )
        body.append(
            {
                **{k: v for k, v in kept.items() if v is not None},
                "feature": feature.key,
                "value": typed_value(feature.type.value, text(form, prefix + "value")),
                "unlimited": flag(form, prefix + "unlimited"),
                "period": text(form, prefix + "period"),
                "reset": text(form, prefix + "reset"),
                "soft_limit": flag(form, prefix + "soft_limit"),
            }
        )
    return body


def _prices_body(form: Mapping[str, Any], plan: Plan | None) -> list[dict[str, Any]]:
    kept: dict[tuple[str, str], Price] = {
        (p.interval.value, p.currency): p for p in (plan.prices if plan else ())
    }
    body = []
    for row in _price_rows(None, form):
        if row["remove"] or not row["amount"]:
            continue
        price: dict[str, Any] = {
            "interval": row["interval"],
            "currency": row["currency"].lower(),
            "amount": number(row["amount"]),
            "default": bool(row["default"]),
        }
        # Regional prices, trials and intro offers are kept as they were.
        earlier = kept.get((row["interval"], row["currency"].lower()))
        if earlier is not None:
            extra = PriceOut.model_validate(earlier).model_dump(exclude_none=True)
            price |= {k: extra[k] for k in ("regional", "trial_days", "intro") if k in extra}
        body.append(price)
    return body


def _plan_body(
    form: Mapping[str, Any], features: list[FeatureRecord], plan: Plan | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": text(form, "name") or "",
        "description": text(form, "description") or "",
        "type": text(form, "type") or "base",
        "group": text(form, "group") or "default",
        "status": text(form, "status") or "active",
        "visibility": text(form, "visibility") or "public",
        "is_default": flag(form, "is_default"),
        "trial_days": number(text(form, "trial_days")),
        "sort_order": number(text(form, "sort_order")) or 0,
        "entitlements": _entitlements_body(form, features, plan),
        "prices": _prices_body(form, plan),
    }
    if plan is None:
        body["key"] = text(form, "key") or ""
    return body


def _problems_by_row(
    error: ValidationError | DomainError, form: Mapping[str, Any], features: list[FeatureRecord]
) -> Problems:
    """The problems with the form's rows named as the form names them."""
    included = [
        r.feature.key for r in features if flag(form, f"entitlements.{r.feature.key}.included")
    ]
    names = {f"entitlements.{i}": f"entitlements.{key}" for i, key in enumerate(included)}
    kept = [
        i for i, row in enumerate(_price_rows(None, form)) if not row["remove"] and row["amount"]
    ]
    names |= {f"prices.{i}": f"prices.{row}" for i, row in enumerate(kept)}
    return Problems.of(error).renamed(names)


def _plan_form(
    request: Request,
    session: ConsoleSession,
    services: Services,
    record: PlanRecord | None,
    form: Mapping[str, Any] | None,
    problems: Problems,
    notice: str = "",
) -> Response:
    features = all_features(services, session.environment_id)
    plan = record.plan if record else None
    values = _plan_values(plan) if form is None else {k: str(v) for k, v in form.items()}
    return page(
        request,
        session,
        "plan_form.html",
        {
            "section": "plans",
            "record": record,
            "values": values,
            "entitlements": _entitlement_rows(features, plan, form),
            "prices": _price_rows(plan, form),
            "problems": problems,
            "notice": notice,
            **CHOICES,
        },
        status_code=problems.status if problems else 200,
    )


@router.get("/new")
def new_plan(request: Request, session: SessionDep, services: ServicesDep) -> Response:
    return _plan_form(request, session, services, None, None, Problems())


@router.post("/new")
def create_plan(
    request: Request, form: FormDep, session: SessionDep, services: ServicesDep
) -> Response:
    features = all_features(services, session.environment_id)
    try:
        body = validated(PlanCreate, _plan_body(form, features, None))
        record = services.plans.create_plan(session.environment_id, body.to_plan())
    except (ValidationError, DomainError) as error:
        problems = _problems_by_row(error, form, features)
        return _plan_form(request, session, services, None, form, problems)
    return redirect(f"{PREFIX}/plans/{record.plan.key}?saved=1")


@router.get("/{key}")
def edit_plan(
    request: Request, key: PlanKey, session: SessionDep, services: ServicesDep, saved: str = ""
) -> Response:
    record = services.plans.get_plan(session.environment_id, key)
    notice = "Saved." if saved else ""
    return _plan_form(request, session, services, record, None, Problems(), notice)


@router.post("/{key}")
def update_plan(
    request: Request, key: PlanKey, form: FormDep, session: SessionDep, services: ServicesDep
) -> Response:
    record = services.plans.get_plan(session.environment_id, key)
    features = all_features(services, session.environment_id)
    try:
        body = validated(PlanUpdate, _plan_body(form, features, record.plan))
        services.plans.update_plan(session.environment_id, key, body.to_changes())
    except (ValidationError, DomainError) as error:
        problems = _problems_by_row(error, form, features)
        return _plan_form(request, session, services, record, form, problems)
    return redirect(f"{PREFIX}/plans/{key}?saved=1")

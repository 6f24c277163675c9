"""Companies: search, and a company's page (plan and add-ons, effective entitlements with
their reasons, usage, credits, overrides, subscription changes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from tierkit.engine.catalog import FeatureStatus, PlanStatus
from tierkit.engine.evaluate import Decision, Reason
from tierkit.server.api.dependencies import ServicesDep
from tierkit.server.api.routes.companies import CompanyKey, SubscriptionId
from tierkit.server.api.routes.features import FeatureKey
from tierkit.server.api.schemas.common import ExternalKey, InputModel
from tierkit.server.api.schemas.customers import (
    CompanyUpsert,
    CustomerName,
    OverrideBody,
    SubscriptionCreate,
    SubscriptionUpdate,
)
from tierkit.server.console.charts import bar_chart
from tierkit.server.console.features import all_features
from tierkit.server.console.forms import (
    Problems,
    flag,
    number,
    show_value,
    text,
    timestamp,
    typed_value,
    validated,
)
from tierkit.server.console.plans import all_plans
from tierkit.server.console.web import (
    PREFIX,
    ConsoleRoute,
    FormDep,
    SessionDep,
    page,
    redirect,
    segment,
)
from tierkit.server.services.checks import CheckRequest
from tierkit.server.services.console_users import ConsoleSession
from tierkit.server.services.container import Services
from tierkit.server.services.errors import DomainError
from tierkit.server.services.subscriptions import CancelAt
from tierkit.server.services.usage import Granularity

router = APIRouter(prefix=f"{PREFIX}/companies", route_class=ConsoleRoute, include_in_schema=False)
_LEDGER_ROWS = 50


class _NewCompany(InputModel):
    key: ExternalKey
    name: CustomerName | None = None


@router.get("")
def list_companies(
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    q: str = Query(default="", max_length=255),
    cursor: str | None = Query(default=None, max_length=500),
) -> Response:
    found = services.companies.list_companies(
        session.environment_id, q=q.strip() or None, cursor=cursor, limit=50
    )
    return page(
        request,
        session,
        "companies.html",
        {"section": "companies", "companies": found.items, "next": found.next_cursor, "q": q},
    )


@router.post("")
def create_company(
    request: Request, form: FormDep, session: SessionDep, services: ServicesDep
) -> Response:
    try:
        body = validated(_NewCompany, {"key": text(form, "key") or "", "name": text(form, "name")})
        fields = CompanyUpsert(name=body.name).provided() if body.name else {}
        services.customers.upsert_company(session.environment_id, body.key, fields)
    except (ValidationError, DomainError) as error:
        found = services.companies.list_companies(session.environment_id, limit=50)
        return page(
            request,
            session,
            "companies.html",
            {
                "section": "companies",
                "companies": found.items,
                "next": found.next_cursor,
                "q": "",
                "values": dict(form),
                "problems": Problems.of(error),
            },
            status_code=Problems.of(error).status,
        )
    return redirect(f"{PREFIX}/companies/{segment(body.key)}")


def explain(decision: Decision) -> str:
    """Why the company has this value, in a sentence (the page's "why?")."""
    value = "unlimited" if decision.unlimited else show_value(decision.value) or "nothing"
    source = {
        Reason.GLOBAL_OVERRIDE: f"The feature's global value (its kill switch) gives every "
        f"company {value}.",
        Reason.OVERRIDE: f"An override for this company sets {value}"
        + (
            f", until {decision.override_expires_at:%Y-%m-%d %H:%M} UTC."
            if decision.override_expires_at
            else ", with no expiry."
        ),
        Reason.PLAN: f"Plan {decision.plan or 'of the company'} sets {value} "
        "(no override or global value comes first).",
        Reason.RULE: f"Rule {decision.rule!r} matched: no override or plan sets the feature, "
        f"so the rule gives {value}.",
        Reason.DEFAULT: f"No override, plan or rule sets the feature: its default, {value}.",
    }.get(decision.reason)
    if source is not None:
        return source
    usage = decision.usage
    if decision.reason is Reason.LIMIT_EXCEEDED and usage is not None:
        where = f" (from plan {decision.plan})" if decision.plan else ""
        return (
            f"The limit is {show_value(usage.limit)}{where} and {show_value(usage.used)} is "
            f"used this {usage.period.value}: one more is over the limit."
        )
    if decision.reason is Reason.INSUFFICIENT_CREDITS and decision.credits is not None:
        credits = decision.credits
        return (
            f"Each use costs {show_value(credits.cost)} {credits.credit}; the balance is "
            f"{show_value(credits.balance)}."
        )
    return f"Decided by {decision.reason.value}."


def _usage_rows(decisions: list[Decision]) -> list[dict[str, Any]]:
    rows = []
    for decision in decisions:
        usage = decision.usage
        if usage is None:
            continue
        limit = usage.limit
        rows.append(
            {
                "feature": decision.feature,
                "used": show_value(usage.used),
                "limit": "unlimited" if decision.unlimited or limit is None else show_value(limit),
                "max": show_value(limit) if limit and not decision.unlimited else None,
                "value": show_value(min(usage.used, limit) if limit else usage.used),
                "over": limit is not None and not decision.unlimited and usage.used > limit,
                "period": usage.period.value,
                "period_start": usage.period_start,
                "resets_at": usage.resets_at,
            }
        )
    return rows


def _company_page(
    request: Request,
    session: ConsoleSession,
    services: Services,
    key: str,
    problems: Problems | None = None,
    values: Mapping[str, Any] | None = None,
    notice: str = "",
) -> Response:
    env = session.environment_id
    detail = services.customers.get_company(env, key)
    decisions = services.checks.check(env, CheckRequest(company=key), fresh=True)
    features = {
        r.feature.key: r.feature
        for r in all_features(services, env)
        if r.feature.status is not FeatureStatus.ARCHIVED
    }
    charts = []
    for decision in decisions:
        feature = features.get(decision.feature)
        if decision.usage is not None and feature is not None and feature.meter is not None:
            series = services.usage.series(
                env, key, decision.feature, start=None, end=None, granularity=Granularity.DAY
            )
            charts.append({"feature": decision.feature, "chart": bar_chart(series.points)})
    problems = problems or Problems()
    return page(
        request,
        session,
        "company.html",
        {
            "section": "companies",
            "detail": detail,
            "company": detail.record.company,
            "key": key,
            "decisions": [(d, explain(d)) for d in decisions],
            "usage": _usage_rows(decisions),
            "charts": charts,
            "balances": services.credits.balances(env, key),
            "ledger": services.credits.ledger(env, key, limit=_LEDGER_ROWS).items,
            "plans": [
                r.plan for r in all_plans(services, env) if r.plan.status is PlanStatus.ACTIVE
            ],
            "features": list(features.values()),
            "problems": problems,
            "values": values or {},
            "notice": notice,
            "now": services.clock(),
        },
        status_code=problems.status if problems else 200,
    )


@router.get("/{key}")
def company(
    request: Request, key: CompanyKey, session: SessionDep, services: ServicesDep, saved: str = ""
) -> Response:
    return _company_page(request, session, services, key, notice="Saved." if saved else "")


def _back(key: str, anchor: str) -> Response:
    return redirect(f"{PREFIX}/companies/{segment(key)}?saved=1#{anchor}")


@router.post("/{key}/subscriptions")
def subscribe(
    request: Request, key: CompanyKey, form: FormDep, session: SessionDep, services: ServicesDep
) -> Response:
    body = {
        "plan": text(form, "plan") or "",
        "quantity": number(text(form, "quantity")) or 1,
        "price_interval": text(form, "price_interval"),
    }
    if text(form, "ends_at"):
        body["ends_at"] = timestamp(text(form, "ends_at"))
    try:
        request_body = validated(SubscriptionCreate, body)
        services.subscriptions.create_subscription(
            session.environment_id, key, request_body.to_request()
        )
    except (ValidationError, DomainError) as error:
        problems = Problems.of(error)
        return _company_page(request, session, services, key, problems, dict(form))
    return _back(key, "plan")


@router.post("/{key}/subscriptions/{subscription_id}/cancel")
def cancel(
    key: CompanyKey,
    subscription_id: SubscriptionId,
    form: FormDep,
    session: SessionDep,
    services: ServicesDep,
) -> Response:
    at = CancelAt.PERIOD_END if text(form, "at") == "period_end" else CancelAt.NOW
    services.subscriptions.cancel_subscription(session.environment_id, key, subscription_id, at)
    return _back(key, "plan")


@router.post("/{key}/subscriptions/{subscription_id}/quantity")
def change_quantity(
    request: Request,
    key: CompanyKey,
    subscription_id: SubscriptionId,
    form: FormDep,
    session: SessionDep,
    services: ServicesDep,
) -> Response:
    try:
        body = validated(SubscriptionUpdate, {"quantity": number(text(form, "quantity"))})
        services.subscriptions.update_subscription(
            session.environment_id, key, subscription_id, body.provided()
        )
    except (ValidationError, DomainError) as error:
        found = Problems.of(error)
        name = f"subscriptions.{subscription_id}.quantity"
        problems = Problems(found.status, found.message, {name: found.message})
        return _company_page(request, session, services, key, problems)
    return _back(key, "plan")


def _override_body(form: Mapping[str, Any], feature_type: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "value": typed_value(feature_type, text(form, "value")),
        "unlimited": flag(form, "unlimited"),
        "note": text(form, "note") or "",
    }
    if text(form, "expires_at"):
        body["expires_at"] = timestamp(text(form, "expires_at"))
    return body


@router.post("/{key}/overrides")
def put_override(
    request: Request, key: CompanyKey, form: FormDep, session: SessionDep, services: ServicesDep
) -> Response:
    """Add an override, or change the feature's (one per feature)."""
    feature_key = text(form, "feature") or ""
    try:
        feature = services.features.get_feature(session.environment_id, feature_key).feature
        body = validated(OverrideBody, _override_body(form, feature.type.value))
        services.overrides.put_override(session.environment_id, key, body.to_override(feature.key))
    except (ValidationError, DomainError) as error:
        problems = Problems.of(error)
        if isinstance(error, DomainError) and error.code == "feature_not_found":
            problems = Problems(400, error.message, {"feature": "Choose a feature."})
        return _company_page(request, session, services, key, problems, dict(form))
    return _back(key, "overrides")


@router.post("/{key}/overrides/{feature}/delete")
def delete_override(
    key: CompanyKey, feature: FeatureKey, form: FormDep, session: SessionDep, services: ServicesDep
) -> Response:
    services.overrides.delete_override(session.environment_id, key, feature)
    return _back(key, "overrides")

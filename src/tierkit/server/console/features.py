"""Features: list, create, edit (type-aware), archive, and their rules with rollout."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import FormData

from tierkit.engine.catalog import Aggregation, FeatureStatus, FeatureType, Visibility
from tierkit.engine.codec import rule_to_json
from tierkit.server.api.dependencies import ServicesDep
from tierkit.server.api.routes.features import FeatureKey
from tierkit.server.api.schemas.checks import RuleBody
from tierkit.server.api.schemas.features import FeatureCreate, FeatureUpdate
from tierkit.server.console.forms import (
    Problems,
    flag,
    number,
    parse_options,
    show_options,
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
from tierkit.server.services.pagination import MAX_LIMIT, Page

router = APIRouter(prefix=f"{PREFIX}/features", route_class=ConsoleRoute, include_in_schema=False)
T = TypeVar("T")
_RULES = TypeAdapter(list[RuleBody])

CHOICES = {
    "types": [t.value for t in FeatureType],
    "aggregations": [a.value for a in Aggregation],
    "statuses": [s.value for s in FeatureStatus],
    "visibilities": [v.value for v in Visibility],
}


def every(fetch: Callable[[str | None], Page[T]]) -> list[T]:
    """All items of a paginated listing, page by page."""
    items: list[T] = []
    cursor: str | None = None
    while True:
        found = fetch(cursor)
        items.extend(found.items)
        if found.next_cursor is None:
            return items
        cursor = found.next_cursor


def all_features(services: Services, environment_id: str) -> list[FeatureRecord]:
    return every(
        lambda cursor: services.features.list_features(
            environment_id, cursor=cursor, limit=MAX_LIMIT
        )
    )


def _form_of(record: FeatureRecord | None) -> dict[str, str]:
    """What the feature form shows for a feature (empty for a new one)."""
    if record is None:
        return {"type": "boolean", "status": "active", "visibility": "public"}
    feature = record.feature
    meter = feature.meter
    return {
        "key": feature.key,
        "name": feature.name,
        "description": feature.description,
        "type": feature.type.value,
        "unit": feature.unit or "",
        "status": feature.status.value,
        "visibility": feature.visibility.value,
        "meter.event": meter.event if meter else "",
        "meter.aggregation": meter.aggregation.value if meter else "count",
        "meter.property": (meter.property or "") if meter else "",
        "options": show_options(feature.options),
        "default": show_value(feature.default),
        "global_value": show_value(feature.global_value),
    }


def _body_of(form: Mapping[str, Any], *, new: bool) -> dict[str, Any]:
    """The API body a feature form says (only what applies to the chosen type)."""
    feature_type = text(form, "type")
    body: dict[str, Any] = {
        "name": text(form, "name") or "",
        "description": text(form, "description") or "",
        "type": feature_type,
        "unit": text(form, "unit"),
        "status": text(form, "status") or "active",
        "visibility": text(form, "visibility") or "public",
        "meter": None,
        "options": None,
        "default": typed_value(feature_type, text(form, "default")),
        "global_value": typed_value(feature_type, text(form, "global_value")),
    }
    if new:
        body["key"] = text(form, "key") or ""
    if feature_type == FeatureType.METERED:
        body["meter"] = {
            "event": text(form, "meter.event") or text(form, "key") or "",
            "aggregation": text(form, "meter.aggregation") or "count",
            "property": text(form, "meter.property"),
        }
    if feature_type == FeatureType.ENUM:
        body["options"] = parse_options(text(form, "options"))
    return body


@router.get("")
def list_features(
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    show: str = "active",
    type: FeatureType | None = None,
) -> Response:
    features = all_features(services, session.environment_id)
    if show != "all":
        features = [f for f in features if f.feature.status is not FeatureStatus.ARCHIVED]
    if type is not None:
        features = [f for f in features if f.feature.type is type]
    return page(
        request,
        session,
        "features.html",
        {
            "section": "features",
            "features": features,
            "show": show,
            "type": type.value if type else "",
            "types": CHOICES["types"],
        },
    )


@router.get("/new")
def new_feature(request: Request, session: SessionDep) -> Response:
    return _feature_form(request, session, None, _form_of(None), Problems())


def _feature_form(
    request: Request,
    session: ConsoleSession,
    record: FeatureRecord | None,
    values: Mapping[str, Any],
    problems: Problems,
    rules: list[dict[str, Any]] | None = None,
    rule_problems: Problems | None = None,
    *,
    notice: str = "",
) -> Response:
    status = problems.status if problems else 200
    if rule_problems:
        status = rule_problems.status
    return page(
        request,
        session,
        "feature_form.html",
        {
            "section": "features",
            "record": record,
            "values": values,
            "problems": problems,
            "rules": rules or [],
            "rule_problems": rule_problems or Problems(),
            "notice": notice,
            **CHOICES,
        },
        status_code=status,
    )


@router.post("/new")
def create_feature(
    request: Request, form: FormDep, session: SessionDep, services: ServicesDep
) -> Response:
    try:
        body = validated(FeatureCreate, _body_of(form, new=True))
        record = services.features.create_feature(session.environment_id, body.to_feature())
    except (ValidationError, DomainError) as error:
        return _feature_form(request, session, None, dict(form), Problems.of(error))
    return redirect(f"{PREFIX}/features/{record.feature.key}?saved=1")


def _rules_of(services: Services, environment_id: str, key: str) -> list[dict[str, Any]]:
    return [
        _rule_form(rule_to_json(rule)) for rule in services.features.get_rules(environment_id, key)
    ]


def _rule_form(rule: Mapping[str, Any]) -> dict[str, str]:
    rollout = rule.get("rollout") or {}
    return {
        "name": str(rule.get("name", "")),
        "value": show_value(rule.get("value")),
        "unlimited": "true" if rule.get("unlimited") else "",
        "conditions": orjson.dumps(rule.get("conditions") or []).decode(),
        "rollout": show_value(rollout.get("percent")),
        "rollout_by": str(rollout.get("by", "company")),
    }


@router.get("/{key}")
def edit_feature(
    request: Request, key: FeatureKey, session: SessionDep, services: ServicesDep, saved: str = ""
) -> Response:
    record = services.features.get_feature(session.environment_id, key)
    rules = _rules_of(services, session.environment_id, key)
    notice = "Saved." if saved else ""
    return _feature_form(
        request, session, record, _form_of(record), Problems(), rules, notice=notice
    )


@router.post("/{key}")
def update_feature(
    request: Request, key: FeatureKey, form: FormDep, session: SessionDep, services: ServicesDep
) -> Response:
    record = services.features.get_feature(session.environment_id, key)
    try:
        body = validated(FeatureUpdate, _body_of(form, new=False))
        services.features.update_feature(session.environment_id, key, body.to_changes())
    except (ValidationError, DomainError) as error:
        values = {**dict(form), "key": key}
        rules = _rules_of(services, session.environment_id, key)
        return _feature_form(request, session, record, values, Problems.of(error), rules)
    return redirect(f"{PREFIX}/features/{key}?saved=1")


@router.post("/{key}/archive")
def archive_feature(
    key: FeatureKey, form: FormDep, session: SessionDep, services: ServicesDep
) -> Response:
    """Archive (or, with `restore`, make active again): plans keep their entitlements."""
    status = FeatureStatus.ACTIVE if flag(form, "restore") else FeatureStatus.ARCHIVED
    services.features.update_feature(session.environment_id, key, {"status": status})
    return redirect(f"{PREFIX}/features/{key}?saved=1")


def _rules_body(
    form: FormData, feature_type: str
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The rules a rules form says, and the rows to show again if they are refused."""
    raw_count = text(form, "rule_count") or ""
    count = int(raw_count) if raw_count.isdigit() else 0
    rules, rows = [], []
    for index in range(min(count, 100)):
        prefix = f"rules.{index}."
        if flag(form, prefix + "remove") or not text(form, prefix + "name"):
            continue
        row = {
            name: text(form, prefix + name) or ""
            for name in ("name", "value", "unlimited", "conditions", "rollout", "rollout_by")
        }
        rows.append(row)
        rule: dict[str, Any] = {
            "name": row["name"],
            "value": typed_value(feature_type, row["value"] or None),
            "unlimited": flag(form, prefix + "unlimited"),
        }
        try:
            rule["conditions"] = orjson.loads(row["conditions"] or "[]")
        except orjson.JSONDecodeError:
            rule["conditions"] = row["conditions"]  # the API's validation says what it wants
        if row["rollout"]:
            rule["rollout"] = {
                "percent": number(row["rollout"]),
                "by": row["rollout_by"] or "company",
            }
        rules.append(rule)
    return rules, rows


@router.post("/{key}/rules")
def put_rules(
    request: Request, key: FeatureKey, form: FormDep, session: SessionDep, services: ServicesDep
) -> Response:
    record = services.features.get_feature(session.environment_id, key)
    rules, rows = _rules_body(form, record.feature.type.value)
    try:
        bodies = _RULES.validate_python(rules)
        services.features.put_rules(session.environment_id, key, [b.to_rule() for b in bodies])
    except (ValidationError, DomainError) as error:
        problems = Problems.of(error).inside("rules")
        return _feature_form(request, session, record, _form_of(record), Problems(), rows, problems)
    return redirect(f"{PREFIX}/features/{key}?saved=1#rules")

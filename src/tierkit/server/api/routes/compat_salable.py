"""Salable-compatible `GET /compat/salable/plans/{plan}/features`: a plan's features and
their values in Salable's shape, from Tierkit's plan features (`/v1/plans/{key}/features`).
A plan UUID is a Tierkit plan key; uuids in the reply are Tierkit's ids."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Response

from tierkit.server.api.dependencies import SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.plans import PlanKey
from tierkit.server.api.schemas.compat_salable import salable_plan_feature
from tierkit.server.services.container import Services
from tierkit.server.services.features import FeatureRecord

router = APIRouter(prefix="/compat/salable", tags=["compat: salable"], route_class=StrictJSONRoute)


def _feature_records(services: Services, environment_id: str) -> dict[str, FeatureRecord]:
    records: dict[str, FeatureRecord] = {}
    cursor = None
    while True:
        page = services.features.list_features(environment_id, cursor=cursor, limit=500)
        records.update((r.feature.key, r) for r in page.items)
        if page.next_cursor is None:
            return records
        cursor = page.next_cursor


@router.get("/plans/{key}/features", response_model=None)
def salable_plan_features(key: PlanKey, principal: SecretKey, services: ServicesDep) -> Response:
    """Each feature with its value on the plan (`value` as text, `isUnlimited`), and the
    feature's definition (`valueType` `boolean`, `numerical` or `enum`)."""
    environment_id = principal.environment_id
    plan = services.plans.get_plan(environment_id, key)
    offered = services.plans.list_plan_features(environment_id, key)
    records = _feature_records(services, environment_id)
    body: list[dict[str, Any]] = [
        salable_plan_feature(plan, records[pf.feature.key], pf, environment_id)
        for pf in offered
        if pf.feature.key in records
    ]
    return Response(orjson.dumps(body), media_type="application/json")

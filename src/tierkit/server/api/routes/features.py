"""`/v1/features`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from tierkit.engine.catalog import KEY_PATTERN, FeatureStatus, FeatureType
from tierkit.server.api.dependencies import SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.environment import Cursor, Limit
from tierkit.server.api.schemas.checks import RuleBody, RuleOut
from tierkit.server.api.schemas.common import ListResponse
from tierkit.server.api.schemas.features import FeatureCreate, FeatureOut, FeatureUpdate
from tierkit.server.services.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/features", tags=["features"], route_class=StrictJSONRoute)

FeatureKey = Annotated[str, Path(pattern=KEY_PATTERN, description="The feature's key.")]


@router.get("", response_model=ListResponse[FeatureOut])
def list_features(
    principal: SecretKey,
    services: ServicesDep,
    status: FeatureStatus | None = None,
    type: FeatureType | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[FeatureOut]:
    """Features by key."""
    page = services.features.list_features(
        principal.environment_id, status=status, type=type, cursor=cursor, limit=limit
    )
    return ListResponse(data=[FeatureOut.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.post("", response_model=FeatureOut, status_code=201)
def create_feature(body: FeatureCreate, principal: SecretKey, services: ServicesDep) -> FeatureOut:
    """Create a feature. Its `default` and `global_value` must fit its type."""
    record = services.features.create_feature(principal.environment_id, body.to_feature())
    return FeatureOut.of(record)


@router.get("/{key}", response_model=FeatureOut)
def get_feature(key: FeatureKey, principal: SecretKey, services: ServicesDep) -> FeatureOut:
    return FeatureOut.of(services.features.get_feature(principal.environment_id, key))


@router.patch("/{key}", response_model=FeatureOut)
def update_feature(
    key: FeatureKey, body: FeatureUpdate, principal: SecretKey, services: ServicesDep
) -> FeatureOut:
    """Change a feature. A change that plans' entitlements would no longer fit is a 409."""
    record = services.features.update_feature(principal.environment_id, key, body.to_changes())
    return FeatureOut.of(record)


@router.get("/{key}/rules", response_model=ListResponse[RuleOut])
def get_feature_rules(
    key: FeatureKey, principal: SecretKey, services: ServicesDep
) -> ListResponse[RuleOut]:
    """The feature's targeting rules, in order."""
    rules = services.features.get_rules(principal.environment_id, key)
    return ListResponse(data=[RuleOut.of(rule) for rule in rules], next_cursor=None)


@router.put("/{key}/rules", response_model=ListResponse[RuleOut])
def put_feature_rules(
    key: FeatureKey,
    body: Annotated[list[RuleBody], Body(max_length=100)],
    principal: SecretKey,
    services: ServicesDep,
) -> ListResponse[RuleOut]:
    """Replace the feature's rules with this ordered list (the first match wins; `[]` clears).
    Rules apply when no override and no plan sets the feature."""
    rules = services.features.put_rules(
        principal.environment_id, key, [rule.to_rule() for rule in body]
    )
    return ListResponse(data=[RuleOut.of(rule) for rule in rules], next_cursor=None)


@router.delete("/{key}", status_code=204, response_class=Response)
def delete_feature(key: FeatureKey, principal: SecretKey, services: ServicesDep) -> Response:
    """Delete a feature no plan uses (409 otherwise: archive it instead)."""
    services.features.delete_feature(principal.environment_id, key)
    return Response(status_code=204)

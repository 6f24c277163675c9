"""The key's environment and its API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tierkit.server.api.dependencies import SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.schemas.common import ListResponse
from tierkit.server.api.schemas.keys import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, EnvironmentOut
from tierkit.server.services.pagination import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/v1", tags=["environment"], route_class=StrictJSONRoute)

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the last page.")]


@router.get("/environment", response_model=EnvironmentOut)
def get_environment(principal: SecretKey, services: ServicesDep) -> EnvironmentOut:
    """The environment the key belongs to."""
    env = services.environments.get_environment(principal.environment)
    return EnvironmentOut.model_validate(env)


@router.get("/api-keys", response_model=ListResponse[ApiKeyOut])
def list_api_keys(
    principal: SecretKey,
    services: ServicesDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[ApiKeyOut]:
    """The environment's keys, revoked ones included (their `revoked_at` is set)."""
    page = services.api_keys.list_keys(principal.environment, cursor=cursor, limit=limit)
    return ListResponse(
        data=[ApiKeyOut.model_validate(k) for k in page.items], next_cursor=page.next_cursor
    )


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201)
def create_api_key(
    body: ApiKeyCreate, principal: SecretKey, services: ServicesDep
) -> ApiKeyCreated:
    """A new key of this environment. The reply holds the key itself, this once."""
    key, secret = services.api_keys.create_key(principal.environment, body.kind, body.name)
    return ApiKeyCreated.model_validate(
        {**ApiKeyOut.model_validate(key).model_dump(), "key": secret}
    )


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
def revoke_api_key(key_id: str, principal: SecretKey, services: ServicesDep) -> ApiKeyOut:
    """Revoke a key: it stops working at once. The key stays listed, with `revoked_at`."""
    key = services.api_keys.revoke_key(key_id, principal.environment)
    return ApiKeyOut.model_validate(key)

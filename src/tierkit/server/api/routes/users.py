"""`/v1/users`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from tierkit.server.api.dependencies import SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.companies import CompanyKey
from tierkit.server.api.routes.environment import Cursor, Limit
from tierkit.server.api.schemas.common import ListResponse
from tierkit.server.api.schemas.customers import UserOut, UserUpsert
from tierkit.server.services.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/users", tags=["users"], route_class=StrictJSONRoute)

UserKey = CompanyKey


@router.get("", response_model=ListResponse[UserOut])
def list_users(
    principal: SecretKey,
    services: ServicesDep,
    company: Annotated[
        str | None, Query(max_length=255, description="Members of this company.")
    ] = None,
    q: Annotated[str | None, Query(max_length=255, description="Text in key or name.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[UserOut]:
    page = services.users.list_users(
        principal.environment_id, company=company, q=q, cursor=cursor, limit=limit
    )
    return ListResponse(data=[UserOut.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.put(
    "/{key}", response_model=UserOut, responses={201: {"model": UserOut, "description": "Created."}}
)
def upsert_user(
    key: UserKey, body: UserUpsert, principal: SecretKey, services: ServicesDep, response: Response
) -> UserOut:
    """Create or update a user; `companies`, when given, is the user's whole set of
    memberships. 201 when created, 200 when updated."""
    record, created = services.users.upsert_user(principal.environment_id, key, body.provided())
    response.status_code = 201 if created else 200
    return UserOut.of(record)


@router.get("/{key}", response_model=UserOut)
def get_user(key: UserKey, principal: SecretKey, services: ServicesDep) -> UserOut:
    return UserOut.of(services.users.get_user(principal.environment_id, key))


@router.delete("/{key}", status_code=204, response_class=Response)
def delete_user(key: UserKey, principal: SecretKey, services: ServicesDep) -> Response:
    services.users.delete_user(principal.environment_id, key)
    return Response(status_code=204)

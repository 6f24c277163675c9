"""Request dependencies: the services, and who is calling (the one authorization policy)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from tierkit.server.rate_limits import RateLimiter
from tierkit.server.services.api_keys import KeyKind, Principal
from tierkit.server.services.audit import current_actor
from tierkit.server.services.container import Services
from tierkit.server.services.errors import AuthenticationFailed, PermissionDenied, RateLimited

_bearer = HTTPBearer(
    auto_error=False,
    description="`Authorization: Bearer tk_sec_...` (or a `tk_pub_...` publishable key).",
)
_api_key_header = APIKeyHeader(
    name="X-Api-Key", auto_error=False, description="The API key, as an alternative header."
)


# Dependencies without I/O are `async` so FastAPI doesn't hop to a worker thread for each.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key_header)],
) -> Principal:
    secret = bearer.credentials if bearer is not None else api_key
    return await principal_of(request, secret)


async def principal_of(request: Request, secret: str | None) -> Principal:
    """The caller holding `secret` (a key however it was sent): 401 when none or unknown,
    429 when the key is past its rate limit."""
    services: Services = request.app.state.services
    if not secret:
        raise AuthenticationFailed(
            "No API key: send `Authorization: Bearer <key>` or `X-Api-Key: <key>`.",
            code="missing_api_key",
        )
    # A key seen moments ago is answered inline; a lookup goes to a worker thread.
    principal = services.api_keys.trusted(secret)
    if principal is None:
        principal = await run_in_threadpool(services.api_keys.authenticate, secret)
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = await limiter.wait_time(principal)
    if wait > 0:
        raise RateLimited(
            f"This key made more requests than its limit allows; retry in {wait:.2f} s "
            "(see `Retry-After`).",
            retry_after=wait,
        )
    # The request's changes are audited as this key's (the route runs in this context).
    current_actor.set(f"key:{principal.key_id}")
    return principal


class Access(StrEnum):
    """What a route needs: any key of the environment, or a secret one."""

    SECRET = "secret"  # noqa: S105 - a level of access, not a secret
    PUBLISHABLE = "publishable"


def authorize(principal: Principal, access: Access) -> None:
    """The authorization policy: publishable keys reach only routes marked publishable."""
    if access is Access.SECRET and principal.kind is not KeyKind.SECRET:
        raise PermissionDenied(
            "A publishable key may only call checks, OFREP and the pricing table; "
            "use a secret key on the server side.",
            code="secret_key_required",
        )


async def _secret_principal(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    authorize(principal, Access.SECRET)
    return principal


async def _any_principal(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    authorize(principal, Access.PUBLISHABLE)
    return principal


SecretKey = Annotated[Principal, Depends(_secret_principal)]
"""A caller holding a secret key of the environment."""

AnyKey = Annotated[Principal, Depends(_any_principal)]
"""A caller holding a secret or a publishable key of the environment."""

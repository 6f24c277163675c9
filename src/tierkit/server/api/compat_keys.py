"""How the compatibility facades' clients send a Tierkit key: Schematic's in
`X-Schematic-Api-Key`, Commet's in `x-api-key` behind the `ck_`/`rk_` prefix its SDK insists
on. The native headers work too. Authorization stays the one policy of `dependencies`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from tierkit.server.api.dependencies import Access, authorize, principal_of
from tierkit.server.services.api_keys import Principal

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <tierkit key>`.")
_schematic_header = APIKeyHeader(
    name="X-Schematic-Api-Key",
    auto_error=False,
    description="A Tierkit key, where Schematic's clients send theirs.",
)
_api_key_header = APIKeyHeader(
    name="X-Api-Key",
    auto_error=False,
    description="A Tierkit key; for Commet's SDK, prefixed `ck_` (`ck_tk_sec_...`).",
)

COMMET_KEY_PREFIXES = ("ck_", "rk_")
"""Commet's SDK refuses a key without one of these prefixes: Tierkit drops it."""


async def _schematic_principal(
    request: Request,
    schematic: Annotated[str | None, Security(_schematic_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key_header)],
) -> Principal:
    secret = schematic or (bearer.credentials if bearer is not None else api_key)
    return await principal_of(request, secret)


async def _schematic_secret(
    principal: Annotated[Principal, Depends(_schematic_principal)],
) -> Principal:
    authorize(principal, Access.SECRET)
    return principal


async def _schematic_any(
    principal: Annotated[Principal, Depends(_schematic_principal)],
) -> Principal:
    authorize(principal, Access.PUBLISHABLE)
    return principal


async def _commet_secret(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    secret = api_key or (bearer.credentials if bearer is not None else None)
    if secret is not None and secret.startswith(COMMET_KEY_PREFIXES):
        secret = secret[3:]  # both prefixes are three characters
    principal = await principal_of(request, secret)
    authorize(principal, Access.SECRET)
    return principal


SchematicSecretKey = Annotated[Principal, Depends(_schematic_secret)]
"""A secret Tierkit key sent as Schematic's clients send theirs."""

SchematicAnyKey = Annotated[Principal, Depends(_schematic_any)]
"""A secret or publishable Tierkit key (flag checks, as Schematic's publishable keys)."""

CommetSecretKey = Annotated[Principal, Depends(_commet_secret)]
"""A secret Tierkit key sent as Commet's SDK sends its keys."""

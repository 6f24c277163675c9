"""Kickplan-compatible accounts under `/api`: point a Kickplan client at Tierkit.

Same keys as the native API; errors in Kickplan's shape (`api/errors.py`)."""

from __future__ import annotations

from fastapi import APIRouter

from tierkit.server.api.dependencies import SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.companies import CompanyKey
from tierkit.server.api.schemas.kickplan import AccountCreate, AccountOut, AccountUpdate

router = APIRouter(prefix="/api", tags=["kickplan"], route_class=StrictJSONRoute)


@router.post("/accounts", response_model=AccountOut)
def kickplan_upsert_account(
    body: AccountCreate, principal: SecretKey, services: ServicesDep
) -> AccountOut:
    """Create or update an account (a company). `account_plans` and `feature_overrides`,
    when given, become the account's whole set of plans and overrides."""
    return _sync(body.key, body, principal.environment_id, services)


@router.put("/accounts/{key}", response_model=AccountOut)
def kickplan_update_account(
    key: CompanyKey, body: AccountUpdate, principal: SecretKey, services: ServicesDep
) -> AccountOut:
    """Update (or create) the account `key`."""
    return _sync(key, body, principal.environment_id, services)


def _sync(key: str, body: AccountUpdate, environment_id: str, services: ServicesDep) -> AccountOut:
    account = services.accounts.sync_account(
        environment_id, key, body.to_fields(), body.plan_keys(), body.variants()
    )
    return AccountOut.of(account)

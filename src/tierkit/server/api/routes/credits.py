"""`/v1/credits` (credit types) and a company's grants, balances and ledger."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from tierkit.engine.catalog import KEY_PATTERN
from tierkit.server.api.dependencies import SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.companies import CompanyKey
from tierkit.server.api.routes.environment import Cursor, Limit
from tierkit.server.api.schemas.common import ListResponse
from tierkit.server.api.schemas.credits import (
    BalanceOut,
    BundleCreate,
    BundleOut,
    CreditTypeCreate,
    CreditTypeOut,
    GrantCreate,
    GrantOut,
    LedgerEntryOut,
    PurchaseOut,
)
from tierkit.server.services.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/v1", tags=["credits"], route_class=StrictJSONRoute)

CreditKey = Annotated[str, Path(pattern=KEY_PATTERN, description="The credit type's key.")]
GrantId = Annotated[str, Path(max_length=64, description="The grant's id.")]
BundleKey = Annotated[str, Path(pattern=KEY_PATTERN, description="The bundle's key.")]


@router.post("/credits", status_code=201, response_model=CreditTypeOut)
def create_credit_type(
    body: CreditTypeCreate, principal: SecretKey, services: ServicesDep
) -> CreditTypeOut:
    """A credit type: what grants give and credit-priced entitlements cost."""
    record = services.credits.create_credit_type(
        principal.environment_id, body.key, body.name, body.unit
    )
    return CreditTypeOut.of(record)


@router.get("/credits", response_model=ListResponse[CreditTypeOut])
def list_credit_types(principal: SecretKey, services: ServicesDep) -> ListResponse[CreditTypeOut]:
    records = services.credits.list_credit_types(principal.environment_id)
    return ListResponse(data=[CreditTypeOut.of(r) for r in records], next_cursor=None)


@router.get("/credits/{key}", response_model=CreditTypeOut)
def get_credit_type(key: CreditKey, principal: SecretKey, services: ServicesDep) -> CreditTypeOut:
    return CreditTypeOut.of(services.credits.get_credit_type(principal.environment_id, key))


@router.post("/companies/{key}/credit-grants", status_code=201, response_model=GrantOut)
def create_credit_grant(
    key: CompanyKey, body: GrantCreate, principal: SecretKey, services: ServicesDep
) -> GrantOut:
    """Grant credits to a company (a `grant` row in its ledger)."""
    record = services.credits.grant(principal.environment_id, key, body.to_new_grant())
    return GrantOut.of(record)


@router.get("/companies/{key}/credit-grants", response_model=ListResponse[GrantOut])
def list_credit_grants(
    key: CompanyKey, principal: SecretKey, services: ServicesDep
) -> ListResponse[GrantOut]:
    """Every grant of the company, oldest first, with what is left and its status."""
    records = services.credits.list_grants(principal.environment_id, key)
    return ListResponse(data=[GrantOut.of(r) for r in records], next_cursor=None)


@router.post("/companies/{key}/credit-grants/{grant_id}/void", response_model=GrantOut)
def void_credit_grant(
    key: CompanyKey, grant_id: GrantId, principal: SecretKey, services: ServicesDep
) -> GrantOut:
    """Zero a grant out (a `void` row takes what was left). Voiding twice changes nothing."""
    return GrantOut.of(services.credits.void(principal.environment_id, key, grant_id))


@router.get("/companies/{key}/credits", response_model=ListResponse[BalanceOut])
def get_credit_balances(
    key: CompanyKey, principal: SecretKey, services: ServicesDep
) -> ListResponse[BalanceOut]:
    """The company's balance of each credit type it has grants of."""
    records = services.credits.balances(principal.environment_id, key)
    return ListResponse(data=[BalanceOut.of(r) for r in records], next_cursor=None)


@router.get("/companies/{key}/credits/ledger", response_model=ListResponse[LedgerEntryOut])
def get_credit_ledger(
    key: CompanyKey,
    principal: SecretKey,
    services: ServicesDep,
    credit: Annotated[str | None, Query(pattern=KEY_PATTERN)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[LedgerEntryOut]:
    """Every change of the company's credits, oldest first: its sum is the balance."""
    page = services.credits.ledger(
        principal.environment_id, key, credit=credit, cursor=cursor, limit=limit
    )
    return ListResponse(
        data=[LedgerEntryOut.of(r) for r in page.items], next_cursor=page.next_cursor
    )


@router.post("/credit-bundles", status_code=201, response_model=BundleOut)
def create_credit_bundle(
    body: BundleCreate, principal: SecretKey, services: ServicesDep
) -> BundleOut:
    """A pack of credits with a price; a purchase turns it into a grant."""
    return BundleOut.of(
        services.credits.create_bundle(principal.environment_id, body.to_new_bundle())
    )


@router.get("/credit-bundles", response_model=ListResponse[BundleOut])
def list_credit_bundles(principal: SecretKey, services: ServicesDep) -> ListResponse[BundleOut]:
    records = services.credits.list_bundles(principal.environment_id)
    return ListResponse(data=[BundleOut.of(r) for r in records], next_cursor=None)


@router.post(
    "/companies/{key}/credit-bundles/{bundle}/purchase",
    status_code=201,
    response_model=PurchaseOut,
)
def purchase_credit_bundle(
    key: CompanyKey, bundle: BundleKey, principal: SecretKey, services: ServicesDep
) -> PurchaseOut:
    """Record a purchase of the bundle: a `purchase` grant, and what to charge for it."""
    return PurchaseOut.of(services.credits.purchase(principal.environment_id, key, bundle))

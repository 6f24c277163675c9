"""`/v1/companies`: companies, their subscriptions and their overrides."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from tierkit.engine.catalog import KEY_PATTERN
from tierkit.server.api.dependencies import SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.environment import Cursor, Limit
from tierkit.server.api.routes.features import FeatureKey
from tierkit.server.api.schemas.common import ListResponse, Timestamp
from tierkit.server.api.schemas.customers import (
    CompanyOut,
    CompanySummaryOut,
    CompanyUpsert,
    OverrideBody,
    OverrideOut,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionUpdate,
)
from tierkit.server.services.pagination import DEFAULT_LIMIT
from tierkit.server.services.subscriptions import CancelAt

router = APIRouter(prefix="/v1/companies", tags=["companies"], route_class=StrictJSONRoute)

CompanyKey = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The company's key (your id for it), URL-encoded.",
    ),
]
SubscriptionId = Annotated[str, Path(max_length=64, description="The subscription's id.")]
_TRAIT_PREFIX = "trait."


@router.get("", response_model=ListResponse[CompanySummaryOut])
def list_companies(
    request: Request,
    principal: SecretKey,
    services: ServicesDep,
    plan: Annotated[
        str | None,
        Query(pattern=KEY_PATTERN, description="Companies on this plan now (default plan too)."),
    ] = None,
    q: Annotated[
        str | None, Query(max_length=255, description="Text in the key or the name.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[CompanySummaryOut]:
    """Companies by key. Filter by trait with `?trait.<name>=<value>` (repeatable; numbers
    and booleans as JSON text, e.g. `?trait.seats=5&trait.beta=true`)."""
    traits = {
        name.removeprefix(_TRAIT_PREFIX): value
        for name, value in request.query_params.items()
        if name.startswith(_TRAIT_PREFIX)
    }
    page = services.companies.list_companies(
        principal.environment_id, plan=plan, q=q, traits=traits, cursor=cursor, limit=limit
    )
    return ListResponse(
        data=[CompanySummaryOut.of(r) for r in page.items], next_cursor=page.next_cursor
    )


@router.put(
    "/{key}",
    response_model=CompanyOut,
    responses={201: {"model": CompanyOut, "description": "Created."}},
)
def upsert_company(
    key: CompanyKey,
    body: CompanyUpsert,
    principal: SecretKey,
    services: ServicesDep,
    response: Response,
) -> CompanyOut:
    """Create or update a company: traits merge key by key (`null` removes one), `plan` puts
    it on that base plan now. 201 when created, 200 when updated."""
    detail, created = services.customers.upsert_company(
        principal.environment_id, key, body.provided()
    )
    response.status_code = 201 if created else 200
    return CompanyOut.of_detail(detail, services.clock())


@router.get("/{key}", response_model=CompanyOut)
def get_company(key: CompanyKey, principal: SecretKey, services: ServicesDep) -> CompanyOut:
    """The company with its traits, plan, active and scheduled subscriptions, overrides in
    force and users."""
    detail = services.customers.get_company(principal.environment_id, key)
    return CompanyOut.of_detail(detail, services.clock())


@router.delete("/{key}", status_code=204, response_class=Response)
def delete_company(key: CompanyKey, principal: SecretKey, services: ServicesDep) -> Response:
    """Delete the company and everything that belongs to it (its users stay)."""
    services.companies.delete_company(principal.environment_id, key)
    return Response(status_code=204)


@router.post("/{key}/subscriptions", response_model=SubscriptionOut, status_code=201)
def create_subscription(
    key: CompanyKey, body: SubscriptionCreate, principal: SecretKey, services: ServicesDep
) -> SubscriptionOut:
    """Subscribe the company to a plan. A base plan ends the group's previous base plan at
    `started_at`; an add-on is held once (change its quantity with PATCH)."""
    record = services.subscriptions.create_subscription(
        principal.environment_id, key, body.to_request()
    )
    return SubscriptionOut.of(record, services.clock())


@router.get("/{key}/subscriptions", response_model=ListResponse[SubscriptionOut])
def list_subscriptions(
    key: CompanyKey,
    principal: SecretKey,
    services: ServicesDep,
    at: Annotated[
        Timestamp | None,  # a naive instant is ambiguous (and cannot meet stored ones)
        Query(description="Only those active at this instant (RFC 3339, with its offset)."),
    ] = None,
) -> ListResponse[SubscriptionOut]:
    """The company's whole subscription history, oldest first, or what it had at `at`."""
    records = services.subscriptions.list_subscriptions(principal.environment_id, key, at=at)
    now = services.clock()
    return ListResponse(data=[SubscriptionOut.of(r, now) for r in records], next_cursor=None)


@router.get("/{key}/subscriptions/{subscription_id}", response_model=SubscriptionOut)
def get_subscription(
    key: CompanyKey, subscription_id: SubscriptionId, principal: SecretKey, services: ServicesDep
) -> SubscriptionOut:
    record = services.subscriptions.get_subscription(principal.environment_id, key, subscription_id)
    return SubscriptionOut.of(record, services.clock())


@router.patch("/{key}/subscriptions/{subscription_id}", response_model=SubscriptionOut)
def update_subscription(
    key: CompanyKey,
    subscription_id: SubscriptionId,
    body: SubscriptionUpdate,
    principal: SecretKey,
    services: ServicesDep,
) -> SubscriptionOut:
    """Change the quantity, trial end or end of a subscription that has not ended."""
    record = services.subscriptions.update_subscription(
        principal.environment_id, key, subscription_id, body.provided()
    )
    return SubscriptionOut.of(record, services.clock())


@router.delete("/{key}/subscriptions/{subscription_id}", response_model=SubscriptionOut)
def cancel_subscription(
    key: CompanyKey,
    subscription_id: SubscriptionId,
    principal: SecretKey,
    services: ServicesDep,
    at: Annotated[
        CancelAt,
        Query(description="`now`, or `period_end`: when the billing period (or trial) ends."),
    ] = CancelAt.NOW,
) -> SubscriptionOut:
    """Cancel: the subscription ends now or at its period's end and stays in the history."""
    record = services.subscriptions.cancel_subscription(
        principal.environment_id, key, subscription_id, at
    )
    return SubscriptionOut.of(record, services.clock())


@router.put("/{key}/overrides/{feature}", response_model=OverrideOut)
def put_override(
    key: CompanyKey,
    feature: FeatureKey,
    body: OverrideBody,
    principal: SecretKey,
    services: ServicesDep,
) -> OverrideOut:
    """Give the company its own value for a feature, replacing its plans' until `expires_at`."""
    record = services.overrides.put_override(
        principal.environment_id, key, body.to_override(feature)
    )
    return OverrideOut.of(record)


@router.get("/{key}/overrides", response_model=ListResponse[OverrideOut])
def list_overrides(
    key: CompanyKey,
    principal: SecretKey,
    services: ServicesDep,
    include_expired: Annotated[bool, Query(description="Also those that have expired.")] = False,
) -> ListResponse[OverrideOut]:
    records = services.overrides.list_overrides(
        principal.environment_id, key, include_expired=include_expired
    )
    return ListResponse(data=[OverrideOut.of(r) for r in records], next_cursor=None)


@router.delete("/{key}/overrides/{feature}", status_code=204, response_class=Response)
def delete_override(
    key: CompanyKey, feature: FeatureKey, principal: SecretKey, services: ServicesDep
) -> Response:
    services.overrides.delete_override(principal.environment_id, key, feature)
    return Response(status_code=204)

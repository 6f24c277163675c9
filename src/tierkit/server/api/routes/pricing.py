"""`/v1/pricing-table` (publishable keys allowed) and a company's invoice preview."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from tierkit.engine.catalog import PriceInterval
from tierkit.engine.codec import format_time, json_number
from tierkit.server.api.dependencies import AnyKey, SecretKey, ServicesDep
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.api.routes.companies import CompanyKey
from tierkit.server.api.schemas.pricing import InvoicePreviewOut, PricingTableOut
from tierkit.server.services.pricing import InvoicePreview, PricingTable

router = APIRouter(prefix="/v1", tags=["pricing"], route_class=StrictJSONRoute)

CurrencyQuery = Annotated[str, Query(pattern=r"^[a-z]{3}$", description="Lowercase ISO 4217 code.")]


def _table(table: PricingTable) -> dict[str, Any]:
    return {
        "currency": table.currency,
        "interval": table.interval.value,
        "features": [
            {
                "key": f.key,
                "name": f.name,
                "description": f.description,
                "type": f.type.value,
                "unit": f.unit,
                "status": f.status.value,
            }
            for f in table.features
        ],
        "plans": [
            {
                "key": column.plan.key,
                "name": column.plan.name,
                "description": column.plan.description,
                "type": column.plan.type.value,
                "trial_days": column.price.price.trial_days
                if column.price and column.price.price.trial_days is not None
                else column.plan.trial_days,
                "price": None
                if column.price is None
                else {
                    "currency": column.price.currency,
                    "amount": column.price.amount,
                    "interval": table.interval.value,
                    "intro": None
                    if column.price.price.intro is None
                    else {
                        "kind": column.price.price.intro.kind.value,
                        "value": json_number(column.price.price.intro.value),
                        "cycles": column.price.price.intro.cycles,
                    },
                },
                "features": [
                    {
                        "feature": cell.feature,
                        "value": cell.value,
                        "unlimited": cell.unlimited,
                        "display": cell.display,
                    }
                    for cell in column.features
                ],
            }
            for column in table.plans
        ],
    }


@router.get("/pricing-table", response_model=PricingTableOut)
def get_pricing_table(
    principal: AnyKey,
    services: ServicesDep,
    currency: CurrencyQuery = "usd",
    interval: Annotated[PriceInterval, Query()] = PriceInterval.MONTH,
) -> dict[str, Any]:
    """What a pricing page needs: public active plans in `sort_order` with their price in
    `currency` for `interval` (null when they have none), and the display value of each
    public feature they entitle. Publishable keys allowed."""
    return _table(services.pricing.pricing_table(principal.environment_id, currency, interval))


def _invoice(preview: InvoicePreview) -> dict[str, Any]:
    return {
        "company": preview.company,
        "currency": preview.currency,
        "period_start": format_time(preview.period_start),
        "period_end": format_time(preview.period_end),
        "lines": [
            {
                "kind": line.kind,
                "description": line.description,
                "plan": line.plan,
                "feature": line.feature,
                "quantity": json_number(line.quantity),
                "unit_amount": line.unit_amount,
                "amount": line.amount,
            }
            for line in preview.lines
        ],
        "total": preview.total,
    }


@router.get("/companies/{key}/invoice-preview", response_model=InvoicePreviewOut)
def get_invoice_preview(
    key: CompanyKey,
    principal: SecretKey,
    services: ServicesDep,
    currency: Annotated[
        str | None,
        Query(pattern=r"^[a-z]{3}$", description="Default: the company's `currency` trait."),
    ] = None,
) -> dict[str, Any]:
    """The current period's charges: plans (times quantity; nothing while trialing), intro
    discounts and overage, in integer minor units. No proration."""
    return _invoice(services.pricing.invoice_preview(principal.environment_id, key, currency))

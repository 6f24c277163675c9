"""Replies of the pricing table and the invoice preview (documentation of their shape)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tierkit.server.api.schemas.common import OutputModel


class PricingFeatureOut(OutputModel):
    key: str
    name: str
    description: str
    type: str
    unit: str | None
    status: str


class IntroOfferOut(OutputModel):
    kind: str
    value: float
    cycles: int


class TablePriceOut(OutputModel):
    currency: str
    amount: int
    interval: str
    intro: IntroOfferOut | None


class PlanCellOut(OutputModel):
    feature: str
    value: Any
    unlimited: bool
    display: str


class PricingPlanOut(OutputModel):
    key: str
    name: str
    description: str
    type: str
    trial_days: int | None
    price: TablePriceOut | None
    features: list[PlanCellOut]


class PricingTableOut(OutputModel):
    currency: str
    interval: str
    features: list[PricingFeatureOut]
    plans: list[PricingPlanOut]


class InvoiceLineOut(OutputModel):
    kind: str
    description: str
    plan: str | None
    feature: str | None
    quantity: float
    unit_amount: int
    amount: int


class InvoicePreviewOut(OutputModel):
    company: str
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    lines: list[InvoiceLineOut]
    total: int

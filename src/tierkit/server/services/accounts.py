"""Kickplan's accounts, served by our customer services: an account is a company, its
`custom_fields` are traits, its plans are the subscriptions it holds, and its feature overrides
name a variant (`"metrics/true"`, `"chat/off"`) that maps onto the feature's type."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tierkit.engine.catalog import MAX_SAFE_NUMBER, Entitlement, Feature, FeatureType, PlanType
from tierkit.engine.customers import Override
from tierkit.server.db import Database
from tierkit.server.db.tables import CompanyRow
from tierkit.server.services.catalog_cache import changes_customer
from tierkit.server.services.clock import Clock
from tierkit.server.services.companies import upsert_company_in
from tierkit.server.services.customers import ensure_subscribed_in
from tierkit.server.services.errors import InvalidRequest
from tierkit.server.services.features import find_feature_row
from tierkit.server.services.overrides import (
    company_override_rows,
    delete_override_in,
    put_override_in,
)
from tierkit.server.services.plans import find_plan_row
from tierkit.server.services.rows import to_feature, to_override
from tierkit.server.services.subscriptions import (
    company_subscription_rows,
    end_subscription_in,
    to_subscription,
)

_TRUE = frozenset({"true", "on", "enabled", "yes", "1"})
_FALSE = frozenset({"false", "off", "disabled", "no", "0"})


@dataclass(frozen=True, slots=True)
class FeatureVariant:
    feature: str
    variant: str


@dataclass(frozen=True, slots=True)
class Account:
    key: str
    name: str | None
    plans: list[str]
    feature_overrides: list[str]
    inserted_at: datetime
    updated_at: datetime


def entitlement_of_variant(feature: Feature, variant: str, param: str) -> Entitlement:
    """The override value a Kickplan variant key stands for, by the feature's type."""
    if feature.type is FeatureType.BOOLEAN:
        if variant.lower() in _TRUE | _FALSE:
            return Entitlement(feature.key, value=variant.lower() in _TRUE)
        raise _bad_variant(feature, variant, param, "true or false (on/off)")
    if feature.type is FeatureType.ENUM:
        if variant in feature.option_keys:
            return Entitlement(feature.key, value=variant)
        raise _bad_variant(feature, variant, param, ", ".join(sorted(feature.option_keys)))
    if variant.lower() == "unlimited":
        return Entitlement(feature.key, unlimited=True)
    number = _number_of(variant)
    if not math.isfinite(number) or not 0 <= number <= MAX_SAFE_NUMBER:
        raise _bad_variant(feature, variant, param, "a number or `unlimited`")
    whole = isinstance(number, int) or number.is_integer()
    return Entitlement(feature.key, value=int(number) if whole else number)


_DECIMAL = re.compile(r"\d+(\.\d+)?")


def _number_of(variant: str) -> float:
    """The variant as a plain decimal number (NaN if it is none). Integers are read exactly:
    through a float, 2**53 + 1 would round into range and be stored as another number."""
    if not _DECIMAL.fullmatch(variant):
        return math.nan
    return float(variant) if "." in variant else int(variant)


def _bad_variant(feature: Feature, variant: str, param: str, allowed: str) -> InvalidRequest:
    return InvalidRequest(
        f"{variant!r} is not a variant of {feature.key!r}: use {allowed}.",
        code="invalid_variant",
        param=param,
    )


def variant_of(override: Override) -> str:
    entitlement = override.entitlement
    if entitlement.unlimited:
        return "unlimited"
    if isinstance(entitlement.value, bool):
        return "true" if entitlement.value else "false"
    return str(entitlement.value)


def _set_plans(
    session: Session, company: CompanyRow, plan_keys: Sequence[str], now: datetime
) -> None:
    """The account holds exactly these plans from now: new ones start, others end."""
    keep: set[str] = set()
    base_of_group: dict[str, str] = {}
    for index, plan_key in enumerate(plan_keys):
        param = f"account_plans.{index}.plan_key"
        plan = find_plan_row(session, company.environment_id, plan_key, param=param)
        keep.add(plan.id)
        if plan.type == PlanType.BASE.value:
            # A second base plan of a group would end the first at once: refuse, not drop it.
            other = base_of_group.setdefault(plan.plan_group, plan_key)
            if other != plan_key:
                raise InvalidRequest(
                    f"Plans {other!r} and {plan_key!r} are both base plans of group "
                    f"{plan.plan_group!r}; an account holds one base plan per group.",
                    code="conflicting_base_plans",
                    param=param,
                )
        ensure_subscribed_in(session, company, plan, now, param=param)
    for row in company_subscription_rows(session, company.id):
        if row.plan_id not in keep and (row.ends_at is None or row.ends_at > now):
            end_subscription_in(session, company, row, now, now)


def _set_overrides(
    session: Session, company: CompanyRow, wanted: Sequence[FeatureVariant], now: datetime
) -> None:
    """The account's overrides become exactly these."""
    keep: set[str] = set()
    for index, item in enumerate(wanted):
        param = f"feature_overrides.{index}"
        feature_row = find_feature_row(
            session, company.environment_id, item.feature, param=f"{param}.feature_key"
        )
        feature = to_feature(feature_row)
        entitlement = entitlement_of_variant(feature, item.variant, f"{param}.variant_key")
        put_override_in(session, company, Override(entitlement), now, param=param)
        keep.add(feature.key)
    for row in company_override_rows(session, company.id):
        if row.feature.key not in keep:
            delete_override_in(session, company, row, now)


class AccountService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        on_customer_change: Callable[[str, str], None] = lambda environment_id, key: None,
    ) -> None:
        self._db = database
        self._clock = clock
        self._customer_changed = on_customer_change

    @changes_customer
    def sync_account(
        self,
        environment_id: str,
        key: str,
        fields: Mapping[str, Any],
        plans: Sequence[str] | None,
        overrides: Sequence[FeatureVariant] | None,
    ) -> Account:
        """Create or update an account; given `plans` and `overrides` replace the current ones.
        One transaction: a bad plan or variant changes nothing."""
        now = self._clock()
        with self._db.write() as session:
            company, _ = upsert_company_in(session, environment_id, key, fields, now)
            if plans is not None:
                _set_plans(session, company, plans, now)
            if overrides is not None:
                _set_overrides(session, company, overrides, now)
            session.flush()
            active = [
                subscription.plan
                for subscription in map(
                    to_subscription, company_subscription_rows(session, company.id)
                )
                if subscription.is_active(now)
            ]
            current = [
                override
                for override in map(to_override, company_override_rows(session, company.id))
                if override.is_active(now)
            ]
            # In the order the request named them, as Kickplan echoes them; others by key.
            plan_order = {key: i for i, key in enumerate(plans or ())}
            override_order = {item.feature: i for i, item in enumerate(overrides or ())}
            return Account(
                key=company.key,
                name=company.name,
                plans=sorted(active, key=lambda p: (plan_order.get(p, len(plan_order)), p)),
                feature_overrides=[
                    f"{o.feature}/{variant_of(o)}"
                    for o in sorted(
                        current,
                        key=lambda o: (
                            override_order.get(o.feature, len(override_order)),
                            o.feature,
                        ),
                    )
                ],
                inserted_at=company.created_at,
                updated_at=company.updated_at,
            )

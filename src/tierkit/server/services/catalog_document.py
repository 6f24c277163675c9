"""A whole catalog as one document (credit types, features with their rules, plans, bundles),
as `tierkit catalog export` writes it and `apply` reads it, in engine types."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import CreditType, Feature, Plan
from tierkit.engine.codec import rule_from_json
from tierkit.engine.rules import Rule
from tierkit.server.db.tables import CreditBundleRow, CreditTypeRow, FeatureRow, PlanRow
from tierkit.server.services.credits import NewBundle
from tierkit.server.services.rows import to_feature, to_plan


@dataclass(frozen=True, slots=True)
class FeatureEntry:
    """A feature and its targeting rules (in order)."""

    feature: Feature
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogDocument:
    """Everything `catalog apply` manages, each kind in the order the list endpoints use."""

    credits: tuple[CreditType, ...] = ()
    features: tuple[FeatureEntry, ...] = ()
    plans: tuple[Plan, ...] = ()
    bundles: tuple[NewBundle, ...] = ()


def read_catalog_document(session: Session, environment_id: str) -> CatalogDocument:
    """The environment's catalog: credit types, features and bundles by key, plans by
    `sort_order` then key (as `GET /v1/plans` lists them). Sorted here, by code point, so that
    every database gives the same file whatever its collation."""
    credits = session.scalars(
        select(CreditTypeRow).where(CreditTypeRow.environment_id == environment_id)
    )
    features = session.scalars(
        select(FeatureRow).where(FeatureRow.environment_id == environment_id)
    )
    plans = session.scalars(select(PlanRow).where(PlanRow.environment_id == environment_id))
    bundles = session.scalars(
        select(CreditBundleRow).where(CreditBundleRow.environment_id == environment_id)
    )
    return CatalogDocument(
        credits=tuple(
            CreditType(row.key, row.name, row.unit) for row in sorted(credits, key=_by_key)
        ),
        features=tuple(
            FeatureEntry(to_feature(row), tuple(rule_from_json(r) for r in row.rules or ()))
            for row in sorted(features, key=_by_key)
        ),
        plans=tuple(
            to_plan(row) for row in sorted(plans, key=lambda row: (row.sort_order, row.key))
        ),
        bundles=tuple(
            NewBundle(
                key=row.key,
                name=row.name,
                credit=row.credit_type.key,
                amount=row.amount,
                currency=row.currency,
                price=row.price,
                expires_in_days=row.expires_in_days,
            )
            for row in sorted(bundles, key=_by_key)
        ),
    )


def _by_key(row: CreditTypeRow | FeatureRow | CreditBundleRow) -> str:
    return row.key

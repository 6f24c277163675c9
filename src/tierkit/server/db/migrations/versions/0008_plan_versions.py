"""plan versions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

Every existing plan becomes version 1 (its current entitlements, prices and credit grants,
snapshotted in the engine codec's JSON shapes), and every existing subscription holds it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tierkit.server.db.types
from tierkit.server.db.ids import new_id

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _json() -> Any:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
    )


def upgrade() -> None:
    op.create_table(
        "plan_versions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("entitlements", _json(), nullable=False),
        sa.Column("prices", _json(), nullable=False),
        sa.Column("credit_grants", _json(), nullable=False),
        sa.Column("created_at", tierkit.server.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_plan_versions_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_versions")),
        sa.UniqueConstraint("plan_id", "version", name=op.f("uq_plan_versions_plan_id_version")),
    )
    # The server defaults fill the existing rows (version 1); the services always write both
    # columns. They stay: removing them would copy `plans` on SQLite, which the tables that
    # reference it forbid once there is data.
    op.add_column("plans", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.add_column(
        "subscriptions",
        sa.Column("plan_version", sa.Integer(), nullable=False, server_default="1"),
    )
    _snapshot_existing_plans()


def _snapshot_existing_plans() -> None:
    """Version 1 of each plan, as `tierkit.engine.codec` writes entitlements and prices."""
    connection = op.get_bind()
    meta = sa.MetaData()
    plans = sa.Table("plans", meta, autoload_with=connection)
    entitlements = sa.Table("plan_entitlements", meta, autoload_with=connection)
    prices = sa.Table("plan_prices", meta, autoload_with=connection)
    features = sa.Table("features", meta, autoload_with=connection)
    versions = sa.Table("plan_versions", meta, autoload_with=connection)
    now = datetime.now(UTC).replace(tzinfo=None)
    for plan in connection.execute(sa.select(plans.c.id, plans.c.credit_grants)).all():
        lines = connection.execute(
            sa.select(entitlements, features.c.key.label("feature_key"))
            .join(features, features.c.id == entitlements.c.feature_id)
            .where(entitlements.c.plan_id == plan.id)
            .order_by(entitlements.c.position)
        ).all()
        price_rows = connection.execute(
            sa.select(prices).where(prices.c.plan_id == plan.id).order_by(prices.c.position)
        ).all()
        connection.execute(
            versions.insert().values(
                id=new_id("planv"),
                plan_id=plan.id,
                version=1,
                entitlements=[_entitlement(e) for e in lines],
                prices=[_price(p) for p in price_rows],
                credit_grants=list(plan.credit_grants or []),
                created_at=now,
            )
        )


def _entitlement(row: Any) -> dict[str, Any]:
    return {
        "feature": row.feature_key,
        "value": row.value,
        "unlimited": row.unlimited,
        "period": row.period,
        "reset": row.reset,
        "soft_limit": row.soft_limit,
        "overage": None
        if row.overage_price is None
        else {"price": row.overage_price, "per": row.overage_per or 1},
        "credit": row.credit,
        "credit_cost": row.credit_cost,
    }


def _price(row: Any) -> dict[str, Any]:
    return {
        "interval": row.interval,
        "currency": row.currency,
        "amount": row.amount,
        "default": row.is_default,
        "regional": list(row.regional or []),
        "trial_days": row.trial_days,
        "intro": row.intro,
    }


def downgrade() -> None:
    # SQLite drops a plain column in place (3.35+): no copy of the referenced tables.
    op.drop_column("subscriptions", "plan_version")
    op.drop_column("plans", "version")
    op.drop_table("plan_versions")

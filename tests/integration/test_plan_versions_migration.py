"""Migration 0008 on a database with data: every existing plan becomes version 1 with its
entitlements, prices and credit grants, and every existing subscription holds it."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import select

from tierkit.engine.catalog import Entitlement, Feature, FeatureType, Plan, Price, PriceInterval
from tierkit.engine.codec import plan_parts_to_json
from tierkit.server.db import Database
from tierkit.server.db.migrate import MIGRATIONS_DIR, upgrade
from tierkit.server.db.tables import PlanRow, PlanVersionRow, SubscriptionRow
from tierkit.server.services.container import Services
from tierkit.server.services.subscriptions import NewSubscription


def _alembic(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database"] = database
    return config


def test_migration_0008__existing_plans_and_subscriptions__become_version_1(
    empty_database_url: str,
) -> None:
    database = Database(empty_database_url)
    try:
        # Given a plan with an entitlement and a price, and a subscription to it, from before
        # plan versions (made at head, then the schema taken back below 0008)
        upgrade(database)
        services = Services.build(database)
        [development, _] = services.environments.ensure_default_environments()
        environment = development.id
        services.features.create_feature(
            environment, Feature("seats", "Seats", FeatureType.NUMERIC)
        )
        plan = services.plans.create_plan(
            environment,
            Plan(
                "pro",
                "Pro",
                entitlements=(Entitlement("seats", 10),),
                prices=(Price(PriceInterval.MONTH, "usd", 900, default=True),),
            ),
        ).plan
        services.customers.upsert_company(environment, "acme", {})
        services.subscriptions.create_subscription(environment, "acme", NewSubscription("pro"))
        command.downgrade(_alembic(database), "0006")
        with database.write() as session:
            session.execute(PlanRow.__table__.update().values(name="Pro (old)"))

        # When the migrations run again
        applied = upgrade(database)

        # Then the plan is at version 1, snapshotted as the codec writes it, and held
        assert "0008" in applied
        with database.read() as session:
            assert session.scalars(select(PlanRow.version)).all() == [1]
            version = session.scalars(select(PlanVersionRow)).one()
            assert version.version == 1
            parts = plan_parts_to_json(plan)
            assert (version.entitlements, version.prices, version.credit_grants) == (
                parts["entitlements"],
                parts["prices"],
                parts["credit_grants"],
            )
            assert session.scalars(select(SubscriptionRow.plan_version)).all() == [1]
    finally:
        database.dispose()

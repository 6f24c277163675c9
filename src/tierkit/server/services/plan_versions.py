"""Plan versions in storage: a plan's entitlements, prices and credit grants are versioned.

Changing them while the current version has subscribers (not ended: active, trialing or
scheduled) makes a new version; those subscribers keep theirs (grandfathered) until migrated,
and new subscriptions take the latest. Without subscribers the current version is edited in
place. Every version has a `plan_versions` row, the current one included."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import Plan
from tierkit.engine.codec import plan_at_version, plan_parts_to_json
from tierkit.server.db.ids import new_id
from tierkit.server.db.tables import PlanRow, PlanVersionRow, SubscriptionRow


def not_ended(now: datetime) -> ColumnElement[bool]:
    """Subscriptions not over at `now` (one ending at its own start never ran: it is over)."""
    return or_(
        SubscriptionRow.ends_at.is_(None),
        and_(SubscriptionRow.ends_at > now, SubscriptionRow.ends_at > SubscriptionRow.started_at),
    )


def has_subscribers(session: Session, plan_id: str, version: int, now: datetime) -> bool:
    query = (
        select(SubscriptionRow.id)
        .where(
            SubscriptionRow.plan_id == plan_id,
            SubscriptionRow.plan_version == version,
            not_ended(now),
        )
        .limit(1)
    )
    return session.scalar(query) is not None


def store_version(
    session: Session, row: PlanRow, before: Plan | None, after: Plan, now: datetime
) -> None:
    """Record `after`'s versioned parts for `row` (whose id is set): version 1 of a new plan
    (`before` None), a new version when they changed and the current one has subscribers,
    else the current version edited in place."""
    parts = plan_parts_to_json(after)
    if before is None:
        row.version = 1
        session.add(_version_row(row.id, 1, parts, now))
        return
    if plan_parts_to_json(before) == parts:
        return
    # Two edits at once take turns here, the second seeing the version the first made
    # (PostgreSQL re-reads a row it waited for; SQLite writes one at a time).
    latest = session.scalar(select(PlanRow.version).where(PlanRow.id == row.id).with_for_update())
    if latest is not None and latest != row.version:
        row.version = latest
    current = session.scalar(
        select(PlanVersionRow).where(
            PlanVersionRow.plan_id == row.id, PlanVersionRow.version == row.version
        )
    )
    if current is None or has_subscribers(session, row.id, row.version, now):
        row.version += 1
        session.add(_version_row(row.id, row.version, parts, now))
        return
    current.entitlements = parts["entitlements"]
    current.prices = parts["prices"]
    current.credit_grants = parts["credit_grants"]


def _version_row(
    plan_id: str, version: int, parts: Mapping[str, object], now: datetime
) -> PlanVersionRow:
    return PlanVersionRow(
        id=new_id("planv"),
        plan_id=plan_id,
        version=version,
        entitlements=parts["entitlements"],
        prices=parts["prices"],
        credit_grants=parts["credit_grants"],
        created_at=now,
    )


def read_held_versions(
    session: Session, environment_id: str, plans: Mapping[str, Plan]
) -> dict[str, dict[int, Plan]]:
    """The older versions of the environment's plans that some subscription holds, as plans
    (the latest definition with that version's parts). One query."""
    held = (
        select(SubscriptionRow.id)
        .where(
            SubscriptionRow.plan_id == PlanVersionRow.plan_id,
            SubscriptionRow.plan_version == PlanVersionRow.version,
        )
        .exists()
    )
    rows = session.execute(
        select(PlanRow.key, PlanVersionRow)
        .join(PlanRow, PlanRow.id == PlanVersionRow.plan_id)
        .where(
            PlanRow.environment_id == environment_id,
            PlanVersionRow.version != PlanRow.version,
            held,
        )
    ).all()
    versions: dict[str, dict[int, Plan]] = {}
    for key, version in rows:
        if key in plans:
            versions.setdefault(key, {})[version.version] = version_plan(plans[key], version)
    return versions


def version_plan(latest: Plan, version: PlanVersionRow) -> Plan:
    """The plan as `version` defines it (unversioned fields follow the latest)."""
    return plan_at_version(
        latest,
        {
            "entitlements": version.entitlements,
            "prices": version.prices,
            "credit_grants": version.credit_grants,
        },
    )


def subscriber_counts(session: Session, plan_id: str, now: datetime) -> dict[int, int]:
    """Subscriptions not ended at `now`, per version of the plan."""
    rows = session.execute(
        select(SubscriptionRow.plan_version, func.count())
        .where(SubscriptionRow.plan_id == plan_id, not_ended(now))
        .group_by(SubscriptionRow.plan_version)
    ).all()
    return {int(version): int(count) for version, count in rows}

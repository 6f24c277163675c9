"""`entitlements.changed`: a company's effective entitlements, before and after.

A change that may move a company's entitlements (its traits, subscriptions or overrides; a
plan or feature, for every company; an override expiring; a subscription starting or ending)
leaves a mark in its own transaction. A job evaluates each marked company, compares the result
with the snapshot last announced, and in one transaction announces the difference, stores the
new snapshot and removes the marks it handled. A crash loses nothing: the marks stay until the
transaction that handles them commits.

Entitlements here are what a plan, override or rule grants (value, unlimited, reason, plan),
not usage or balances: a metered feature crossing its limit is `usage.threshold_reached`'s
business. A company's first evaluation sets its baseline without an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, literal, select
from sqlalchemy.orm import Session

from tierkit.engine.evaluate import Catalog, Decision, evaluate_all
from tierkit.server.db.tables import CompanyRow, EntitlementMarkRow, EntitlementSnapshotRow
from tierkit.server.services.audit import EVERY_COMPANY, add_event, jsonable
from tierkit.server.services.catalog_cache import read_catalog
from tierkit.server.services.jobs import JobRun
from tierkit.server.services.states import load_company

_BATCH = 500


def summarize(decisions: Sequence[Decision]) -> dict[str, Any]:
    """What a company is entitled to, feature by feature (no usage, no balances)."""
    summary = {}
    for decision in decisions:
        entry: dict[str, Any] = {
            "value": jsonable(decision.value),
            "unlimited": decision.unlimited,
            "reason": decision.reason.value,
            "plan": decision.plan,
        }
        if decision.usage is None and decision.credits is None:
            entry["allowed"] = decision.allowed
        summary[decision.feature] = entry
    return summary


def announce_entitlement_changes(run: JobRun) -> None:
    """The `entitlements` job's work: handle up to a batch of marks, each company against its
    environment's catalog as this transaction reads it (never a cached one: a change made in
    another process must not be compared against the catalog from before it)."""
    session, until = run.session, run.until
    _expand_environment_marks(session, until)
    mark = EntitlementMarkRow
    marks = session.execute(
        select(mark.id, mark.environment_id, mark.company_key).order_by(mark.id).limit(_BATCH)
    ).all()
    catalogs: dict[str, Catalog] = {}
    for environment_id, company_key in sorted({(env, key) for _, env, key in marks}):
        if environment_id not in catalogs:
            catalogs[environment_id] = read_catalog(session, environment_id)
        _compare(session, catalogs[environment_id], environment_id, company_key, until)
    if marks:
        session.execute(delete(mark).where(mark.id.in_([m[0] for m in marks])))


def _expand_environment_marks(session: Session, now: datetime) -> None:
    """Turn each `*` mark into one mark per company of its environment."""
    everyone = session.execute(
        select(EntitlementMarkRow.id, EntitlementMarkRow.environment_id).where(
            EntitlementMarkRow.company_key == EVERY_COMPANY
        )
    ).all()
    for mark_id, environment_id in everyone:
        session.execute(
            insert(EntitlementMarkRow).from_select(
                ["environment_id", "company_key", "created_at"],
                select(literal(environment_id), CompanyRow.key, literal(now)).where(
                    CompanyRow.environment_id == environment_id
                ),
            )
        )
        session.execute(delete(EntitlementMarkRow).where(EntitlementMarkRow.id == mark_id))


def _compare(
    session: Session, catalog: Catalog, environment_id: str, key: str, now: datetime
) -> None:
    snapshot = session.scalars(
        select(EntitlementSnapshotRow).where(
            EntitlementSnapshotRow.environment_id == environment_id,
            EntitlementSnapshotRow.company_key == key,
        )
    ).first()
    loaded = load_company(session, environment_id, key, catalog, now)
    if not loaded.state.found:
        if snapshot is not None:
            session.delete(snapshot)
        return
    after = summarize(evaluate_all(catalog, loaded.state, now=now))
    if snapshot is None:
        session.add(
            EntitlementSnapshotRow(
                environment_id=environment_id, company_key=key, entitlements=after, updated_at=now
            )
        )
        return
    before: dict[str, Any] = snapshot.entitlements
    changed = sorted(f for f in before.keys() | after.keys() if before.get(f) != after.get(f))
    if not changed:
        return
    data = {"company": key, "changed": changed, "object": after, "previous": before}
    add_event(session, environment_id, "entitlements.changed", data, now)
    snapshot.entitlements, snapshot.updated_at = after, now

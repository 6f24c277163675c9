"""Customer state as the engine reads it, loaded from the database: a company's traits,
subscriptions, overrides and its usage in each metered feature's current window."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from tierkit.engine.evaluate import Catalog, CompanyState, UserState, usage_windows
from tierkit.server.db.tables import CompanyRow, UserRow
from tierkit.server.services.companies import get_company_row
from tierkit.server.services.counters import CounterSpec, read_counters
from tierkit.server.services.credits import (
    company_grant_rows,
    credits_need_refresh,
    due_plan_grants,
    to_grant,
)
from tierkit.server.services.overrides import company_override_rows
from tierkit.server.services.rows import to_override
from tierkit.server.services.subscriptions import company_subscription_rows, to_subscription
from tierkit.zones import zone_named


def company_zone(row: CompanyRow) -> tzinfo:
    """Where the company's calendar periods are cut: its `timezone` trait, or UTC."""
    name = row.traits.get("timezone")
    return zone_named(name) if isinstance(name, str) else UTC


@dataclass(frozen=True, slots=True)
class LoadedCompany:
    state: CompanyState
    company_id: str | None
    missing: list[CounterSpec]
    """Counters the state needs that do not exist yet (their usage reads 0 in `state`)."""
    credits_stale: bool = False
    """A plan grant is owed or an expiry is not in the ledger yet (`refresh_credits_in`)."""
    refresh_at: datetime | None = None
    """The next instant that changes the company's credits (an expiry, a new period)."""


def counter_specs(catalog: Catalog, state: CompanyState, now: datetime) -> dict[str, CounterSpec]:
    """The counter each metered feature reads now."""
    specs = {}
    for key, (start, end) in usage_windows(catalog, state, now).items():
        meter = catalog.features[key].meter
        if meter is not None:
            specs[key] = CounterSpec(meter, start, end)
    return specs


def load_company(
    session: Session, environment_id: str, key: str, catalog: Catalog, now: datetime
) -> LoadedCompany:
    row = get_company_row(session, environment_id, key)
    if row is None:
        return LoadedCompany(CompanyState(key=key, found=False), None, [])
    grant_rows = company_grant_rows(session, row.id)
    state = CompanyState(
        key=key,
        traits=dict(row.traits),
        subscriptions=tuple(to_subscription(s) for s in company_subscription_rows(session, row.id)),
        overrides=tuple(to_override(o) for o in company_override_rows(session, row.id)),
        grants=tuple(to_grant(g) for g in grant_rows),
        timezone=company_zone(row),
    )
    due = due_plan_grants(catalog, state.subscriptions, row.created_at, now)
    stale = credits_need_refresh(grant_rows, due, now)
    upcoming = [g.expires_at for g in grant_rows if g.expires_at and g.expires_at > now]
    refresh_at = min([*upcoming, *(d.end for d in due)], default=None)
    state, missing = with_usage(session, row.id, catalog, state, now)
    return LoadedCompany(state, row.id, missing, stale, refresh_at)


def with_usage(
    session: Session, company_id: str, catalog: Catalog, state: CompanyState, now: datetime
) -> tuple[CompanyState, list[CounterSpec]]:
    """`state` with its usage in each metered feature's current window, as its counters hold
    it, and the counters it needs that do not exist yet (their usage reads 0)."""
    specs = counter_specs(catalog, state, now)
    values, missing = read_counters(session, company_id, specs.values(), now)
    state = replace(
        state,
        usage={feature: values[spec] for feature, spec in specs.items() if spec in values},
        usage_windows={
            feature: (spec.start, spec.end) for feature, spec in specs.items() if spec in values
        },
    )
    return state, missing


def load_user(session: Session, environment_id: str, key: str) -> UserState:
    row = session.scalar(
        select(UserRow).where(UserRow.environment_id == environment_id, UserRow.key == key)
    )
    return UserState(key, dict(row.traits) if row is not None else {})

"""Work that time alone causes: an override expiring, a trial about to end, a credit grant
expiring and a plan's next credit period. Each is a job's work (`services.jobs`): what fell due
in `(since, until]`, done and announced once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tierkit.engine.evaluate import Catalog
from tierkit.server.db.tables import CompanyRow, CreditGrantRow, OverrideRow, SubscriptionRow
from tierkit.server.db.upserts import lock_companies
from tierkit.server.services.audit import add_event, jsonable, mark_company
from tierkit.server.services.catalog_cache import read_catalog
from tierkit.server.services.credit_alerts import announce_credit_alerts
from tierkit.server.services.credits import refresh_credits_in
from tierkit.server.services.entitlement_changes import announce_entitlement_changes
from tierkit.server.services.jobs import Job, JobRun
from tierkit.server.services.overrides import OverrideRecord
from tierkit.server.services.rows import to_override
from tierkit.server.services.subscriptions import SubscriptionRecord, to_subscription
from tierkit.server.services.usage_alerts import announce_usage_thresholds

_EXPIRY_BATCH = 500
"""Companies whose expired grants one run settles (the next run takes the rest)."""

TRIAL_ENDING_NOTICE = timedelta(days=3)
"""`subscription.trial_ending` is sent this long before a trial ends (as Stripe does), or at
once for a trial shorter than that."""


def announce_expired_overrides(run: JobRun) -> None:
    """`override.expired` for each override whose `expires_at` is in `(since, until]`."""
    session, since, until = run.session, run.since, run.until
    rows = session.execute(
        select(OverrideRow, CompanyRow.key)
        .join(CompanyRow, CompanyRow.id == OverrideRow.company_id)
        .where(OverrideRow.expires_at > since, OverrideRow.expires_at <= until)
        .order_by(OverrideRow.expires_at, OverrideRow.id)
    ).all()
    for row, company in rows:
        record = OverrideRecord(to_override(row), company, row.created_at, row.updated_at)
        data = {"override": row.feature.key, "company": company, "object": jsonable(record)}
        add_event(session, row.environment_id, "override.expired", data, until)
        mark_company(session, row.environment_id, company, until)


def mark_subscription_boundaries(run: JobRun) -> None:
    """Mark the companies whose subscriptions started or ended in `(since, until]` (set up
    ahead of time): their entitlements moved with no request."""
    session, since, until = run.session, run.since, run.until
    moments = (SubscriptionRow.started_at, SubscriptionRow.ends_at)
    for moment in moments:
        rows = session.execute(
            select(SubscriptionRow.environment_id, CompanyRow.key)
            .join(CompanyRow, CompanyRow.id == SubscriptionRow.company_id)
            .where(moment > since, moment <= until)
            .distinct()
        ).all()
        for environment_id, company in rows:
            mark_company(session, environment_id, company, until)


def announce_trials_ending(run: JobRun) -> None:
    """`subscription.trial_ending` for each trial whose notice falls in `(since, until]`: the
    notice is `TRIAL_ENDING_NOTICE` before the trial ends, or the subscription's creation for
    a trial shorter than that."""
    session, since, until = run.session, run.since, run.until
    rows = session.execute(
        select(SubscriptionRow, CompanyRow.key)
        .join(CompanyRow, CompanyRow.id == SubscriptionRow.company_id)
        .where(
            SubscriptionRow.trial_ends_at > until,
            SubscriptionRow.trial_ends_at <= until + TRIAL_ENDING_NOTICE,
            (SubscriptionRow.trial_ends_at > since + TRIAL_ENDING_NOTICE)
            | (SubscriptionRow.created_at > since),
        )
        .order_by(SubscriptionRow.trial_ends_at, SubscriptionRow.id)
    ).all()
    for row, company in rows:
        assert row.trial_ends_at is not None  # noqa: S101 - selected by it
        notice_at = max(row.trial_ends_at - TRIAL_ENDING_NOTICE, row.created_at)
        if not since < notice_at <= until:
            continue
        if row.ends_at is not None and row.ends_at <= row.trial_ends_at:
            continue  # it ends with its trial: nothing to convert
        record = SubscriptionRecord(to_subscription(row), company, row.created_at, row.updated_at)
        data = {
            "subscription": row.id,
            "company": company,
            "trial_ends_at": jsonable(row.trial_ends_at),
            "object": jsonable(record),
        }
        add_event(session, row.environment_id, "subscription.trial_ending", data, until)


def settle_grant_expiries(run: JobRun) -> None:
    """Write the ledger's expiry rows of grants that expired by `until`, with their rollovers,
    and issue what the companies' plans owe for the periods that began (reads do it too; this
    keeps the ledger current, and credit webhooks timely, for companies nobody reads)."""
    session, until = run.session, run.until
    due = session.scalars(
        select(CreditGrantRow.company_id)
        .where(
            CreditGrantRow.expires_at <= until,
            CreditGrantRow.expiry_recorded.is_(False),
            CreditGrantRow.voided_at.is_(None),
        )
        .distinct()
        .order_by(CreditGrantRow.company_id)
        .limit(_EXPIRY_BATCH)
    ).all()
    lock_companies(session, list(due))
    catalogs: dict[str, Catalog] = {}
    companies = session.scalars(
        select(CompanyRow).where(CompanyRow.id.in_(due)).order_by(CompanyRow.id)
    ).all()
    for company in companies:
        environment_id = company.environment_id
        if environment_id not in catalogs:
            catalogs[environment_id] = read_catalog(session, environment_id)
        refresh_credits_in(session, company, catalogs[environment_id], until)


def time_driven_jobs(every: timedelta) -> list[Job]:
    """The jobs the server runs, each at most once per `every` across processes (in this
    order: what the first two mark, the last announces in the same tick)."""
    return [
        Job("override_expiry", every, announce_expired_overrides),
        Job("subscription_boundaries", every, mark_subscription_boundaries),
        Job("trial_ending", every, announce_trials_ending),
        Job("grant_expiry", every, settle_grant_expiries),
        Job("entitlements", every, announce_entitlement_changes),
        Job("usage_thresholds", every, announce_usage_thresholds),
        Job("credit_alerts", every, announce_credit_alerts),
    ]

"""The tables. Rows are storage only: services turn them into engine types and back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tierkit.server.db.types import UTCDateTime, json_column_type

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: json_column_type()}


class EnvironmentRow(Base):
    __tablename__ = "environments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    # SHA-256 of the whole key: keys are long random strings, so a fast hash is enough and
    # lets a request find its key with one indexed lookup.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class FeatureRow(Base):
    __tablename__ = "features"
    __table_args__ = (UniqueConstraint("environment_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    visibility: Mapped[str] = mapped_column(String(16))
    meter_event: Mapped[str | None] = mapped_column(String(255))
    meter_aggregation: Mapped[str | None] = mapped_column(String(16))
    meter_property: Mapped[str | None] = mapped_column(String(255))
    options: Mapped[Any] = mapped_column(json_column_type(), nullable=True)
    default: Mapped[Any] = mapped_column(json_column_type(), nullable=True)
    global_value: Mapped[Any] = mapped_column(json_column_type(), nullable=True)
    # The feature's targeting rules, in order, in the API's JSON shape (null: none).
    rules: Mapped[Any] = mapped_column(json_column_type(), nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PlanRow(Base):
    __tablename__ = "plans"
    __table_args__ = (
        UniqueConstraint("environment_id", "key"),
        # One default plan per group (the service answers 409 first; this catches races).
        Index(
            "uq_plans_default_per_group",
            "environment_id",
            "plan_group",
            unique=True,
            sqlite_where=text("is_default AND status != 'archived'"),
            postgresql_where=text("is_default AND status != 'archived'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(16))
    plan_group: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    visibility: Mapped[str] = mapped_column(String(16))
    is_default: Mapped[bool] = mapped_column(Boolean)
    trial_days: Mapped[int | None] = mapped_column(Integer)
    sort_order: Mapped[int] = mapped_column(Integer)
    plan_metadata: Mapped[dict[str, Any]] = mapped_column("metadata")
    credit_grants: Mapped[Any] = mapped_column(json_column_type(), nullable=True)
    """`[{"credit", "amount", "period", "rollover_max"}]`: credits issued each period."""
    version: Mapped[int] = mapped_column(Integer)
    """The current version of the plan's entitlements, prices and credit grants."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    entitlements: Mapped[list[EntitlementRow]] = relationship(
        cascade="all, delete-orphan",
        order_by="EntitlementRow.position",
        passive_deletes=True,
        lazy="selectin",
    )
    prices: Mapped[list[PriceRow]] = relationship(
        cascade="all, delete-orphan",
        order_by="PriceRow.position",
        passive_deletes=True,
        lazy="selectin",
    )


class PlanVersionRow(Base):
    """One version of a plan's versioned parts (entitlements, prices, credit grants) as JSON
    snapshots in the engine codec's shapes. Every version has a row, the current one included
    (kept equal to the plan's own lines); older ones are what grandfathered subscriptions read."""

    __tablename__ = "plan_versions"
    __table_args__ = (UniqueConstraint("plan_id", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    entitlements: Mapped[Any] = mapped_column(json_column_type())
    prices: Mapped[Any] = mapped_column(json_column_type())
    credit_grants: Mapped[Any] = mapped_column(json_column_type())
    created_at: Mapped[datetime]


class EntitlementRow(Base):
    __tablename__ = "plan_entitlements"
    __table_args__ = (UniqueConstraint("plan_id", "feature_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    # RESTRICT: a feature a plan references cannot disappear underneath it.
    feature_id: Mapped[str] = mapped_column(
        ForeignKey("features.id", ondelete="RESTRICT"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    value: Mapped[Any] = mapped_column(json_column_type(), nullable=True)
    unlimited: Mapped[bool] = mapped_column(Boolean)
    period: Mapped[str | None] = mapped_column(String(16))
    reset: Mapped[str | None] = mapped_column(String(16))
    soft_limit: Mapped[bool] = mapped_column(Boolean)
    overage_price: Mapped[int | None] = mapped_column(BigInteger)
    overage_per: Mapped[int | None] = mapped_column(BigInteger)
    credit: Mapped[str | None] = mapped_column(String(64))
    """The key of the credit type each unit costs (checked against `credit_types` on write)."""
    credit_cost: Mapped[float | None] = mapped_column(Float(precision=53))

    feature: Mapped[FeatureRow] = relationship(lazy="joined")


class PriceRow(Base):
    __tablename__ = "plan_prices"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    interval: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    is_default: Mapped[bool] = mapped_column(Boolean)
    regional: Mapped[Any] = mapped_column(json_column_type())
    trial_days: Mapped[int | None] = mapped_column(Integer)
    intro: Mapped[Any] = mapped_column(json_column_type(), nullable=True)
    """`{"kind": "percent"|"fixed", "value", "cycles"}`."""


class CompanyRow(Base):
    __tablename__ = "companies"
    __table_args__ = (UniqueConstraint("environment_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    traits: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CompanyTraitRow(Base):
    """One row per company trait, as text, so lists can filter by trait on every database."""

    __tablename__ = "company_traits"
    __table_args__ = (Index("ix_company_traits_name_value", "name", "value"),)

    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("environment_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    traits: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MembershipRow(Base):
    __tablename__ = "memberships"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[str] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime]


class SubscriptionRow(Base):
    """A subscription over [started_at, ends_at). Rows are kept after they end: the history
    answers what a company had at any instant."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_company_period", "company_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    # RESTRICT: a plan with subscribers (even past ones) is archived, not deleted.
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="RESTRICT"), index=True)
    plan_version: Mapped[int] = mapped_column(Integer)
    """The plan version the subscription holds (grandfathered until migrated)."""
    quantity: Mapped[int] = mapped_column(Integer)
    price_interval: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime]
    trial_ends_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    plan: Mapped[PlanRow] = relationship(lazy="joined", innerjoin=True)


class OverrideRow(Base):
    __tablename__ = "overrides"
    __table_args__ = (UniqueConstraint("company_id", "feature_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    feature_id: Mapped[str] = mapped_column(
        ForeignKey("features.id", ondelete="RESTRICT"), index=True
    )
    value: Mapped[Any] = mapped_column(json_column_type(), nullable=True)
    unlimited: Mapped[bool] = mapped_column(Boolean)
    period: Mapped[str | None] = mapped_column(String(16))
    reset: Mapped[str | None] = mapped_column(String(16))
    soft_limit: Mapped[bool] = mapped_column(Boolean)
    expires_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    feature: Mapped[FeatureRow] = relationship(lazy="joined", innerjoin=True)


_SERIAL = BigInteger().with_variant(Integer, "sqlite")  # SQLite numbers rows of INTEGER keys


class EventRow(Base):
    """A usage or identify event exactly as it was received, kept for audit and recounts.
    `seq` numbers events in the order they were stored (the public id is `evt_<seq>`)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("environment_id", "idempotency_key"),
        Index("ix_events_environment_seq", "environment_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    # No foreign keys on this table: their per-row checks halve the insert rate of the hottest
    # write. Deleting a company deletes its events in the same transaction (CompanyService).
    environment_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(255))
    company_id: Mapped[str | None] = mapped_column(String(40))
    user_key: Mapped[str | None] = mapped_column(String(255))
    quantity: Mapped[float] = mapped_column(Float(precision=53))
    properties: Mapped[dict[str, Any]]
    timestamp: Mapped[datetime]
    received_at: Mapped[datetime]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    reply: Mapped[Any] = mapped_column(json_column_type(), nullable=True)
    """The check reply of a `consume`, returned again when it is retried."""


def only_on(dialect: str, index: Index) -> Index:
    """`index`, created on the `dialect` database alone (and compared with the migrated
    schema there alone: `tierkit.server.db.migrate.created_here`)."""
    index.info["only_on"] = dialect
    return index.ddl_if(dialect=dialect)


# A company's events by event and time: recounts, gauges, the usage series, listing and
# deleting a company's events. PostgreSQL indexes the hashes of the company and the event
# (fixed-width keys, compared without reading text): each ingested event adds an entry, and
# the text columns cost a batch of 1000 a tenth more of PostgreSQL's time. Queries name the
# hashes through `tierkit.server.db.event_lookup.company_events`, and check the columns.
only_on(
    "postgresql",
    Index(
        "ix_events_company_event_hashes",
        func.hashtext(EventRow.company_id),
        func.hashtext(EventRow.event),
        EventRow.timestamp,
    ),
)
only_on(
    "sqlite",
    Index("ix_events_company_event_time", EventRow.company_id, EventRow.event, EventRow.timestamp),
)


class UsageCounterRow(Base):
    """A meter's value over the company's events in `[period_start, period_end)`, kept exact
    by every ingestion (all time is the widest window the columns hold)."""

    __tablename__ = "usage_counters"
    __table_args__ = (
        UniqueConstraint(
            "company_id",
            "event",
            "aggregation",
            "property",
            "period_start",
            "period_end",
            name="uq_usage_counters_window",
        ),
        Index("ix_usage_counters_company_event_end", "company_id", "event", "period_end"),
        # Every batch updates its counters: room on the page keeps those updates HOT (0009).
        {"postgresql_with": {"fillfactor": 30}},
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(255))
    aggregation: Mapped[str] = mapped_column(String(16))
    property: Mapped[str] = mapped_column(String(255))
    """The meter's property, or '' for none (a unique constraint treats NULLs as distinct)."""
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    value: Mapped[float] = mapped_column(Float(precision=53))
    latest_at: Mapped[datetime | None]
    latest_seq: Mapped[int | None] = mapped_column(BigInteger)


class UsageUniqueRow(Base):
    """The distinct values a `unique_count` counter has seen (their SHA-256, truncated)."""

    __tablename__ = "usage_uniques"

    counter_id: Mapped[int] = mapped_column(
        ForeignKey("usage_counters.id", ondelete="CASCADE"), primary_key=True
    )
    value_hash: Mapped[str] = mapped_column(String(32), primary_key=True)


class CreditTypeRow(Base):
    __tablename__ = "credit_types"
    __table_args__ = (UniqueConstraint("environment_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class CreditGrantRow(Base):
    """A grant of credits to a company. `remaining` is what debits have left of it; the ledger
    holds every change."""

    __tablename__ = "credit_grants"
    __table_args__ = (
        Index("ix_credit_grants_company_credit", "company_id", "credit_type_id"),
        UniqueConstraint("company_id", "issue_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    # RESTRICT: a credit type with grants cannot be deleted.
    credit_type_id: Mapped[str] = mapped_column(ForeignKey("credit_types.id", ondelete="RESTRICT"))
    amount: Mapped[float] = mapped_column(Float(precision=53))
    remaining: Mapped[float] = mapped_column(Float(precision=53))
    priority: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime | None]
    voided_at: Mapped[datetime | None]
    expiry_recorded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # A plan's periodic grant: which plan and period it is for (unique per company), the
    # cycle it follows, and how much of it may roll over when it expires.
    issue_key: Mapped[str | None] = mapped_column(String(200))
    period: Mapped[str | None] = mapped_column(String(16))
    anchor: Mapped[datetime | None]
    rollover_max: Mapped[float | None] = mapped_column(Float(precision=53))

    credit_type: Mapped[CreditTypeRow] = relationship(lazy="joined", innerjoin=True)


class CreditLedgerRow(Base):
    """One change of one grant: `grant` (+), `debit` (-), `expiry` (-), `void` (-) or
    `rollover`. A company's balance of a credit type is the sum of its rows."""

    __tablename__ = "credit_ledger"
    __table_args__ = (Index("ix_credit_ledger_company_seq", "company_id", "seq"),)

    seq: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    grant_id: Mapped[str] = mapped_column(ForeignKey("credit_grants.id", ondelete="CASCADE"))
    credit_type_id: Mapped[str] = mapped_column(ForeignKey("credit_types.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[float] = mapped_column(Float(precision=53))
    at: Mapped[datetime]
    event_seq: Mapped[int | None] = mapped_column(BigInteger)
    """The consume event that caused a debit."""
    feature: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")


class CreditBundleRow(Base):
    """Credits sold as a pack: a purchase turns it into a grant."""

    __tablename__ = "credit_bundles"
    __table_args__ = (UniqueConstraint("environment_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    credit_type_id: Mapped[str] = mapped_column(ForeignKey("credit_types.id", ondelete="RESTRICT"))
    amount: Mapped[float] = mapped_column(Float(precision=53))
    currency: Mapped[str] = mapped_column(String(3))
    price: Mapped[int] = mapped_column(BigInteger)
    expires_in_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]

    credit_type: Mapped[CreditTypeRow] = relationship(lazy="joined", innerjoin=True)


class AuditEntryRow(Base):
    """One mutation: who did what to which resource, with the resource before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_environment_seq", "environment_id", "seq"),
        Index("ix_audit_log_resource", "environment_id", "resource_type", "resource_key"),
    )

    seq: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    environment_id: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(255))
    """`key:<api key id>`, `cli`, `console:<user>` or `system`."""
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_key: Mapped[str] = mapped_column(String(255))
    before: Mapped[Any] = mapped_column(json_column_type(), nullable=True)
    after: Mapped[Any] = mapped_column(json_column_type(), nullable=True)
    created_at: Mapped[datetime]


class OutboxEventRow(Base):
    """A webhook event, written in the transaction of the change that caused it. The
    dispatcher fans it out to the endpoints subscribed at that moment (`fanned_out`)."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_pending", "fanned_out", "seq"),)

    seq: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    """The `webhook-id` of every delivery of it (`msg_...`): receivers deduplicate by it."""
    environment_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[Any] = mapped_column(json_column_type())
    created_at: Mapped[datetime]
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)


class WebhookEndpointRow(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[Any] = mapped_column(json_column_type())
    """The event types it receives; empty: every type."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(String(100))
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDeliveryRow(Base):
    """One event to one endpoint: pending until it succeeds or is given up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_seq"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    event_seq: Mapped[int] = mapped_column(
        ForeignKey("webhook_events.seq", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    """`pending`, `succeeded` or `failed` (given up after the retry schedule)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    leased_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookAttemptRow(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float(precision=53))
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(String(500))


class JobLeaseRow(Base):
    """A background job's state across processes: who ran it last, when it is due again, and
    the instant its work is done up to (`watermark`)."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime]
    """Not run again before this (by any process)."""
    watermark: Mapped[datetime | None]
    position: Mapped[int | None] = mapped_column(BigInteger)
    """For jobs that follow a table by sequence number: the last one handled."""


class EntitlementMarkRow(Base):
    """A company whose entitlements may have changed, written with the change; the
    `entitlements` job compares them with the snapshot and announces the difference.
    `company_key` `*` marks every company of the environment (a catalog change)."""

    __tablename__ = "entitlement_marks"

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    environment_id: Mapped[str] = mapped_column(String(40))
    company_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class EntitlementSnapshotRow(Base):
    """A company's effective entitlements as last announced (the `before` of the next
    `entitlements.changed`)."""

    __tablename__ = "entitlement_snapshots"
    __table_args__ = (UniqueConstraint("environment_id", "company_key"),)

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    environment_id: Mapped[str] = mapped_column(String(40))
    company_key: Mapped[str] = mapped_column(String(255))
    entitlements: Mapped[Any] = mapped_column(json_column_type())
    updated_at: Mapped[datetime]


class UsageThresholdRow(Base):
    """A `usage.threshold_reached` announced: once per company, feature, period and level."""

    __tablename__ = "usage_thresholds"
    __table_args__ = (
        UniqueConstraint(
            "environment_id",
            "company_key",
            "feature",
            "period_start",
            "percent",
            name="uq_usage_thresholds_once",
        ),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    environment_id: Mapped[str] = mapped_column(String(40))
    company_key: Mapped[str] = mapped_column(String(255))
    feature: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime]
    """The period's start (the epoch for usage that never resets)."""
    percent: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


class CreditAlertRow(Base):
    """A `credits.low` or `credits.depleted` announced and still true: removed when the
    balance recovers, so the next fall is announced again."""

    __tablename__ = "credit_alerts"
    __table_args__ = (
        UniqueConstraint(
            "environment_id", "company_key", "credit", "level", name="uq_credit_alerts_once"
        ),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    environment_id: Mapped[str] = mapped_column(String(40))
    company_key: Mapped[str] = mapped_column(String(255))
    credit: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    """`low` or `depleted`."""
    created_at: Mapped[datetime]


class ConsoleUserRow(Base):
    """Someone who signs in to the admin console (created with `tierkit users create-admin`)."""

    __tablename__ = "console_users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    """Stored lowercased: sign-in ignores the case of the address."""
    password_hash: Mapped[str] = mapped_column(String(255))
    """`scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>`."""
    created_at: Mapped[datetime]


class ConsoleSessionRow(Base):
    """A signed-in console browser: the cookie holds the token, the table its SHA-256."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("console_users.id", ondelete="CASCADE"), index=True
    )
    environment: Mapped[str] = mapped_column(String(64))
    """The environment the console shows (the switcher changes it)."""
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]

"""The audit log and the webhook outbox, written in the transaction of each change.

A service that changes something calls `record_change` in its own transaction: one audit entry
(who, what, which resource, before and after) and, when the action is a webhook event type, one
outbox event that the dispatcher delivers. Both commit or roll back with the change itself, so
no delivery is for a change that did not commit and no committed change goes unannounced.

Who acted is `current_actor`: the API's auth sets it per request (`key:<id>`), the CLI sets
`cli`, and background jobs leave it `system`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tierkit.engine.codec import format_time
from tierkit.server.db import Database
from tierkit.server.db.ids import new_id
from tierkit.server.db.tables import AuditEntryRow, EntitlementMarkRow, OutboxEventRow
from tierkit.server.services.clock import Clock
from tierkit.server.services.pagination import Page, paginate, to_page

current_actor: ContextVar[str] = ContextVar("tierkit_actor", default="system")
"""Who is making changes in this context (a request, a CLI command, a job)."""


class WebhookEventType(enum.StrEnum):
    """What an endpoint can subscribe to (`webhook.test` is sent on request to one endpoint)."""

    COMPANY_CREATED = "company.created"
    COMPANY_UPDATED = "company.updated"
    COMPANY_DELETED = "company.deleted"
    SUBSCRIPTION_CREATED = "subscription.created"
    SUBSCRIPTION_UPDATED = "subscription.updated"
    SUBSCRIPTION_CANCELED = "subscription.canceled"
    SUBSCRIPTION_TRIAL_ENDING = "subscription.trial_ending"
    OVERRIDE_CREATED = "override.created"
    OVERRIDE_UPDATED = "override.updated"
    OVERRIDE_DELETED = "override.deleted"
    OVERRIDE_EXPIRED = "override.expired"
    ENTITLEMENTS_CHANGED = "entitlements.changed"
    USAGE_THRESHOLD_REACHED = "usage.threshold_reached"
    CREDITS_LOW = "credits.low"
    CREDITS_DEPLETED = "credits.depleted"
    PLAN_CREATED = "plan.created"
    PLAN_UPDATED = "plan.updated"
    PLAN_DELETED = "plan.deleted"
    FEATURE_CREATED = "feature.created"
    FEATURE_UPDATED = "feature.updated"
    FEATURE_DELETED = "feature.deleted"


WEBHOOK_EVENT_TYPES = frozenset(t.value for t in WebhookEventType)

EVERY_COMPANY = "*"
"""An entitlement mark for every company of the environment (a catalog change)."""

_MARKED_BY = {"company", "subscription", "override", "plan", "feature"}
"""The resources whose changes may move entitlements (see `entitlement_changes`)."""

_REDACTED = "[redacted]"
_SECRET_FIELDS = frozenset({"secret", "key_hash", "signing_secret", "password", "password_hash"})


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Record the changes made in this block as `actor`'s."""
    token = current_actor.set(actor)
    try:
        yield
    finally:
        current_actor.reset(token)


def jsonable(value: Any) -> Any:
    """A record (dataclasses, enums, datetimes, mappings, sequences) as plain JSON values,
    with secret fields redacted."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _field(field.name, getattr(value, field.name))
            for field in dataclasses.fields(value)
        }
    for kind, convert in _CONVERSIONS:
        if isinstance(value, kind):
            return convert(value)
    return str(value)


_CONVERSIONS: tuple[tuple[type | tuple[type, ...], Callable[[Any], Any]], ...] = (
    (enum.Enum, lambda value: jsonable(value.value)),
    (datetime, format_time),  # before `date`: a datetime is a date
    (date, lambda value: value.isoformat()),
    (Decimal, float),
    (Mapping, lambda value: {str(k): _field(str(k), v) for k, v in value.items()}),
    ((list, tuple, set, frozenset), lambda value: [jsonable(item) for item in value]),
)


def _field(name: str, value: Any) -> Any:
    return _REDACTED if name in _SECRET_FIELDS and value is not None else jsonable(value)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    actor: str
    action: str
    resource_type: str
    resource_key: str
    before: Any
    after: Any
    created_at: datetime


def audit_entry_id(seq: int) -> str:
    return f"aud_{seq}"


def record_change(
    session: Session,
    environment_id: str,
    *,
    action: str,
    resource: tuple[str, str],
    before: Any,
    after: Any,
    now: datetime,
    event_data: Mapping[str, Any] | None = None,
) -> None:
    """An audit entry for the change, and the webhook event when `action` is one. `before`
    and `after` are records (turned into JSON here); `event_data` adds to the event's data."""
    resource_type, resource_key = resource
    before_json, after_json = jsonable(before), jsonable(after)
    if before_json is not None and _without_times(before_json) == _without_times(after_json):
        return  # nothing changed (a repeated PUT): nothing to audit or announce
    session.add(
        AuditEntryRow(
            environment_id=environment_id,
            actor=current_actor.get(),
            action=action,
            resource_type=resource_type,
            resource_key=resource_key,
            before=before_json,
            after=after_json,
            created_at=now,
        )
    )
    if resource_type in _MARKED_BY:
        catalog_wide = resource_type in {"plan", "feature"}
        company = EVERY_COMPANY if catalog_wide else (event_data or {}).get("company", resource_key)
        mark_company(session, environment_id, company, now)
    if action in WEBHOOK_EVENT_TYPES:
        data: dict[str, Any] = {
            resource_type: resource_key,
            "object": after_json,
            "previous": before_json,
            **(event_data or {}),
        }
        add_event(session, environment_id, action, data, now)


class ChangeLog:
    """Records the changes of one transaction: `ChangeLog(session, environment_id, now)
    .record("plan.updated", ("plan", key), before, after)`."""

    def __init__(self, session: Session, environment_id: str, now: datetime) -> None:
        self._session = session
        self._environment_id = environment_id
        self._now = now

    def record(
        self,
        action: str,
        resource: tuple[str, str],
        before: Any,
        after: Any,
        event_data: Mapping[str, Any] | None = None,
    ) -> None:
        record_change(
            self._session,
            self._environment_id,
            action=action,
            resource=resource,
            before=before,
            after=after,
            now=self._now,
            event_data=event_data,
        )


def mark_company(session: Session, environment_id: str, company_key: str, now: datetime) -> None:
    """Note (in the caller's transaction) that the company's entitlements may have changed;
    `EVERY_COMPANY` for all of the environment's. The `entitlements` job takes it from there."""
    session.add(
        EntitlementMarkRow(environment_id=environment_id, company_key=company_key, created_at=now)
    )


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k != "updated_at"}
    return value


_OUTBOX_WRITTEN = "tierkit_outbox_written"


def add_event(
    session: Session, environment_id: str, event_type: str, data: Mapping[str, Any], now: datetime
) -> str:
    """Put a webhook event in the outbox (in the caller's transaction); its id."""
    session.info[_OUTBOX_WRITTEN] = True
    event_id = new_id("msg")
    payload = {"type": event_type, "timestamp": format_time(now), "data": jsonable(data)}
    session.add(
        OutboxEventRow(
            id=event_id,
            environment_id=environment_id,
            type=event_type,
            payload=payload,
            created_at=now,
            fanned_out=False,
        )
    )
    return event_id


def wrote_outbox(session: Session) -> bool:
    """Whether the session's transaction put webhook events in the outbox (asked once, at its
    end: the answer is cleared)."""
    return bool(session.info.pop(_OUTBOX_WRITTEN, False))


class AuditService:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db = database
        self._clock = clock

    def list_entries(
        self,
        environment_id: str,
        *,
        actor: str | None = None,
        action: str | None = None,
        resource_type: str | None = None,
        resource_key: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[AuditEntry]:
        """Entries newest first; `start`/`end` bound their time `[start, end)`."""
        query = select(AuditEntryRow).where(AuditEntryRow.environment_id == environment_id)
        filters = (
            (AuditEntryRow.actor, actor),
            (AuditEntryRow.action, action),
            (AuditEntryRow.resource_type, resource_type),
            (AuditEntryRow.resource_key, resource_key),
        )
        for column, wanted in filters:
            if wanted is not None:
                query = query.where(column == wanted)
        if start is not None:
            query = query.where(AuditEntryRow.created_at >= start)
        if end is not None:
            query = query.where(AuditEntryRow.created_at < end)
        with self._db.read() as session:
            query, limit = paginate(query, [AuditEntryRow.seq], cursor, limit, descending=True)
            page = to_page(session.scalars(query).all(), limit, lambda row: [row.seq])
            return Page([_entry(row) for row in page.items], page.next_cursor)


def _entry(row: AuditEntryRow) -> AuditEntry:
    return AuditEntry(
        audit_entry_id(row.seq),
        row.actor,
        row.action,
        row.resource_type,
        row.resource_key,
        row.before,
        row.after,
        row.created_at,
    )

"""Webhook endpoints (URL, event types, a `whsec_` secret shown once), their deliveries, and
what the dispatcher needs to claim, send and record them.

Deliveries are signed as Standard Webhooks (https://www.standardwebhooks.com): `webhook-id`
(the event's `msg_...` id, the same on every retry), `webhook-timestamp` (seconds), and
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the
base64-decoded part of the secret after `whsec_`.

Secrets are stored sealed (`secret_box.py`, bound to their endpoint's id): the database, its
backups and its exports hold no secret in clear. `reseal_secrets` seals the ones written in
clear by earlier versions and those sealed with a key that is no longer the first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tierkit.server.db import Database
from tierkit.server.db.ids import new_id
from tierkit.server.db.tables import (
    OutboxEventRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
)
from tierkit.server.services.audit import WEBHOOK_EVENT_TYPES, add_event, record_change
from tierkit.server.services.clock import Clock
from tierkit.server.services.errors import Conflict, ErrorDetail, InvalidRequest, NotFound
from tierkit.server.services.pagination import Page, paginate, to_page
from tierkit.server.services.secret_box import SecretBox, SecretKeyError, is_sealed

logger = logging.getLogger("tierkit.webhooks")

DISABLE_AFTER = timedelta(days=3)
"""An endpoint failing every delivery this long is disabled."""
_EXCERPT = 500


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


_PREFIX = "whsec_"


def seal_secret(box: SecretBox, secret: str, endpoint_id: str) -> str:
    """What the endpoint's row stores of its secret."""
    return box.seal(base64.b64decode(secret.removeprefix(_PREFIX)), bound_to=endpoint_id)


def open_secret(box: SecretBox, stored: str, endpoint_id: str) -> str:
    """The secret of a row (one stored in clear by an earlier version reads as it is)."""
    if not is_sealed(stored):
        return stored
    return _PREFIX + base64.b64encode(box.open(stored, bound_to=endpoint_id)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one delivery."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str | None = None
    """Shown once: when the endpoint is created or its secret rotated."""


@dataclass(frozen=True, slots=True)
class Attempt:
    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    response_excerpt: str
    error: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    payload: Any
    attempt_log: list[Attempt]


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery claimed by a dispatcher: what to send where."""

    id: str
    endpoint_id: str
    url: str
    secret: str
    message_id: str
    body: bytes
    attempts: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to."""

    due: DueDelivery
    attempt: Attempt
    succeeded: bool
    retry_after: timedelta | None
    """When to try again; None: give up."""


@dataclass(frozen=True, slots=True)
class WebhookBacklog:
    pending_deliveries: int
    """Deliveries not yet succeeded nor given up (due now or waiting for a retry)."""
    unsent_events: int
    """Events of the outbox not yet turned into deliveries."""


def _endpoint(row: WebhookEndpointRow, secret: str | None = None) -> Endpoint:
    return Endpoint(
        row.id,
        row.url,
        row.description,
        list(row.event_types),
        row.enabled,
        row.disabled_reason,
        row.failing_since,
        row.created_at,
        row.updated_at,
        secret,
    )


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        absolute = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a malformed host, such as an unclosed IPv6 bracket
        absolute = False
    if not absolute:
        raise InvalidRequest(
            "The URL must be absolute, with scheme http or https and a host.",
            code="invalid_url",
            param="url",
        )


def _check_event_types(event_types: Sequence[str]) -> None:
    unknown = [t for t in event_types if t not in WEBHOOK_EVENT_TYPES]
    if unknown:
        known = ", ".join(sorted(WEBHOOK_EVENT_TYPES))
        raise InvalidRequest(
            f"Unknown event types: {', '.join(unknown)}. Known: {known}.",
            code="unknown_event_type",
            param="event_types",
            details=[
                ErrorDetail(f"event_types.{i}", f"Unknown event type {t!r}.")
                for i, t in enumerate(event_types)
                if t in unknown
            ],
        )


def endpoint_not_found(endpoint_id: str) -> NotFound:
    return NotFound(f"No webhook endpoint {endpoint_id!r}.", code="webhook_not_found")


class WebhookService:
    def __init__(self, database: Database, clock: Clock, box: SecretBox) -> None:
        self._db = database
        self._clock = clock
        self._box = box

    # -- endpoints ---------------------------------------------------------------------------

    def create_endpoint(
        self,
        environment_id: str,
        *,
        url: str,
        event_types: Sequence[str] = (),
        description: str = "",
        enabled: bool = True,
    ) -> Endpoint:
        """A new endpoint; the reply holds its secret, the only time it is shown."""
        _check_url(url)
        _check_event_types(event_types)
        now = self._clock()
        secret = new_secret()
        endpoint_id = new_id("whe")
        row = WebhookEndpointRow(
            id=endpoint_id,
            environment_id=environment_id,
            url=url,
            description=description,
            event_types=sorted(set(event_types)),
            enabled=enabled,
            disabled_reason=None,
            secret=seal_secret(self._box, secret, endpoint_id),
            failing_since=None,
            created_at=now,
            updated_at=now,
        )
        with self._db.write() as session:
            session.add(row)
            session.flush()
            created = _endpoint(row)
            record_change(
                session,
                environment_id,
                action="webhook_endpoint.created",
                resource=("webhook_endpoint", row.id),
                before=None,
                after=created,
                now=now,
            )
        return replace(created, secret=secret)

    def list_endpoints(self, environment_id: str) -> list[Endpoint]:
        with self._db.read() as session:
            rows = session.scalars(
                select(WebhookEndpointRow)
                .where(WebhookEndpointRow.environment_id == environment_id)
                .order_by(WebhookEndpointRow.created_at, WebhookEndpointRow.id)
            ).all()
            return [_endpoint(row) for row in rows]

    def get_endpoint(self, environment_id: str, endpoint_id: str) -> Endpoint:
        with self._db.read() as session:
            return _endpoint(_find(session, environment_id, endpoint_id))

    def update_endpoint(
        self, environment_id: str, endpoint_id: str, changes: dict[str, Any]
    ) -> Endpoint:
        """Change `url`, `event_types`, `description` or `enabled` (enabling again forgets
        past failures)."""
        if "url" in changes:
            _check_url(changes["url"])
        if "event_types" in changes:
            _check_event_types(changes["event_types"])
            changes = {**changes, "event_types": sorted(set(changes["event_types"]))}
        now = self._clock()
        with self._db.write() as session:
            row = _find(session, environment_id, endpoint_id, lock=True)
            before = _endpoint(row)
            for name, value in changes.items():
                setattr(row, name, value)
            if changes.get("enabled") is True:
                row.disabled_reason, row.failing_since = None, None
            row.updated_at = now
            after = _endpoint(row)
            record_change(
                session,
                environment_id,
                action="webhook_endpoint.updated",
                resource=("webhook_endpoint", endpoint_id),
                before=before,
                after=after,
                now=now,
            )
            return after

    def rotate_secret(self, environment_id: str, endpoint_id: str) -> Endpoint:
        """A new secret, effective at once (shown in the reply only)."""
        now = self._clock()
        secret = new_secret()
        with self._db.write() as session:
            row = _find(session, environment_id, endpoint_id, lock=True)
            row.secret, row.updated_at = seal_secret(self._box, secret, endpoint_id), now
            record_change(
                session,
                environment_id,
                action="webhook_endpoint.secret_rotated",
                resource=("webhook_endpoint", endpoint_id),
                before=None,
                after=None,
                now=now,
            )
            return _endpoint(row, secret)

    def delete_endpoint(self, environment_id: str, endpoint_id: str) -> None:
        now = self._clock()
        with self._db.write() as session:
            row = _find(session, environment_id, endpoint_id, lock=True)
            before = _endpoint(row)
            session.delete(row)
            record_change(
                session,
                environment_id,
                action="webhook_endpoint.deleted",
                resource=("webhook_endpoint", endpoint_id),
                before=before,
                after=None,
                now=now,
            )

    def send_test(self, environment_id: str, endpoint_id: str) -> Delivery:
        """Queue a `webhook.test` event to this endpoint alone; its delivery."""
        now = self._clock()
        with self._db.write() as session:
            endpoint = _find(session, environment_id, endpoint_id)
            _check_enabled(endpoint)
            event_id = add_event(
                session, environment_id, "webhook.test", {"endpoint": endpoint.id}, now
            )
            session.flush()
            event = session.scalars(
                select(OutboxEventRow).where(OutboxEventRow.id == event_id)
            ).one()
            event.fanned_out = True
            delivery = _new_delivery(endpoint.id, event.seq, now)
            session.add(delivery)
            session.flush()
            return _delivery(delivery, event, [])

    # -- deliveries --------------------------------------------------------------------------

    def list_deliveries(
        self,
        environment_id: str,
        endpoint_id: str,
        *,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Delivery]:
        """The endpoint's deliveries, newest first, each with its attempts."""
        with self._db.read() as session:
            _find(session, environment_id, endpoint_id)
            query = (
                select(WebhookDeliveryRow, OutboxEventRow)
                .join(OutboxEventRow, OutboxEventRow.seq == WebhookDeliveryRow.event_seq)
                .where(WebhookDeliveryRow.endpoint_id == endpoint_id)
            )
            if status is not None:
                query = query.where(WebhookDeliveryRow.status == status)
            query, limit = paginate(
                query, [WebhookDeliveryRow.event_seq], cursor, limit, descending=True
            )
            page = to_page(session.execute(query).all(), limit, lambda row: [row[0].event_seq])
            attempts = _attempts_of(session, [row[0].id for row in page.items])
            return Page(
                [_delivery(d, e, attempts.get(d.id, [])) for d, e in page.items],
                page.next_cursor,
            )

    def retry_delivery(self, environment_id: str, endpoint_id: str, delivery_id: str) -> Delivery:
        """Send a delivery again now (whatever its status); its attempts are kept."""
        now = self._clock()
        with self._db.write() as session:
            _check_enabled(_find(session, environment_id, endpoint_id))
            found = session.execute(
                select(WebhookDeliveryRow, OutboxEventRow)
                .join(OutboxEventRow, OutboxEventRow.seq == WebhookDeliveryRow.event_seq)
                .where(
                    WebhookDeliveryRow.id == delivery_id,
                    WebhookDeliveryRow.endpoint_id == endpoint_id,
                )
            ).first()
            if found is None:
                raise NotFound(f"No delivery {delivery_id!r}.", code="delivery_not_found")
            delivery, event = found
            if delivery.leased_until is not None and delivery.leased_until > now:
                raise Conflict(
                    f"Delivery {delivery_id!r} is being sent right now; retry it once this "
                    "attempt is recorded.",
                    code="delivery_in_flight",
                )
            delivery.status, delivery.next_attempt_at = "pending", now
            delivery.leased_until, delivery.updated_at = None, now
            return _delivery(
                delivery, event, _attempts_of(session, [delivery.id]).get(delivery.id, [])
            )

    def backlog(self) -> WebhookBacklog:
        """What is left to send, in every environment (read at each metrics scrape)."""
        with self._db.read() as session:
            deliveries = session.scalar(
                select(func.count())
                .select_from(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.status == "pending")
            )
            events = session.scalar(
                select(func.count())
                .select_from(OutboxEventRow)
                .where(OutboxEventRow.fanned_out.is_(False))
            )
        return WebhookBacklog(pending_deliveries=deliveries or 0, unsent_events=events or 0)

    # -- the dispatcher's side ---------------------------------------------------------------

    def fan_out(self, limit: int = 500) -> int:
        """Turn new outbox events into one delivery per subscribed, enabled endpoint; how many
        events it took. Several processes may run it: each event is fanned out once."""
        now = self._clock()
        with self._db.write() as session:
            events = session.scalars(
                select(OutboxEventRow)
                .where(OutboxEventRow.fanned_out.is_(False))
                .order_by(OutboxEventRow.seq)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not events:
                return 0
            environments = {event.environment_id for event in events}
            endpoints = session.scalars(
                select(WebhookEndpointRow).where(
                    WebhookEndpointRow.environment_id.in_(environments),
                    WebhookEndpointRow.enabled.is_(True),
                )
            ).all()
            for event in events:
                for endpoint in endpoints:
                    if (
                        endpoint.environment_id == event.environment_id
                        and endpoint.created_at <= event.created_at  # none from before it
                        and (not endpoint.event_types or event.type in endpoint.event_types)
                    ):
                        session.add(_new_delivery(endpoint.id, event.seq, now))
                event.fanned_out = True
            return len(events)

    def claim_due(self, lease: timedelta, limit: int = 50) -> list[DueDelivery]:
        """Deliveries due now, leased to the caller for `lease` (another dispatcher skips
        them until it ends, so each attempt is made once)."""
        now = self._clock()
        with self._db.write() as session:
            rows = session.execute(
                select(WebhookDeliveryRow, WebhookEndpointRow, OutboxEventRow)
                .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
                .join(OutboxEventRow, OutboxEventRow.seq == WebhookDeliveryRow.event_seq)
                .where(
                    WebhookDeliveryRow.status == "pending",
                    WebhookDeliveryRow.next_attempt_at <= now,
                    (WebhookDeliveryRow.leased_until.is_(None))
                    | (WebhookDeliveryRow.leased_until <= now),
                    WebhookEndpointRow.enabled.is_(True),
                )
                .order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.event_seq)
                .limit(limit)
                .with_for_update(of=WebhookDeliveryRow, skip_locked=True)
            ).all()
            claimed = []
            for delivery, endpoint, event in rows:
                try:
                    secret = open_secret(self._box, endpoint.secret, endpoint.id)
                except SecretKeyError:
                    # Unsigned is never sent: the delivery waits for the right key.
                    logger.error("webhook endpoint %s: its secret does not open", endpoint.id)
                    continue
                delivery.leased_until = now + lease
                claimed.append(
                    DueDelivery(
                        delivery.id,
                        endpoint.id,
                        endpoint.url,
                        secret,
                        event.id,
                        _body(event),
                        delivery.attempts,
                    )
                )
            return claimed

    def reseal_secrets(self) -> int:
        """Seal with the current key every secret stored in clear or under an older key (at
        start, so an upgrade or a key rotation takes effect by itself); how many it sealed."""
        with self._db.write() as session:
            rows = session.scalars(
                select(WebhookEndpointRow).order_by(WebhookEndpointRow.id).with_for_update()
            ).all()
            stale = [row for row in rows if not self._box.is_sealed_with_current_key(row.secret)]
            for row in stale:
                secret = open_secret(self._box, row.secret, row.id)
                row.secret = seal_secret(self._box, secret, row.id)
            return len(stale)

    def record_attempts(self, outcomes: Sequence[Outcome]) -> None:
        """Store the outcomes of a batch of attempts in one transaction: each delivery done,
        retried after its `retry_after`, or (None) given up. An endpoint failing for
        `DISABLE_AFTER` is disabled."""
        now = self._clock()
        with self._db.write() as session:
            for outcome in outcomes:
                _record_in(session, outcome, now)

    def record_attempt(
        self,
        due: DueDelivery,
        attempt: Attempt,
        *,
        succeeded: bool,
        retry_after: timedelta | None,
    ) -> None:
        """`record_attempts` of one."""
        self.record_attempts([Outcome(due, attempt, succeeded, retry_after)])


def _record_in(session: Session, outcome: Outcome, now: datetime) -> None:
    due, attempt = outcome.due, outcome.attempt
    delivery = session.scalars(
        select(WebhookDeliveryRow).where(WebhookDeliveryRow.id == due.id).with_for_update()
    ).first()
    if delivery is None:
        return  # its endpoint was deleted while it was being sent
    session.add(
        WebhookAttemptRow(
            delivery_id=due.id,
            attempted_at=attempt.attempted_at,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            response_excerpt=attempt.response_excerpt[:_EXCERPT],
            error=attempt.error[:500] if attempt.error else None,
        )
    )
    if outcome.succeeded:
        status, next_at = "succeeded", None
    elif outcome.retry_after is None:
        status, next_at = "failed", None
    else:
        status, next_at = "pending", now + outcome.retry_after
    delivery.status, delivery.attempts = status, delivery.attempts + 1
    delivery.next_attempt_at, delivery.leased_until, delivery.updated_at = next_at, None, now
    endpoint = session.get(WebhookEndpointRow, due.endpoint_id)
    if endpoint is None:
        return
    if outcome.succeeded:
        endpoint.failing_since = None
    elif endpoint.failing_since is None:
        endpoint.failing_since = now
    elif endpoint.enabled and now - endpoint.failing_since >= DISABLE_AFTER:
        endpoint.enabled = False
        endpoint.disabled_reason = "Every delivery failed for 3 days."


def _find(
    session: Session, environment_id: str, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpointRow:
    query = select(WebhookEndpointRow).where(
        WebhookEndpointRow.id == endpoint_id,
        WebhookEndpointRow.environment_id == environment_id,
    )
    row = session.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise endpoint_not_found(endpoint_id)
    return row


def _check_enabled(endpoint: WebhookEndpointRow) -> None:
    if not endpoint.enabled:
        raise Conflict(
            f"Webhook endpoint {endpoint.id!r} is disabled: nothing is sent to it. Enable it "
            "first (PATCH with `enabled: true`).",
            code="endpoint_disabled",
        )


def _new_delivery(endpoint_id: str, event_seq: int, now: datetime) -> WebhookDeliveryRow:
    return WebhookDeliveryRow(
        id=new_id("whd"),
        endpoint_id=endpoint_id,
        event_seq=event_seq,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        leased_until=None,
        created_at=now,
        updated_at=now,
    )


def _message(event: OutboxEventRow) -> dict[str, Any]:
    """What a delivery's body holds: the event's id, type, timestamp and data."""
    return {"id": event.id, **event.payload}


def _body(event: OutboxEventRow) -> bytes:
    return orjson.dumps(_message(event))


def _attempts_of(session: Session, delivery_ids: Sequence[str]) -> dict[str, list[Attempt]]:
    if not delivery_ids:
        return {}
    rows = session.scalars(
        select(WebhookAttemptRow)
        .where(WebhookAttemptRow.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttemptRow.id)
    ).all()
    found: dict[str, list[Attempt]] = {}
    for row in rows:
        found.setdefault(row.delivery_id, []).append(
            Attempt(
                row.attempted_at, row.status_code, row.latency_ms, row.response_excerpt, row.error
            )
        )
    return found


def _delivery(row: WebhookDeliveryRow, event: OutboxEventRow, attempts: list[Attempt]) -> Delivery:
    return Delivery(
        row.id,
        event.id,
        event.type,
        row.status,
        row.attempts,
        row.next_attempt_at,
        row.created_at,
        row.updated_at,
        _message(event),
        attempts,
    )

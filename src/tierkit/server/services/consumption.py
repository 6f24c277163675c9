"""What a `consume` records: `quantity` units of the feature's meter as one event, with the
reply kept on it so a retry answers the same."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tierkit.engine.catalog import Aggregation, Feature, FeatureType, Meter
from tierkit.engine.codec import decision_from_json
from tierkit.engine.evaluate import CreditUse, Decision
from tierkit.engine.meters import MeterEvent
from tierkit.server.db.tables import EventRow
from tierkit.server.services.counters import StoredEvent, apply_events
from tierkit.server.services.credits import debit_in
from tierkit.server.services.errors import Conflict, InvalidRequest

if TYPE_CHECKING:
    from tierkit.server.services.checks import CheckRequest


def nothing_to_consume(feature: Feature) -> InvalidRequest:
    return InvalidRequest(
        f"Feature {feature.key!r} is neither metered nor priced in credits for this company: "
        "there is nothing to consume. Send `consume: false`.",
        code="feature_not_metered",
        param="consume",
    )


def consumable_meter(feature: Feature, quantity: float) -> Meter | None:
    """The meter a consume of `feature` records into (None for a feature that is not
    metered: only its credits can be consumed); 400 when units cannot be recorded."""
    if feature.type is not FeatureType.METERED or feature.meter is None:
        return None
    meter = feature.meter
    if meter.aggregation not in (Aggregation.SUM, Aggregation.COUNT):
        raise InvalidRequest(
            f"Feature {feature.key!r} aggregates its events by {meter.aggregation.value}; "
            "a consume records units of `sum` and `count` meters only "
            "(set gauges with POST /v1/metrics/set).",
            code="consume_unsupported",
            param="consume",
        )
    if meter.aggregation is Aggregation.COUNT and quantity != 1:
        raise InvalidRequest(
            f"Feature {feature.key!r} counts events, so a consume records one: "
            "send `quantity: 1`, or meter the feature with `sum`.",
            code="consume_quantity_unsupported",
            param="quantity",
        )
    if quantity < 0:
        raise InvalidRequest(
            "A consume records zero or more units; `quantity` may not be negative.",
            code="invalid_quantity",
            param="quantity",
        )
    return meter


def earlier_consume(session: Session, environment_id: str, idempotency_key: str) -> Decision | None:
    """The reply of the consume that already used `idempotency_key`, if one did."""
    row = session.scalar(
        select(EventRow).where(
            EventRow.environment_id == environment_id,
            EventRow.idempotency_key == idempotency_key,
        )
    )
    if row is None:
        return None
    if row.reply is None:
        raise Conflict(
            f"The idempotency key {idempotency_key!r} belongs to a tracked event, not to a "
            "consume; use a key of its own for each consume.",
            code="idempotency_key_reused",
            param="idempotency_key",
        )
    return decision_from_json(row.reply)


def record_consumption(
    session: Session,
    environment_id: str,
    company_id: str,
    meter: Meter | None,
    request: CheckRequest,
    *,
    now: datetime,
    idempotency_key: str | None,
    reply: dict[str, Any],
) -> int:
    """Store the consume as an event (a `track` of the meter's event, or a `consume` of a
    feature priced in credits only, which no meter reads); its sequence number."""
    properties = {meter.property: request.quantity} if meter and meter.property else {}
    row = EventRow(
        environment_id=environment_id,
        type="track" if meter else "consume",
        event=meter.event if meter else (request.features[0] if request.features else None),
        company_id=company_id,
        user_key=request.user,
        quantity=request.quantity,
        properties=properties,
        timestamp=now,
        received_at=now,
        idempotency_key=idempotency_key,
        reply=reply,
    )
    session.add(row)
    session.flush()
    if meter is not None:
        reading = MeterEvent(now, request.quantity, properties, row.seq)
        apply_events(session, [StoredEvent(company_id, meter.event, reading)])
    return row.seq


def debit_consumed(
    session: Session,
    company_id: str,
    credits: CreditUse,
    *,
    now: datetime,
    event_seq: int,
    feature: str,
) -> None:
    """Debit what a consume costs. The balance was read under the company's lock, so this
    cannot fall short; if it ever did, the whole consume is rolled back."""
    if not debit_in(
        session, company_id, credits.credit, credits.cost, now, event_seq=event_seq, feature=feature
    ):
        raise Conflict(
            "The credit balance changed during the consume; retry it.", code="balance_changed"
        )

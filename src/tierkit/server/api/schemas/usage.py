"""Event, gauge and usage bodies. Batches of events are validated in one pass (the hot path of
ingestion), and every bad event is reported with its index."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from typing_extensions import TypedDict

from tierkit.engine.catalog import MAX_SAFE_NUMBER
from tierkit.engine.codec import format_time, json_number
from tierkit.engine.evaluate import Decision
from tierkit.server.api.schemas.checks import Number
from tierkit.server.api.schemas.common import (
    EventName,
    ExternalKey,
    Metadata,
    Name,
    OutputModel,
    Timestamp,
    Traits,
    is_flat_and_small,
)
from tierkit.server.services.events import MAX_BATCH, EventRecord, NewEvent
from tierkit.server.services.usage import Series

EventQuantity = Annotated[
    Number,
    Field(ge=-MAX_SAFE_NUMBER, le=MAX_SAFE_NUMBER, description="A finite number."),
]
IdempotencyKey = Annotated[
    ExternalKey,
    Field(description="Events with a key already stored are duplicates: counted once."),
]


class _EventModel(BaseModel):
    # Not InputModel: its per-field null check would run 8,000 times per batch.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TrackEvent(_EventModel):
    """Usage: `quantity` units of `event` by `company` (created if unknown)."""

    type: Literal["track"] = "track"
    event: EventName
    company: ExternalKey
    user: ExternalKey | None = None
    quantity: EventQuantity = 1
    properties: Metadata = Field(default_factory=dict)
    timestamp: Timestamp | None = Field(
        default=None, description="When it happened (default: when received)."
    )
    idempotency_key: IdempotencyKey | None = None

    def to_new_event(self) -> NewEvent:
        return NewEvent(
            type="track",
            event=self.event,
            company=self.company,
            user=self.user,
            quantity=float(self.quantity),
            properties=self.properties,
            timestamp=self.timestamp,
            idempotency_key=self.idempotency_key,
        )


class Identity(_EventModel):
    key: ExternalKey
    name: Name | None = None
    traits: Traits | None = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class IdentifyEvent(_EventModel):
    """Upserts the `company` and/or `user` (names and traits merged as in PUT); with both,
    the user becomes a member of the company."""

    type: Literal["identify"]
    company: Identity | None = None
    user: Identity | None = None
    timestamp: Timestamp | None = None
    idempotency_key: IdempotencyKey | None = None

    @model_validator(mode="after")
    def _someone(self) -> IdentifyEvent:
        if self.company is None and self.user is None:
            raise ValueError("an identify event carries a `company`, a `user`, or both")
        return self

    def to_new_event(self) -> NewEvent:
        return NewEvent(
            type="identify",
            company=self.company.key if self.company else None,
            user=self.user.key if self.user else None,
            quantity=0.0,
            timestamp=self.timestamp,
            idempotency_key=self.idempotency_key,
            company_fields=self.company.fields() if self.company else None,
            user_fields=self.user.fields() if self.user else None,
        )


AnyEvent = Annotated[TrackEvent | IdentifyEvent, Field(discriminator="type")]


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(
        min_length=1, max_length=MAX_BATCH, description="Events (each validated as one)."
    )


EventsBody = TrackEvent | IdentifyEvent | EventBatch
"""`POST /v1/events`: one event, or `{"events": [...]}` (documentation of the body)."""


def openapi_schemas() -> dict[str, Any]:
    """`EventsIn` (the body of `POST /v1/events`, which the route validates itself) and the
    schemas it refers to, for the OpenAPI document's components."""
    schema = TypeAdapter(EventsBody).json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    return {**definitions, "EventsIn": schema}


_TRACKS = TypeAdapter(list[TrackEvent])
_TRACK = TypeAdapter(TrackEvent)
_IDENTIFY = TypeAdapter(IdentifyEvent)
_BATCH = TypeAdapter(EventBatch)


def _located(error: ValidationError, prefix: Sequence[str | int]) -> list[dict[str, Any]]:
    return [{**item, "loc": ("body", *prefix, *item["loc"])} for item in error.errors()]


def _type_of(item: object) -> object:
    return item.get("type", "track") if isinstance(item, dict) else "track"


def _one(item: object, prefix: Sequence[str | int]) -> tuple[NewEvent | None, list[Any]]:
    kind = _type_of(item)
    if kind not in ("track", "identify"):
        error = {
            "type": "value_error",
            "loc": ("body", *prefix, "type"),
            "msg": "type must be `track` or `identify`",
            "ctx": {"error": "`type` must be `track` or `identify`"},
            "input": kind,
        }
        return None, [error]
    adapter: TypeAdapter[Any] = _IDENTIFY if kind == "identify" else _TRACK
    try:
        return adapter.validate_python(item).to_new_event(), []
    except ValidationError as error:
        return None, _located(error, prefix)


# The common batch, every event a `track` with flat properties and RFC 3339 timestamps, is
# validated natively (no Python called per field) and finished in one loop. Anything else, a
# mistake included, takes the models above: they say what is wrong, and where.
_RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"


class _PlainTrack(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid", allow_inf_nan=False)  # type: ignore[misc]

    type: NotRequired[Literal["track"]]
    event: EventName
    company: ExternalKey
    user: NotRequired[ExternalKey | None]
    quantity: NotRequired[EventQuantity]
    properties: NotRequired[dict[str, Any]]
    timestamp: NotRequired[Annotated[str, StringConstraints(pattern=_RFC3339)] | None]
    idempotency_key: NotRequired[IdempotencyKey | None]


_PLAIN_TRACKS = TypeAdapter(list[_PlainTrack])


def _plain_tracks(items: list[Any]) -> list[NewEvent] | None:
    """The events of a common batch; None when it is not one (or holds a mistake)."""
    try:
        plain = _PLAIN_TRACKS.validate_python(items)
    except ValidationError:
        return None
    events = []
    from_text = datetime.fromisoformat
    for item in plain:
        properties = item.get("properties")
        if properties is None:
            properties = {}
        elif not is_flat_and_small(properties):
            return None
        moment = item.get("timestamp")
        try:
            timestamp = None if moment is None else from_text(moment).astimezone(UTC)
        except (ValueError, OverflowError):  # 25:00, or year 1 behind an offset
            return None
        events.append(
            NewEvent(
                "track",
                item["company"],
                item["event"],
                item.get("user"),
                float(item.get("quantity", 1)),
                properties,
                timestamp,
                item.get("idempotency_key"),
            )
        )
    return events


def parse_events(body: Any) -> tuple[list[NewEvent], bool, list[dict[str, Any]]]:
    """The events of a body (one event or a batch), whether it was a batch, and the
    validation errors, located as `events.<index>.<field>`."""
    if not (isinstance(body, dict) and "events" in body):
        event, errors = _one(body, ())
        return ([event] if event else []), False, errors
    try:
        items = _BATCH.validate_python(body).events
    except ValidationError as error:
        return [], True, _located(error, ())
    plain = _plain_tracks(items)
    if plain is not None:
        return plain, True, []
    if all(_type_of(item) == "track" for item in items):
        try:
            return [e.to_new_event() for e in _TRACKS.validate_python(items)], True, []
        except ValidationError as error:
            return [], True, _located(error, ("events",))
    events, errors = [], []
    for index, item in enumerate(items):
        event, problems = _one(item, ("events", index))
        errors.extend(problems)
        if event is not None:
            events.append(event)
    return events, True, errors


class IngestOut(OutputModel):
    accepted: int = Field(description="Events stored by this request.")
    duplicates: int = Field(description="Events whose idempotency key was already stored.")


class MetricSet(BaseModel):
    """`POST /v1/metrics/set`: set a gauge."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    key: EventName = Field(description="A `latest`-metered feature's key, or its event name.")
    company: ExternalKey
    value: EventQuantity
    idempotency_key: IdempotencyKey | None = None
    time: Timestamp | None = Field(default=None, description="When (default: when received).")


class EventOut(OutputModel):
    id: str
    type: str
    event: str | None
    company: str | None
    user: str | None
    quantity: float
    properties: dict[str, Any]
    timestamp: datetime
    received_at: datetime
    idempotency_key: str | None

    @classmethod
    def of(cls, record: EventRecord) -> dict[str, Any]:
        return {
            "id": record.id,
            "type": record.type,
            "event": record.event,
            "company": record.company,
            "user": record.user,
            "quantity": json_number(record.quantity),
            "properties": record.properties,
            "timestamp": format_time(record.timestamp),
            "received_at": format_time(record.received_at),
            "idempotency_key": record.idempotency_key,
        }


class FeatureUsageOut(OutputModel):
    feature: str
    used: float
    limit: float | None
    unlimited: bool
    remaining: float | None
    overage: float
    period: str
    period_start: datetime | None
    resets_at: datetime | None

    @classmethod
    def of(cls, decision: Decision) -> dict[str, Any]:
        usage = decision.usage
        assert usage is not None  # noqa: S101 (metered features always carry usage)
        return {
            "feature": decision.feature,
            "used": json_number(usage.used),
            "limit": json_number(usage.limit),
            "unlimited": decision.unlimited,
            "remaining": json_number(usage.remaining),
            "overage": json_number(usage.overage),
            "period": usage.period.value,
            "period_start": format_time(usage.period_start),
            "resets_at": format_time(usage.resets_at),
        }


class CompanyUsageOut(OutputModel):
    data: list[FeatureUsageOut]


class PointOut(OutputModel):
    start: datetime
    end: datetime
    value: float


class SeriesOut(OutputModel):
    feature: str
    granularity: str
    timezone: str = Field(description="Where days are cut (the company's `timezone` trait).")
    data: list[PointOut]

    @classmethod
    def of(cls, series: Series) -> dict[str, Any]:
        return {
            "feature": series.feature,
            "granularity": series.granularity.value,
            "timezone": series.timezone,
            "data": [
                {
                    "start": format_time(p.start),
                    "end": format_time(p.end),
                    "value": json_number(p.value),
                }
                for p in series.points
            ],
        }

"""Schematic's request bodies as its Python SDK (`schematichq`) sends them, and the rule that
turns its key maps into Tierkit keys (replies are in `compat_schematic_replies`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from tierkit.server.api.schemas.common import EventName, ExternalKey, Metadata, Name, Traits
from tierkit.server.services.events import NewEvent

KeyName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
]
KeyMap = Annotated[
    dict[KeyName, ExternalKey],
    Field(
        min_length=1,
        max_length=10,
        description='Schematic\'s keys of a company or user, such as `{"id": "acme"}`: the '
        "value under `id` is the Tierkit key, else the value of the only key, else the value "
        "of the alphabetically first key name.",
    ),
]


def key_of(keys: dict[str, str]) -> str:
    """The Tierkit company (or user) key of a Schematic key map: the value under `id`, else
    the value of the alphabetically first key name (the only one, mostly)."""
    if "id" in keys:
        return keys["id"]
    return keys[min(keys)]


class _SchematicBody(BaseModel):
    # Schematic's SDK sends fields Tierkit has no use for (`last_seen_at`, `update_only`...):
    # they are ignored, not refused.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class Preflight(_SchematicBody):
    usage: int | None = Field(default=None, ge=0, le=1_000_000_000)


class FlagCheckBody(_SchematicBody):
    """`POST /flags/{key}/check` and `POST /flags/check`."""

    company: KeyMap | None = None
    user: KeyMap | None = None
    preflight: Preflight | None = None

    @property
    def company_key(self) -> str:
        # No company: evaluated as a company Tierkit has no record of (the default plan).
        return key_of(self.company) if self.company else ""

    @property
    def user_key(self) -> str | None:
        return key_of(self.user) if self.user else None

    @property
    def quantity(self) -> float:
        usage = self.preflight.usage if self.preflight else None
        return float(usage) if usage else 1.0


class CompanyIdentity(_SchematicBody):
    keys: KeyMap
    name: Name | None = None
    traits: Traits | None = None


class CompanyUpsertBody(CompanyIdentity):
    """`POST /companies`: create or update the company its keys name."""

    def fields(self) -> dict[str, Any]:
        return _name_and_traits(self.name, self.traits)


class UserUpsertBody(CompanyIdentity):
    """`POST /users`: create or update the user its keys name; `company`/`companies` become
    its memberships."""

    company: KeyMap | None = None
    companies: list[KeyMap] | None = Field(default=None, max_length=100)

    def fields(self) -> dict[str, Any]:
        fields = _name_and_traits(self.name, self.traits)
        memberships = [*(self.companies or []), *([self.company] if self.company else [])]
        if memberships:
            fields["companies"] = list(dict.fromkeys(key_of(keys) for keys in memberships))
        return fields


def _name_and_traits(name: str | None, traits: dict[str, Any] | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if traits:
        fields["traits"] = traits
    return fields


class IdentifyBody(_SchematicBody):
    keys: KeyMap
    name: Name | None = None
    traits: Traits | None = None
    company: CompanyIdentity | None = None


class TrackBody(_SchematicBody):
    event: EventName
    company: KeyMap = Field(description="Required: Tierkit meters usage per company.")
    user: KeyMap | None = None
    quantity: int | None = Field(default=None, ge=0, le=1_000_000_000)
    traits: Metadata | None = Field(default=None, description="Kept as the event's properties.")


def _in_utc(moment: datetime) -> datetime:
    # Schematic's SDK sends the caller's datetime as it is, naive ones included: read as UTC.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be an instant between years 1 and 9999 in UTC") from None


SentAt = Annotated[
    datetime,
    AfterValidator(_in_utc),
    Field(description="When the client sent it; the event's time with `trusted_client_clock`."),
]


class _CapturedEvent(_SchematicBody):
    idempotency_key: ExternalKey | None = None
    sent_at: SentAt | None = None
    trusted_client_clock: bool | None = None

    def _timestamp(self) -> datetime | None:
        # As Schematic: the client's clock counts only when the client says it is trusted.
        return self.sent_at if self.trusted_client_clock else None


class CapturedTrack(_CapturedEvent):
    type: Literal["track"]
    body: TrackBody

    def to_new_event(self) -> NewEvent | None:
        body = self.body
        return NewEvent(
            type="track",
            event=body.event,
            company=key_of(body.company),
            user=key_of(body.user) if body.user else None,
            quantity=float(1 if body.quantity is None else body.quantity),
            properties=body.traits or {},
            timestamp=self._timestamp(),
            idempotency_key=self.idempotency_key,
        )


class CapturedIdentify(_CapturedEvent):
    type: Literal["identify"]
    body: IdentifyBody

    def to_new_event(self) -> NewEvent | None:
        body = self.body
        company = body.company
        company_key = key_of(company.keys) if company else None
        user_key = key_of(body.keys)
        return NewEvent(
            type="identify",
            company=company_key,
            user=user_key,
            quantity=0.0,
            timestamp=self._timestamp(),
            idempotency_key=self.idempotency_key,
            company_fields=(
                {"key": company_key} | _name_and_traits(company.name, company.traits)
                if company
                else None
            ),
            user_fields={"key": user_key} | _name_and_traits(body.name, body.traits),
        )


class CapturedOther(_CapturedEvent):
    """Flag-check and inference events: accepted and not kept (Tierkit logs no checks)."""

    type: Literal["flag_check", "inference"]
    body: dict[str, Any] | None = None

    def to_new_event(self) -> NewEvent | None:
        return None


CapturedEvent = Annotated[
    CapturedTrack | CapturedIdentify | CapturedOther, Field(discriminator="type")
]


class CaptureBatch(_SchematicBody):
    """`POST /batch`: the SDK's buffered events (at most 100 a request, as Schematic)."""

    events: list[CapturedEvent] = Field(min_length=1, max_length=100)


class CaptureOut(BaseModel):
    accepted: int = Field(description="Events stored.")
    duplicates: int = Field(description="Events whose idempotency key was already stored.")
    ignored: int = Field(description="Flag-check and inference events, not kept.")

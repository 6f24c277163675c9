"""Webhook endpoints, deliveries and the audit log on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from tierkit.server.api.schemas.common import Flag, InputModel, OutputModel
from tierkit.server.services.audit import WEBHOOK_EVENT_TYPES, AuditEntry, WebhookEventType
from tierkit.server.services.webhooks import Delivery, Endpoint

_URL = Field(
    min_length=8,
    max_length=2048,
    description="Where deliveries are POSTed: an absolute http(s) URL.",
)


class EndpointCreate(InputModel):
    url: str = _URL
    event_types: list[WebhookEventType] = Field(
        default_factory=list,
        max_length=len(WEBHOOK_EVENT_TYPES),
        description="The event types to receive; empty or omitted: all of them.",
    )
    description: str = Field(default="", max_length=500)
    enabled: Flag = True


class EndpointUpdate(InputModel):
    not_null = frozenset({"url", "event_types", "description", "enabled"})

    url: str | None = Field(default=None, min_length=8, max_length=2048)
    event_types: list[WebhookEventType] | None = Field(
        default=None, max_length=len(WEBHOOK_EVENT_TYPES)
    )
    description: str | None = Field(default=None, max_length=500)
    enabled: Flag | None = None


class EndpointOut(OutputModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="Why it was disabled, when it was.")
    failing_since: datetime | None = Field(
        description="Since when every delivery fails; disabled after 3 days."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointOut:
        return cls.model_validate(endpoint)


class EndpointWithSecret(EndpointOut):
    secret: str = Field(
        description="`whsec_...`: verify signatures with it. Shown only now; rotate to replace."
    )

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointWithSecret:
        return cls.model_validate(endpoint)


class AttemptOut(OutputModel):
    attempted_at: datetime
    status_code: int | None = Field(description="The receiver's status; null when none came.")
    latency_ms: float
    response_excerpt: str = Field(description="The first 500 characters of the reply's body.")
    error: str | None = Field(description="Why no reply came (timeout, refused connection).")


class DeliveryOut(OutputModel):
    id: str
    event_id: str = Field(description="The `webhook-id` header: the same on every attempt.")
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    payload: dict[str, Any] = Field(description="The body as sent.")
    attempt_log: list[AttemptOut]

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls.model_validate(delivery)


class AuditEntryOut(OutputModel):
    id: str
    actor: str = Field(description="`key:<api key id>`, `cli`, `console:<user>` or `system`.")
    action: str = Field(description="What was done, as `<resource>.<verb>`.")
    resource_type: str
    resource_key: str
    before: Any = Field(description="The resource before the change (null when created).")
    after: Any = Field(description="The resource after the change (null when deleted).")
    created_at: datetime

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls.model_validate(entry)

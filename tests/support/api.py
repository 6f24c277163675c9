"""Helpers for tests that talk to the API: create catalog objects, read errors and times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

SUPPORT_OPTIONS = [{"key": "email", "name": "Email"}, {"key": "chat", "name": "Chat"}]


def create_feature(
    api: httpx.Client, key: str, type: str = "boolean", **fields: Any
) -> dict[str, Any]:
    """Create a feature of `type` with what that type needs (a meter, options) unless `fields`
    say otherwise; returns the reply."""
    body: dict[str, Any] = {"key": key, "name": key.replace("_", " ").title(), "type": type}
    if type == "metered":
        body["meter"] = {"event": key, "aggregation": "count"}
    if type == "enum":
        body["options"] = SUPPORT_OPTIONS
    response = api.post("/v1/features", json=body | fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def create_plan(
    api: httpx.Client,
    key: str,
    entitlements: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"key": key, "name": key.title(), **fields}
    if entitlements is not None:
        body["entitlements"] = entitlements
    response = api.post("/v1/plans", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The error of a reply, which must be exactly the documented envelope."""
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"type", "code", "message", "param", "details"}
    return error


def assert_is_a_sentence(message: object) -> None:
    assert isinstance(message, str)
    assert message == message.strip()
    assert message[0].isupper() or message[0] in "`'\""
    assert len(message.split()) >= 3
    assert "\n" not in message
    assert "Traceback" not in message


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_utc(timestamp: str) -> datetime:
    """The instant of an RFC 3339 UTC timestamp as the API writes them (`...Z`)."""
    assert timestamp.endswith("Z"), timestamp
    parsed = datetime.fromisoformat(timestamp)
    assert parsed.utcoffset() == UTC.utcoffset(None)
    return parsed

"""Hostile and malformed bodies for `POST /v1/events`: each gets a 4xx in the documented
envelope naming the field at fault, and nothing is stored (no event, no company, no user)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import httpx
import pytest

from tests.support.api import assert_is_a_sentence, error_of

JSON: Final = "application/json"
NO_BODY: Final[Any] = object()


def track(**fields: Any) -> dict[str, Any]:
    """A valid track event for `acme`, with `fields` changed."""
    return {"event": "api_call", "company": "acme", "user": "u1", "quantity": 1} | fields


def batch(*events: Any) -> dict[str, Any]:
    return {"events": list(events)}


def nested(depth: int) -> dict[str, Any]:
    """Properties whose innermost object is `depth` levels deep (the properties included)."""
    inner: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        inner = {"n": inner}
    return inner


@dataclass(frozen=True, slots=True)
class BadEvents:
    status: int
    code: str
    param: str | None
    body: Any = NO_BODY
    raw: bytes | None = None
    content_type: str | None = JSON
    chunked: bool = False

    def send(self, api: httpx.Client) -> httpx.Response:
        if self.raw is not None:
            headers = {"Content-Type": self.content_type} if self.content_type else {}
            content = _chunks(self.raw) if self.chunked else self.raw
            return api.post("/v1/events", content=content, headers=headers)
        if self.body is NO_BODY:
            return api.post("/v1/events")
        return api.post("/v1/events", json=self.body)


def _chunks(raw: bytes) -> Iterator[bytes]:
    """`raw` sent without a Content-Length (chunked), as a stream is."""
    for start in range(0, len(raw), 65_536):
        yield raw[start : start + 65_536]


def case(
    case_id: str,
    body: Any = NO_BODY,
    /,
    *,
    param: str | None,
    code: str = "validation_failed",
    status: int = 400,
    raw: bytes | None = None,
    content_type: str | None = JSON,
    chunked: bool = False,
) -> Any:
    bad = BadEvents(status, code, param, body, raw, content_type, chunked)
    return pytest.param(bad, id=case_id)


OVER_1_MIB = b'{"event": "e", "company": "acme", "properties": {"p": "' + b"x" * 1_100_000 + b'"}}'


CASES = [
    # Not JSON, or not the shape of an event
    case("not_json", raw=b"event=api_call&company=acme", code="invalid_json", param=None),
    case(
        "truncated_json", raw=b'{"event": "api_call", "company": ', code="invalid_json", param=None
    ),
    case(
        "nan_literal",
        raw=b'{"event": "e", "company": "acme", "quantity": NaN}',
        code="invalid_json",
        param=None,
    ),
    case(
        "number_1e400",
        raw=b'{"event": "e", "company": "acme", "quantity": 1e400}',
        code="invalid_json",
        param=None,
    ),
    case(
        "invalid_utf8",
        raw=b'{"event": "e", "company": "\xff\xfe"}',
        code="invalid_json",
        param=None,
    ),
    case(
        "form_content_type",
        raw=b"event=api_call&company=acme",
        content_type="application/x-www-form-urlencoded",
        status=415,
        code="unsupported_media_type",
        param=None,
    ),
    case("over_1_mib", raw=OVER_1_MIB, status=413, code="body_too_large", param=None),
    case(
        "over_1_mib_chunked",
        raw=OVER_1_MIB,
        chunked=True,
        status=413,
        code="body_too_large",
        param=None,
    ),
    case(
        "lone_surrogate",
        raw=b'{"event": "e", "company": "acme", "properties": {"a": "\\ud800"}}',
        code="invalid_json",
        param=None,
    ),
    case("no_body", param="body"),
    case("json_array_of_events", [track(), track()], param="body"),
    case("json_string", "api_call", param="body"),
    case("json_null", None, param="body"),
    # Quantity
    case("quantity_nan_as_string", track(quantity="NaN"), param="quantity"),
    case("quantity_numeric_string", track(quantity="5"), param="quantity"),
    case("quantity_1e300", track(quantity=1e300), param="quantity"),
    case("quantity_minus_1e300", track(quantity=-1e300), param="quantity"),
    case(
        "quantity_past_64_bits",
        raw=b'{"event": "e", "company": "acme", "quantity": 1180591620717411303424}',
        param="quantity",
    ),
    case("quantity_boolean", track(quantity=True), param="quantity"),
    case("quantity_null", track(quantity=None), param="quantity"),
    case("quantity_object", track(quantity={"n": 1}), param="quantity"),
    # Names and keys
    case("company_256_characters", track(company="c" * 256), param="company"),
    case("company_empty", track(company=""), param="company"),
    case("company_missing", {"event": "api_call"}, param="company"),
    case("company_number", track(company=42), param="company"),
    case("company_with_nul", track(company="ac\x00me"), param="company"),
    case("user_with_newline", track(user="u1\n"), param="user"),
    case("event_missing", {"company": "acme"}, param="event"),
    case("event_control_character", track(event="api\x07call"), param="event"),
    case("event_trailing_newline", track(event="api_call\n"), param="event"),
    case("event_with_space", track(event="api call"), param="event"),
    case("event_256_characters", track(event="e" * 256), param="event"),
    case(
        "idempotency_key_256_characters", track(idempotency_key="k" * 256), param="idempotency_key"
    ),
    case("idempotency_key_number", track(idempotency_key=7), param="idempotency_key"),
    # Properties
    case("properties_a_list", track(properties=[1, 2]), param="properties"),
    case("properties_a_string", track(properties="{}"), param="properties"),
    case(
        "properties_51_keys", track(properties={f"k{i}": i for i in range(51)}), param="properties"
    ),
    case("properties_nested_7_deep", track(properties=nested(7)), param="properties"),
    case("properties_over_16_kb", track(properties={"blob": "x" * 17_000}), param="properties"),
    case("properties_with_nul", track(properties={"a": "b\x00"}), param="properties"),
    case("properties_key_65_characters", track(properties={"k" * 65: 1}), param="properties"),
    # Timestamps
    case("timestamp_a_number", track(timestamp=1_795_000_000), param="timestamp"),
    case("timestamp_without_offset", track(timestamp="2026-11-22T10:00:00"), param="timestamp"),
    case("timestamp_not_a_date", track(timestamp="yesterday"), param="timestamp"),
    case(
        "timestamp_year_1",
        track(timestamp="0001-01-01T00:00:00Z"),
        code="timestamp_out_of_range",
        param="timestamp",
    ),
    # Unknown fields and types
    case("extra_unknown_field", track(colour="red"), param="colour"),
    case("extra_field_in_a_batch", batch(track(), track(colour="red")), param="events.1.colour"),
    case("type_unknown", track(type="page"), param="type"),
    case("type_a_number", track(type=1), param="type"),
    case("type_in_a_list", track(type=["track"]), param="type"),
    # Batches
    case("events_an_object", {"events": track()}, param="events"),
    case("events_a_string", {"events": "[]"}, param="events"),
    case("events_null", {"events": None}, param="events"),
    case("events_empty", {"events": []}, param="events"),
    case("events_1001", batch(*[track()] * 1001), param="events"),
    case("events_with_a_sibling_field", {"events": [track()], "company": "acme"}, param="company"),
    case("batch_item_a_string", batch(track(), "api_call"), param="events.1"),
    case("batch_item_null", batch(None, track()), param="events.0"),
    case("batch_item_a_nested_batch", batch({"events": [track()]}), param="events.0.event"),
    case(
        "batch_last_quantity_bad",
        batch(*[track()] * 999, track(quantity="x")),
        param="events.999.quantity",
    ),
    # Identify
    case("identify_neither_company_nor_user", {"type": "identify"}, param="body"),
    case("identify_both_null", {"type": "identify", "company": None, "user": None}, param="body"),
    case(
        "identify_in_a_batch_with_neither", batch(track(), {"type": "identify"}), param="events.1"
    ),
    case("identify_company_a_string", {"type": "identify", "company": "acme"}, param="company"),
    case(
        "identify_company_without_key",
        {"type": "identify", "company": {"name": "Acme"}},
        param="company.key",
    ),
    case(
        "identify_trait_an_object",
        {"type": "identify", "user": {"key": "u1", "traits": {"a": {"b": 1}}}},
        param="user.traits.a",
    ),
    case(
        "identify_with_track_fields",
        {"type": "identify", "user": {"key": "u1"}, "event": "api_call", "quantity": 1},
        param="event",
    ),
    case(
        "identify_name_201_characters",
        {"type": "identify", "company": {"key": "acme", "name": "n" * 201}},
        param="company.name",
    ),
]


@pytest.mark.parametrize("bad", CASES)
def test_post_events__bad_input__4xx_envelope_naming_the_field_and_nothing_stored(
    api: httpx.Client, bad: BadEvents
) -> None:
    response = bad.send(api)

    assert response.status_code == bad.status, response.text
    assert response.headers["content-type"] == JSON, response.text
    error = error_of(response)
    assert (error["code"], error["param"]) == (bad.code, bad.param)
    assert error["type"] == "invalid_request"
    assert_is_a_sentence(error["message"])
    if bad.status != 413:  # a body too large is never read: there is no field to name
        assert error["details"], error
        assert error["details"][0]["param"] == (bad.param or "body")
    for detail in error["details"]:
        assert_is_a_sentence(detail["message"])
    listed = api.get("/v1/events")
    assert (listed.status_code, listed.json()) == (200, {"data": [], "next_cursor": None})
    assert api.get("/v1/companies/acme").status_code == 404
    assert api.get("/v1/users/u1").status_code == 404

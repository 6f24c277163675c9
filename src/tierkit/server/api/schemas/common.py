"""Field types shared by the API's schemas: keys, names, typed values, money, lists."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeGuard, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from tierkit.engine.catalog import KEY_PATTERN, MAX_SAFE_NUMBER, Scalar

T = TypeVar("T")

_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
_NO_CONTROL_BUT_LINES = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

Key = Annotated[
    str,
    StringConstraints(pattern=KEY_PATTERN),
    Field(description="Lowercase letters, digits and `_.:-`, 1-64 characters.", examples=["pro"]),
]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
]
Description = Annotated[str, StringConstraints(max_length=5000, pattern=_NO_CONTROL_BUT_LINES)]
Unit = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
]
EventName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_$][A-Za-z0-9_.:/$-]{0,254}$"),
    Field(description="An event name: letters, digits and `_.:/$-`, 1-255 characters."),
]
Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]{3}$"),
    Field(description="Lowercase ISO 4217 code.", examples=["usd"]),
]


def _json_whole_number(value: object) -> object:
    # Lax parsing would read "7" as 7 and `true` as 1: a typed JSON field takes a JSON number.
    # Whole floats become ints so the bounds judge them; orjson hands integers past 64 bits
    # over as floats, and they should hear "too large", not "not an integer".
    if isinstance(value, bool | str):
        kind = "boolean" if isinstance(value, bool) else "string"
        raise PydanticCustomError(
            "int_type", "Input should be a whole number, not a {kind}", {"kind": kind}
        )
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(_json_whole_number)]
"""An integer field of a request body: a JSON number, never a string or a boolean."""

Flag = Annotated[bool, Strict()]
"""A boolean field of a request body: `true` or `false`, never `"yes"`, `"off"` or `1`."""

Amount = Annotated[
    WholeNumber,
    Field(ge=0, le=10**12, description="Integer minor units (cents).", examples=[2900]),
]


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_bounds(number: float) -> None:
    # The parser turns integers past 64 bits into floats: both are bounded alike.
    if not math.isfinite(number) or abs(number) > MAX_SAFE_NUMBER:
        raise ValueError(f"numbers must be finite and within ±{MAX_SAFE_NUMBER}")


def _scalar(value: object) -> Scalar:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        _check_bounds(value)
        # Whole numbers are integers, so 10.0 and 10 read back the same on every database.
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if isinstance(value, str):
        if len(value) > 255 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise ValueError("strings must be 1-255 characters without control characters")
        return value
    raise ValueError("must be a boolean, a number or a string")


ScalarValue = Annotated[
    Scalar,
    PlainValidator(_scalar),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "boolean"},
                {"type": "number", "minimum": -MAX_SAFE_NUMBER, "maximum": MAX_SAFE_NUMBER},
                {"type": "string", "maxLength": 255},
            ],
            "description": "A boolean, a number or an option key, as the feature's type says.",
        }
    ),
]

_METADATA_MAX_BYTES = 16_384
_METADATA_MAX_DEPTH = 5


def _json_value(value: object, depth: int) -> None:
    if depth > _METADATA_MAX_DEPTH:
        raise ValueError(f"nesting deeper than {_METADATA_MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise ValueError("keys may not contain NUL characters")
            _json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _json_value(item, depth + 1)
    elif isinstance(value, str):
        if "\x00" in value:
            raise ValueError("strings may not contain NUL characters")
    elif _is_number(value):
        _check_bounds(value)


_FLAT_KEY_BYTES = 64 * 4 + 8  # a key at its longest in UTF-8, quoted, with `:` and `,`


def is_flat_and_small(value: dict[str, Any]) -> bool:
    """The common case, checked in one loop (event properties run through here a thousand
    times a batch): at most 50 keys of 1-64 characters, scalar values, no NUL, numbers in
    bounds, and surely under the size cap. Anything else takes the slow path, which says what
    is wrong."""
    if len(value) > 50:
        return False
    size = 2
    for key, item in value.items():
        kind = type(item)
        if kind is str:
            if "\x00" in item:
                return False
            size += _FLAT_KEY_BYTES + 4 * len(item)
        elif kind is int or kind is float:
            if not -MAX_SAFE_NUMBER <= item <= MAX_SAFE_NUMBER:  # NaN fails this too
                return False
            size += _FLAT_KEY_BYTES + 32
        elif item is None or kind is bool:
            size += _FLAT_KEY_BYTES + 5
        else:
            return False
        if not 1 <= len(key) <= 64 or "\x00" in key:
            return False
    return size <= _METADATA_MAX_BYTES


def _metadata(value: object) -> dict[str, Any]:
    if type(value) is dict and is_flat_and_small(value):
        return value
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    if len(value) > 50:
        raise ValueError("at most 50 keys")
    for key in value:
        if not 1 <= len(key) <= 64:
            raise ValueError("keys must be 1-64 characters")
    _json_value(value, 1)
    if len(orjson.dumps(value)) > _METADATA_MAX_BYTES:
        raise ValueError(f"at most {_METADATA_MAX_BYTES} bytes of JSON")
    return value


Metadata = Annotated[
    dict[str, Any],
    PlainValidator(_metadata),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": 50,
            "description": "Your own data: at most 50 keys, 5 levels, 16 KB.",
        }
    ),
]


class InputModel(BaseModel):
    """A request body: unknown fields are errors (a typo should not be silently ignored).

    Bodies with keep-what-is-omitted semantics name in `not_null` the fields that may be
    omitted but not set to `null`, and read what was sent with `provided()`.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    not_null: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _reject_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name in cls.not_null:
            raise ValueError("cannot be null; omit the field to keep it")
        return value

    def provided(self) -> dict[str, Any]:
        """The fields the body set, explicit `null`s included."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ListResponse(OutputModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


_RFC3339_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _timestamp_text(value: object) -> object:
    # Not a number, nor a numeric string (which pydantic would read as seconds since 1970).
    if not isinstance(value, str) or not _RFC3339_START.match(value):
        raise ValueError("must be an RFC 3339 timestamp string, such as 2026-11-22T10:00:00Z")
    return value


def _representable_in_utc(value: datetime) -> datetime:
    # An offset can carry year 9999 (or year 1) past what a UTC datetime holds; it is stored,
    # compared and echoed in UTC.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be an instant between years 1 and 9999 in UTC") from None


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_timestamp_text),
    AfterValidator(_representable_in_utc),
    Field(description="RFC 3339 with a time zone, e.g. `2026-11-22T10:00:00Z`."),
]
"""A timestamp of a request body or query: an RFC 3339 string with its offset, never a number."""

ExternalKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$"),
    Field(description="Your id for it: 1-255 printable characters.", examples=["acme"]),
]
"""Company and user keys: external ids, URL-encoded in paths."""

TraitName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
]
Traits = Annotated[
    dict[TraitName, ScalarValue | None],
    Field(
        max_length=100,
        description="Merged key by key into the current traits; `null` removes a trait.",
    ),
]


def _whole_as_int(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


Measure = Annotated[float, PlainSerializer(_whole_as_int, return_type=float | int)]
"""A reply's quantity or amount of credits: whole numbers read as integers (`500`, not `500.0`)."""

"""Keyset pagination: opaque cursors over a stable sort key, `limit + 1` rows per query."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.orm import QueryableAttribute

from tierkit.server.services.errors import ErrorDetail, InvalidRequest

T = TypeVar("T")
AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])
SortColumn = ColumnElement[Any] | QueryableAttribute[Any]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


_MIN_INT, _MAX_INT = -(2**63), 2**63 - 1


def decode_cursor(cursor: str, kinds: Sequence[type]) -> list[Any]:
    """The sort-key values in `cursor`, each of the type its column holds (`kinds`).

    A cursor is client input: values of the wrong type, integers past 64 bits or strings with
    NUL would reach the database as parameters it rejects, so they are refused here.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError) as error:
        raise _bad_cursor() from error
    if not isinstance(values, list) or len(values) != len(kinds):
        raise _bad_cursor()
    if not all(_fits(value, kind) for value, kind in zip(values, kinds, strict=True)):
        raise _bad_cursor()
    return values


def _fits(value: object, kind: type) -> bool:
    if type(value) is not kind:  # `type`, not `isinstance`: a bool is not an int here
        return False
    if isinstance(value, int):
        return _MIN_INT <= value <= _MAX_INT
    return not (isinstance(value, str) and "\x00" in value)


def _bad_cursor() -> InvalidRequest:
    message = "The cursor is not one this API returned; pass `next_cursor` from the previous page."
    return InvalidRequest(
        message,
        code="invalid_cursor",
        param="cursor",
        details=[ErrorDetail("cursor", message, "invalid_cursor")],
    )


def paginate(
    query: AnySelect,
    sort_key: Sequence[SortColumn],
    cursor: str | None,
    limit: int,
    *,
    descending: bool = False,
) -> tuple[AnySelect, int]:
    """Order `query` by `sort_key` (unique; ascending, or greatest first when `descending`)
    and start after `cursor`."""
    if cursor is not None:
        after = decode_cursor(cursor, [column.type.python_type for column in sort_key])
        position = tuple_(*sort_key)
        query = query.where(position < tuple_(*after) if descending else position > tuple_(*after))
    order = [column.desc() for column in sort_key] if descending else list(sort_key)
    return query.order_by(*order).limit(limit + 1), limit


def to_page(rows: Sequence[T], limit: int, key_of: Any) -> Page[T]:
    """Cut the extra row `paginate` fetched and make the next cursor from the last row kept."""
    items = list(rows[:limit])
    has_more = len(rows) > limit
    return Page(items, encode_cursor(key_of(items[-1])) if has_more and items else None)

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

from tierkit.server.services.errors import InvalidRequest

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


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError) as error:
        raise _bad_cursor() from error
    if not isinstance(values, list) or len(values) != arity:
        raise _bad_cursor()
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise _bad_cursor()
    return values


def _bad_cursor() -> InvalidRequest:
    return InvalidRequest(
        "The cursor is not one this API returned; pass `next_cursor` from the previous page.",
        code="invalid_cursor",
        param="cursor",
    )


def paginate(
    query: AnySelect, sort_key: Sequence[SortColumn], cursor: str | None, limit: int
) -> tuple[AnySelect, int]:
    """Order `query` by `sort_key` (unique, ascending) and start after `cursor`."""
    if cursor is not None:
        after = decode_cursor(cursor, len(sort_key))
        query = query.where(tuple_(*sort_key) > tuple_(*after))
    return query.order_by(*sort_key).limit(limit + 1), limit


def to_page(rows: Sequence[T], limit: int, key_of: Any) -> Page[T]:
    """Cut the extra row `paginate` fetched and make the next cursor from the last row kept."""
    items = list(rows[:limit])
    has_more = len(rows) > limit
    return Page(items, encode_cursor(key_of(items[-1])) if has_more and items else None)

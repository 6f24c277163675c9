"""Text search for lists: a case-insensitive substring match on some columns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.orm import InstrumentedAttribute


def matches_text(q: str, *columns: InstrumentedAttribute[Any]) -> Any:
    """`q` appears in any of `columns`, ignoring case; `%` and `_` in `q` are literal."""
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(*(func.lower(column).like(pattern, escape="\\") for column in columns))

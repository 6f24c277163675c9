"""Time zones by IANA name, for the server and the SDK alike (the engine reads no time zone
database itself: it is handed zones)."""

from __future__ import annotations

import functools
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@functools.lru_cache(maxsize=1024)
def zone_named(name: str) -> tzinfo:
    """The IANA zone `name`, or UTC when it is not one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC

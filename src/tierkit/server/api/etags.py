"""Entity tags for conditional GETs (RFC 9110 section 13.1.2)."""

from __future__ import annotations


def _opaque(tag: str) -> str:
    return tag.strip().removeprefix("W/")


def etag_matches(etag: str, if_none_match: str | None) -> bool:
    """Whether `If-None-Match` names `etag`. The comparison is weak, as the RFC asks of
    `If-None-Match`: `W/"x"` matches `"x"` (proxies that compress mark tags weak)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return _opaque(etag) in (_opaque(tag) for tag in if_none_match.split(","))

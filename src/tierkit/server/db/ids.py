"""Identifiers: a readable prefix and a time-ordered random part (like a ULID)."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lowercase


def new_id(prefix: str) -> str:
    """`prefix_` + 26 characters that sort by creation time (48-bit ms clock, 80 random bits)."""
    number = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        number, digit = divmod(number, 32)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(reversed(chars))}"

"""Numbers as the engine reads them from data: finite floats, or nothing."""

from __future__ import annotations

import math


def finite_number(value: object) -> float | None:
    """An int or float as a finite float; None for anything else (a boolean, text, NaN,
    infinity, an integer past float range): data the engine treats as closed, not raises on."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None

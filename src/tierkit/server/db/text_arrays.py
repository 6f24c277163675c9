"""Columns of strings sent to PostgreSQL as one text each, the values joined by a separator
and split again in SQL (`string_to_array`): joining is one call in C, where psycopg's
dumper of a list runs Python for every value (an ingested batch has several columns of a
thousand values each).

The separator and the null marker are two characters that no value holds: the ASCII record
and unit separators, which keys and names never contain, else the first two characters
found in none of the values (there are more characters than a request can hold)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

_SEPARATOR, _NULL = "\x1e", "\x1f"


def text_array_parameters(name: str, values: Sequence[str | None]) -> dict[str, Any]:
    """`values` as the parameters `name`, `name_separator` and `name_null` of the SQL
    `(string_to_array(%(name)s, %(name_separator)s, %(name_null)s))[2:]`, a `text[]`. The
    text starts with a separator (hence `[2:]`), so that a single empty string is one
    element, not none."""
    nones = values.count(None)
    separator, null = _SEPARATOR, _NULL
    text = _joined(values, separator, null, nones)
    if text.count(separator) != len(values) - 1 or text.count(null) != nones:
        present = set("".join(value for value in values if value))
        free = _characters_not_in(present)
        separator, null = next(free), next(free)
        text = _joined(values, separator, null, nones)
    return {name: separator + text, f"{name}_separator": separator, f"{name}_null": null}


def _joined(values: Sequence[str | None], separator: str, null: str, nones: int) -> str:
    if not nones:
        return separator.join(values)  # type: ignore[arg-type]  # no None among them
    return separator.join([null if value is None else value for value in values])


def _characters_not_in(present: set[str]) -> Iterator[str]:
    # Private use characters first, then the rest of Unicode but surrogates and controls.
    for code in itertools.chain(range(0xE000, 0x110000), range(0x20, 0xD800)):
        if chr(code) not in present:
            yield chr(code)

"""Columns sent to PostgreSQL as joined text come back as the same list, whatever the values
hold: separators, null markers, empty strings, private use characters."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierkit.server.db import Database
from tierkit.server.db.text_arrays import text_array_parameters
from tierkit.server.db.upserts import execute_on_postgres

_SPLIT = "SELECT (string_to_array(%(v)s, %(v_separator)s, %(v_null)s))[2:]"

# Characters that are separators or null markers, alone or among others.
_AWKWARD = st.sampled_from(["\x1e", "\x1f", "\ue000", "\ue001", "\ue002", ",", "{", '"', "\\"])
_VALUES = st.lists(
    st.none()
    | st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00") | _AWKWARD,
        max_size=8,
    ),
    min_size=1,
    max_size=30,
)


def _round_trip(database: Database, values: list[str | None]) -> list[str | None]:
    with database.read() as session:
        rows = execute_on_postgres(session, _SPLIT, text_array_parameters("v", values))
    result: list[str | None] = rows[0][0]
    return result


@pytest.fixture
def postgres(database: Database) -> Database:
    if database.is_sqlite:
        pytest.skip("the joined text is PostgreSQL's (SQLite takes rows as they are)")
    return database


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(values=_VALUES)
def test_text_array__any_values__come_back_the_same(
    postgres: Database, values: list[str | None]
) -> None:
    assert _round_trip(postgres, values) == values


@pytest.mark.parametrize(
    "values",
    [
        [""],
        [None],
        ["", None, ""],
        ["a\x1eb", "c"],
        ["\x1f", None],
        ["\x1e\x1f\ue000\ue001", None, "\ue002"],
    ],
)
def test_text_array__values_holding_the_usual_separators__come_back_the_same(
    postgres: Database, values: list[str | None]
) -> None:
    assert _round_trip(postgres, values) == values

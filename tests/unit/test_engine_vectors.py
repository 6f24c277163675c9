"""Language-neutral engine cases (flagsmith-engine's engine-test-data): each file in
tests/vectors/ is a catalog, a company, a user, a context, an instant and a feature, with the
part of the check reply that the contract fixes. The same files can drive an engine in any
language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tierkit.engine.codec import (
    catalog_from_json,
    company_from_json,
    decision_to_json,
    parse_time,
    user_from_json,
)
from tierkit.engine.evaluate import evaluate

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
VECTOR_FILES = sorted(VECTORS.glob("*.json"))
MISSING = "<missing from the reply>"


def project(actual: Any, expected: Any) -> Any:
    """`actual` cut down to the keys `expected` names, recursively, so a failure shows a diff
    of just the fields the vector fixes."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {key: project(actual.get(key, MISSING), value) for key, value in expected.items()}
    return actual


def evaluate_vector(vector: dict[str, Any]) -> dict[str, Any]:
    catalog = catalog_from_json(vector["catalog"])
    now = parse_time(vector["now"])
    assert now is not None
    decision = evaluate(
        catalog,
        company_from_json(vector["company"], catalog),
        vector["feature"],
        now=now,
        quantity=vector["quantity"],
        user=user_from_json(vector["user"]),
        context=vector["context"].get("traits", {}),
    )
    return decision_to_json(decision)


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[path.stem for path in VECTOR_FILES])
def test_evaluate__vector_file__reply_has_expected_fields(path: Path) -> None:
    # Given a vector
    vector = json.loads(path.read_text())

    # When the engine evaluates it
    reply = evaluate_vector(vector)

    # Then the reply has every expected field and value
    assert project(reply, vector["expected"]) == vector["expected"]


def test_vectors__directory__holds_at_least_60_files() -> None:
    assert len(VECTOR_FILES) >= 60

"""Company and user keys are external ids (any printable characters, URL-encoded in paths),
and text search folds case beyond ASCII on every database."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

KEYS = ["org/42", "a/b/c", "café ☕", "what?#&=%", "100% sure", "  spaced  ", "x" * 255]


@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_company_key__with_any_printable_characters__round_trips_through_the_path(
    api: httpx.Client, key: str
) -> None:
    path = f"/v1/companies/{quote(key, safe='')}"

    created = api.put(path, json={"name": "Keyed"})
    fetched = api.get(path)
    subscriptions = api.get(f"{path}/subscriptions")

    assert created.status_code == 201, created.text
    assert fetched.status_code == 200
    assert fetched.json()["key"] == key
    assert subscriptions.status_code == 200
    assert [c["key"] for c in api.get("/v1/companies").json()["data"]] == [key]


def test_user_key__with_a_slash__round_trips_and_joins_a_slashed_company(
    api: httpx.Client,
) -> None:
    api.put(f"/v1/companies/{quote('org/1', safe='')}", json={}).raise_for_status()

    created = api.put(f"/v1/users/{quote('u/1', safe='')}", json={"companies": ["org/1"]})

    assert created.status_code == 201, created.text
    assert api.get(f"/v1/users/{quote('u/1', safe='')}").json()["companies"] == ["org/1"]


def test_company_search__with_accented_capitals__folds_case_on_every_database(
    api: httpx.Client,
) -> None:
    api.put("/v1/companies/ecole", json={"name": "École Polytechnique"}).raise_for_status()
    api.put("/v1/companies/other", json={"name": "Other"}).raise_for_status()

    found = api.get("/v1/companies", params={"q": "école"}).json()["data"]

    assert [c["key"] for c in found] == ["ecole"]

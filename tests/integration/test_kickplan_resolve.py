"""Kickplan's feature resolution, in the shapes of its public docs."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import create_feature, create_plan


@pytest.fixture
def catalog(api: httpx.Client) -> httpx.Client:
    create_feature(api, "upload_contacts", name="Upload Contacts")
    create_feature(api, "seats", "numeric", default=1)
    create_feature(api, "api_calls", "metered")
    create_plan(api, "free", [{"feature": "api_calls", "value": 10}], is_default=True)
    create_plan(
        api,
        "essentials",
        [{"feature": "upload_contacts", "value": True}, {"feature": "seats", "value": 5}],
    )
    api.put("/v1/companies/12345", json={"plan": "essentials"}).raise_for_status()
    return api


def test_resolve__detailed_for_an_account__the_documented_shape(catalog: httpx.Client) -> None:
    response = catalog.post(
        "/api/features/upload_contacts/resolve",
        content=b'{"detailed":"true","context":{"account_key":"12345"}}',
        headers={"Accept": "application/json", "Content-Type": "application/json"},
    )

    assert response.status_code == 200
    assert response.json() == {
        "value": True,
        "metadata": {"name": "Upload Contacts"},
        "key": "upload_contacts",
        "error_code": None,
        "variant": "true",
    }


def test_resolve__unknown_account__resolves_as_in_the_docs(catalog: httpx.Client) -> None:
    response = catalog.post(
        "/api/features/upload_contacts/resolve",
        json={"detailed": True, "context": {"account_key": "nobody"}},
    )

    assert response.json() == {
        "value": False,
        "metadata": {"name": "Upload Contacts"},
        "key": "upload_contacts",
        "error_code": None,
        "variant": "false",
    }


def test_resolve_all__not_detailed__value_and_key_of_each_feature(catalog: httpx.Client) -> None:
    response = catalog.post("/api/features/resolve", json={"context": {"account_key": "12345"}})

    assert response.status_code == 200
    # essentials sets no API calls, and a company with a base plan has no default plan: limit 0.
    assert response.json() == [
        {"value": False, "key": "api_calls"},
        {"value": 5, "key": "seats"},
        {"value": True, "key": "upload_contacts"},
    ]


def test_resolve_all__detailed__every_field(catalog: httpx.Client) -> None:
    response = catalog.post(
        "/api/features/resolve", json={"detailed": "true", "context": {"account_key": "12345"}}
    )

    by_key = {item["key"]: item for item in response.json()}
    assert by_key["seats"] == {
        "value": 5,
        "metadata": {"name": "Seats"},
        "key": "seats",
        "error_code": None,
        "variant": "5",
    }


def test_resolve__unknown_feature__404_in_kickplans_shape(catalog: httpx.Client) -> None:
    response = catalog.post(
        "/api/features/nope/resolve", json={"context": {"account_key": "12345"}}
    )

    assert response.status_code == 404
    assert response.json() == {
        "message": "There is no feature 'nope'.",
        "type": "not_found",
        "errors": [],
    }

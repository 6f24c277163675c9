"""Inputs the OpenAPI does not allow are refused, as schemathesis found they were not: a number
where a timestamp goes (pydantic would read it as seconds since 1970) and a number where
Kickplan's `detailed` flag goes; and the events list documents the shape it returns."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import error_of

NOT_TIMESTAMPS = ["0.5", "1700000000", "2026", "tomorrow"]


@pytest.mark.parametrize("value", NOT_TIMESTAMPS)
@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/audit-log", "to"),
        ("/v1/audit-log", "from"),
        ("/v1/events", "from"),
        ("/v1/companies/acme/subscriptions", "at"),
        ("/v1/companies/acme/usage/api_calls", "to"),
    ],
)
def test_query_timestamp__not_rfc3339__400_naming_the_param(
    api: httpx.Client, path: str, param: str, value: str
) -> None:
    response = api.get(path, params={param: value})

    assert response.status_code == 400, response.text
    assert error_of(response)["param"] == param


@pytest.mark.parametrize("value", [0.5, 1700000000, "1700000000"])
def test_body_timestamp__a_number_or_numeric_text__400_on_the_field(
    api: httpx.Client, value: Any
) -> None:
    assert api.post("/v1/plans", json={"key": "pro", "name": "Pro"}).status_code == 201
    assert api.put("/v1/companies/acme", json={}).status_code == 201

    response = api.post(
        "/v1/companies/acme/subscriptions", json={"plan": "pro", "started_at": value}
    )

    assert response.status_code == 400, response.text
    assert error_of(response)["param"] == "started_at"
    assert api.get("/v1/companies/acme/subscriptions").json()["data"] == []


@pytest.mark.parametrize("value", [0, 1, "TRUE", "yes", None])
def test_kickplan_resolve__detailed_not_a_boolean_nor_true_false_text__400(
    api: httpx.Client, value: Any
) -> None:
    response = api.post("/api/features/resolve", json={"detailed": value})

    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "detailed"


def test_openapi__events_list__documents_the_data_and_cursor_envelope(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    schema = document["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]
    reference = schema["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(document["components"]["schemas"][reference]["properties"]) == {
        "data",
        "next_cursor",
    }

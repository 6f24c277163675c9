"""OFREP's error replies: `{"key", "errorCode", "errorDetails"}` with the right status."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import create_feature

FLAG = "/ofrep/v1/evaluate/flags/sso"
UNKNOWN = "/ofrep/v1/evaluate/flags/No%20Such%20Flag"
NESTED = b'{"context": {"targetingKey": "acme", "plan": {"nested": 1}}}'
ACME = b'{"context": {"targetingKey": "acme"}}'


@pytest.fixture
def ofrep(api: httpx.Client) -> httpx.Client:
    create_feature(api, "sso")
    return api


@pytest.mark.parametrize(
    ("path", "content", "status", "error_code"),
    [
        (FLAG, b'{"context": {}}', 400, "TARGETING_KEY_MISSING"),
        (FLAG, b"{}", 400, "TARGETING_KEY_MISSING"),
        (FLAG, NESTED, 400, "INVALID_CONTEXT"),
        (FLAG, b'{"context": {"targetingKey": "acme", "user": 7}}', 400, "INVALID_CONTEXT"),
        (FLAG, b'{"context": {"targetingKey": ', 400, "PARSE_ERROR"),
        (UNKNOWN, ACME, 404, "FLAG_NOT_FOUND"),
    ],
    ids=["empty_context", "no_context", "nested", "user_not_a_string", "bad_json", "unknown"],
)  # fmt: skip
def test_ofrep__bad_request__answers_the_ofrep_error_code(
    ofrep: httpx.Client, path: str, content: bytes, status: int, error_code: str
) -> None:
    response = ofrep.post(path, content=content, headers={"content-type": "application/json"})

    assert response.status_code == status
    body: dict[str, Any] = response.json()
    assert body["errorCode"] == error_code
    assert isinstance(body["errorDetails"], str)
    assert body["errorDetails"]


def test_ofrep__without_a_key__401(anonymous: httpx.Client) -> None:
    response = anonymous.post(FLAG, json={"context": {"targetingKey": "acme"}})

    assert response.status_code == 401
    assert response.json()["errorCode"] == "GENERAL"


def test_ofrep__x_api_key_header__is_accepted(ofrep: httpx.Client, make_key: Any) -> None:
    headers = {"X-API-Key": make_key(), "content-type": "application/json"}

    response = httpx.post(
        str(ofrep.base_url) + FLAG, json={"context": {"targetingKey": "acme"}}, headers=headers
    )

    assert response.status_code == 200
    assert response.json()["key"] == "sso"

"""A real OpenFeature client (openfeature-sdk with openfeature-provider-ofrep from PyPI)
evaluates Tierkit's features over OFREP against a live server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from openfeature import api as openfeature
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from tests.support.api import create_feature, create_plan
from tierkit.server.services.api_keys import KeyKind

pytestmark = pytest.mark.e2e

OpenFeatureFactory = Callable[[str], OpenFeatureClient]


@pytest.fixture
def catalog(api: httpx.Client) -> None:
    create_feature(api, "sso")
    create_feature(api, "projects", "numeric", default=1)
    create_feature(api, "support", "enum", default="email")
    create_feature(api, "api_calls", "metered")
    create_plan(api, "free", [{"feature": "api_calls", "value": 100}], is_default=True)
    create_plan(
        api,
        "pro",
        [
            {"feature": "sso", "value": True},
            {"feature": "projects", "value": 10},
            {"feature": "support", "value": "chat"},
            {"feature": "api_calls", "value": 10_000},
        ],
    )
    api.put("/v1/companies/acme", json={"plan": "pro"}).raise_for_status()


@pytest.fixture
def openfeature_client(
    server_url: str, make_key: Callable[..., str]
) -> Iterator[OpenFeatureFactory]:
    providers: list[OFREPProvider] = []

    def make(key: str) -> OpenFeatureClient:
        domain = f"tierkit-{uuid.uuid4().hex}"
        provider = OFREPProvider(
            server_url, headers_factory=lambda: {"Authorization": f"Bearer {key}"}
        )
        providers.append(provider)
        openfeature.set_provider(provider, domain=domain)
        return openfeature.get_client(domain=domain)

    yield make
    for provider in providers:
        provider.session.close()
    openfeature.clear_providers()


@pytest.fixture
def flags(
    catalog: None, openfeature_client: OpenFeatureFactory, make_key: Callable[..., str]
) -> OpenFeatureClient:
    return openfeature_client(make_key("development", KeyKind.PUBLISHABLE))


ACME = EvaluationContext(targeting_key="acme")


def test_ofrep__boolean_feature__evaluates_with_a_targeting_match(flags: OpenFeatureClient) -> None:
    details = flags.get_boolean_details("sso", False, ACME)

    assert (details.value, details.reason, details.variant) == (True, Reason.TARGETING_MATCH, "on")
    assert details.error_code is None
    assert details.flag_metadata["plan"] == "pro"


def test_ofrep__numeric_feature__is_an_integer(flags: OpenFeatureClient) -> None:
    details = flags.get_integer_details("projects", 0, ACME)

    assert (details.value, details.variant) == (10, "10")
    assert details.error_code is None


def test_ofrep__enum_feature__is_its_option_key(flags: OpenFeatureClient) -> None:
    details = flags.get_string_details("support", "none", ACME)

    assert (details.value, details.variant) == ("chat", "chat")


def test_ofrep__metered_feature__is_allowed_with_usage_in_metadata(
    flags: OpenFeatureClient,
) -> None:
    details = flags.get_boolean_details("api_calls", False, ACME)

    assert (details.value, details.variant) == (True, "allowed")
    metadata: dict[str, Any] = dict(details.flag_metadata)
    assert (metadata["limit"], metadata["used"], metadata["remaining"]) == (10_000, 0, 10_000)


def test_ofrep__unknown_company__gets_the_default_plan(flags: OpenFeatureClient) -> None:
    details = flags.get_integer_details("projects", 0, EvaluationContext(targeting_key="nobody"))

    assert (details.value, details.reason) == (1, Reason.DEFAULT)


def test_ofrep__unknown_flag__flag_not_found_and_the_default(flags: OpenFeatureClient) -> None:
    details = flags.get_boolean_details("no_such_flag", True, ACME)

    assert details.value is True
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND


def test_ofrep__without_a_targeting_key__targeting_key_missing(flags: OpenFeatureClient) -> None:
    details = flags.get_boolean_details("sso", False, EvaluationContext())

    assert details.value is False
    assert details.error_code == ErrorCode.TARGETING_KEY_MISSING


def test_ofrep__with_an_unknown_key__an_error_and_the_default(
    catalog: None, openfeature_client: OpenFeatureFactory
) -> None:
    flags = openfeature_client("tk_sec_" + "x" * 40)

    details = flags.get_boolean_details("sso", False, ACME)

    assert details.value is False
    assert details.error_code == ErrorCode.GENERAL
    assert "unauthorized" in (details.error_message or "")


def test_ofrep_bulk__etag__answers_304_when_nothing_changed(
    catalog: None, server_url: str, make_key: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {make_key('development', KeyKind.PUBLISHABLE)}"}
    body = {"context": {"targetingKey": "acme"}}
    with httpx.Client(base_url=server_url, headers=headers) as client:
        first = client.post("/ofrep/v1/evaluate/flags", json=body)
        etag = first.headers["ETag"]
        again = client.post("/ofrep/v1/evaluate/flags", json=body, headers={"If-None-Match": etag})

    assert first.status_code == 200
    assert {flag["key"] for flag in first.json()["flags"]} == {
        "api_calls",
        "projects",
        "sso",
        "support",
    }
    assert again.status_code == 304
    assert again.content == b""

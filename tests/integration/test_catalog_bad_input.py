"""Bad input to the catalog routes: each case gets its documented error, and nothing changes."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Final

import httpx
import pytest

from tests.support.api import assert_is_a_sentence

JSON: Final = "application/json"


class _Drop:
    """Marks a field to leave out of a body."""


DROP: Final = _Drop()
NO_BODY: Final[Any] = object()

FEATURES: list[dict[str, Any]] = [
    {"key": "sso", "name": "Single sign-on", "type": "boolean", "default": False},
    {"key": "projects", "name": "Projects", "type": "numeric", "unit": "project", "default": 1},
    {
        "key": "support",
        "name": "Support",
        "type": "enum",
        "options": [{"key": "email", "name": "Email"}, {"key": "chat", "name": "Chat"}],
        "default": "email",
    },
    {
        "key": "api_calls",
        "name": "API calls",
        "type": "metered",
        "unit": "call",
        "meter": {"event": "api_call", "aggregation": "sum", "property": None},
    },
]
FREE: dict[str, Any] = {
    "key": "free",
    "name": "Free",
    "is_default": True,
    "sort_order": 10,
    "entitlements": [
        {"feature": "sso", "value": False},
        {"feature": "support", "value": "email"},
        {"feature": "api_calls", "value": 1000},
    ],
    "prices": [{"interval": "month", "currency": "usd", "amount": 0, "default": True}],
}

TYPE_OF_STATUS = {
    400: "invalid_request",
    404: "not_found",
    409: "conflict",
    415: "invalid_request",
}


def _body(base: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    merged = base | fields
    return {key: value for key, value in merged.items() if value is not DROP}


def feature(**fields: Any) -> dict[str, Any]:
    """A valid new boolean feature, with `fields` changed (`DROP` leaves one out)."""
    return _body({"key": "new_feature", "name": "New feature", "type": "boolean"}, fields)


def metered(**meter: Any) -> dict[str, Any]:
    """A new metered feature whose meter has `meter` changed."""
    return feature(type="metered", meter=_body({"event": "e", "aggregation": "sum"}, meter))


def enum(*option_keys: str, **fields: Any) -> dict[str, Any]:
    options = [{"key": key, "name": key.title()} for key in option_keys]
    return feature(type="enum", options=options, **fields)


def plan(**fields: Any) -> dict[str, Any]:
    """A valid new base plan, with `fields` changed (`DROP` leaves one out)."""
    return _body({"key": "new_plan", "name": "New plan"}, fields)


def entitled(*entitlements: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return plan(entitlements=list(entitlements), **fields)


def priced(*prices: dict[str, Any]) -> dict[str, Any]:
    return plan(prices=list(prices))


def price(
    interval: str = "month", currency: str = "usd", amount: Any = 900, **fields: Any
) -> dict[str, Any]:
    return {"interval": interval, "currency": currency, "amount": amount, **fields}


def raw_plan(fragment: str) -> bytes:
    """A plan body with `fragment` (JSON text, as sent) spliced in after key and name."""
    return f'{{"key": "new_plan", "name": "New plan", {fragment}}}'.encode()


def raw_feature(fragment: bytes) -> bytes:
    return b'{"key": "new_feature", "name": "New", "type": "numeric", ' + fragment + b"}"


def cursor_of(values: list[Any]) -> str:
    """A cursor in the API's encoding that it never handed out."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class BadRequest:
    method: str
    path: str
    status: int
    code: str
    param: str | None
    body: Any = NO_BODY
    raw: bytes | None = None
    content_type: str | None = JSON

    def send(self, api: httpx.Client) -> httpx.Response:
        if self.raw is not None:
            headers = {"Content-Type": self.content_type} if self.content_type else {}
            return api.request(self.method, self.path, content=self.raw, headers=headers)
        if self.body is NO_BODY:
            return api.request(self.method, self.path)
        return api.request(self.method, self.path, json=self.body)


def case(
    case_id: str,
    method: str,
    path: str,
    body: Any = NO_BODY,
    /,
    *,
    code: str = "validation_failed",
    param: str | None,
    status: int = 400,
    raw: bytes | None = None,
    content_type: str | None = JSON,
) -> Any:
    request = BadRequest(method, path, status, code, param, body, raw, content_type)
    return pytest.param(request, id=case_id)


F = "/v1/features"
P = "/v1/plans"
KEY_WITH_NUL = "a\x00"

CASES = [
    # Keys
    case("feature_key_uppercase", "POST", F, feature(key="Sso2"), param="key"),
    case("feature_key_leading_dash", "POST", F, feature(key="-sso"), param="key"),
    case("feature_key_65_characters", "POST", F, feature(key="a" * 65), param="key"),
    case("feature_key_control_character", "POST", F, feature(key="ss\x07o"), param="key"),
    case("feature_key_trailing_newline", "POST", F, feature(key="sso2\n"), param="key"),
    case("feature_key_with_nul", "POST", F, feature(key="sso\x00"), param="key"),
    case("feature_key_unicode", "POST", F, feature(key="caf\u00e9"), param="key"),
    case(
        "feature_key_sql_metacharacters",
        "POST",
        F,
        feature(key="a'; drop table features;--"),
        param="key",
    ),
    case("feature_key_not_a_string", "POST", F, feature(key=42), param="key"),
    case("plan_key_uppercase", "POST", P, plan(key="Pro"), param="key"),
    case("plan_group_not_a_key", "POST", P, plan(group="Default Group"), param="group"),
    case("path_key_uppercase", "GET", f"{F}/SSO", param="key"),
    case("path_key_65_characters", "GET", f"{P}/{'a' * 65}", param="key"),
    case(
        "path_key_sql_metacharacters",
        "GET",
        f"{F}/a'%3B%20drop%20table%20features%3B--",
        param="key",
    ),
    case("path_key_control_character", "DELETE", f"{F}/ss%00o", param="key"),
    case(
        "path_feature_key_uppercase",
        "PUT",
        f"{P}/free/entitlements/SSO",
        {"value": True},
        param="feature",
    ),
    # Missing, unknown and mistyped fields
    case("feature_missing_key", "POST", F, feature(key=DROP), param="key"),
    case("feature_missing_type", "POST", F, feature(type=DROP), param="type"),
    case("feature_unknown_field_typo", "POST", F, feature(defualt=True), param="defualt"),
    case("meter_unknown_field_typo", "POST", F, metered(propety="n"), param="meter.propety"),
    case("feature_type_unknown", "POST", F, feature(type="flag"), param="type"),
    case("feature_type_not_a_string", "POST", F, feature(type=3), param="type"),
    case("feature_name_not_a_string", "POST", F, feature(name=42), param="name"),
    case("feature_name_empty", "POST", F, feature(name=""), param="name"),
    case("feature_name_with_nul", "POST", F, feature(name="New\x00"), param="name"),
    case("feature_default_an_array", "POST", F, feature(default=[True]), param="default"),
    case("plan_missing_name", "POST", P, plan(name=DROP), param="name"),
    case("plan_unknown_field_typo", "POST", P, plan(entitlments=[]), param="entitlments"),
    case("plan_entitlements_an_object", "POST", P, plan(entitlements={}), param="entitlements"),
    case("plan_is_default_a_string", "POST", P, plan(is_default="yes"), param="is_default"),
    case("plan_trial_days_a_string", "POST", P, plan(trial_days="14"), param="trial_days"),
    case("plan_trial_days_over_3650", "POST", P, plan(trial_days=3651), param="trial_days"),
    case("plan_sort_order_a_boolean", "POST", P, plan(sort_order=True), param="sort_order"),
    case(
        "plan_sort_order_past_64_bits",
        "POST",
        P,
        raw=raw_plan('"sort_order": 1180591620717411303424'),
        param="sort_order",
    ),
    # Features: rules between fields
    case(
        "metered_without_meter",
        "POST",
        F,
        feature(type="metered"),
        code="meter_required",
        param="meter",
    ),
    case(
        "meter_on_boolean",
        "POST",
        F,
        feature(meter={"event": "e", "aggregation": "count"}),
        code="meter_not_allowed",
        param="meter",
    ),
    case(
        "options_on_boolean",
        "POST",
        F,
        feature(options=[{"key": "a", "name": "A"}]),
        code="options_not_allowed",
        param="options",
    ),
    case(
        "enum_without_options",
        "POST",
        F,
        feature(type="enum"),
        code="options_required",
        param="options",
    ),
    case("enum_with_empty_options", "POST", F, enum(), param="options"),
    case(
        "enum_duplicate_option_keys",
        "POST",
        F,
        enum("gold", "gold"),
        code="duplicate_key",
        param="options.1.key",
    ),
    case(
        "enum_option_key_not_a_key", "POST", F, enum("gold", "Silver Plus"), param="options.1.key"
    ),
    case(
        "unique_count_without_property",
        "POST",
        F,
        metered(aggregation="unique_count"),
        code="property_required",
        param="meter.property",
    ),
    case(
        "count_meter_with_property",
        "POST",
        F,
        metered(aggregation="count", property="n"),
        code="property_not_allowed",
        param="meter.property",
    ),
    case(
        "meter_aggregation_unknown",
        "POST",
        F,
        metered(aggregation="avg"),
        param="meter.aggregation",
    ),
    case(
        "numeric_default_a_string",
        "POST",
        F,
        feature(type="numeric", default="lots"),
        code="invalid_value",
        param="default",
    ),
    case(
        "metered_default_a_boolean",
        "POST",
        F,
        metered() | {"default": True},
        code="invalid_value",
        param="default",
    ),
    case(
        "enum_default_not_an_option",
        "POST",
        F,
        enum("gold", default="silver"),
        code="invalid_value",
        param="default",
    ),
    case(
        "boolean_global_value_a_number",
        "POST",
        F,
        feature(global_value=1),
        code="invalid_value",
        param="global_value",
    ),
    case(
        "enum_global_value_not_an_option",
        "POST",
        F,
        enum("gold", global_value="platinum"),
        code="invalid_value",
        param="global_value",
    ),
    case(
        "duplicate_feature_key",
        "POST",
        F,
        feature(key="sso", type="numeric"),
        status=409,
        code="feature_exists",
        param="key",
    ),
    # Hostile bodies
    case(
        "nan_literal",
        "POST",
        F,
        raw=raw_feature(b'"default": NaN'),
        code="invalid_json",
        param=None,
    ),
    case(
        "infinity_literal",
        "POST",
        F,
        raw=raw_feature(b'"default": Infinity'),
        code="invalid_json",
        param=None,
    ),
    case(
        "negative_infinity_literal",
        "POST",
        F,
        raw=raw_feature(b'"default": -Infinity'),
        code="invalid_json",
        param=None,
    ),
    case(
        "number_1e400",
        "POST",
        F,
        raw=raw_feature(b'"default": 1e400'),
        code="invalid_json",
        param=None,
    ),
    case(
        "invalid_json_truncated",
        "POST",
        F,
        raw=b'{"key": "new_feature", "name": ',
        code="invalid_json",
        param=None,
    ),
    case(
        "invalid_json_trailing_comma",
        "POST",
        F,
        raw=raw_feature(b'"default": 1,'),
        code="invalid_json",
        param=None,
    ),
    case(
        "invalid_json_single_quotes",
        "POST",
        P,
        raw=b"{'key': 'new_plan', 'name': 'New plan'}",
        code="invalid_json",
        param=None,
    ),
    case(
        "invalid_utf8",
        "POST",
        F,
        raw=b'{"key": "new_feature", "name": "\xff\xfe", "type": "boolean"}',
        code="invalid_json",
        param=None,
    ),
    case(
        "lone_surrogate_escape",
        "POST",
        F,
        raw=b'{"key": "new_feature", "name": "\\ud800", "type": "boolean"}',
        code="invalid_json",
        param=None,
    ),
    case(
        "json_nested_2000_deep",
        "POST",
        F,
        raw=raw_feature(b'"description": ' + b"[" * 2000 + b"]" * 2000),
        code="invalid_json",
        param=None,
    ),
    case("body_an_array", "POST", F, raw=b"[]", param="body"),
    case("body_a_string", "PUT", f"{P}/free/entitlements/sso", raw=b'"true"', param="body"),
    case("body_empty", "POST", P, raw=b"", param="body"),
    case(
        "body_sent_as_text_plain",
        "POST",
        F,
        raw=json.dumps(feature()).encode(),
        content_type="text/plain",
        status=415,
        code="unsupported_media_type",
        param=None,
    ),
    case(
        "body_without_content_type",
        "POST",
        P,
        raw=json.dumps(plan()).encode(),
        content_type=None,
        status=415,
        code="unsupported_media_type",
        param=None,
    ),
    case(
        "metadata_with_nul",
        "POST",
        P,
        plan(metadata={"note": "a\x00b"}),
        param="metadata",
    ),
    case(
        "metadata_nested_6_deep",
        "POST",
        P,
        plan(metadata={"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}),
        param="metadata",
    ),
    case("metadata_an_array", "POST", P, plan(metadata=[1]), param="metadata"),
    case("metadata_number_past_2_53", "POST", P, plan(metadata={"n": 2**53 + 1}), param="metadata"),
    # Plans: entitlements against their features
    case(
        "enum_value_not_among_options",
        "POST",
        P,
        entitled({"feature": "sso", "value": True}, {"feature": "support", "value": "phone"}),
        code="invalid_value",
        param="entitlements.1.value",
    ),
    case(
        "boolean_value_a_number",
        "POST",
        P,
        entitled({"feature": "sso", "value": 1}),
        code="invalid_value",
        param="entitlements.0.value",
    ),
    case(
        "numeric_value_a_string",
        "POST",
        P,
        entitled({"feature": "projects", "value": "10"}),
        code="invalid_value",
        param="entitlements.0.value",
    ),
    case(
        "metered_value_negative",
        "POST",
        P,
        entitled({"feature": "api_calls", "value": -1}),
        code="invalid_value",
        param="entitlements.0.value",
    ),
    case(
        "value_an_object",
        "POST",
        P,
        entitled({"feature": "projects", "value": {"max": 3}}),
        param="entitlements.0.value",
    ),
    case(
        "value_past_2_53",
        "POST",
        P,
        entitled({"feature": "projects", "value": 2**53 + 1}),
        param="entitlements.0.value",
    ),
    case(
        "unlimited_on_boolean",
        "POST",
        P,
        entitled({"feature": "sso", "unlimited": True}),
        code="unlimited_not_allowed",
        param="entitlements.0.unlimited",
    ),
    case(
        "unlimited_a_string",
        "POST",
        P,
        entitled({"feature": "projects", "unlimited": "true"}),
        param="entitlements.0.unlimited",
    ),
    case(
        "value_and_unlimited",
        "POST",
        P,
        entitled({"feature": "projects", "value": 5, "unlimited": True}),
        code="value_with_unlimited",
        param="entitlements.0.value",
    ),
    case(
        "value_missing",
        "POST",
        P,
        entitled({"feature": "projects"}),
        code="value_required",
        param="entitlements.0.value",
    ),
    case(
        "period_on_boolean",
        "POST",
        P,
        entitled({"feature": "sso", "value": True, "period": "month"}),
        code="metered_only",
        param="entitlements.0.period",
    ),
    case(
        "all_time_with_billing_cycle_reset",
        "POST",
        P,
        entitled(
            {"feature": "api_calls", "value": 9, "period": "all_time", "reset": "billing_cycle"}
        ),
        code="reset_without_period",
        param="entitlements.0.reset",
    ),
    case(
        "overage_without_soft_limit",
        "POST",
        P,
        entitled({"feature": "api_calls", "value": 9, "overage": {"price": 50, "per": 1000}}),
        code="overage_requires_soft_limit",
        param="entitlements.0.overage",
    ),
    case(
        "overage_on_unlimited",
        "POST",
        P,
        entitled(
            {"feature": "api_calls", "unlimited": True, "soft_limit": True, "overage": {"price": 5}}
        ),
        code="overage_with_unlimited",
        param="entitlements.0.overage",
    ),
    case(
        "overage_per_zero",
        "POST",
        P,
        entitled(
            {
                "feature": "api_calls",
                "value": 9,
                "soft_limit": True,
                "overage": {"price": 5, "per": 0},
            }
        ),
        param="entitlements.0.overage.per",
    ),
    case(
        "entitlement_unknown_feature",
        "POST",
        P,
        entitled({"feature": "sso", "value": True}, {"feature": "sama", "value": True}),
        code="feature_not_found",
        param="entitlements.1.feature",
    ),
    case(
        "entitlement_feature_not_a_key",
        "POST",
        P,
        entitled({"feature": "SSO", "value": True}),
        param="entitlements.0.feature",
    ),
    case(
        "duplicate_entitlement_for_a_feature",
        "POST",
        P,
        entitled({"feature": "sso", "value": True}, {"feature": "sso", "value": False}),
        code="duplicate_feature",
        param="entitlements.1.feature",
    ),
    case(
        "add_on_marked_default",
        "POST",
        P,
        plan(type="add_on", group="extras", is_default=True),
        code="add_on_default",
        param="is_default",
    ),
    case(
        "several_problems_at_once",
        "POST",
        P,
        entitled({"feature": "sama", "value": 1}, type="add_on", group="extras", is_default=True),
        code="invalid_definition",
        param="is_default",
    ),
    case(
        "second_default_plan_in_group",
        "POST",
        P,
        plan(is_default=True),
        status=409,
        code="default_plan_exists",
        param="is_default",
    ),
    case(
        "duplicate_plan_key",
        "POST",
        P,
        plan(key="free"),
        status=409,
        code="plan_exists",
        param="key",
    ),
    # Prices
    case(
        "currency_unknown",
        "POST",
        P,
        priced(price(currency="xyz")),
        code="invalid_currency",
        param="prices.0.currency",
    ),
    case("currency_uppercase", "POST", P, priced(price(currency="USD")), param="prices.0.currency"),
    case(
        "regional_currency_unknown",
        "POST",
        P,
        priced(
            price(regional=[{"currency": "eur", "amount": 800}, {"currency": "abc", "amount": 1}])
        ),
        code="invalid_currency",
        param="prices.0.regional.1.currency",
    ),
    case(
        "duplicate_price_for_interval_and_currency",
        "POST",
        P,
        priced(price(), price(interval="year"), price(amount=1000)),
        code="duplicate_price",
        param="prices.2.currency",
    ),
    case(
        "duplicate_price_via_regional",
        "POST",
        P,
        priced(price(currency="eur"), price(regional=[{"currency": "eur", "amount": 800}])),
        code="duplicate_price",
        param="prices.1.regional.0.currency",
    ),
    case(
        "two_default_prices",
        "POST",
        P,
        priced(price(default=True), price(interval="year", default=True)),
        code="duplicate_default_price",
        param="prices.1.default",
    ),
    case(
        "price_interval_unknown",
        "POST",
        P,
        priced(price(interval="fortnight")),
        param="prices.0.interval",
    ),
    case("amount_negative", "POST", P, priced(price(amount=-1)), param="prices.0.amount"),
    case("amount_a_string", "POST", P, priced(price(amount="900")), param="prices.0.amount"),
    case(
        "amount_with_cents_fraction", "POST", P, priced(price(amount=9.99)), param="prices.0.amount"
    ),
    case(
        "amount_past_64_bits",
        "POST",
        P,
        raw=raw_plan(
            '"prices": [{"interval": "month", "currency": "usd", "amount": 18446744073709551616}]'
        ),
        param="prices.0.amount",
    ),
    case("price_default_a_number", "POST", P, priced(price(default=1)), param="prices.0.default"),
    # Changes to existing objects
    case("patch_feature_name_null", "PATCH", f"{F}/sso", {"name": None}, param="name"),
    case("patch_feature_key", "PATCH", f"{F}/sso", {"key": "sso2"}, param="key"),
    case(
        "patch_feature_type_breaking_a_plan",
        "PATCH",
        f"{F}/sso",
        {"type": "numeric", "default": 0},
        status=409,
        code="feature_in_use",
        param=None,
    ),
    case(
        "patch_feature_options_dropping_a_used_one",
        "PATCH",
        f"{F}/support",
        {"options": [{"key": "chat", "name": "Chat"}], "default": "chat"},
        status=409,
        code="feature_in_use",
        param=None,
    ),
    case(
        "patch_feature_metered_to_numeric_under_a_plan",
        "PATCH",
        f"{F}/api_calls",
        {"type": "numeric", "meter": None},
        status=409,
        code="feature_in_use",
        param=None,
    ),
    case(
        "patch_feature_meter_null",
        "PATCH",
        f"{F}/api_calls",
        {"meter": None},
        code="meter_required",
        param="meter",
    ),
    case(
        "patch_feature_type_its_default_does_not_fit",
        "PATCH",
        f"{F}/projects",
        {"type": "boolean"},
        code="invalid_value",
        param="default",
    ),
    case("patch_plan_name_null", "PATCH", f"{P}/free", {"name": None}, param="name"),
    case("patch_plan_key", "PATCH", f"{P}/free", {"key": "gratis"}, param="key"),
    case(
        "patch_plan_is_default_a_number",
        "PATCH",
        f"{P}/free",
        {"is_default": 0},
        param="is_default",
    ),
    case(
        "patch_default_plan_into_add_on",
        "PATCH",
        f"{P}/free",
        {"type": "add_on"},
        code="add_on_default",
        param="is_default",
    ),
    case(
        "patch_plan_entitlement_unknown_feature",
        "PATCH",
        f"{P}/free",
        {"name": "Gratis", "entitlements": [{"feature": "sama", "value": True}]},
        code="feature_not_found",
        param="entitlements.0.feature",
    ),
    case(
        "patch_plan_duplicate_regional_price",
        "PATCH",
        f"{P}/free",
        {
            "prices": [
                price(regional=[{"currency": "eur", "amount": 1}, {"currency": "eur", "amount": 2}])
            ]
        },
        code="duplicate_price",
        param="prices.0.regional.1.currency",
    ),
    case(
        "delete_feature_a_plan_references",
        "DELETE",
        f"{F}/sso",
        status=409,
        code="feature_in_use",
        param=None,
    ),
    # One entitlement
    case(
        "put_entitlement_feature_that_does_not_exist",
        "PUT",
        f"{P}/free/entitlements/sama",
        {"value": True},
        status=404,
        code="feature_not_found",
        param=None,
    ),
    case(
        "put_entitlement_boolean_given_a_number",
        "PUT",
        f"{P}/free/entitlements/sso",
        {"value": 1},
        code="invalid_value",
        param="value",
    ),
    case(
        "put_entitlement_new_feature_bad_value",
        "PUT",
        f"{P}/free/entitlements/projects",
        {"value": "ten"},
        code="invalid_value",
        param="value",
    ),
    case(
        "put_entitlement_unlimited_boolean",
        "PUT",
        f"{P}/free/entitlements/sso",
        {"unlimited": True},
        code="unlimited_not_allowed",
        param="unlimited",
    ),
    case(
        "put_entitlement_overage_without_soft_limit",
        "PUT",
        f"{P}/free/entitlements/api_calls",
        {"value": 10, "overage": {"price": 5}},
        code="overage_requires_soft_limit",
        param="overage",
    ),
    case(
        "put_entitlement_feature_in_body",
        "PUT",
        f"{P}/free/entitlements/sso",
        {"feature": "sso", "value": True},
        param="feature",
    ),
    case(
        "delete_entitlement_not_on_the_plan",
        "DELETE",
        f"{P}/free/entitlements/projects",
        status=404,
        code="entitlement_not_found",
        param=None,
    ),
    # Unknown objects
    case(
        "get_unknown_feature", "GET", f"{F}/sama", status=404, code="feature_not_found", param=None
    ),
    case(
        "patch_unknown_feature",
        "PATCH",
        f"{F}/sama",
        {"name": "S"},
        status=404,
        code="feature_not_found",
        param=None,
    ),
    case(
        "delete_unknown_feature",
        "DELETE",
        f"{F}/sama",
        status=404,
        code="feature_not_found",
        param=None,
    ),
    case("get_unknown_plan", "GET", f"{P}/gold", status=404, code="plan_not_found", param=None),
    case(
        "patch_unknown_plan",
        "PATCH",
        f"{P}/gold",
        {"name": "G"},
        status=404,
        code="plan_not_found",
        param=None,
    ),
    case(
        "delete_unknown_plan", "DELETE", f"{P}/gold", status=404, code="plan_not_found", param=None
    ),
    case(
        "put_entitlement_unknown_plan",
        "PUT",
        f"{P}/gold/entitlements/sso",
        {"value": True},
        status=404,
        code="plan_not_found",
        param=None,
    ),
    case(
        "delete_entitlement_unknown_plan",
        "DELETE",
        f"{P}/gold/entitlements/sso",
        status=404,
        code="plan_not_found",
        param=None,
    ),
    case(
        "features_of_unknown_plan",
        "GET",
        f"{P}/gold/features",
        status=404,
        code="plan_not_found",
        param=None,
    ),
    case("features_of_plan_key_uppercase", "GET", f"{P}/Gold/features", param="key"),
    # List parameters
    case("features_limit_0", "GET", f"{F}?limit=0", param="limit"),
    case("features_limit_501", "GET", f"{F}?limit=501", param="limit"),
    case("features_limit_negative", "GET", f"{F}?limit=-5", param="limit"),
    case("features_limit_not_a_number", "GET", f"{F}?limit=ten", param="limit"),
    case("plans_limit_501", "GET", f"{P}?limit=501", param="limit"),
    case(
        "features_cursor_garbage",
        "GET",
        f"{F}?cursor=garbage",
        code="invalid_cursor",
        param="cursor",
    ),
    case(
        "plans_cursor_garbage",
        "GET",
        f"{P}?cursor=%E2%9C%93",
        code="invalid_cursor",
        param="cursor",
    ),
    case("features_cursor_too_long", "GET", f"{F}?cursor={'A' * 513}", param="cursor"),
    case(
        "features_cursor_number_for_a_key",
        "GET",
        f"{F}?cursor={cursor_of([1])}",
        code="invalid_cursor",
        param="cursor",
    ),
    case(
        "features_cursor_key_with_nul",
        "GET",
        f"{F}?cursor={cursor_of([KEY_WITH_NUL])}",
        code="invalid_cursor",
        param="cursor",
    ),
    case(
        "features_cursor_two_values_for_one_key",
        "GET",
        f"{F}?cursor={cursor_of(['a', 'b'])}",
        code="invalid_cursor",
        param="cursor",
    ),
    case(
        "plans_cursor_string_for_sort_order",
        "GET",
        f"{P}?cursor={cursor_of(['ten', 'free'])}",
        code="invalid_cursor",
        param="cursor",
    ),
    case(
        "plans_cursor_sort_order_past_64_bits",
        "GET",
        f"{P}?cursor={cursor_of([2**63, 'free'])}",
        code="invalid_cursor",
        param="cursor",
    ),
    case("features_status_bogus", "GET", f"{F}?status=bogus", param="status"),
    case("features_type_bogus", "GET", f"{F}?type=bogus", param="type"),
    case("plans_status_bogus", "GET", f"{P}?status=bogus", param="status"),
    case("plans_type_bogus", "GET", f"{P}?type=premium", param="type"),
    case("plans_group_not_a_key", "GET", f"{P}?group=Main%20Group", param="group"),
]


@pytest.fixture
def seeded(api: httpx.Client) -> httpx.Client:
    """`api` over a small catalog: four features, one of each type, and a default plan."""
    for body in FEATURES:
        api.post(F, json=body).raise_for_status()
    api.post(P, json=FREE).raise_for_status()
    return api


def catalog_of(api: httpx.Client) -> tuple[Any, Any]:
    """Everything the catalog holds, as the API shows it."""
    features = api.get(F, params={"limit": 500})
    plans = api.get(P, params={"limit": 500})
    assert features.status_code == plans.status_code == 200
    return features.json(), plans.json()


@pytest.mark.parametrize("bad", CASES)
def test_catalog_route__bad_input__documented_error_and_nothing_changes(
    seeded: httpx.Client, bad: BadRequest
) -> None:
    # Given a catalog
    before = catalog_of(seeded)

    # When the bad request arrives
    response = bad.send(seeded)

    # Then it gets the documented error, in the envelope
    assert response.status_code == bad.status, response.text
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"type", "code", "message", "param", "details"}
    assert (error["type"], error["code"], error["param"]) == (
        TYPE_OF_STATUS[bad.status],
        bad.code,
        bad.param,
    ), response.text
    assert_is_a_sentence(error["message"])
    assert isinstance(error["details"], list)
    for detail in error["details"]:
        assert isinstance(detail["param"], str)
        assert isinstance(detail["message"], str)
        assert detail["message"]
    if bad.status == 400 and bad.param is not None:
        assert bad.param in [detail["param"] for detail in error["details"]]
    # And the catalog is exactly as it was
    assert catalog_of(seeded) == before

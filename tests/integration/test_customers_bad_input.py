"""Bad input to the customer routes (companies, subscriptions, overrides, users): each case gets
its documented error, and nothing is stored or changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import httpx
import pytest

from tests.conftest import SettableClock
from tests.support.api import assert_is_a_sentence

JSON: Final = "application/json"
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
PLANS: list[dict[str, Any]] = [
    {
        "key": "free",
        "name": "Free",
        "is_default": True,
        "prices": [{"interval": "month", "currency": "usd", "amount": 0, "default": True}],
    },
    {
        "key": "pro",
        "name": "Pro",
        "entitlements": [{"feature": "sso", "value": True}],
        "prices": [
            {"interval": "month", "currency": "usd", "amount": 2900, "default": True},
            {"interval": "year", "currency": "usd", "amount": 29000},
        ],
    },
    {
        "key": "extra_seats",
        "name": "Extra seats",
        "type": "add_on",
        "group": "extras",
        "prices": [{"interval": "month", "currency": "usd", "amount": 500}],
    },
    {"key": "legacy", "name": "Legacy"},
]

TYPE_OF_STATUS = {400: "invalid_request", 404: "not_found", 409: "conflict"}


@dataclass(frozen=True, slots=True)
class Seeded:
    """The seeded customer's ids, for paths that name a subscription."""

    active: str  # acme's subscription to pro
    ended: str  # acme's subscription to free, ended when pro started
    add_on: str  # acme's subscription to extra_seats


@dataclass(frozen=True, slots=True)
class BadRequest:
    method: str
    path: str
    status: int
    code: str
    param: str | None
    body: Any = NO_BODY
    raw: bytes | None = None

    def send(self, api: httpx.Client, seeded: Seeded) -> httpx.Response:
        path = self.path.format(active=seeded.active, ended=seeded.ended, add_on=seeded.add_on)
        if self.raw is not None:
            return api.request(self.method, path, content=self.raw, headers={"Content-Type": JSON})
        if self.body is NO_BODY:
            return api.request(self.method, path)
        return api.request(self.method, path, json=self.body)


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
) -> Any:
    request = BadRequest(method, path, status, code, param, body, raw)
    return pytest.param(request, id=case_id)


C = "/v1/companies"
ACME = f"{C}/acme"
SUBS = f"{ACME}/subscriptions"
OVR = f"{ACME}/overrides"
U = "/v1/users"
LONG_KEY = "k" * 300
NOT_ALLOWED: Final = "2099-01-01T00:00:00Z"

CASES = [
    # The company `plan` shortcut
    case(
        "put_company_unknown_plan",
        "PUT",
        ACME,
        {"plan": "gold"},
        code="plan_not_found",
        param="plan",
    ),
    case(
        "put_new_company_unknown_plan",
        "PUT",
        f"{C}/globex",
        {"name": "Globex", "plan": "gold"},
        code="plan_not_found",
        param="plan",
    ),
    case(
        "put_company_add_on_as_plan",
        "PUT",
        ACME,
        {"name": "Acme 2", "plan": "extra_seats"},
        code="plan_not_base",
        param="plan",
    ),
    case(
        "put_company_archived_plan",
        "PUT",
        f"{C}/globex",
        {"plan": "legacy"},
        code="plan_archived",
        param="plan",
    ),
    case("put_company_plan_not_a_key", "PUT", ACME, {"plan": "Gold Plan"}, param="plan"),
    case("put_company_plan_a_number", "PUT", ACME, {"plan": 3}, param="plan"),
    # Company keys, names, traits and fields
    case("put_company_key_300_characters", "PUT", f"{C}/{LONG_KEY}", {}, param="key"),
    case("get_company_key_300_characters", "GET", f"{C}/{LONG_KEY}", param="key"),
    case("put_company_key_control_character", "PUT", f"{C}/ac%07me", {}, param="key"),
    case("put_company_key_nul", "PUT", f"{C}/acme%00", {}, param="key"),
    case("put_company_key_newline", "PUT", f"{C}/acme%0A", {}, param="key"),
    case("put_company_name_empty", "PUT", ACME, {"name": ""}, param="name"),
    case("put_company_name_with_tab", "PUT", ACME, {"name": "Ac\tme"}, param="name"),
    case("put_company_name_a_number", "PUT", ACME, {"name": 42}, param="name"),
    case(
        "put_company_trait_nested_object",
        "PUT",
        ACME,
        {"traits": {"address": {"city": "Paris"}}},
        param="traits.address",
    ),
    case(
        "put_company_trait_an_array", "PUT", ACME, {"traits": {"tags": ["a"]}}, param="traits.tags"
    ),
    case(
        "put_company_trait_value_with_nul",
        "PUT",
        ACME,
        {"traits": {"note": "a\x00b"}},
        param="traits.note",
    ),
    case(
        "put_company_trait_value_past_2_53",
        "PUT",
        ACME,
        {"traits": {"seats": 2**53 + 1}},
        param="traits.seats",
    ),
    case(
        "put_company_101_traits",
        "PUT",
        ACME,
        {"traits": {f"t{i}": i for i in range(101)}},
        param="traits",
    ),
    case("put_company_traits_an_array", "PUT", ACME, {"traits": ["tier"]}, param="traits"),
    case("put_company_unknown_field", "PUT", ACME, {"nmae": "Acme"}, param="nmae"),
    case("put_company_body_an_array", "PUT", ACME, [], param="body"),
    case(
        "put_company_body_not_json",
        "PUT",
        ACME,
        raw=b'{"name": "Acme"',
        code="invalid_json",
        param=None,
    ),
    # The plan of a subscription
    case(
        "subscribe_unknown_plan",
        "POST",
        SUBS,
        {"plan": "gold"},
        code="plan_not_found",
        param="plan",
    ),
    case(
        "subscribe_archived_plan",
        "POST",
        SUBS,
        {"plan": "legacy"},
        code="plan_archived",
        param="plan",
    ),
    case(
        "subscribe_second_active_add_on",
        "POST",
        SUBS,
        {"plan": "extra_seats"},
        status=409,
        code="already_subscribed",
        param="plan",
    ),
    case(
        "subscribe_price_interval_not_offered",
        "POST",
        SUBS,
        {"plan": "pro", "price_interval": "week"},
        code="price_interval_not_offered",
        param="price_interval",
    ),
    case(
        "subscribe_price_interval_unknown",
        "POST",
        SUBS,
        {"plan": "pro", "price_interval": "fortnight"},
        param="price_interval",
    ),
    case("subscribe_missing_plan", "POST", SUBS, {"quantity": 1}, param="plan"),
    case("subscribe_plan_not_a_key", "POST", SUBS, {"plan": "PRO"}, param="plan"),
    case(
        "subscribe_unknown_company",
        "POST",
        f"{C}/globex/subscriptions",
        {"plan": "pro"},
        status=404,
        code="company_not_found",
        param=None,
    ),
    # Subscription quantities
    case("subscribe_quantity_zero", "POST", SUBS, {"plan": "pro", "quantity": 0}, param="quantity"),
    case(
        "subscribe_quantity_negative",
        "POST",
        SUBS,
        {"plan": "pro", "quantity": -2},
        param="quantity",
    ),
    case(
        "subscribe_quantity_a_string",
        "POST",
        SUBS,
        {"plan": "pro", "quantity": "2"},
        param="quantity",
    ),
    case(
        "subscribe_quantity_a_fraction",
        "POST",
        SUBS,
        {"plan": "pro", "quantity": 1.5},
        param="quantity",
    ),
    case(
        "subscribe_quantity_a_boolean",
        "POST",
        SUBS,
        {"plan": "pro", "quantity": True},
        param="quantity",
    ),
    case(
        "subscribe_quantity_null", "POST", SUBS, {"plan": "pro", "quantity": None}, param="quantity"
    ),
    case(
        "subscribe_quantity_past_64_bits",
        "POST",
        SUBS,
        raw=b'{"plan": "pro", "quantity": 18446744073709551616}',
        param="quantity",
    ),
    # Subscription times
    case(
        "subscribe_ends_before_start",
        "POST",
        SUBS,
        {"plan": "pro", "started_at": "2099-02-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"},
        code="invalid_period",
        param="ends_at",
    ),
    case(
        "subscribe_ends_at_start",
        "POST",
        SUBS,
        {"plan": "pro", "started_at": NOT_ALLOWED, "ends_at": NOT_ALLOWED},
        code="invalid_period",
        param="ends_at",
    ),
    case(
        "subscribe_trial_ends_before_start",
        "POST",
        SUBS,
        {
            "plan": "pro",
            "started_at": "2099-02-01T00:00:00Z",
            "trial_ends_at": "2099-01-01T00:00:00Z",
        },
        code="invalid_period",
        param="trial_ends_at",
    ),
    case(
        "subscribe_started_at_without_timezone",
        "POST",
        SUBS,
        {"plan": "pro", "started_at": "2099-01-01T00:00:00"},
        param="started_at",
    ),
    case(
        "subscribe_started_at_a_date",
        "POST",
        SUBS,
        {"plan": "pro", "started_at": "2099-01-01"},
        param="started_at",
    ),
    case(
        "subscribe_started_at_a_number",
        "POST",
        SUBS,
        {"plan": "pro", "started_at": 4070908800},
        param="started_at",
    ),
    case(
        "subscribe_ends_at_a_number",
        "POST",
        SUBS,
        {"plan": "pro", "ends_at": 4070908800.5},
        param="ends_at",
    ),
    case(
        "subscribe_ends_at_year_10000",
        "POST",
        SUBS,
        {"plan": "pro", "ends_at": "10000-01-01T00:00:00Z"},
        param="ends_at",
    ),
    case(
        "subscribe_trial_ends_at_year_0",
        "POST",
        SUBS,
        {"plan": "pro", "trial_ends_at": "0000-01-01T00:00:00Z"},
        param="trial_ends_at",
    ),
    case(
        "subscribe_started_at_february_30",
        "POST",
        SUBS,
        {"plan": "pro", "started_at": "2099-02-30T00:00:00Z"},
        param="started_at",
    ),
    case(
        "subscribe_started_at_offset_past_a_day",
        "POST",
        SUBS,
        {"plan": "pro", "started_at": "2099-01-01T00:00:00+25:00"},
        param="started_at",
    ),
    case(
        "subscribe_started_at_offset_past_year_9999",
        "POST",
        SUBS,
        {"plan": "pro", "started_at": "9999-12-31T23:00:00-05:00"},
        param="started_at",
    ),
    case(
        "subscribe_started_at_offset_before_year_1",
        "POST",
        SUBS,
        {"plan": "pro", "started_at": "0001-01-01T00:00:00+01:00"},
        param="started_at",
    ),
    case(
        "subscribe_started_at_garbage",
        "POST",
        SUBS,
        {"plan": "pro", "started_at": "next tuesday"},
        param="started_at",
    ),
    case(
        "subscribe_unknown_field",
        "POST",
        SUBS,
        {"plan": "pro", "seats": 3},
        param="seats",
    ),
    # One subscription
    case(
        "get_unknown_subscription",
        "GET",
        f"{SUBS}/sub_nope",
        status=404,
        code="subscription_not_found",
        param=None,
    ),
    case(
        "patch_unknown_subscription",
        "PATCH",
        f"{SUBS}/sub_nope",
        {"quantity": 2},
        status=404,
        code="subscription_not_found",
        param=None,
    ),
    case(
        "cancel_unknown_subscription",
        "DELETE",
        f"{SUBS}/sub_nope",
        status=404,
        code="subscription_not_found",
        param=None,
    ),
    case(
        "subscription_of_another_company",
        "GET",
        f"{C}/initech/subscriptions/{{active}}",
        status=404,
        code="subscription_not_found",
        param=None,
    ),
    case("subscription_id_too_long", "GET", f"{SUBS}/{'s' * 65}", param="subscription_id"),
    case("cancel_at_bogus", "DELETE", f"{SUBS}/{{active}}?at=bogus", param="at"),
    case(
        "cancel_ended_subscription",
        "DELETE",
        f"{SUBS}/{{ended}}",
        status=409,
        code="subscription_ended",
        param=None,
    ),
    case(
        "patch_ended_subscription",
        "PATCH",
        f"{SUBS}/{{ended}}",
        {"quantity": 3},
        status=409,
        code="subscription_ended",
        param=None,
    ),
    case(
        "patch_quantity_null", "PATCH", f"{SUBS}/{{add_on}}", {"quantity": None}, param="quantity"
    ),
    case("patch_quantity_zero", "PATCH", f"{SUBS}/{{add_on}}", {"quantity": 0}, param="quantity"),
    case(
        "patch_quantity_a_string",
        "PATCH",
        f"{SUBS}/{{add_on}}",
        {"quantity": "3"},
        param="quantity",
    ),
    case(
        "patch_ends_at_before_start",
        "PATCH",
        f"{SUBS}/{{active}}",
        {"ends_at": "2000-01-01T00:00:00Z"},
        code="invalid_period",
        param="ends_at",
    ),
    case(
        "patch_ends_at_without_timezone",
        "PATCH",
        f"{SUBS}/{{active}}",
        {"ends_at": "2099-01-01T00:00:00"},
        param="ends_at",
    ),
    case(
        "patch_trial_ends_at_offset_past_year_9999",
        "PATCH",
        f"{SUBS}/{{add_on}}",
        {"trial_ends_at": "9999-12-31T20:00:00-12:00"},
        param="trial_ends_at",
    ),
    case("patch_plan", "PATCH", f"{SUBS}/{{active}}", {"plan": "free"}, param="plan"),
    case(
        "patch_started_at",
        "PATCH",
        f"{SUBS}/{{active}}",
        {"started_at": NOT_ALLOWED},
        param="started_at",
    ),
    # Subscription history
    case("list_subscriptions_at_not_a_date", "GET", f"{SUBS}?at=not-a-date", param="at"),
    case(
        "list_subscriptions_unknown_company",
        "GET",
        f"{C}/globex/subscriptions",
        status=404,
        code="company_not_found",
        param=None,
    ),
    # Overrides
    case(
        "override_enum_outside_options",
        "PUT",
        f"{OVR}/support",
        {"value": "phone"},
        code="invalid_value",
        param="value",
    ),
    case(
        "override_boolean_given_a_number",
        "PUT",
        f"{OVR}/sso",
        {"value": 1},
        code="invalid_value",
        param="value",
    ),
    case(
        "override_boolean_given_a_string",
        "PUT",
        f"{OVR}/sso",
        {"value": "true"},
        code="invalid_value",
        param="value",
    ),
    case(
        "override_unlimited_boolean",
        "PUT",
        f"{OVR}/sso",
        {"unlimited": True},
        code="unlimited_not_allowed",
        param="unlimited",
    ),
    case(
        "override_numeric_given_a_string",
        "PUT",
        f"{OVR}/projects",
        {"value": "ten"},
        code="invalid_value",
        param="value",
    ),
    case(
        "override_value_and_unlimited",
        "PUT",
        f"{OVR}/projects",
        {"value": 5, "unlimited": True},
        code="value_with_unlimited",
        param="value",
    ),
    case(
        "override_without_value",
        "PUT",
        f"{OVR}/projects",
        {"note": "forgot the value"},
        code="value_required",
        param="value",
    ),
    case(
        "override_period_on_boolean",
        "PUT",
        f"{OVR}/sso",
        {"value": True, "period": "month"},
        code="metered_only",
        param="period",
    ),
    case(
        "override_value_an_object",
        "PUT",
        f"{OVR}/projects",
        {"value": {"max": 3}},
        param="value",
    ),
    case(
        "override_unlimited_a_string",
        "PUT",
        f"{OVR}/projects",
        {"unlimited": "yes"},
        param="unlimited",
    ),
    case(
        "override_unknown_feature",
        "PUT",
        f"{OVR}/sama",
        {"value": True},
        status=404,
        code="feature_not_found",
        param=None,
    ),
    case(
        "override_unknown_company",
        "PUT",
        f"{C}/globex/overrides/sso",
        {"value": True},
        status=404,
        code="company_not_found",
        param=None,
    ),
    case(
        "override_feature_key_uppercase",
        "PUT",
        f"{OVR}/SSO",
        {"value": True},
        param="feature",
    ),
    case(
        "override_expires_in_the_past",
        "PUT",
        f"{OVR}/sso",
        {"value": True, "expires_at": "2000-01-01T00:00:00Z"},
        code="expires_in_past",
        param="expires_at",
    ),
    case(
        "override_expires_at_without_timezone",
        "PUT",
        f"{OVR}/sso",
        {"value": True, "expires_at": "2099-01-01T00:00:00"},
        param="expires_at",
    ),
    case(
        "override_expires_at_a_number",
        "PUT",
        f"{OVR}/sso",
        {"value": True, "expires_at": 4070908800},
        param="expires_at",
    ),
    case(
        "override_expires_at_year_10000",
        "PUT",
        f"{OVR}/sso",
        {"value": True, "expires_at": "10000-01-01T00:00:00Z"},
        param="expires_at",
    ),
    case(
        "override_expires_at_offset_past_year_9999",
        "PUT",
        f"{OVR}/sso",
        {"value": True, "expires_at": "9999-12-31T23:30:00-01:00"},
        param="expires_at",
    ),
    case(
        "override_note_with_nul",
        "PUT",
        f"{OVR}/sso",
        {"value": True, "note": "a\x00b"},
        param="note",
    ),
    case(
        "override_note_too_long",
        "PUT",
        f"{OVR}/sso",
        {"value": True, "note": "n" * 1001},
        param="note",
    ),
    case(
        "override_feature_in_body",
        "PUT",
        f"{OVR}/sso",
        {"feature": "sso", "value": True},
        param="feature",
    ),
    case(
        "delete_override_not_there",
        "DELETE",
        f"{OVR}/support",
        status=404,
        code="override_not_found",
        param=None,
    ),
    case(
        "delete_override_unknown_company",
        "DELETE",
        f"{C}/globex/overrides/sso",
        status=404,
        code="company_not_found",
        param=None,
    ),
    case(
        "list_overrides_include_expired_bogus",
        "GET",
        f"{OVR}?include_expired=maybe",
        param="include_expired",
    ),
    # Users
    case("put_user_key_300_characters", "PUT", f"{U}/{LONG_KEY}", {}, param="key"),
    case("put_user_key_control_character", "PUT", f"{U}/u%1B1", {}, param="key"),
    case(
        "put_user_unknown_company",
        "PUT",
        f"{U}/u2",
        {"name": "New", "companies": ["globex"]},
        code="company_not_found",
        param="companies.0",
    ),
    case(
        "put_user_second_company_unknown",
        "PUT",
        f"{U}/u1",
        {"companies": ["acme", "globex"]},
        code="company_not_found",
        param="companies.1",
    ),
    case(
        "put_user_company_key_control_character",
        "PUT",
        f"{U}/u1",
        {"companies": ["ac\x07me"]},
        param="companies.0",
    ),
    case("put_user_companies_a_string", "PUT", f"{U}/u1", {"companies": "acme"}, param="companies"),
    case(
        "put_user_trait_nested_object",
        "PUT",
        f"{U}/u1",
        {"traits": {"prefs": {"theme": "dark"}}},
        param="traits.prefs",
    ),
    case(
        "put_user_101_traits",
        "PUT",
        f"{U}/u1",
        {"traits": {f"t{i}": True for i in range(101)}},
        param="traits",
    ),
    case("put_user_unknown_field", "PUT", f"{U}/u1", {"company": "acme"}, param="company"),
    case("get_unknown_user", "GET", f"{U}/u9", status=404, code="user_not_found", param=None),
    case("delete_unknown_user", "DELETE", f"{U}/u9", status=404, code="user_not_found", param=None),
    # Company reads and deletes
    case(
        "get_unknown_company",
        "GET",
        f"{C}/globex",
        status=404,
        code="company_not_found",
        param=None,
    ),
    case(
        "delete_unknown_company",
        "DELETE",
        f"{C}/globex",
        status=404,
        code="company_not_found",
        param=None,
    ),
    case(
        "list_companies_unknown_plan",
        "GET",
        f"{C}?plan=unknown",
        status=404,
        code="plan_not_found",
        param=None,
    ),
    case("list_companies_plan_not_a_key", "GET", f"{C}?plan=Pro%20Plan", param="plan"),
    case("list_companies_limit_501", "GET", f"{C}?limit=501", param="limit"),
    case("list_companies_limit_0", "GET", f"{C}?limit=0", param="limit"),
    case(
        "list_companies_cursor_garbage",
        "GET",
        f"{C}?cursor=garbage",
        code="invalid_cursor",
        param="cursor",
    ),
    case("list_companies_q_too_long", "GET", f"{C}?q={'q' * 256}", param="q"),
    case("list_users_limit_not_a_number", "GET", f"{U}?limit=ten", param="limit"),
]


def _create(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
def seeded(api: httpx.Client, clock: SettableClock) -> Seeded:
    """A catalog, company `acme` with a history (free, then pro, an add-on), a current and an
    expired override, a second company `initech`, and user `u1` of acme."""
    for body in FEATURES:
        _create(api, "/v1/features", body)
    for body in PLANS:
        _create(api, "/v1/plans", body)
    assert api.patch("/v1/plans/legacy", json={"status": "archived"}).status_code == 200
    company = {"name": "Acme", "traits": {"tier": "gold", "seats": 5}, "plan": "free"}
    assert api.put(ACME, json=company).status_code == 201
    assert api.put(f"{C}/initech", json={"name": "Initech"}).status_code == 201
    clock.advance(days=1)
    active = _create(api, SUBS, {"plan": "pro"})
    add_on = _create(api, SUBS, {"plan": "extra_seats", "quantity": 2})
    expiry = (clock.now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert api.put(f"{OVR}/sso", json={"value": False}).status_code == 200
    assert api.put(f"{OVR}/projects", json={"value": 9, "expires_at": expiry}).status_code == 200
    assert api.put(f"{U}/u1", json={"name": "Ann", "companies": ["acme"]}).status_code == 201
    clock.advance(hours=2)
    history = api.get(SUBS).json()["data"]
    ended = next(s["id"] for s in history if s["plan"] == "free")
    return Seeded(active=active["id"], ended=ended, add_on=add_on["id"])


def customers_of(api: httpx.Client) -> list[Any]:
    """Everything the customer routes show, as the API shows it."""
    responses = [
        api.get(C, params={"limit": 500}),
        api.get(U, params={"limit": 500}),
        api.get(ACME),
        api.get(SUBS),
        api.get(OVR, params={"include_expired": "true"}),
        api.get(f"{C}/initech"),
        api.get(f"{C}/initech/subscriptions"),
    ]
    assert [r.status_code for r in responses] == [200] * len(responses)
    return [r.json() for r in responses]


@pytest.mark.parametrize("bad", CASES)
def test_customer_route__bad_input__documented_error_and_nothing_changes(
    api: httpx.Client, seeded: Seeded, bad: BadRequest
) -> None:
    # Given customers with a history
    before = customers_of(api)

    # When the bad request arrives
    response = bad.send(api, seeded)

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
        assert bad.param in [detail["param"] for detail in error["details"]], response.text
    # And nothing was stored or changed
    assert customers_of(api) == before


def test_list_companies__empty_trait_filter__ok_and_matches_no_company(
    api: httpx.Client, seeded: Seeded
) -> None:
    # When companies are listed by a trait no company has, with an empty value
    response = api.get(C, params={"trait.x": ""})

    # Then it is not an error: no company matches
    assert response.status_code == 200, response.text
    assert response.json() == {"data": [], "next_cursor": None}


def test_list_companies__trait_filter__matches_by_json_text(
    api: httpx.Client, seeded: Seeded
) -> None:
    # When companies are listed by a string trait and a number trait
    by_tier = api.get(C, params={"trait.tier": "gold"})
    by_seats = api.get(C, params={"trait.seats": "5"})
    by_other_tier = api.get(C, params={"trait.tier": "silver"})

    # Then only acme matches, and a value it does not have matches nothing
    assert [c["key"] for c in by_tier.json()["data"]] == ["acme"]
    assert [c["key"] for c in by_seats.json()["data"]] == ["acme"]
    assert by_other_tier.json()["data"] == []


def test_subscribe__trial_plan_starting_on_the_last_day__trial_runs_to_the_last_instant(
    api: httpx.Client, seeded: Seeded
) -> None:
    # Given a plan with a 14-day trial
    _create(api, "/v1/plans", {"key": "trial", "name": "Trial", "trial_days": 14})

    # When a company subscribes to it from the last day the calendar has
    response = api.post(SUBS, json={"plan": "trial", "started_at": "9999-12-31T00:00:00Z"})

    # Then the trial cannot end later than time can be written: it runs to the last instant
    assert response.status_code == 201, response.text
    subscription = response.json()
    assert subscription["status"] == "scheduled"
    assert subscription["started_at"] == "9999-12-31T00:00:00Z"
    assert subscription["trial_ends_at"] == "9999-12-31T23:59:59.999999Z"

"""The admin console over real HTTP on both databases: sign-in, sessions and cookies, CSRF,
security headers, forms that validate as the API does (4xx with the message by the field,
nothing written), and every change in the audit log as the console user's."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.console import PASSWORD, ConsoleClient
from tierkit.server.services.container import Services
from tierkit.server.services.errors import Conflict, InvalidRequest

EMAIL = "ops@example.com"


@pytest.fixture
def admin(services: Services) -> str:
    services.console_users.create_user(EMAIL, PASSWORD)
    return EMAIL


@pytest.fixture
def console(server_url: str, admin: str) -> Iterator[ConsoleClient]:
    client = ConsoleClient(server_url)
    response = client.sign_in(admin)
    assert response.status_code == 303, response.text
    yield client
    client.close()


@pytest.fixture
def visitor(server_url: str) -> Iterator[ConsoleClient]:
    client = ConsoleClient(server_url)
    yield client
    client.close()


def test_console_page__signed_out__redirects_to_sign_in_with_the_way_back(
    visitor: ConsoleClient,
) -> None:
    response = visitor.get("/console/features")

    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Ffeatures"


def test_sign_in__wrong_password__401_with_the_message_and_no_session(
    visitor: ConsoleClient, admin: str
) -> None:
    response = visitor.sign_in(admin, "not the password at all")

    assert response.status_code == 401
    assert "The email or the password is not right." in response.text
    assert 'aria-invalid="true"' in response.text
    assert "tierkit_console" not in visitor.cookies


def test_sign_in__session_cookie_is_httponly_secure_lax_and_logout_ends_it(
    visitor: ConsoleClient, admin: str, services: Services
) -> None:
    visitor.get("/console/login")
    response = visitor.post("/console/login", {"email": "OPS@example.com", "password": PASSWORD})

    assert response.status_code == 303
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith("tierkit_console=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=lax", "path=/console"} <= flags
    token = visitor.cookies["tierkit_console"]
    assert services.console_users.get_session(token).user.email == EMAIL

    visitor.get("/console/companies")
    out = visitor.post("/console/logout")

    assert out.status_code == 303
    with pytest.raises(Exception, match="Sign in"):
        services.console_users.get_session(token)
    visitor.cookies["tierkit_console"] = token  # a stolen cookie after logout is worth nothing
    assert visitor.get("/console/companies").status_code == 303


def test_console_pages__carry_the_security_headers(console: ConsoleClient) -> None:
    for path in ("/console/companies", "/console/features", "/console/login", "/console/nope"):
        response = console.get(path)

        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "same-origin"
    assert console.get("/console/nope").status_code == 404


def test_post__without_or_with_a_wrong_csrf_token__403_and_nothing_written(
    console: ConsoleClient, api: httpx.Client
) -> None:
    body = {"key": "seats", "name": "Seats", "type": "numeric"}

    missing = console.post("/console/features/new", body, csrf="")
    wrong = console.post("/console/features/new", body, csrf="x" * 43)

    assert missing.status_code == 403
    assert wrong.status_code == 403
    assert "security token" in wrong.text
    assert api.get("/v1/features/seats").status_code == 404


def test_feature_form__bad_input__400_with_the_apis_message_by_the_field(
    console: ConsoleClient, api: httpx.Client
) -> None:
    console.get("/console/features/new")
    response = console.post(
        "/console/features/new", {"key": "Bad Key!", "name": "Seats", "type": "numeric"}
    )

    assert response.status_code == 400
    assert 'id="f-key" name="key" type="text" value="Bad Key!"' in response.text
    assert 'aria-invalid="true" aria-describedby="f-key-hint f-key-error"' in response.text
    assert 'id="f-key-error" class="error">String should match pattern' in response.text
    assert api.get("/v1/features", params={"limit": 500}).json()["data"] == []


def test_feature_form__a_default_of_the_wrong_type__400_from_the_service(
    console: ConsoleClient,
) -> None:
    console.get("/console/features/new")
    response = console.post(
        "/console/features/new",
        {"key": "sso", "name": "SSO", "type": "boolean", "default": "maybe"},
    )

    assert response.status_code == 400
    assert 'id="f-default-error" class="error">' in response.text
    assert 'id="f-default-error" class="error"></small>' not in response.text


def test_catalog_and_customer_changes__audited_as_the_console_user(
    console: ConsoleClient, api: httpx.Client
) -> None:
    console.get("/console/features/new")
    created = console.post(
        "/console/features/new",
        {
            "key": "api_calls",
            "name": "API calls",
            "type": "metered",
            "meter.event": "api_call",
            "meter.aggregation": "count",
        },
    )
    assert created.status_code == 303, created.text
    console.get("/console/plans/new")
    plan = console.post(
        "/console/plans/new",
        {
            "key": "pro",
            "name": "Pro",
            "entitlements.api_calls.included": "true",
            "entitlements.api_calls.value": "1,000",
            "price_count": "1",
            "prices.0.interval": "month",
            "prices.0.currency": "usd",
            "prices.0.amount": "2900",
            "prices.0.default": "true",
        },
    )
    assert plan.status_code == 303, plan.text
    console.get("/console/companies")
    assert console.post("/console/companies", {"key": "acme", "name": "Acme"}).status_code == 303
    page = console.get("/console/companies/acme")
    assert page.status_code == 200
    subscribed = console.post("/console/companies/acme/subscriptions", {"plan": "pro"})
    assert subscribed.status_code == 303
    override = console.post(
        "/console/companies/acme/overrides",
        {"feature": "api_calls", "value": "5000", "expires_at": "2099-01-01T00:00"},
    )
    assert override.status_code == 303

    entries = api.get("/v1/audit-log", params={"limit": 500}).json()["data"]
    mine = {(e["action"], e["resource_key"]) for e in entries if e["actor"] == f"console:{EMAIL}"}
    assert {
        ("feature.created", "api_calls"),
        ("plan.created", "pro"),
        ("company.created", "acme"),
        (
            "subscription.created",
            next(e["resource_key"] for e in entries if e["action"] == "subscription.created"),
        ),
        ("override.created", "acme/api_calls"),
    } <= mine
    others = [e for e in entries if e["resource_type"] != "api_key"]  # the test's own key
    assert {e["actor"] for e in others} == {f"console:{EMAIL}"}
    plan_body = api.get("/v1/plans/pro").json()
    assert plan_body["entitlements"][0]["value"] == 1000
    assert plan_body["prices"][0]["amount"] == 2900
    expires = api.get("/v1/companies/acme/overrides").json()["data"][0]["expires_at"]
    assert expires.startswith("2099-01-01T00:00:00")


def test_plan_form__bad_entitlement_value__400_next_to_that_feature_and_nothing_written(
    console: ConsoleClient, api: httpx.Client
) -> None:
    api.post("/v1/features", json={"key": "seats", "name": "Seats", "type": "numeric"})
    console.get("/console/plans/new")
    response = console.post(
        "/console/plans/new",
        {
            "key": "team",
            "name": "Team",
            "entitlements.seats.included": "true",
            "entitlements.seats.value": "lots",
            "price_count": "1",
            "prices.0.amount": "",
        },
    )

    assert response.status_code == 400
    assert 'id="e-seats-err"' in response.text
    assert api.get("/v1/plans/team").status_code == 404


def test_company_page__unknown_company__404_page_not_json(console: ConsoleClient) -> None:
    response = console.get("/console/companies/nobody")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "nobody" in response.text


def test_override_form__expiry_not_a_time__400_by_the_field(
    console: ConsoleClient, api: httpx.Client
) -> None:
    api.post("/v1/features", json={"key": "sso", "name": "SSO", "type": "boolean"})
    api.put("/v1/companies/acme", json={})
    console.get("/console/companies/acme")

    response = console.post(
        "/console/companies/acme/overrides",
        {"feature": "sso", "value": "true", "expires_at": "next tuesday"},
    )

    assert response.status_code == 400
    assert 'id="f-expires_at-error" class="error">' in response.text
    assert api.get("/v1/companies/acme/overrides").json()["data"] == []


def test_environment_switcher__shows_the_other_environments_catalog(
    console: ConsoleClient, api: httpx.Client, production: httpx.Client
) -> None:
    api.post("/v1/features", json={"key": "dev_only", "name": "Dev only", "type": "boolean"})
    production.post("/v1/features", json={"key": "prod_only", "name": "Prod", "type": "boolean"})
    console.get("/console/features")

    switched = console.post(
        "/console/environment", {"environment": "production", "back": "/console/features/x"}
    )
    page = console.get(switched.headers["location"])

    assert switched.headers["location"] == "/console/features"
    assert "prod_only" in page.text
    assert "dev_only" not in page.text


def test_console_users__weak_password_and_duplicates_are_refused(services: Services) -> None:
    with pytest.raises(InvalidRequest, match="12"):
        services.console_users.create_user("a@example.com", "short")
    services.console_users.create_user("a@example.com", PASSWORD)
    with pytest.raises(Conflict):
        services.console_users.create_user("A@example.com", PASSWORD)


def test_cli_create_admin__prompted_password__the_user_can_sign_in(
    database_url: str, server_url: str
) -> None:
    from typer.testing import CliRunner

    from tierkit.cli.commands import app

    typed = f"{PASSWORD}\n{PASSWORD}\n"
    result = CliRunner().invoke(
        app,
        ["users", "create-admin", "--email", "new@example.com", "--database-url", database_url],
        input=typed,
    )
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(
        app,
        ["users", "create-admin", "--email", "new@example.com", "--password", PASSWORD,
         "--database-url", database_url],
    )  # fmt: skip
    assert again.exit_code == 1

    client = ConsoleClient(server_url)
    try:
        assert client.sign_in("new@example.com").status_code == 303
    finally:
        client.close()


def test_every_section__renders_for_a_signed_in_user(
    console: ConsoleClient, api: httpx.Client
) -> None:
    api.post("/v1/features", json={"key": "sso", "name": "SSO", "type": "boolean"})
    plan = {"key": "pro", "name": "Pro", "entitlements": [{"feature": "sso", "value": True}]}
    plan["prices"] = [{"interval": "month", "currency": "usd", "amount": 2900, "default": True}]
    api.post("/v1/plans", json=plan)

    for path in (
        "/console/plans",
        "/console/plans/new",
        "/console/plans/pro",
        "/console/features/new",
        "/console/features/sso",
        "/console/webhooks",
        "/console/audit",
    ):
        assert console.get(path).status_code == 200, path
    preview = console.get("/console/plans", currency="usd", interval="month").text
    assert "29.00 USD" in preview
    assert "sso" not in console.get("/console/features", type="metered").text
    assert "sso" in console.get("/console/features", type="boolean").text
    audit = console.get("/console/audit", resource_type="plan", resource_key="pro").text
    assert "plan.created" in audit
    assert "feature.created" not in audit


def test_rules_form__rollout_saved_and_out_of_range_refused_by_the_field(
    console: ConsoleClient, api: httpx.Client
) -> None:
    api.post("/v1/features", json={"key": "beta", "name": "Beta", "type": "boolean"})
    console.get("/console/features/beta")
    rule = {
        "rule_count": "1",
        "rules.0.name": "early birds",
        "rules.0.value": "true",
        "rules.0.conditions": "[]",
        "rules.0.rollout": "25",
        "rules.0.rollout_by": "company",
    }

    saved = console.post("/console/features/beta/rules", rule)
    refused = console.post("/console/features/beta/rules", rule | {"rules.0.rollout": "150"})

    assert saved.status_code == 303
    assert refused.status_code == 400
    assert 'id="f-rules-0-rollout-error" class="error">Input should be less' in refused.text
    rules = api.get("/v1/features/beta/rules").json()["data"]
    assert rules[0]["rollout"]["percent"] == 25
    assert rules[0]["value"] is True


GARBAGE = [
    {},
    {"key": "", "name": "", "type": "nope", "quantity": "-1", "value": "\u0000"},
    {"key": "x" * 400, "name": "y" * 300, "type": "metered", "default": "1e999"},
    {"plan": "Bad Plan", "feature": "../etc", "expires_at": "9999-99-99T99:99", "rollout": "NaN"},
    {"rule_count": "99999999999", "price_count": "5", "prices.0.amount": "1e30"},
    {"rule_count": "1", "rules.0.name": "r", "rules.0.conditions": "{not json"},
    {"environment": "nowhere", "entitlements.x.included": "true", "unlimited": "maybe"},
]


def test_every_form__garbage_input__answers_4xx_or_a_redirect_never_500(
    console: ConsoleClient, api: httpx.Client
) -> None:
    api.post("/v1/features", json={"key": "sso", "name": "SSO", "type": "boolean"})
    api.post("/v1/plans", json={"key": "pro", "name": "Pro"})
    api.put("/v1/companies/acme", json={"plan": "pro"})
    sub_id = api.get("/v1/companies/acme/subscriptions").json()["data"][0]["id"]
    console.get("/console/companies")
    paths = [
        "/console/features/new",
        "/console/features/sso",
        "/console/features/sso/rules",
        "/console/features/sso/archive",
        "/console/plans/new",
        "/console/plans/pro",
        "/console/companies",
        "/console/companies/acme/subscriptions",
        f"/console/companies/acme/subscriptions/{sub_id}/quantity",
        "/console/companies/acme/overrides",
        "/console/companies/acme/overrides/sso/delete",
        "/console/companies/nobody/overrides",
        "/console/environment",
        "/console/no/such/form",
    ]
    for path in paths:
        for body in GARBAGE:
            response = console.post(path, body)
            assert response.status_code < 500, (path, body, response.text[-500:])
            if response.status_code != 303:
                assert response.headers["content-type"].startswith("text/html"), path
    for query in ({"q": "q" * 300}, {"cursor": "!!"}, {"interval": "x", "currency": "€€€"}):
        for path in ("/console/companies", "/console/plans", "/console/audit"):
            assert console.get(path, **query).status_code < 500, (path, query)


def test_override__edit_then_remove__the_value_follows(
    console: ConsoleClient, api: httpx.Client
) -> None:
    api.post("/v1/features", json={"key": "seats", "name": "Seats", "type": "numeric"})
    api.put("/v1/companies/acme", json={})
    console.get("/console/companies/acme")

    console.post("/console/companies/acme/overrides", {"feature": "seats", "value": "5"})
    edited = console.post(
        "/console/companies/acme/overrides",
        {"feature": "seats", "value": "9", "expires_at": "2099-06-01T12:30", "note": "deal"},
    )
    after_edit = api.get("/v1/companies/acme/overrides").json()["data"]
    removed = console.post("/console/companies/acme/overrides/seats/delete")
    page = console.get("/console/companies/acme").text

    assert edited.status_code == 303
    assert [(o["value"], o["expires_at"][:16], o["note"]) for o in after_edit] == [
        (9, "2099-06-01T12:30", "deal")
    ]
    assert removed.status_code == 303
    assert api.get("/v1/companies/acme/overrides").json()["data"] == []
    assert "No overrides in force." in page


def test_subscription_quantity__changed_and_zero_refused_by_its_field(
    console: ConsoleClient, api: httpx.Client
) -> None:
    api.post("/v1/plans", json={"key": "extra", "name": "Extra", "type": "add_on"})
    api.put("/v1/companies/acme", json={})
    sub = api.post("/v1/companies/acme/subscriptions", json={"plan": "extra"}).json()
    console.get("/console/companies/acme")
    path = f"/console/companies/acme/subscriptions/{sub['id']}/quantity"

    changed = console.post(path, {"quantity": "3"})
    refused = console.post(path, {"quantity": "0"})

    assert changed.status_code == 303
    assert refused.status_code == 400
    assert f'id="q-{sub["id"]}-error">' in refused.text
    assert api.get(f"/v1/companies/acme/subscriptions/{sub['id']}").json()["quantity"] == 3


def test_sign_in__ten_failures__the_eleventh_is_refused_even_with_the_right_password(
    visitor: ConsoleClient, admin: str
) -> None:
    for _ in range(10):
        assert visitor.sign_in(admin, "wrong password, again").status_code == 401

    response = visitor.sign_in(admin)

    assert response.status_code == 401
    assert "Too many failed sign-ins" in response.text


def test_htmx_style_post__csrf_token_in_the_header__accepted(
    console: ConsoleClient, api: httpx.Client
) -> None:
    console.get("/console/companies")
    response = console.http.post(
        "/console/companies",
        data={"key": "globex"},
        headers={**console.cookie_header(), "X-CSRF-Token": console.csrf},
    )

    assert response.status_code == 303
    assert api.get("/v1/companies/globex").status_code == 200


def test_enum_feature_form__options_one_a_line__and_a_bad_option_key_is_named(
    console: ConsoleClient, api: httpx.Client
) -> None:
    console.get("/console/features/new")
    base = {"key": "support", "name": "Support", "type": "enum", "default": "email"}

    refused = console.post("/console/features/new", base | {"options": "email: Email\nBad Key"})
    created = console.post(
        "/console/features/new", base | {"options": "email: Email\n\nchat: Live chat\n"}
    )

    assert refused.status_code == 400
    assert 'id="f-options-error" class="error">' in refused.text
    assert 'id="f-options-error" class="error"></small>' not in refused.text
    assert created.status_code == 303
    feature = api.get("/v1/features/support").json()
    assert feature["options"] == [
        {"key": "email", "name": "Email"},
        {"key": "chat", "name": "Live chat"},
    ]
    assert feature["default"] == "email"
    assert feature["meter"] is None

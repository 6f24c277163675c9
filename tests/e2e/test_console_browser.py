"""The console in real headless Chromium (Debian's, driven by Playwright): sign in, create a
feature and a plan, subscribe a company, add an expiring override and see the value and its
reason change, see usage bars move after events, see a validation error. Screenshots of the
main pages go to $TIERKIT_SCREENSHOTS_DIR (CI sets docs/screenshots/, the README's pictures),
else to a temporary folder, so a local `make test` leaves the checkout clean."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.console import PASSWORD
from tierkit.server.services.container import Services

CHROMIUM = Path("/usr/bin/chromium")
EMAIL = "support@example.com"

if not CHROMIUM.exists() and os.environ.get("TIERKIT_REQUIRE_BROWSER") != "1":
    pytest.skip(
        "no /usr/bin/chromium (apt-get install chromium; CI sets TIERKIT_REQUIRE_BROWSER=1)",
        allow_module_level=True,
    )

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e


@pytest.fixture
def browser_page(server_url: str) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(base_url=server_url, viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("TIERKIT_SCREENSHOTS_DIR")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


def shoot(page: Any, name: str, directory: Path) -> None:
    """Save a screenshot; written aside and renamed, as both databases' runs may save at once."""
    directory.mkdir(parents=True, exist_ok=True)
    aside = directory / f".{name}.{os.getpid()}.png"
    aside.write_bytes(page.screenshot(full_page=True))
    aside.replace(directory / f"{name}.png")


def test_console_in_chromium__catalog_to_customer_with_override_and_usage(
    browser_page: Any, services: Services, api: httpx.Client, screenshots: Path
) -> None:
    page = browser_page
    expect = sync_api.expect
    services.console_users.create_user(EMAIL, PASSWORD)

    # Sign in (after being sent to the sign-in page).
    page.goto("/console/features")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    shoot(page, "sign-in", screenshots)
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/features$"))

    # A validation error: the message is next to the field, the field is marked invalid.
    page.goto("/console/features/new")
    page.locator("#f-key").fill("Not A Key")
    page.locator("#f-name").fill("Broken")
    page.get_by_role("button", name="Create feature").click()
    key_field = page.locator("#f-key")
    expect(key_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-key-error")).to_contain_text("String should match pattern")
    expect(page.get_by_role("alert")).to_be_visible()

    # A metered feature (the meter fieldset appears for the type).
    page.locator("#f-key").fill("api_calls")
    page.locator("#f-name").fill("API calls")
    page.locator("#f-type").select_option("metered")
    page.locator("#f-meter-event").fill("api_call")
    page.get_by_role("button", name="Create feature").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    page.goto("/console/features")
    expect(page.get_by_role("link", name="api_calls")).to_be_visible()
    shoot(page, "features", screenshots)

    # A plan with the feature's limit and a price, on one screen.
    page.goto("/console/plans/new")
    page.locator("#f-key").fill("pro")
    page.locator("#f-name").fill("Pro")
    page.get_by_label("Include API calls").check()
    page.get_by_label("API calls value").fill("100")
    page.locator("#f-prices-0-amount").fill("2900")
    page.get_by_role("button", name="Create plan").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    shoot(page, "plan-editor", screenshots)

    # A company, subscribed to the plan.
    page.goto("/console/companies")
    page.locator("#f-key").fill("acme")
    page.locator("#f-name").fill("Acme Inc")
    page.get_by_role("button", name="Add company").click()
    expect(page.get_by_role("heading", name="Acme Inc")).to_be_visible()
    page.locator("#f-plan").select_option("pro")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.locator("#current-plan")).to_have_text("pro")
    row = page.locator("#ent-api_calls")
    expect(row.locator(".ent-value")).to_have_text("100")
    expect(row.locator(".ent-reason")).to_contain_text("plan")

    # Usage bars move after events.
    expect(page.locator("#usage-api_calls .used")).to_have_text("0")
    sent = api.post(
        "/v1/events",
        json={"events": [{"company": "acme", "event": "api_call"} for _ in range(7)]},
    )
    assert sent.status_code in (200, 202), sent.text
    page.reload()
    expect(page.locator("#usage-api_calls .used")).to_have_text("7")
    expect(page.locator("#usage-api_calls progress")).to_have_attribute("value", "7")

    # An override that expires: the value and its reason change, and the why says so.
    page.locator("#f-feature").select_option("api_calls")
    page.locator("#f-value").fill("5000")
    page.locator("#f-expires_at").fill("2099-01-01T00:00")
    page.get_by_role("button", name="Save override").click()
    expect(row.locator(".ent-value")).to_have_text("5000")
    expect(row.locator(".ent-reason")).to_contain_text("override")
    row.get_by_text("why?").click()
    expect(row.locator(".why")).to_contain_text("until 2099-01-01 00:00 UTC")
    shoot(page, "company", screenshots)

    # Every change is in the audit log as the console user's.
    page.goto("/console/audit")
    expect(page.locator("td.actor").first).to_have_text(f"console:{EMAIL}")
    shoot(page, "audit-log", screenshots)

    # At phone width the page still fits the screen (no sideways scrolling of the page).
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/console/companies/acme")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    shoot(page, "company-phone", screenshots)

"""Accessibility: axe-core (from its npm package) runs in a real Chromium on every page type, for
the visitor who sees it, in English and Japanese: zero serious or critical WCAG 2.1 A/AA
violations. Keyboard use and visible focus are checked on the forms people fill most."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.seed import DEMO_PASSWORD
from server.settings import ROOT
from tests.conftest import empty_all_tables
from tests.e2e.axe import fetch_axe
from tests.e2e.conftest import LiveServer, _unavailable, launched

pytestmark = [pytest.mark.browser, pytest.mark.shared_data]

ANONYMOUS_PAGES = [
    "/",
    "/help",
    "/help/categories/getting-started",
    "/help/sections/first-steps",
    "{article}",
    "/search?q=invoice",
    "/search?q=zzzqqqxxy",  # the empty state
    "/login",
    "/signup",
    "/forgot-password",
    "/no-such-page",
    "/community",
    "/community/c/getting-started",
    "{thread}",
    "/community/tags/api",
    "/chat",
]
CUSTOMER_PAGES = [
    "/profile",
    "/help",
    "{article}",
    "/community/new",
    "{thread}",
    "/community/bookmarks",
    "/notifications",
    "/notifications/preferences",
    "/support/new",
    "/support/tickets",
    "{my_ticket}",
    "/chat",
]
ORG_ADMIN_PAGES = ["{organisation}"]
AGENT_PAGES = [
    "/help/manage",
    "/help/manage/articles/new",
    "{article_editor}",
    "/desk",
    "/desk?view=unassigned",
    "{desk_ticket}",
    "/desk/search?q=export",
    "/desk/chats",
]
ADMIN_PAGES = [
    "/admin",
    "/admin/users",
    "/admin/organisations",
    "/admin/search",
    "/admin/mail",
    "/admin/jobs",
    "/admin/desk",
]
# Every page type a role can reach, signed in as that role (demo accounts from `seed`).
ROLE_PAGES = {
    "anonymous": (None, ANONYMOUS_PAGES),
    "customer": ("customer@harborlight.example", CUSTOMER_PAGES),
    "org admin": ("orgadmin@aozora-logistics.example", ORG_ADMIN_PAGES),
    "agent": ("agent@lumenfold.example", AGENT_PAGES),
    "admin": ("admin@lumenfold.example", ADMIN_PAGES),
}
BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="module")
def axe_source() -> str:
    path = fetch_axe()
    if path is None:
        _unavailable("axe-core could not be fetched with npm pack")
    return Path(path).read_text()


@pytest.fixture(scope="module")
async def seeded(live_server: LiveServer) -> None:
    """The whole demo, seeded once for the module (it is marked `shared_data`)."""
    await empty_all_tables()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "seed", cwd=ROOT, stdout=asyncio.subprocess.DEVNULL
    )
    assert await process.wait() == 0


@pytest.fixture
def browser(chromium: Path) -> Iterator[object]:
    with launched(chromium) as browser:
        yield browser


def _context(browser: object, locale: str):  # noqa: ANN202 - a Playwright BrowserContext
    # axe is injected as a script: the app's CSP (no inline script) is checked by other tests.
    context = browser.new_context(  # type: ignore[attr-defined]
        locale="ja-JP" if locale == "ja" else "en-US", bypass_csp=True, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    return context


def _sign_in(page, base_url: str, email: str) -> None:  # noqa: ANN001
    page.goto(f"{base_url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"^(?!.*/login).*$"))


def _violations(page, axe_source: str) -> list[str]:  # noqa: ANN001
    page.evaluate(axe_source)
    result = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
            resultTypes: ['violations'],
        })"""
    )
    found = []
    for violation in result["violations"]:
        if violation["impact"] in BLOCKING:
            targets = "; ".join(", ".join(node["target"]) for node in violation["nodes"][:5])
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} — {targets}")
    return found


def _fill_placeholders(page, base_url: str, paths: list[str]) -> list[str]:  # noqa: ANN001
    """Concrete URLs for page types whose URL depends on the demo data."""
    resolved = []
    for path in paths:
        if path == "{article}":
            page.goto(f"{base_url}/help/sections/first-steps")
            path = page.locator("main a[href^='/help/articles/']").first.get_attribute("href")
        elif path == "{article_editor}":
            page.goto(f"{base_url}/help/manage")
            path = page.locator("main a[href^='/help/manage/articles/']").first.get_attribute("href")
        elif path == "{thread}":
            page.goto(f"{base_url}/community/c/getting-started")
            path = page.locator("main a[href^='/community/t/']").first.get_attribute("href")
        elif path == "{my_ticket}":
            page.goto(f"{base_url}/support/tickets")
            path = page.locator("main a[href^='/support/tickets/']").first.get_attribute("href")
        elif path == "{desk_ticket}":
            page.goto(f"{base_url}/desk")
            path = page.locator("main a[href^='/desk/tickets/']").first.get_attribute("href")
        elif path == "{organisation}":
            page.goto(f"{base_url}/profile")
            path = page.locator("main a[href^='/organisations/']").first.get_attribute("href")
        resolved.append(path)
    return resolved


@pytest.mark.parametrize("role", list(ROLE_PAGES))
def test_no_serious_accessibility_violations(
    role: str, seeded: None, live_server: LiveServer, browser: object, axe_source: str
) -> None:
    email, paths = ROLE_PAGES[role]
    base = live_server.base_url
    problems = {}
    for locale in ("en", "ja"):
        context = _context(browser, locale)
        page = context.new_page()
        if email:
            _sign_in(page, base, email)
        for path in _fill_placeholders(page, base, paths):
            page.goto(f"{base}{path}")
            page.wait_for_load_state("networkidle")
            if found := _violations(page, axe_source):
                problems[f"{path} ({locale})"] = found
        context.close()
    assert not problems, "\n".join(f"{path}:\n  " + "\n  ".join(found) for path, found in problems.items())


def test_search_and_sign_in_work_with_the_keyboard_alone(
    seeded: None, live_server: LiveServer, browser: object
) -> None:
    context = _context(browser, "en")
    page = context.new_page()
    page.goto(f"{live_server.base_url}/login")
    # Tab from the top of the page reaches the email field; focus is visible where it lands.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.name") == "email":
            break
    else:
        pytest.fail("Tab never reached the email field")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    shadow = page.evaluate("getComputedStyle(document.activeElement).boxShadow")
    assert outline != "none" or shadow != "none", "the focused field shows no focus indicator"
    page.keyboard.type("customer@harborlight.example")
    page.keyboard.press("Tab")
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"^(?!.*/login).*$"))
    assert page.locator("header").get_by_text("Sam Whitlock").count() >= 1 or "/login" not in page.url
    context.close()

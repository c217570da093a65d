"""The support journey in real browsers: a customer types a question on the web form, sees a
help article suggested, sends the request anyway; an agent (another browser context) opens it
in the desk and replies; the reply appears on the customer's page without a reload.

A screenshot is taken at every step; they are kept (and their folder printed) only when the
test fails."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from server.policy import Actor
from tests.e2e.conftest import BrowserPage, ConsoleProblems, LiveServer
from tests.factories import PASSWORD, make_user
from tests.kb.factories import make_article, make_category, make_section

pytestmark = pytest.mark.browser

ARTICLE = "Reset a forgotten password"


@dataclass
class Scene:
    customer: Actor
    agent: Actor


@pytest.fixture
async def scene() -> Scene:
    editor = await make_user("agent", name="Edith Editor", email="edith.journey@example.test")
    category = await make_category(editor, "accounts")
    section = await make_section(editor, category, "sign-in")
    await make_article(
        editor, section, ARTICLE, "Open the sign-in page and choose *Forgot password*; we mail you a link.\n"
    )
    customer = await make_user(name="Casey Journey", email="casey.journey@example.test")
    agent = await make_user("agent", name="Ada Journey", email="ada.journey@example.test")
    return Scene(customer, agent)


class Shots:
    """Numbered screenshots of the journey, in a folder kept only if the test fails."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.failed = False

    def take(self, page: Any, name: str) -> None:
        self.count += 1
        page.screenshot(path=str(self.folder / f"{self.count:02d}-{name}.png"), full_page=True)


@pytest.fixture
def shots(tmp_path: Path) -> Iterator[Shots]:
    folder = tmp_path / "desk-journey-screenshots"
    folder.mkdir()
    taken = Shots(folder)
    yield taken
    if not taken.failed:
        shutil.rmtree(folder, ignore_errors=True)


def _searchable(base_url: str, query: str) -> bool:
    url = f"{base_url}/api/v1/search?" + urllib.parse.urlencode({"q": query, "types": "kb"})
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our http URL
        body = json.loads(response.read())
    return bool(body["total"]) and not body["degraded"]


def _sign_in(page: Any, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    main = page.locator("main")
    main.get_by_label("Email").fill(email)
    main.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


def test_customer_asks_and_sees_the_agents_reply_live(
    scene: Scene,  # first: its database work runs before the browser's own event loop starts
    meili_server: str,
    live_server: LiveServer,
    browser_page: BrowserPage,
    shots: Shots,
) -> None:
    from playwright.sync_api import expect

    base = live_server.base_url
    deadline = time.monotonic() + 60
    while not _searchable(base, "forgotten password"):  # the live worker indexes the article
        assert time.monotonic() < deadline, f"the article never became searchable\n{live_server.log_tails()}"
        time.sleep(0.5)

    customer = browser_page.page
    agent_context = customer.context.browser.new_context(locale="en-US", viewport={"width": 1400, "height": 900})  # type: ignore[union-attr]
    agent = agent_context.new_page()
    agent.set_default_timeout(15_000)
    agent_problems = ConsoleProblems()
    agent.on("console", agent_problems.on_console)
    agent.on("pageerror", agent_problems.on_page_error)
    try:
        # 1. The customer types a question; a matching article is suggested while typing.
        _sign_in(customer, base, scene.customer.email)
        customer.goto(f"{base}/support/new")
        customer.get_by_label("Subject").press_sequentially("Forgotten password", delay=30)
        suggestion = customer.locator("#support-suggestions a[data-deflection-doc]", has_text=ARTICLE)
        expect(suggestion).to_be_visible(timeout=10_000)
        assert customer.url == f"{base}/support/new"  # suggestions came without leaving the form
        shots.take(customer, "suggestion")

        # 2. ...and sends the request anyway.
        customer.get_by_label("How can we help?").fill("The reset mail never arrives. What now?")
        customer.get_by_role("button", name="Send request").click()
        customer.wait_for_url(f"{base}/support/tickets/*")
        ticket_id = int(customer.url.rsplit("/", 1)[1].split("#")[0])
        expect(customer.locator(f"#conversation-{ticket_id}")).to_contain_text("The reset mail never arrives")
        customer.evaluate("window.kzJourneyMarker = 'still the same page'")
        customer.wait_for_timeout(1000)  # let the page's socket connect
        shots.take(customer, "request-sent")

        # 3. An agent finds it in the desk and replies.
        _sign_in(agent, base, scene.agent.email)
        agent.goto(f"{base}/desk?view=unassigned")
        link = agent.locator("#desk-list a[data-desk-link]", has_text="Forgotten password")
        expect(link).to_be_visible()
        shots.take(agent, "desk-list")
        link.click()
        agent.wait_for_url(f"{base}/desk/tickets/{ticket_id}")
        agent.locator("#f-body").fill("Hi Casey, check your spam folder; I have sent a fresh link.")
        shots.take(agent, "agent-reply")
        agent.get_by_role("button", name="Send", exact=True).click()
        expect(agent.locator(".notice-success")).to_contain_text("Reply sent.")

        # 4. The reply appears on the customer's page, without a reload.
        conversation = customer.locator(f"#conversation-{ticket_id} .ticket-message-public")
        expect(conversation).to_have_count(2, timeout=10_000)
        expect(conversation.nth(1)).to_contain_text("check your spam folder")
        expect(customer.locator(f"#ticket-status-{ticket_id}")).to_contain_text("Open")
        assert customer.evaluate("window.kzJourneyMarker") == "still the same page"
        shots.take(customer, "reply-arrived")
        assert browser_page.problems.messages == [], browser_page.problems.messages
        assert agent_problems.messages == [], agent_problems.messages
    except Exception:
        shots.failed = True
        for page, name in ((customer, "failure-customer"), (agent, "failure-agent")):
            with contextlib.suppress(Exception):  # the page may be gone; the test's own error is what matters
                shots.take(page, name)
        print(f"\ndesk journey screenshots: {shots.folder}\nlive server logs:\n{live_server.log_tails()}")
        raise
    finally:
        agent_context.close()

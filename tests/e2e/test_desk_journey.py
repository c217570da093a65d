"""The support journey in real browsers: a customer types a question on the web form, sees a
help article suggested, sends the request anyway; an agent (another browser context) opens it
in the desk and replies, solving it; the reply appears on the customer's page without a reload;
the customer rates the answer (good, with a comment) in the portal and the agent sees it.

Each step is a screenshot (`step`); they are kept in test-results/ only when the test fails."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest

from server.policy import Actor
from tests.e2e.conftest import BrowserPage, ConsoleProblems, LiveServer, step
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


def test_customer_asks_sees_the_agents_reply_live_and_rates_it(
    scene: Scene,  # first: its database work runs before the browser's own event loop starts
    meili_server: str,
    live_server: LiveServer,
    browser_page: BrowserPage,
) -> None:
    from playwright.sync_api import expect

    base = live_server.base_url
    deadline = time.monotonic() + 60
    while not _searchable(base, "forgotten password"):  # the live worker indexes the article
        assert time.monotonic() < deadline, f"the article never became searchable\n{live_server.log_tails()}"
        time.sleep(0.3)

    customer = browser_page.page
    # Left open on purpose: on failure the artifact hook screenshots every page still open.
    agent_context = customer.context.browser.new_context(locale="en-US", viewport={"width": 1400, "height": 900})  # type: ignore[union-attr]
    agent = agent_context.new_page()
    agent.set_default_timeout(15_000)
    agent_problems = ConsoleProblems()
    agent.on("console", agent_problems.on_console)
    agent.on("pageerror", agent_problems.on_page_error)

    # 1. The customer types a question; a matching article is suggested while typing.
    _sign_in(customer, base, scene.customer.email)
    customer.goto(f"{base}/support/new")
    customer.get_by_label("Subject").press_sequentially("Forgotten password", delay=30)
    suggestion = customer.locator("#support-suggestions a[data-deflection-doc]", has_text=ARTICLE)
    expect(suggestion).to_be_visible(timeout=10_000)
    assert customer.url == f"{base}/support/new"  # suggestions came without leaving the form
    step(customer, "customer-suggestion")

    # 2. ...and sends the request anyway.
    customer.get_by_label("How can we help?").fill("The reset mail never arrives. What now?")
    customer.get_by_role("button", name="Send request").click()
    customer.wait_for_url(f"{base}/support/tickets/*")
    ticket_id = int(customer.url.rsplit("/", 1)[1].split("#")[0])
    expect(customer.locator(f"#conversation-{ticket_id}")).to_contain_text("The reset mail never arrives")
    customer.evaluate("window.kzJourneyMarker = 'still the same page'")
    customer.wait_for_timeout(1000)  # let the page's socket connect
    step(customer, "customer-request-sent")

    # 3. An agent finds it in the desk and replies, submitting it as solved.
    _sign_in(agent, base, scene.agent.email)
    agent.goto(f"{base}/desk?view=unassigned")
    link = agent.locator("#desk-list a[data-desk-link]", has_text="Forgotten password")
    expect(link).to_be_visible()
    step(agent, "agent-desk-list")
    link.click()
    agent.wait_for_url(f"{base}/desk/tickets/{ticket_id}")
    expect(agent.locator("[data-desk-stale]")).to_be_hidden()  # nobody else changed it, nobody replied
    expect(agent.locator("[data-desk-reply-warning]")).to_be_hidden()
    agent.locator("#f-body").fill("Hi Casey, check your spam folder; I have sent a fresh link.")
    agent.get_by_label("Submit as").select_option("solved")
    step(agent, "agent-reply")
    agent.get_by_role("button", name="Send", exact=True).click()
    expect(agent.locator(".notice-success")).to_contain_text("Reply sent.")

    # 4. The reply and the new status appear on the customer's page, without a reload.
    conversation = customer.locator(f"#conversation-{ticket_id} .ticket-message-public")
    expect(conversation).to_have_count(2, timeout=10_000)
    expect(conversation.nth(1)).to_contain_text("check your spam folder")
    expect(customer.locator(f"#ticket-status-{ticket_id}")).to_contain_text("Solved")
    assert customer.evaluate("window.kzJourneyMarker") == "still the same page"
    step(customer, "customer-reply-arrived")

    # 5. The customer rates the answer on the ticket page: good, with a comment.
    customer.reload()
    rating = customer.locator("#csat")
    expect(rating.get_by_role("heading", name="How did we do?")).to_be_visible()
    rating.get_by_label("Good, I'm satisfied").check()
    rating.get_by_label("Comment (optional)").fill("The fresh link worked, thank you!")
    step(customer, "customer-rating")
    rating.get_by_role("button", name="Send my rating").click()
    expect(customer.get_by_role("status").filter(has_text="Thank you for your rating.")).to_be_visible()
    expect(rating.locator(".csat-badge")).to_have_text("Good")
    expect(rating.locator(".csat-comment")).to_have_text("The fresh link worked, thank you!")
    step(customer, "customer-rated")

    # 6. The agent sees the rating among the satisfaction report's comments.
    agent.goto(f"{base}/desk/reports/csat")
    rated = agent.locator("main li", has=agent.locator(f"a[href='/desk/tickets/{ticket_id}']"))
    expect(rated.locator(".csat-badge")).to_have_text("Good")
    expect(rated.locator(".csat-comment")).to_have_text("The fresh link worked, thank you!")
    step(agent, "agent-sees-rating")
    assert browser_page.problems.messages == [], browser_page.problems.messages
    assert agent_problems.messages == [], agent_problems.messages

"""Keyboard alone: the search forms, the forum reply form and both ticket forms (the customer's
new request, the agent's reply) are reached with Tab from the top of the page, filled by typing
and sent with Enter or Space. Every control Tab stops on, on the way and at the goal, shows a
visible focus indicator (a computed outline or box shadow)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from server.policy import Actor
from tests.desk.factories import make_ticket
from tests.e2e.conftest import BrowserPage, LiveServer, step
from tests.factories import PASSWORD, make_user
from tests.forum.factories import make_category, make_thread

pytestmark = pytest.mark.browser

MAX_TABS = 200
FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    return {
        what: `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}`
            + ` "${(el.getAttribute('aria-label') || el.innerText || el.name || '').trim().slice(0, 40)}"`,
        outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
        shadow: style.boxShadow !== 'none',
    };
}"""


def tab_to(page: Any, selector: str) -> None:
    """Press Tab until `selector` has focus; every stop must show where the focus is."""
    unseen: list[str] = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None:
            continue
        if not (focused["outline"] or focused["shadow"]):
            unseen.append(focused["what"])
        if page.evaluate("selector => document.activeElement.matches(selector)", selector):
            assert unseen == [], f"focus is not visible on: {unseen}"
            return
    pytest.fail(f"Tab never reached {selector} on {page.url} in {MAX_TABS} presses")


def sign_in(page: Any, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    main = page.locator("main")
    main.get_by_label("Email").fill(email)
    main.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


def test_search_forms_with_the_keyboard_alone(live_server: LiveServer, browser_page: BrowserPage) -> None:
    from playwright.sync_api import expect

    page = browser_page.page
    page.goto(f"{live_server.base_url}/help")
    tab_to(page, "#help-search")
    page.keyboard.type("invoice")
    step(page, "help-search-typed")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=invoice$"))
    expect(page.locator("#search-page-q")).to_have_value("invoice")

    # The header's search box, from the top of the results page.
    page.goto(f"{live_server.base_url}/help")
    tab_to(page, "#header-q")
    page.keyboard.type("timeline")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=timeline$"))
    expect(page.locator("#search-page-q")).to_have_value("timeline")
    assert browser_page.problems.messages == [], browser_page.problems.messages


@pytest.fixture
async def customer() -> Actor:
    return await make_user(name="Kei Keyboard", email="kei.keyboard@example.test")


def test_new_ticket_form_with_the_keyboard_alone(
    customer: Actor,  # first: its database work runs before the browser's own event loop starts
    live_server: LiveServer,
    browser_page: BrowserPage,
) -> None:
    from playwright.sync_api import expect

    page = browser_page.page
    sign_in(page, live_server.base_url, customer.email)
    page.goto(f"{live_server.base_url}/support/new")
    tab_to(page, "#f-subject")
    page.keyboard.type("Keyboard only request")
    tab_to(page, "#f-body")
    page.keyboard.type("Sent without touching the mouse.")
    tab_to(page, "#support-form button[type=submit]")
    step(page, "new-ticket-typed")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/support/tickets/\d+"))
    expect(page.locator("main h1")).to_contain_text("Keyboard only request")
    expect(page.locator("main .ticket-conversation")).to_contain_text("Sent without touching the mouse.")
    assert browser_page.problems.messages == [], browser_page.problems.messages


@dataclass
class DeskScene:
    agent: Actor
    ticket_id: int


@pytest.fixture
async def desk_scene(customer: Actor) -> DeskScene:
    agent = await make_user("agent", name="Aki Agent", email="aki.keyboard@example.test")
    return DeskScene(agent, await make_ticket(customer, "Tab order question", "Can I work without a mouse?"))


def test_agent_reply_form_with_the_keyboard_alone(
    desk_scene: DeskScene,  # first: its database work runs before the browser's own event loop starts
    live_server: LiveServer,
    browser_page: BrowserPage,
) -> None:
    from playwright.sync_api import expect

    page = browser_page.page
    sign_in(page, live_server.base_url, desk_scene.agent.email)
    page.goto(f"{live_server.base_url}/desk/tickets/{desk_scene.ticket_id}")
    tab_to(page, "#desk-editor #f-body")
    page.keyboard.type("Yes: everything works with the keyboard.")
    tab_to(page, "#desk-editor button[type=submit]")
    step(page, "agent-reply-typed")
    page.keyboard.press("Enter")
    expect(page.locator(".notice-success")).to_contain_text("Reply sent.")
    expect(page.locator("main")).to_contain_text("Yes: everything works with the keyboard.")
    assert browser_page.problems.messages == [], browser_page.problems.messages


@pytest.fixture
async def thread_id() -> int:
    asker = await make_user(name="Asa Asker", email="asa.keyboard@example.test")
    category = await make_category("keyboard-talk", qa=True)
    return await make_thread(asker, category, "Keyboard replies", "Can I reply with the keyboard?")


def test_forum_reply_form_with_the_keyboard_alone(
    customer: Actor,  # first: the database work runs before the browser's own event loop starts
    thread_id: int,
    live_server: LiveServer,
    browser_page: BrowserPage,
) -> None:
    from playwright.sync_api import expect

    page = browser_page.page
    sign_in(page, live_server.base_url, customer.email)
    page.goto(f"{live_server.base_url}/community/t/{thread_id}-keyboard-replies")
    tab_to(page, "#reply-body")
    page.keyboard.type("Yes, Tab and Space are enough.")
    tab_to(page, "#reply-form button[type=submit]")
    step(page, "forum-reply-typed")
    page.keyboard.press("Space")
    expect(page.locator("#reply-form .notice-success")).to_be_visible()
    posts = page.locator(f"#posts-tail-{thread_id} article.forum-post")
    expect(posts).to_have_count(2)
    expect(posts.nth(1)).to_contain_text("Yes, Tab and Space are enough.")
    assert browser_page.problems.messages == [], browser_page.problems.messages

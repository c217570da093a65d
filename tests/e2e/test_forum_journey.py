"""The community journey in real browsers: a customer asks a question in the forum, another user
answers it, the answer appears on the asker's page without a reload, the asker accepts it and
the accepted answer shows under the question, on both pages, live.

Each step is a screenshot (`step`); they are kept in test-results/ only when the test fails."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from server.policy import Actor
from tests.e2e.conftest import BrowserPage, ConsoleProblems, LiveServer, step
from tests.factories import PASSWORD, make_user
from tests.forum.factories import make_category

pytestmark = pytest.mark.browser

QUESTION = "How do I export a board to CSV?"
ANSWER = "Open the board menu and choose Export, then CSV. The file arrives by email."


@dataclass
class Scene:
    asker: Actor
    helper: Actor
    category: str


@pytest.fixture
async def scene() -> Scene:
    asker = await make_user(name="Asha Asker", email="asha.journey@example.test")
    helper = await make_user(name="Hiro Helper", email="hiro.journey@example.test")
    await make_category("questions", qa=True)
    return Scene(asker, helper, "Questions EN")


def _sign_in(page: object, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")  # type: ignore[attr-defined]
    main = page.locator("main")  # type: ignore[attr-defined]
    main.get_by_label("Email").fill(email)
    main.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")  # type: ignore[attr-defined]


def test_ask_answer_live_and_accept(
    scene: Scene,  # first: its database work runs before the browser's own event loop starts
    live_server: LiveServer,
    browser_page: BrowserPage,
) -> None:
    from playwright.sync_api import expect

    base = live_server.base_url
    asker = browser_page.page
    # Left open on purpose: on failure the artifact hook screenshots every page still open.
    helper = asker.context.browser.new_context(locale="en-US").new_page()  # type: ignore[union-attr]
    helper.set_default_timeout(15_000)
    helper_problems = ConsoleProblems()
    helper.on("console", helper_problems.on_console)
    helper.on("pageerror", helper_problems.on_page_error)

    # 1. The customer asks in the forum.
    _sign_in(asker, base, scene.asker.email)
    asker.goto(f"{base}/community/new")
    form = asker.locator("main form.forum-new")
    form.get_by_label("Category").select_option(label=scene.category)
    form.get_by_label("Title").fill(QUESTION)
    form.get_by_label("Your question or idea").fill("I need the cards **and** their custom fields.")
    step(asker, "asker-question")
    form.get_by_role("button", name="Post thread").click()
    asker.wait_for_url(re.compile(r"/community/t/\d+"))
    thread_url = asker.url.split("#")[0]
    thread_id = int(re.search(r"/community/t/(\d+)", thread_url).group(1))  # type: ignore[union-attr]
    expect(asker.locator("main h1")).to_contain_text(QUESTION)
    accepted = f"#accepted-{thread_id}"
    expect(asker.locator(accepted)).not_to_contain_text("Accepted answer")
    asker.evaluate("window.kzJourneyMarker = 'still the same page'")
    asker.wait_for_timeout(1000)  # let the page's socket connect
    step(asker, "asker-thread")

    # 2. Another user answers.
    _sign_in(helper, base, scene.helper.email)
    helper.goto(thread_url)
    helper.wait_for_timeout(500)  # its socket too: it should see the acceptance arrive
    helper.locator("#reply-body").fill(ANSWER)
    step(helper, "helper-answer")
    helper.get_by_role("button", name="Post reply").click()
    expect(helper.locator("#reply-form .notice-success")).to_be_visible()

    # 3. The answer appears on the asker's page without a reload.
    posts = asker.locator(f"#posts-tail-{thread_id} article.forum-post")
    expect(posts).to_have_count(2, timeout=10_000)
    answer = posts.nth(1)
    expect(answer).to_contain_text("Open the board menu and choose Export")
    step(asker, "asker-answer-arrived")

    # 4. The asker (and only the asker) may accept it; the accepted answer shows under the question.
    expect(helper.locator(f"#posts-tail-{thread_id} article.forum-post").nth(1).locator(".asker-only")).to_be_hidden()
    answer.get_by_role("button", name="Accept as answer").click()
    expect(asker.locator(accepted)).to_contain_text("Accepted answer", timeout=10_000)
    expect(asker.locator(accepted)).to_contain_text("Open the board menu and choose Export")
    expect(asker.locator(accepted)).to_contain_text("Hiro Helper")
    expect(answer.locator(".forum-accepted-marker")).to_contain_text("Accepted answer")
    assert asker.evaluate("window.kzJourneyMarker") == "still the same page"
    step(asker, "asker-accepted")

    # ...and the helper's page shows it too, live; after a reload it is still there.
    expect(helper.locator(accepted)).to_contain_text("Open the board menu and choose Export", timeout=10_000)
    step(helper, "helper-sees-accepted")
    asker.reload()
    expect(asker.locator(accepted)).to_contain_text("Open the board menu and choose Export")
    assert browser_page.problems.messages == [], browser_page.problems.messages
    assert helper_problems.messages == [], helper_problems.messages

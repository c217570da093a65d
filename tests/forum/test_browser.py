"""Two people on one thread in real browsers: a reply posted in one page appears in the other
without a reload (htmx + the realtime websocket), and the author alone sees their edit button."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from server.policy import Actor
from tests.e2e.conftest import BrowserPage, LiveServer, browser_page, chromium, live_server  # noqa: F401
from tests.factories import PASSWORD, make_user
from tests.forum.factories import make_category, make_thread

pytestmark = pytest.mark.browser


@dataclass
class Scene:
    asker: Actor
    helper: Actor
    thread_id: int


@pytest.fixture
async def scene() -> Scene:
    asker = await make_user(name="Asha Asker", email="asha.browser@example.test")
    helper = await make_user(name="Hiro Helper", email="hiro.browser@example.test")
    category = await make_category("browser-talk", qa=True)
    thread_id = await make_thread(asker, category, "Live replies in the browser", "Does this update by itself?")
    return Scene(asker, helper, thread_id)


def _sign_in(page: object, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")  # type: ignore[attr-defined]
    main = page.locator("main")  # type: ignore[attr-defined]
    main.get_by_label("Email").fill(email)
    main.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")  # type: ignore[attr-defined]


def test_a_reply_in_one_page_appears_in_the_other(
    scene: Scene,  # first: its database work runs before the browser's own event loop starts
    live_server: LiveServer,  # noqa: F811
    browser_page: BrowserPage,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base = live_server.base_url
    reader = browser_page.page
    writer = reader.context.browser.new_context(locale="en-US").new_page()  # type: ignore[union-attr]
    writer.set_default_timeout(15_000)
    _sign_in(reader, base, scene.asker.email)
    _sign_in(writer, base, scene.helper.email)
    url = f"{base}/community/t/{scene.thread_id}-live-replies-in-the-browser"
    reader.goto(url)
    writer.goto(url)
    # The asker sees the edit control on their own post; the helper does not.
    own_controls = f"#posts-tail-{scene.thread_id} article.forum-post-first .own-only"
    expect(reader.locator(own_controls)).to_be_visible()
    expect(writer.locator(own_controls)).to_be_hidden()
    reader.wait_for_timeout(1000)  # let the socket connect

    writer.locator("#reply-body").fill("Yes, it does: this reply came over the websocket.")
    writer.get_by_role("button", name="Post reply").click()
    expect(writer.locator("#reply-form .notice-success")).to_be_visible()

    posts = reader.locator(f"#posts-tail-{scene.thread_id} article.forum-post")
    expect(posts).to_have_count(2, timeout=10_000)
    expect(posts.nth(1)).to_contain_text("this reply came over the websocket")
    assert reader.url == url  # no reload, no navigation
    expect(writer.locator(f"#posts-tail-{scene.thread_id} article.forum-post")).to_have_count(2)  # not twice
    assert not browser_page.problems.messages, browser_page.problems.messages

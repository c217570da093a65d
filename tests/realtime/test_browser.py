"""static/js/live.js in Chromium: one socket from the page's channel markers, catch-up from the
page's event id, fragments swapped by htmx's ws extension, replays not shown twice."""

from __future__ import annotations

from tests.e2e.conftest import BrowserPage
from tests.realtime.conftest import WebProcess
from tests.realtime.test_live import said


def test_a_page_catches_up_and_receives_live_fragments(web: WebProcess, browser_page: BrowserPage) -> None:
    page = browser_page.page
    before = web.publish("room:30", "room.said", said(30, 1, "before the page"))
    missed = web.publish("room:30", "room.said", said(30, 2, "while rendering"))
    page.goto(f"{web.base_url}/_test/page?room=30&last={before}&shown=1")
    page.locator("#said-2").wait_for()  # caught up from the page's id
    # (on PostgreSQL the recent window also resends post 1: it replaces the copy, never adds one)
    assert page.locator("#said-1").count() == 1
    web.wait_subscribers("room:30", 1)
    web.publish("room:30", "room.said", said(30, 3, "live"))
    page.locator("#said-3").wait_for()
    # the same post published again (a replay) replaces the element instead of adding a copy
    web.publish("room:30", "room.said", said(30, 3, "live, edited"))
    page.get_by_text("live, edited").wait_for()
    assert page.locator("#room-30 p").all_inner_texts()[1:] == ["while rendering", "live, edited"]
    assert page.locator("#room-30 p").count() == 3
    assert page.locator("[ws-connect]").count() == 1
    assert missed > before
    assert not browser_page.problems.messages, browser_page.problems.messages

"""A customer types in the header search box, sees answers appear, and picks one with the keyboard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from server.settings import ROOT
from tests.conftest import fresh_indexes
from tests.e2e.conftest import BrowserPage, LiveServer


def _api_search(base_url: str, query: str) -> dict:
    url = f"{base_url}/api/v1/search?" + urllib.parse.urlencode({"q": query})
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our http URL
        return json.loads(response.read())


@pytest.fixture
async def empty_indexes(meili_server: str) -> None:
    """Earlier modules' documents would answer "invoice" before the demo is indexed."""
    await fresh_indexes()


@pytest.mark.browser
def test_header_search_as_you_type_and_keyboard_pick(
    empty_indexes: None,  # first: its database work runs before the browser's own event loop starts
    live_server: LiveServer,
    browser_page: BrowserPage,
) -> None:
    subprocess.run(
        [sys.executable, "-m", "server", "seed", "--only", "help"],
        cwd=ROOT,
        env=os.environ,
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the live worker indexes the demo help center
        body = _api_search(live_server.base_url, "invoice")
        if body["total"] and not body["degraded"]:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"demo articles never became searchable: {body}\n{live_server.log_tails()}")

    page = browser_page.page
    page.goto(f"{live_server.base_url}/")
    box = page.locator("#header-q")
    box.press_sequentially("invoce", delay=40)  # a typo on purpose
    options = page.locator("#search-suggest [role=option] a[data-hit-id]")
    options.first.wait_for()
    page.wait_for_load_state("networkidle")  # the last keystroke's suggestions are in place
    assert options.count() >= 1
    assert page.url.rstrip("/") == live_server.base_url  # no full reload while typing
    box.press("ArrowDown")
    assert page.locator("#search-suggest [role=option]").first.get_attribute("aria-selected") == "true"
    target = options.first.get_attribute("href")
    box.press("Enter")
    page.wait_for_url(f"{live_server.base_url}{target}")
    assert "/help/articles/" in page.url
    assert page.locator("h1").first.is_visible()
    assert browser_page.problems.messages == []

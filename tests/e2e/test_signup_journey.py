"""A new customer's first visit in a real browser: sign up, confirm the emailed link, sign in,
switch to Japanese. Runs against the app as separate processes, with mail through real SMTP."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from server.i18n import CATALOG_DIR
from server.mailsink import list_captured
from tests.e2e.conftest import BrowserPage, LiveServer

pytestmark = pytest.mark.browser

MAIL_TIMEOUT_SECONDS = 20.0


def japanese(*msgids: str) -> dict[str, str]:
    """Translations read from the ja catalog now, so the test follows whatever the catalog says."""
    with (CATALOG_DIR / "ja" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="ja")
    found = {}
    for msgid in msgids:
        message = catalog.get(msgid)
        # Fuzzy entries are left out when the app compiles the catalog, so they do not count.
        assert message and message.string and not message.fuzzy, f"ja catalog has no translation for {msgid!r}"
        found[msgid] = message.string
    return found


def wait_for_link(server: LiveServer, to: str) -> str:
    """The link in the mail the worker delivered to the sink for `to`."""
    link = re.compile(re.escape(server.base_url) + r"/verify-email\?token=\S+")
    deadline = time.monotonic() + MAIL_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for mail in list_captured(server.mail_dir):
            if to in mail.to and (match := link.search(mail.body)):
                return match.group(0)
        time.sleep(0.2)
    pytest.fail(f"no verification mail to {to} within {MAIL_TIMEOUT_SECONDS}s\n{server.log_tails()}")


def test_sign_up_confirm_sign_in_and_read_the_site_in_japanese(
    live_server: LiveServer, browser_page: BrowserPage, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    ja = japanese("Help Center", "Community", "Sign out")
    page = browser_page.page
    email, password = "hana.sato@example.test", "a long enough passphrase"

    page.goto(f"{live_server.base_url}/signup")
    main = page.locator("main")
    main.get_by_label("Display name").fill("Hana Sato")
    main.get_by_label("Email").fill(email)
    main.get_by_label("Password").fill(password)
    main.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(main.get_by_role("status")).to_contain_text("we sent you an email")

    page.goto(wait_for_link(live_server, email))
    expect(main.get_by_role("heading", name="Confirm your email")).to_be_visible()
    main.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(main.get_by_role("status")).to_contain_text("Your email address is confirmed")

    main.get_by_label("Email").fill(email)
    main.get_by_label("Password").fill(password)
    main.get_by_role("button", name="Sign in").click()
    header = page.locator("header")
    expect(header.get_by_role("link", name="Hana Sato")).to_be_visible()
    expect(page.get_by_text("Please confirm your email address")).to_have_count(0)

    # app.js submits the footer form when the select changes; no button press needed.
    with page.expect_navigation():
        page.locator("footer").get_by_label("Language").select_option("ja")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    nav = header.get_by_role("navigation")
    expect(nav.get_by_role("link", name=ja["Help Center"], exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name=ja["Community"], exact=True)).to_be_visible()
    expect(header.get_by_role("button", name=ja["Sign out"])).to_be_visible()
    expect(header.get_by_role("link", name="Hana Sato")).to_be_visible()

    # Without the locale cookie the page stays Japanese: the choice was saved on the account.
    page.context.clear_cookies(name="kz_locale")
    page.reload()
    expect(nav.get_by_role("link", name=ja["Help Center"], exact=True)).to_be_visible()

    page.screenshot(path=tmp_path / "journey-ja.png", full_page=True)
    assert browser_page.problems.messages == []

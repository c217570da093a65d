"""A new customer's first visit in a real browser: sign up, confirm the emailed link, sign in,
switch to Japanese, search the Help Center in Japanese, read the article found and vote on it.
Runs against the app as separate processes (the worker indexes the demo Help Center into a real
Meilisearch), with mail through real SMTP. Each step is a screenshot kept only on failure."""

from __future__ import annotations

import asyncio
import re
import time
import tomllib

import pytest

from server import jobs
from server.i18n import load_catalog
from server.mailsink import list_captured
from server.search.sync import SYNC_KIND, wait_until_idle
from server.settings import ROOT
from tests.conftest import fresh_indexes
from tests.e2e.conftest import BrowserPage, LiveServer, step
from tests.factories import make_user
from tests.kb.factories import make_article, make_category, make_section, translate

pytestmark = pytest.mark.browser

MAIL_TIMEOUT_SECONDS = 20.0
INDEX_TIMEOUT_SECONDS = 60.0
DEMO_ARTICLES = ROOT / "server" / "kb" / "demo" / "articles"
ARTICLE = "請求書と領収書"  # the demo's Japanese article on invoices: for signed-in visitors only


def japanese(*msgids: str) -> dict[str, str]:
    """Translations read from the ja catalog now, so the test follows whatever the catalog says."""
    catalog = load_catalog("ja")
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


def demo_article(name: str, locale: str) -> tuple[str, str]:
    """Title and Markdown of one article of the demo Help Center."""
    _, front, body = (DEMO_ARTICLES / f"{name}.{locale}.md").read_text().split("+++", 2)
    return tomllib.loads(front)["title"], body


@pytest.fixture
async def help_center(meili_server: str, live_server: LiveServer) -> None:
    """Three demo articles in English and Japanese (the invoice ones for signed-in visitors only),
    made through the services and indexed by the live worker before the journey starts
    (into empty indexes: earlier modules' documents would show as look-alike hits)."""
    await fresh_indexes()
    editor = await make_user("agent", name="Edith Editor", email="edith.signup@example.test")
    billing = await make_section(
        editor, await make_category(editor, "account-billing", visibility="signed_in"), "invoices"
    )
    basics = await make_section(editor, await make_category(editor, "getting-started"), "first-steps")
    for section, name in (
        (billing, "37-invoices-and-receipts"),
        (billing, "38-qualified-invoices-japan"),
        (basics, "43-wareki-date-display"),
    ):
        article_id = await make_article(editor, section, *demo_article(name, "en"), slug=name.split("-", 1)[1])
        await translate(editor, article_id, *demo_article(name, "ja"))
    pending = (jobs.Job.kind == SYNC_KIND) & (jobs.Job.status != jobs.DONE)
    deadline = time.monotonic() + INDEX_TIMEOUT_SECONDS
    while await jobs.Job.count().where(pending):
        if time.monotonic() > deadline:
            pytest.fail(f"the worker did not index the articles in time\n{live_server.log_tails()}")
        await asyncio.sleep(0.1)
    await wait_until_idle()


def test_sign_up_confirm_sign_in_search_in_japanese_read_and_vote(
    help_center: None,  # first: its database work runs before the browser's own event loop starts
    live_server: LiveServer,
    browser_page: BrowserPage,
) -> None:
    from playwright.sync_api import expect

    ja = japanese(
        "Help Center",
        "Community",
        "Sign out",
        "Search the Help Center",
        "Was this article helpful?",
        "Yes",
        "Thank you for your feedback.",
        "You answered: %(answer)s. You can change your answer.",
    )
    page = browser_page.page
    email, password = "hana.sato@example.test", "a long enough passphrase"

    page.goto(f"{live_server.base_url}/signup")
    main = page.locator("main")
    main.get_by_label("Display name").fill("Hana Sato")
    main.get_by_label("Email").fill(email)
    main.get_by_label("Password").fill(password)
    step(page, "signup-form")
    main.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(main.get_by_role("status")).to_contain_text("we sent you an email")

    page.goto(wait_for_link(live_server, email))
    expect(main.get_by_role("heading", name="Confirm your email")).to_be_visible()
    step(page, "confirm-email")
    main.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(main.get_by_role("status")).to_contain_text("Your email address is confirmed")

    main.get_by_label("Email").fill(email)
    main.get_by_label("Password").fill(password)
    main.get_by_role("button", name="Sign in").click()
    header = page.locator("header")
    expect(header.get_by_role("link", name="Hana Sato")).to_be_visible()
    expect(page.get_by_text("Please confirm your email address")).to_have_count(0)
    step(page, "signed-in")

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
    step(page, "japanese")

    # The Help Center, searched in Japanese: "請求書" (invoice) finds the Japanese article.
    nav.get_by_role("link", name=ja["Help Center"], exact=True).click()
    page.locator("main").get_by_label(ja["Search the Help Center"]).fill("請求書")
    page.locator("main").get_by_label(ja["Search the Help Center"]).press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q="))
    result = page.locator("main").get_by_role("link", name=ARTICLE, exact=True)
    expect(result).to_be_visible()
    step(page, "search-results")
    result.click()
    expect(page).to_have_url(re.compile(r"/help/articles/"))
    expect(page.locator("main h1")).to_have_text(ARTICLE)
    expect(page.locator("main")).to_contain_text("すべての請求について請求書を発行します")

    # ...and votes: the answer is recorded and stays recorded.
    feedback = page.locator("#feedback")
    expect(feedback.get_by_role("heading", name=ja["Was this article helpful?"])).to_be_visible()
    step(page, "article")
    feedback.get_by_role("button", name=ja["Yes"], exact=True).click()
    expect(feedback.get_by_role("status")).to_have_text(ja["Thank you for your feedback."])
    expect(feedback.get_by_role("button", name=ja["Yes"], exact=True)).to_have_attribute("aria-pressed", "true")
    step(page, "voted")
    page.reload()
    answered = ja["You answered: %(answer)s. You can change your answer."] % {"answer": ja["Yes"]}
    expect(page.locator("#feedback")).to_contain_text(answered)

    assert browser_page.problems.messages == []

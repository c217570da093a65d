"""Help Center pages as visitors see them: lists, article pages, fallbacks, views, feedback."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from server.kb import services, views
from server.kb.tables import KbArticle
from server.policy import Actor
from tests.accounts.helpers import set_cookie
from tests.conftest import make_client, post_form
from tests.factories import login, make_user
from tests.kb.conftest import Place
from tests.kb.factories import make_article, make_category, make_section, translate
from tests.kb.inert import assert_inert

SECRETS = {"signed_in": "Seat billing for customers", "members": "Gold member perks", "internal": "Escalation runbook"}


def main(html: str) -> str:
    return html[html.index("<main") : html.index("</main>")]


async def make_secrets(editor: Actor, section_id: int) -> dict[str, int]:
    made = {}
    for visibility, title in SECRETS.items():
        made[visibility] = await make_article(editor, section_id, title, tags=["boards"], visibility=visibility)
    return made


async def test_anonymous_visitors_never_see_restricted_articles(
    client: AsyncTestClient, editor: Actor, place: Place
) -> None:
    public = await make_article(editor, place.section_id, "Kanban boards", tags=["boards"])
    secret = await make_secrets(editor, place.section_id)
    hidden_category = await make_category(editor, "staff-only", visibility="internal")
    await make_article(editor, await make_section(editor, hidden_category, "runbooks"), "Paging the on-call")
    pages = ["/help", "/help/categories/basics", "/help/sections/first-steps", f"/help/articles/{public}-kanban-boards"]
    for path in pages:
        response = await client.get(path)
        assert response.status_code == 200, path
        for title in [*SECRETS.values(), "Paging the on-call", "Staff-Only EN", "Runbooks EN"]:
            assert title not in response.text, (path, title)
    assert "Kanban boards" in (await client.get("/help")).text
    missing = await client.get("/help/articles/999999-nothing")
    for article_id in secret.values():
        response = await client.get(f"/help/articles/{article_id}")
        assert response.status_code == 404
        assert main(response.text) == main(missing.text)  # the same page as for no article at all
    assert (await client.get("/help/categories/staff-only")).status_code == 404
    assert (await client.get("/help/sections/runbooks")).status_code == 404


async def test_signed_in_customers_see_signed_in_articles_only(
    client: AsyncTestClient, editor: Actor, customer: Actor, place: Place
) -> None:
    public = await make_article(editor, place.section_id, "Kanban boards", tags=["boards"])
    secret = await make_secrets(editor, place.section_id)
    await login(client, customer.email)
    page = (await client.get(f"/help/articles/{public}-kanban-boards")).text
    assert SECRETS["signed_in"] in page  # a related article
    assert SECRETS["members"] not in page and SECRETS["internal"] not in page
    assert (await client.get(f"/help/articles/{secret['signed_in']}")).status_code == 200
    assert (await client.get(f"/help/articles/{secret['internal']}")).status_code == 404
    assert (await client.get(f"/help/articles/{secret['members']}")).status_code == 404


async def test_editors_see_everything_including_drafts(
    editor_client: AsyncTestClient, editor: Actor, place: Place
) -> None:
    await make_secrets(editor, place.section_id)
    draft = await make_article(editor, place.section_id, "Unfinished thoughts", status="draft")
    listing = (await editor_client.get("/help/sections/first-steps")).text
    assert all(title in listing for title in SECRETS.values()) and "Unfinished thoughts" in listing
    page = await editor_client.get(f"/help/articles/{draft}-unfinished-thoughts")
    assert page.status_code == 200 and "Draft: only editors see this" in page.text


async def test_article_page_shows_its_parts(client: AsyncTestClient, editor: Actor, place: Place) -> None:
    article_id = await make_article(editor, place.section_id, "Kanban boards", tags=["boards"])
    await translate(editor, article_id, "カンバンボード")
    related = await make_article(editor, place.section_id, "Board templates", tags=["boards"])
    response = await client.get(f"/help/articles/{article_id}-kanban-boards")
    html = response.text
    crumbs = re.search(r'<nav class="breadcrumbs".*?</nav>', html, re.S).group(0)
    assert re.findall(r'href="([^"]+)"', crumbs) == ["/help", "/help/categories/basics", "/help/sections/first-steps"]
    assert '<h2 id="h-set-up-a-board">Set up a board</h2>' in html
    assert '<a href="#h-set-up-a-board">Set up a board</a>' in html  # table of contents
    assert "Written by Eddie Editor" in html and "<time datetime=" in html
    assert f'href="/help/articles/{related}-board-templates?lang=en"' in html
    assert 'href="?lang=ja" hreflang="ja"' in html
    japanese = await client.get(f"/help/articles/{article_id}-kanban-boards?lang=ja")
    assert "<h1>カンバンボード</h1>" in japanese.text and "is not available" not in japanese.text


async def test_old_and_partial_addresses_redirect_to_the_canonical_one(
    client: AsyncTestClient, editor: Actor, place: Place
) -> None:
    article_id = await make_article(editor, place.section_id, "Kanban boards")
    canonical = f"/help/articles/{article_id}-kanban-boards"
    for path in ("/help/articles/kanban-boards", f"/help/articles/{article_id}", f"/help/articles/{article_id}-old"):
        response = await client.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (301, canonical), path
    response = await client.get(f"/help/articles/{article_id}?lang=ja", follow_redirects=False)
    assert response.headers["location"] == canonical + "?lang=ja"
    assert (await client.get("/help/articles/no-such-slug")).status_code == 404
    digits = await make_article(editor, place.section_id, "Two-factor", slug=f"{article_id}-step-login")
    response = await client.get(f"/help/articles/{article_id}-step-login", follow_redirects=False)
    assert response.headers["location"] == f"/help/articles/{digits}-{article_id}-step-login"
    hidden = await make_article(editor, place.section_id, "Hidden", slug="9hidden", visibility="internal")
    assert (await client.get(f"/help/articles/{hidden}-9hidden", follow_redirects=False)).status_code == 404
    assert (await client.get("/help/articles/9hidden", follow_redirects=False)).status_code == 404


async def test_a_missing_translation_falls_back_with_a_notice(
    client: AsyncTestClient, editor: Actor, place: Place
) -> None:
    article_id = await make_article(editor, place.section_id, "Only in English")
    path = f"/help/articles/{article_id}-only-in-english"
    response = await client.get(path + "?lang=ja")
    assert "<h1>Only in English</h1>" in response.text
    assert "This article is not available in 日本語 yet, so it is shown in English." in response.text
    japanese_reader = await client.get(path, headers={"Accept-Language": "ja"})
    assert "この記事はまだ日本語で読めないため、English で表示しています。" in japanese_reader.text
    draft_ja = await make_article(editor, place.section_id, "Half done")
    await translate(editor, draft_ja, "途中", status="draft")  # a draft translation is not shown either
    response = await client.get(f"/help/articles/{draft_ja}-half-done?lang=ja")
    assert "<h1>Half done</h1>" in response.text and "is not available in 日本語" in response.text


async def test_views_are_counted_in_memory_and_written_in_one_batch(
    client: AsyncTestClient, editor: Actor, place: Place
) -> None:
    article_id = await make_article(editor, place.section_id, "Kanban boards")
    for _ in range(3):
        response = await client.get(f"/help/articles/{article_id}-kanban-boards")
    assert "3 views" in response.text
    stored = await KbArticle.select(KbArticle.view_count).where(KbArticle.id == article_id).first()
    assert stored["view_count"] == 0  # no write per page view
    assert await views.flush() == 1
    stored = await KbArticle.select(KbArticle.view_count).where(KbArticle.id == article_id).first()
    assert stored["view_count"] == 3 and views.pending(article_id) == 0
    assert "4 views" in (await client.get(f"/help/articles/{article_id}-kanban-boards")).text


async def test_hostile_markdown_is_inert_on_the_page(client: AsyncTestClient, editor: Actor, place: Place) -> None:
    body = '<script>alert("x")</script>\n\n[go](javascript:alert(1))\n\n<img src=x onerror=alert(2)>\n'
    article_id = await make_article(editor, place.section_id, "<b>Bold</b> title", body)
    html = (await client.get(f"/help/articles/{article_id}-b-bold-b-title")).text
    body_start = html.index('<div class="kb-body">') + len('<div class="kb-body">')
    assert_inert(html[body_start : html.index("<div lang=", body_start)])
    assert "<h1>&lt;b&gt;Bold&lt;/b&gt; title</h1>" in html


async def test_anonymous_feedback_uses_a_browser_cookie_and_can_change(
    app,
    client: AsyncTestClient,
    editor: Actor,
    place: Place,  # noqa: ANN001
) -> None:
    article_id = await make_article(editor, place.section_id, "Kanban boards")
    page = f"/help/articles/{article_id}-kanban-boards"
    path = f"/help/articles/{article_id}/feedback"
    first = await post_form(client, path, {"helpful": "yes", "lang": "en"}, page=page, follow_redirects=False)
    assert first.status_code == 303
    cookie = set_cookie(first, "kz_voter")
    assert cookie is not None and cookie[1]["httponly"] and len(cookie[0]) >= 16
    changed = await post_form(
        client, path, {"helpful": "no", "comment": "Too short"}, page=page, headers={"HX-Request": "true"}
    )
    assert changed.status_code == 200 and "Thank you for your feedback." in changed.text
    assert set_cookie(changed, "kz_voter") is None  # the same browser keeps its id
    assert 'value="no" class="button button-small is-chosen"' in changed.text
    async with make_client(app) as other_browser:
        await post_form(other_browser, path, {"helpful": "no"}, page=page)
    row = await KbArticle.select(KbArticle.helpful_yes, KbArticle.helpful_no).where(KbArticle.id == article_id).first()
    assert (row["helpful_yes"], row["helpful_no"]) == (0, 2)
    bad = await post_form(client, path, {"helpful": "maybe"}, page=page)
    assert bad.status_code == 422


async def test_staff_see_the_score_and_comments_customers_do_not(
    client: AsyncTestClient, editor: Actor, customer: Actor, place: Place
) -> None:
    article_id = await make_article(editor, place.section_id, "Kanban boards")
    comment = "Missing a <b>step</b>"
    await services.record_feedback(customer, f"user:{customer.user_id}", article_id, "en", False, comment)
    await services.record_feedback(editor, f"user:{editor.user_id}", article_id, "en", True)
    page = f"/help/articles/{article_id}-kanban-boards"
    other = await make_user(name="Other Customer")
    await login(client, other.email)
    as_customer = (await client.get(page)).text
    assert "Missing a" not in as_customer and "Feedback (visible to staff)" not in as_customer
    await login(client, customer.email)
    assert "You answered: No." in (await client.get(page)).text
    admin = await make_user("admin")
    await login(client, admin.email)
    as_admin = (await client.get(page)).text
    assert "1 found it helpful, 1 did not. (50%)" in as_admin
    assert "Missing a &lt;b&gt;step&lt;/b&gt;" in as_admin and "Casey Customer" in as_admin


async def test_buffered_views_are_written_after_a_response_once_due(
    client: AsyncTestClient,
    editor: Actor,
    place: Place,
    monkeypatch,  # noqa: ANN001
) -> None:
    article_id = await make_article(editor, place.section_id, "Kanban boards")
    await client.get(f"/help/articles/{article_id}-kanban-boards")
    monkeypatch.setattr(views.COUNTER, "flush_seconds", 0.0)
    await client.get(f"/help/articles/{article_id}-kanban-boards")
    stored = await KbArticle.select(KbArticle.view_count).where(KbArticle.id == article_id).first()
    assert stored["view_count"] == 2 and views.pending(article_id) == 0


async def test_a_page_cached_for_staff_is_never_served_to_a_visitor(
    app,
    client: AsyncTestClient,
    editor: Actor,
    place: Place,  # noqa: ANN001
) -> None:
    internal = await make_article(editor, place.section_id, "Escalation runbook", visibility="internal")
    public = await make_article(editor, place.section_id, "Kanban boards", tags=["x"])
    await make_article(editor, place.section_id, "Draft notes", tags=["x"], status="draft")
    await login(client, editor.email)
    assert (await client.get(f"/help/articles/{internal}-escalation-runbook")).status_code == 200
    assert "Escalation runbook" in (await client.get(f"/help/articles/{public}-kanban-boards")).text  # related
    assert "Draft notes" in (await client.get("/help")).text
    async with make_client(app) as visitor:
        assert (await visitor.get(f"/help/articles/{internal}-escalation-runbook")).status_code == 404
        page = (await visitor.get(f"/help/articles/{public}-kanban-boards")).text
        assert "Draft notes" not in page and "Escalation runbook" not in page
        listing = (await visitor.get("/help")).text
        assert "Escalation runbook" not in listing and "Draft notes" not in listing


async def test_a_change_shows_at_once_in_the_process_that_made_it(
    client: AsyncTestClient, editor: Actor, place: Place
) -> None:
    article_id = await make_article(editor, place.section_id, "Kanban boards")
    path = f"/help/articles/{article_id}-kanban-boards"
    assert (await client.get(path)).status_code == 200  # now cached
    settings = services.ArticleSettings(place.section_id, "kanban-boards", "internal")
    await services.update_article(editor, article_id, "en", settings=settings)
    assert (await client.get(path)).status_code == 404
    assert "Kanban boards" not in (await client.get("/help")).text

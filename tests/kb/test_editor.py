"""The editor pages: write with a live preview, publish, revisions, diff, restore, 409 and 413,
and the category and section forms."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from server.kb import services
from server.kb.tables import KbArticle, KbCategory, KbRevision, KbSection, KbTranslation
from server.markdown import MAX_SOURCE_BYTES
from server.policy import Actor
from tests.conftest import csrf_token, post_form
from tests.factories import login, make_user
from tests.kb.conftest import Place
from tests.kb.factories import BODY, make_article
from tests.kb.inert import assert_inert

NEW = "/help/manage/articles/new"


def form(place: Place, **values: str) -> dict[str, str]:
    return {
        "locale": "en",
        "title": "Sprints",
        "body": "Plan two weeks.\n\n## Start a sprint\n\nPress start.\n",
        "section": str(place.section_id),
        "visibility": "",
        "tags": "sprints, planning",
        **values,
    }


async def stored(article_id: int, locale: str = "en") -> dict:
    return (
        await KbTranslation.select()
        .where((KbTranslation.article == article_id) & (KbTranslation.locale == locale))
        .first()
    )


async def test_customers_and_visitors_cannot_open_the_editor(
    client: AsyncTestClient, customer: Actor, editor: Actor, place: Place
) -> None:
    article_id = await make_article(editor, place.section_id)
    edit = f"/help/manage/articles/{article_id}"
    paths = ["/help/manage", NEW, edit, f"{edit}/revisions", f"{edit}/diff", "/help/manage/categories/new"]
    for path in paths:
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
    await login(client, customer.email)
    for path in paths:
        assert (await client.get(path)).status_code == 403, path
    token = await csrf_token(client, "/")
    response = await client.post(NEW, data={**form(place), "_csrf_token": token})
    assert response.status_code == 403 and await KbArticle.count() == 1


async def test_create_a_draft_then_publish_it(editor_client: AsyncTestClient, place: Place) -> None:
    response = await post_form(editor_client, NEW, form(place), follow_redirects=False)
    assert response.status_code == 303
    article = await KbArticle.select().output(load_json=True).first()
    assert response.headers["location"] == f"/help/manage/articles/{article['id']}?lang=en"
    assert article["tags"] == ["sprints", "planning"] and article["slug"] == "sprints"
    assert (await stored(article["id"]))["status"] == "draft"
    edit_page = f"/help/manage/articles/{article['id']}?lang=en"
    page = (await editor_client.get(edit_page)).text
    assert 'name="version" value="1"' in page and "Save and publish" in page
    await post_form(editor_client, edit_page, {**form(place), "version": "1", "action": "publish"})
    assert (await stored(article["id"]))["status"] == "published"
    assert (await editor_client.get(f"/help/articles/{article['id']}-sprints")).status_code == 200


async def test_invalid_forms_come_back_with_messages(editor_client: AsyncTestClient, place: Place) -> None:
    response = await post_form(editor_client, NEW, form(place, title="", slug="Bad Slug!", visibility="secret"))
    assert response.status_code == 422
    assert "Give the article a title." in response.text and "Choose a visibility from the list." in response.text
    assert "Plan two weeks." in response.text  # what was typed is kept
    assert await KbArticle.count() == 0


async def test_the_preview_renders_markdown_inertly(editor_client: AsyncTestClient) -> None:
    body = "## Hello\n\n<script>alert(1)</script> [x](javascript:alert(2)) **bold**"
    response = await post_form(
        editor_client, "/help/manage/preview", {"body": body}, page=NEW, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "<!doctype" not in response.text.lower()  # a partial, not a page
    assert '<h2 id="h-hello">Hello</h2>' in response.text and "<strong>bold</strong>" in response.text
    assert_inert(response.text)
    page = (await editor_client.get(NEW)).text
    assert 'hx-post="/help/manage/preview"' in page and "delay:400ms" in page


async def test_a_body_over_64_kib_gets_413(editor_client: AsyncTestClient, editor: Actor, place: Place) -> None:
    big = "word " * (MAX_SOURCE_BYTES // 5 + 10)
    response = await post_form(editor_client, NEW, form(place, body=big))
    assert response.status_code == 413 and "longer than 64 KiB" in response.text
    article_id = await make_article(editor, place.section_id)
    path = f"/help/manage/articles/{article_id}?lang=en"
    response = await post_form(editor_client, path, form(place, body=big, version="1"))
    assert response.status_code == 413 and (await stored(article_id))["version"] == 1
    preview = await post_form(editor_client, "/help/manage/preview", {"body": big}, page=NEW)
    assert "longer than 64 KiB" in preview.text


async def test_saving_over_a_newer_version_shows_409_with_the_diff(
    editor_client: AsyncTestClient, editor: Actor, place: Place
) -> None:
    article_id = await make_article(editor, place.section_id, "Kanban boards", "Line one.\nLine two.\n")
    path = f"/help/manage/articles/{article_id}?lang=en"
    opened = (await editor_client.get(path)).text
    assert 'name="version" value="1"' in opened
    colleague = await make_user("agent", name="Colleague Chen")
    theirs = services.TextInput("Kanban boards", "Line one.\nTheir line <b>two</b>.\n", version=1)
    await services.update_article(colleague, article_id, "en", text=theirs)

    mine = form(place, title="Kanban boards", body="Line one.\nMy line two.\n", version="1")
    response = await post_form(editor_client, path, mine)
    assert response.status_code == 409
    html = response.text
    assert "Someone else changed this article" in html and "Colleague Chen saved version 2" in html
    diff = re.search(r'<pre class="kb-diff".*?</pre>', html, re.S).group(0)
    assert '<span class="kb-diff-del">− Their line &lt;b&gt;two&lt;/b&gt;.</span>' in diff
    assert '<span class="kb-diff-add">+ My line two.</span>' in diff
    assert 'name="version" value="2"' in html and "My line two." in html  # the form keeps my text
    assert (await stored(article_id))["body_md"] == "Line one.\nTheir line <b>two</b>.\n"

    again = await post_form(editor_client, path, {**mine, "version": "2"}, page=path, follow_redirects=False)
    assert again.status_code == 303 and (await stored(article_id))["body_md"] == "Line one.\nMy line two.\n"


async def test_revisions_diff_and_restore(editor_client: AsyncTestClient, editor: Actor, place: Place) -> None:
    article_id = await make_article(editor, place.section_id, "Kanban boards", "Old <script>x</script> text.\n")
    await services.update_article(editor, article_id, "en", text=services.TextInput("Boards", "New text.\n", 1))
    listing = await editor_client.get(f"/help/manage/articles/{article_id}/revisions?lang=en")
    assert listing.status_code == 200 and "Eddie Editor" in listing.text
    assert f'action="/help/manage/articles/{article_id}/revisions/1/restore"' in listing.text

    diff = await editor_client.get(f"/help/manage/articles/{article_id}/diff?lang=en&a=1&b=2")
    assert '<span class="kb-diff-del">− Old &lt;script&gt;x&lt;/script&gt; text.</span>' in diff.text
    assert '<span class="kb-diff-add">+ New text.</span>' in diff.text
    assert '<span class="kb-diff-add">+ Boards</span>' in diff.text
    latest = await editor_client.get(f"/help/manage/articles/{article_id}/diff?lang=en")
    assert "Revision 1 → revision 2" in latest.text
    assert (await editor_client.get(f"/help/manage/articles/{article_id}/diff?lang=en&a=1&b=9")).status_code == 404

    restore = f"/help/manage/articles/{article_id}/revisions/1/restore"
    page = f"/help/manage/articles/{article_id}/revisions?lang=en"
    response = await post_form(editor_client, restore, {"lang": "en", "version": "2"}, page=page)
    assert response.status_code == 200 and "Revision 1 is restored as a new revision." in response.text
    assert (await stored(article_id))["body_md"] == "Old <script>x</script> text.\n"
    assert await KbRevision.count() == 3
    restore_second = f"/help/manage/articles/{article_id}/revisions/2/restore"
    stale = await post_form(editor_client, restore_second, {"lang": "en", "version": "2"}, page=page)
    assert stale.status_code == 409 and "Someone else changed this article" in stale.text


async def test_translate_publish_and_delete_from_the_editor(
    editor_client: AsyncTestClient, editor: Actor, place: Place
) -> None:
    article_id = await make_article(editor, place.section_id, "Kanban boards")
    ja_page = f"/help/manage/articles/{article_id}?lang=ja"
    page = (await editor_client.get(ja_page)).text
    assert "This article has no 日本語 text yet." in page and 'name="version" value="0"' in page
    assert BODY.splitlines()[0] in page  # the English text to translate from
    await post_form(editor_client, ja_page, form(place, title="カンバン", body="本文です。\n", version="0"))
    assert (await stored(article_id, "ja"))["status"] == "draft"
    status = f"/help/manage/articles/{article_id}/status"
    await post_form(editor_client, status, {"lang": "ja", "status": "published"}, page=ja_page)
    assert (await stored(article_id, "ja"))["status"] == "published"
    await post_form(editor_client, status, {"lang": "en", "status": "draft"}, page=ja_page)
    assert (await stored(article_id))["status"] == "draft"
    overview = (await editor_client.get("/help/manage")).text
    assert "Kanban boards" in overview or "カンバン" in overview
    await post_form(editor_client, f"/help/manage/articles/{article_id}/delete", {}, page=ja_page)
    assert await KbArticle.count() == 0


async def test_categories_and_sections_are_managed_in_the_browser(
    editor_client: AsyncTestClient, editor: Actor, place: Place
) -> None:
    article_id = await make_article(editor, place.section_id)
    new_category = {"slug": "billing", "name_en": "Billing", "name_ja": "請求", "visibility": "signed_in"}
    response = await post_form(editor_client, "/help/manage/categories/new", {**new_category, "position": "2"})
    assert response.status_code == 200 and "The category is saved." in response.text
    billing = await KbCategory.select().where(KbCategory.slug == "billing").first()
    assert (billing["visibility"], billing["position"]) == ("signed_in", 2)
    clash = await post_form(editor_client, "/help/manage/categories/new", new_category)
    assert clash.status_code == 422 and "Another category already uses this slug." in clash.text

    edit = f"/help/manage/categories/{place.category_id}"
    renamed = {"slug": "basics", "name_en": "Basics", "name_ja": "基本", "visibility": "internal"}
    await post_form(editor_client, edit, renamed)
    row = await KbArticle.select(KbArticle.effective_visibility).where(KbArticle.id == article_id).first()
    assert row["effective_visibility"] == "internal"

    section = {"category": str(billing["id"]), "slug": "invoices", "name_en": "Invoices", "name_ja": "請求書"}
    await post_form(editor_client, "/help/manage/sections/new", section)
    assert await KbSection.exists().where(KbSection.slug == "invoices")
    bad = await post_form(editor_client, "/help/manage/sections/new", {**section, "slug": "x", "name_en": ""})
    assert bad.status_code == 422

"""Knowledge-base actions: what they store, what they refuse, and what they queue for search."""

from __future__ import annotations

import pytest
from litestar.exceptions import PermissionDeniedException

from server.errors import Invalid, NotFound
from server.jobs import Job
from server.kb import services, structure
from server.kb.tables import KbArticle, KbFeedback, KbRevision, KbTranslation
from server.markdown import MAX_SOURCE_BYTES, MarkdownTooLarge
from server.policy import ANONYMOUS, Actor
from server.search.sync import SYNC_KIND
from tests.kb.conftest import Place
from tests.kb.factories import BODY, make_article, make_category, make_section, translate
from tests.kb.inert import assert_inert, elements


async def synced_pks() -> list[int]:
    rows = await Job.select(Job.payload).where(Job.kind == SYNC_KIND).order_by(Job.id).output(load_json=True)
    return [row["payload"]["pk"] for row in rows if row["payload"]["type"] == "kb"]


async def translation(article_id: int, locale: str = "en") -> dict:
    row = (
        await KbTranslation.select()
        .where((KbTranslation.article == article_id) & (KbTranslation.locale == locale))
        .first()
    )
    assert row is not None
    return row


async def revisions(article_id: int, locale: str = "en") -> list[dict]:
    return (
        await KbRevision.select(
            KbRevision.number, KbRevision.title, KbRevision.body_md, KbRevision.author, KbRevision.note
        )
        .where(KbRevision.translation.article == article_id, KbRevision.translation.locale == locale)
        .order_by(KbRevision.number)
    )


async def test_create_stores_source_html_first_revision_and_queues_search(editor: Actor, place: Place) -> None:
    article_id = await make_article(editor, place.section_id, "Kanban boards", tags=["Boards", "boards", "カンバン"])
    article = await KbArticle.select().where(KbArticle.id == article_id).output(load_json=True).first()
    assert article["slug"] == "kanban-boards"
    assert article["tags"] == ["boards", "カンバン"]
    assert (article["visibility"], article["effective_visibility"]) == (None, "public")
    assert article["author"] == editor.user_id
    row = await translation(article_id)
    assert row["body_md"] == BODY and row["status"] == "published" and row["version"] == 1
    assert '<h2 id="h-set-up-a-board">Set up a board</h2>' in row["body_html"]
    assert [(r["number"], r["author"]) for r in await revisions(article_id)] == [(1, editor.user_id)]
    assert await synced_pks() == [article_id]


async def test_slugs_are_made_unique_and_japanese_titles_get_one_too(editor: Actor, place: Place) -> None:
    first = await make_article(editor, place.section_id, "Boards")
    second = await make_article(editor, place.section_id, "Boards")
    japanese = await make_article(editor, place.section_id, "ボードの使い方", locale="ja")
    slugs = {r["id"]: r["slug"] for r in await KbArticle.select(KbArticle.id, KbArticle.slug)}
    assert (slugs[first], slugs[second]) == ("boards", "boards-2")
    assert slugs[japanese].startswith("article-")


HOSTILE = """# Title

<script>alert(1)</script>
<img src=x onerror="alert(2)">
<iframe src="https://evil.example"></iframe>
<svg onload="alert(3)"><circle/></svg>
<div style="position:fixed;top:0">cover</div>

[click](javascript:alert(4)) [data](data:text/html;base64,PHNjcmlwdD4=) [js2](JaVaScRiPt&#58;alert(5))
![pixel](https://tracker.example/p.gif)
"""


async def test_hostile_markdown_is_stored_verbatim_and_rendered_inert(editor: Actor, place: Place) -> None:
    article_id = await make_article(editor, place.section_id, "Hostile", HOSTILE)
    row = await translation(article_id)
    assert row["body_md"] == HOSTILE
    assert_inert(row["body_html"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in row["body_html"]  # shown as text, never run
    links = [attrs["href"] for tag, attrs in elements(row["body_html"]) if tag == "a"]
    assert links == ["https://tracker.example/p.gif"]  # a remote image becomes a plain link


async def test_editing_makes_a_revision_and_a_stale_version_conflicts(editor: Actor, place: Place) -> None:
    article_id = await make_article(editor, place.section_id)
    other = await make_user_agent()
    await services.update_article(
        other, article_id, "en", text=services.TextInput("Kanban boards", BODY + "\nMore.\n", version=1, note="typo")
    )
    row = await translation(article_id)
    assert (row["version"], row["updated_by"]) == (2, other.user_id)
    assert [(r["number"], r["author"], r["note"]) for r in await revisions(article_id)] == [
        (1, editor.user_id, ""),
        (2, other.user_id, "typo"),
    ]

    with pytest.raises(services.EditConflict) as caught:  # the editor still holds version 1
        await services.update_article(editor, article_id, "en", text=services.TextInput("Mine", "Mine.", version=1))
    assert caught.value.current["version"] == 2 and caught.value.current["body_md"] == BODY + "\nMore.\n"
    assert (await translation(article_id))["title"] == "Kanban boards"
    assert len(await revisions(article_id)) == 2

    # Sending the stored text again with an old version overwrites nothing, so it is no conflict.
    same = services.TextInput("Kanban boards", BODY + "\nMore.\n", version=1)
    await services.update_article(editor, article_id, "en", text=same)
    assert (await translation(article_id))["version"] == 2


async def make_user_agent() -> Actor:
    from tests.factories import make_user

    return await make_user("agent", name="Other Agent")


async def test_restore_brings_back_old_text_as_a_new_revision(editor: Actor, place: Place) -> None:
    article_id = await make_article(editor, place.section_id, "First title", "First body.\n")
    await services.update_article(editor, article_id, "en", text=services.TextInput("Second", "Second body.\n", 1))
    await services.restore_revision(editor, article_id, "en", 1, version=2)
    row = await translation(article_id)
    assert (row["title"], row["body_md"], row["version"]) == ("First title", "First body.\n", 3)
    assert "<p>First body.</p>" in row["body_html"]
    history = await revisions(article_id)
    assert [(r["number"], r["title"]) for r in history] == [(1, "First title"), (2, "Second"), (3, "First title")]
    assert history[2]["note"] == "Restored revision 1"
    with pytest.raises(services.EditConflict):
        await services.restore_revision(editor, article_id, "en", 2, version=2)  # stale
    with pytest.raises(NotFound):
        await services.restore_revision(editor, article_id, "en", 99, version=3)


async def test_translations_publish_and_unpublish_separately(editor: Actor, place: Place) -> None:
    article_id = await make_article(editor, place.section_id, status="draft")
    await translate(editor, article_id, "カンバンボード")
    assert (await translation(article_id))["status"] == "draft"
    ja = await translation(article_id, "ja")
    assert (ja["status"], ja["version"]) == ("published", 1) and ja["published_at"] is not None
    await services.update_article(editor, article_id, "ja", status="draft")
    assert (await translation(article_id, "ja"))["published_at"] is None
    with pytest.raises(Invalid) as caught:
        await services.update_article(editor, article_id, "en", status="live")
    assert "status" in caught.value.errors
    with pytest.raises(Invalid):
        await services.update_article(editor, article_id, "fr", status="published")


async def test_bad_input_is_refused_and_nothing_is_queued(editor: Actor, place: Place) -> None:
    with pytest.raises(Invalid) as caught:
        await make_article(editor, place.section_id, "", "", slug="Not A Slug", visibility="secret")
    assert {"title", "body", "slug", "visibility"} <= set(caught.value.errors)
    with pytest.raises(Invalid) as caught:
        await make_article(editor, place.section_id + 999)
    assert "section" in caught.value.errors
    await make_article(editor, place.section_id, slug="taken")
    with pytest.raises(Invalid) as caught:
        await make_article(editor, place.section_id, slug="taken")
    assert "slug" in caught.value.errors
    assert await KbArticle.count() == 1 and len(await synced_pks()) == 1


async def test_a_body_over_64_kib_is_refused(editor: Actor, place: Place) -> None:
    big = "a" * (MAX_SOURCE_BYTES + 1)
    with pytest.raises(MarkdownTooLarge):
        await make_article(editor, place.section_id, "Big", big)
    article_id = await make_article(editor, place.section_id)
    with pytest.raises(MarkdownTooLarge):
        await services.update_article(editor, article_id, "en", text=services.TextInput("Big", big, 1))
    assert await KbArticle.count() == 1 and (await translation(article_id))["version"] == 1


async def test_only_editors_write(customer: Actor, place: Place) -> None:
    for actor in (ANONYMOUS, customer):
        with pytest.raises(PermissionDeniedException):
            await make_article(actor, place.section_id)
        with pytest.raises(PermissionDeniedException):
            await structure.save_category(actor, None, structure.CategoryInput("x-cat", "X", "X"))


async def test_category_visibility_is_inherited_and_changes_are_queued(editor: Actor, place: Place) -> None:
    inherits = await make_article(editor, place.section_id, "Inherits")
    own = await make_article(editor, place.section_id, "Own", visibility="public")
    away = await make_section(editor, await make_category(editor, "other"), "away")
    elsewhere = await make_article(editor, away, "Away")
    before = len(await synced_pks())
    data = structure.CategoryInput("basics", "Basics EN", "basics 日本語", visibility="members", tiers=["Gold"])
    await structure.save_category(editor, place.category_id, data)
    rows = {
        r["id"]: (r["effective_visibility"], r["effective_tiers"])
        for r in await KbArticle.select(KbArticle.id, KbArticle.effective_visibility, KbArticle.effective_tiers).output(
            load_json=True
        )
    }
    assert rows[inherits] == ("members", ["gold"])
    assert rows[own] == ("public", [])
    assert rows[elsewhere] == ("public", [])
    assert sorted((await synced_pks())[before:]) == sorted([inherits, own])  # the category facet changed for both


async def test_moving_a_section_reinherits_its_articles(editor: Actor, place: Place) -> None:
    internal = await make_category(editor, "staff-notes", visibility="internal")
    article_id = await make_article(editor, place.section_id)
    move = structure.SectionInput(internal, "first-steps", "First", "最初")
    await structure.save_section(editor, place.section_id, move)
    row = await KbArticle.select(KbArticle.effective_visibility).where(KbArticle.id == article_id).first()
    assert row["effective_visibility"] == "internal"
    assert (await synced_pks())[-1] == article_id


async def test_article_settings_override_and_fall_back(editor: Actor, place: Place) -> None:
    article_id = await make_article(editor, place.section_id, visibility="signed_in")
    settings = services.ArticleSettings(place.section_id, "kanban-boards", None, [], ["boards"], 3)
    await services.update_article(editor, article_id, "en", settings=settings)
    row = await KbArticle.select().where(KbArticle.id == article_id).output(load_json=True).first()
    assert (row["visibility"], row["effective_visibility"], row["tags"], row["position"]) == (
        None,
        "public",
        ["boards"],
        3,
    )


async def test_delete_removes_everything_and_queues_removal(editor: Actor, place: Place) -> None:
    article_id = await make_article(editor, place.section_id)
    await services.record_feedback(ANONYMOUS, "browser:abc", article_id, "en", True)
    await services.delete_article(editor, article_id)
    assert await KbArticle.count() == 0 and await KbTranslation.count() == 0
    assert await KbRevision.count() == 0 and await KbFeedback.count() == 0
    assert (await synced_pks())[-1] == article_id
    with pytest.raises(NotFound):
        await services.delete_article(editor, article_id)


async def counters(article_id: int) -> tuple[int, int]:
    row = await KbArticle.select(KbArticle.helpful_yes, KbArticle.helpful_no).where(KbArticle.id == article_id).first()
    return row["helpful_yes"], row["helpful_no"]


async def test_one_vote_per_voter_that_can_change(editor: Actor, customer: Actor, place: Place) -> None:
    article_id = await make_article(editor, place.section_id)
    key = f"user:{customer.user_id}"
    await services.record_feedback(customer, key, article_id, "en", True)
    await services.record_feedback(customer, key, article_id, "en", True)
    assert await counters(article_id) == (1, 0)
    await services.record_feedback(customer, key, article_id, "en", False, "Step 3 is unclear")
    assert await counters(article_id) == (0, 1)
    await services.record_feedback(ANONYMOUS, "browser:one", article_id, "ja", False)
    await services.record_feedback(ANONYMOUS, "browser:two", article_id, "en", True)
    assert await counters(article_id) == (1, 2)
    rows = await KbFeedback.select(KbFeedback.voter_key, KbFeedback.comment).where(KbFeedback.voter_key == key)
    assert rows == [{"voter_key": key, "comment": "Step 3 is unclear"}]
    await services.record_feedback(customer, key, article_id, "en", True)  # no new comment keeps the old one
    assert (await KbFeedback.select(KbFeedback.comment).where(KbFeedback.voter_key == key).first())["comment"]
    assert await counters(article_id) == (2, 1)
    assert await KbFeedback.count() == 3


async def test_feedback_needs_a_readable_article_and_a_short_comment(editor: Actor, place: Place) -> None:
    hidden = await make_article(editor, place.section_id, "Staff", visibility="internal")
    draft = await make_article(editor, place.section_id, "Draft", status="draft")
    for article_id in (hidden, draft, 12345):
        with pytest.raises(NotFound):
            await services.record_feedback(ANONYMOUS, "browser:x", article_id, "en", True)
    public = await make_article(editor, place.section_id, "Public")
    with pytest.raises(Invalid):
        await services.record_feedback(ANONYMOUS, "browser:x", public, "en", True, "x" * 2001)
    assert await KbFeedback.count() == 0 and await counters(public) == (0, 0)

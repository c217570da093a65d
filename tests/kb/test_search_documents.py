"""The "kb" search document type: what build() produces and what the SQL fallback finds,
called directly (the Meilisearch side is tested with the search core)."""

from __future__ import annotations

from server import policy
from server.kb import services
from server.kb.search import documents, helpfulness, html_text
from server.markdown import render, render_inline_text
from server.policy import ANONYMOUS, Actor
from server.search import registry
from tests.kb.conftest import Place
from tests.kb.factories import make_article, make_category, make_section, translate

SIGNED_IN = Actor(user_id=99, roles=frozenset({"customer"}))


def test_kb_is_registered_with_its_facets() -> None:
    assert registry.get("kb") is documents
    assert documents.facet_fields == ("category", "section", "tags")


async def test_one_document_per_published_translation(editor: Actor, place: Place) -> None:
    article_id = await make_article(editor, place.section_id, "Kanban boards", tags=["boards"])
    await translate(editor, article_id, "カンバンボード")
    await services.record_feedback(ANONYMOUS, "browser:a", article_id, "en", True)
    docs = (await documents.build([article_id]))[article_id]
    assert [(d.locale, d.title) for d in docs] == [("en", "Kanban boards"), ("ja", "カンバンボード")]
    en, ja = docs
    assert en.id == f"kb-{article_id}-en" and en.type == "kb" and en.pk == article_id
    assert en.url == f"/help/articles/{article_id}-kanban-boards?lang=en"
    assert ja.url.endswith("?lang=ja")
    assert en.audience == ["public"]
    assert en.facets == {"category": "Basics EN", "section": "First-Steps EN", "tags": ["boards"]}
    assert ja.facets["category"] == "basics 日本語"
    assert en.rank == helpfulness(1, 0) > helpfulness(0, 0) == 0.5
    assert "Set up a board" in en.text and "<" not in en.text
    assert en.updated_at > 0


async def test_drafts_deleted_and_unknown_articles_build_nothing(editor: Actor, place: Place) -> None:
    draft = await make_article(editor, place.section_id, "Draft", status="draft")
    unpublished = await make_article(editor, place.section_id, "Was live")
    await services.update_article(editor, unpublished, "en", status="draft")
    deleted = await make_article(editor, place.section_id, "Gone")
    await services.delete_article(editor, deleted)
    assert await documents.build([draft, unpublished, deleted, 4242]) == {
        draft: [],
        unpublished: [],
        deleted: [],
        4242: [],
    }


async def test_audience_follows_the_effective_visibility(editor: Actor, place: Place) -> None:
    cases = {
        await make_article(editor, place.section_id, "A", visibility="signed_in"): ["signed_in"],
        await make_article(editor, place.section_id, "B", visibility="members", tiers=["gold"]): ["tier:gold"],
        await make_article(editor, place.section_id, "C", visibility="members"): ["members"],
        await make_article(editor, place.section_id, "D", visibility="internal"): ["staff"],
        await make_article(editor, place.section_id, "E"): ["public"],
    }
    built = await documents.build(list(cases))
    assert {pk: docs[0].audience for pk, docs in built.items()} == cases


async def test_all_pks_walks_every_article_in_batches(editor: Actor, place: Place, monkeypatch) -> None:  # noqa: ANN001
    from server.search import fallback

    monkeypatch.setattr(fallback, "BATCH", 2)
    made = [await make_article(editor, place.section_id, f"Article {n}") for n in range(5)]
    batches = [batch async for batch in documents.all_pks()]
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [pk for batch in batches for pk in batch] == made


async def fallback(query: str, actor: Actor, locale: str | None = None, **facets: str) -> tuple[list[str], int]:
    docs, total = await documents.db_search(query, policy.content_audience(actor), locale, facets, 10)
    return [f"{d.title}/{d.locale}" for d in docs], total


async def test_fallback_search_applies_the_audience_rule(editor: Actor, place: Place) -> None:
    await make_article(editor, place.section_id, "Boards for everyone")
    await make_article(editor, place.section_id, "Boards for customers", visibility="signed_in")
    await make_article(editor, place.section_id, "Boards for gold members", visibility="members", tiers=["gold"])
    await make_article(editor, place.section_id, "Boards for staff", visibility="internal")
    await make_article(editor, place.section_id, "Boards draft", status="draft")
    assert await fallback("boards", ANONYMOUS) == (["Boards for everyone/en"], 1)
    found, total = await fallback("BOARDS", SIGNED_IN)
    assert sorted(found) == ["Boards for customers/en", "Boards for everyone/en"] and total == 2
    gold = await documents.db_search("boards", ["public", "tier:gold"], None, {}, 10)
    assert sorted(d.title for d in gold[0]) == ["Boards for everyone", "Boards for gold members"]
    found, total = await fallback("boards", editor)
    assert total == 4 and "Boards draft/en" not in found
    assert await fallback("boards", ANONYMOUS, colour="red") == ([], 0)  # a facet kb does not have


async def test_fallback_search_matches_every_word_in_title_or_body_and_filters(editor: Actor, place: Place) -> None:
    other = await make_section(editor, await make_category(editor, "billing"), "invoices")
    article_id = await make_article(editor, place.section_id, "Kanban boards", "Drag cards between columns.\n")
    await translate(editor, article_id, "カンバンボード", "カードを列の間でドラッグします。\n")
    await make_article(editor, other, "Invoices", "Download a PDF of every invoice.\n", tags=["pdf"])
    assert (await fallback("drag columns", ANONYMOUS))[0] == ["Kanban boards/en"]
    assert (await fallback("drag nowhere", ANONYMOUS))[1] == 0
    assert (await fallback("ドラッグ", ANONYMOUS))[0] == ["カンバンボード/ja"]
    assert (await fallback("kanban", ANONYMOUS, locale="ja"))[0] == []
    assert (await fallback("invoice", ANONYMOUS, category="Billing EN"))[0] == ["Invoices/en"]
    assert (await fallback("invoice", ANONYMOUS, category="Basics EN"))[1] == 0
    assert (await fallback("pdf", ANONYMOUS, tags="pdf"))[0] == ["Invoices/en"]
    for wildcard in ("%", "_", "a_c"):  # LIKE wildcards in the query are literal characters
        assert (await fallback(wildcard, ANONYMOUS))[1] == 0


def test_plain_text_from_html_has_the_renderers_words() -> None:
    source = "# Title\n\nSome *emphasis* and `code` & <tags>.\n\n- one\n- two\n\n```\nx = 1\n```\n"
    assert html_text(render(source)).split() == render_inline_text(source).split()

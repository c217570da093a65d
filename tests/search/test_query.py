"""Search against a real Meilisearch: audience filtering, typos, Japanese, snippets, facets."""

from __future__ import annotations

from server.policy import ANONYMOUS, Actor
from server.search.query import search
from tests.search.conftest import NoteType, index_notes

CUSTOMER = Actor(user_id=1, roles=frozenset({"customer"}))
AGENT = Actor(user_id=2, roles=frozenset({"customer", "agent"}))


async def _seed(notes: NoteType) -> None:
    notes.put(1, "Billing and invoices", "Download an invoice for your workspace billing period.", category="billing")
    notes.put(
        2, "Billing secrets for members", "Members only billing workaround.", audience=["signed_in"], category="billing"
    )
    notes.put(
        3,
        "Internal billing playbook",
        "Staff escalation steps for billing disputes.",
        audience=["staff"],
        category="internal-ops",
    )
    notes.put(
        4, "請求書のダウンロード", "ワークスペースの請求書をダウンロードする方法です。", locale="ja", category="billing"
    )
    notes.put(5, "Timeline view", "Plan projects on a timeline with dependencies.", category="planning")
    await index_notes(notes)


async def test_anonymous_sees_only_public_hits_counts_and_facets(note_index: NoteType) -> None:
    await _seed(note_index)
    result = await search(ANONYMOUS, "billing", types=["note"], with_facets=True)
    assert sorted(h.pk for h in result.hits) == [1, 4]  # 4 is Japanese, public, in category "billing"
    assert result.total == 2
    assert result.facets["category"] == {"billing": 2}
    assert "internal-ops" not in str(result.facets)
    assert not result.degraded


async def test_signed_in_and_staff_audiences(note_index: NoteType) -> None:
    await _seed(note_index)
    customer = await search(CUSTOMER, "billing", types=["note"])
    assert sorted(h.pk for h in customer.hits) == [1, 2, 4]
    agent = await search(AGENT, "billing", types=["note"], with_facets=True)
    assert sorted(h.pk for h in agent.hits) == [1, 2, 3, 4]
    assert agent.facets["category"]["internal-ops"] == 1


async def test_typo_tolerance(note_index: NoteType) -> None:
    await _seed(note_index)
    result = await search(ANONYMOUS, "timline", types=["note"])
    assert [h.pk for h in result.hits] == [5]


async def test_japanese_query_finds_japanese_document(note_index: NoteType) -> None:
    await _seed(note_index)
    result = await search(ANONYMOUS, "請求書", types=["note"])
    assert [h.pk for h in result.hits] == [4]
    assert result.hits[0].locale == "ja"
    assert str(result.hits[0].title) == "<mark>請求書</mark>のダウンロード"  # one mark, not one per token


async def test_locale_filter(note_index: NoteType) -> None:
    await _seed(note_index)
    result = await search(ANONYMOUS, "請求書", types=["note"], locale="en")
    assert result.hits == []


async def test_snippets_are_escaped_with_marks(note_index: NoteType) -> None:
    note_index.put(9, "Script tags", "Writing <script>alert(1)</script> in a note about scripts")
    await index_notes(note_index)
    result = await search(ANONYMOUS, "scripts", types=["note"])
    snippet = str(result.hits[0].snippet)
    assert "<script>" not in snippet and "&lt;script&gt;" in snippet
    assert "<mark>" in snippet


async def test_unpublished_document_disappears(note_index: NoteType) -> None:
    await _seed(note_index)
    note_index.docs[5] = []  # e.g. unpublished: build() returns no documents
    await index_notes(note_index)
    assert (await search(ANONYMOUS, "timeline", types=["note"])).hits == []


async def test_empty_and_huge_queries(note_index: NoteType) -> None:
    await _seed(note_index)
    assert (await search(ANONYMOUS, "   ", types=["note"])).total == 0
    result = await search(ANONYMOUS, "billing " * 300, types=["note"])
    assert len(result.query) <= 200

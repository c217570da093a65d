"""Search over HTTP: the page, the as-you-type partial, the API, analytics and admin settings."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from server import jobs
from server.search.engine import client as meili_client
from server.search.sync import wait_until_idle
from server.search.tables import SearchClick, SearchQueryLog
from tests.conftest import post_form
from tests.factories import login, make_user
from tests.search.conftest import NoteType, index_notes


async def _seed(notes: NoteType) -> None:
    notes.put(1, "Exporting invoices", "Download every invoice as a PDF from the billing page.")
    notes.put(2, "Private roadmap", "Signed-in customers read the invoice roadmap here.", audience=["signed_in"])
    notes.put(3, "Timeline basics", "Drag bars on the timeline to move dates.")
    await index_notes(notes)


async def test_search_page_shows_public_hits_with_highlights(client: AsyncTestClient, note_index: NoteType) -> None:
    await _seed(note_index)
    response = await client.get("/search", params={"q": "invoice"})
    assert response.status_code == 200
    assert "Exporting <mark>invoice</mark>s" in response.text
    assert "Private roadmap" not in response.text and "roadmap" not in response.text
    assert "<mark>" in response.text
    assert "1 result" in response.text


async def test_signed_in_user_sees_more(client: AsyncTestClient, note_index: NoteType) -> None:
    await _seed(note_index)
    user = await make_user()
    await login(client, user.email)
    response = await client.get("/search", params={"q": "invoice"})
    assert "Private roadmap" in response.text.replace("<mark>", "").replace("</mark>", "")
    assert "2 results" in response.text


async def test_empty_state_offers_community_and_support(client: AsyncTestClient, note_index: NoteType) -> None:
    await _seed(note_index)
    response = await client.get("/search", params={"q": "zebra crossing"})
    assert "/community/new?title=zebra%20crossing" in response.text
    assert "/support/new?subject=zebra%20crossing" in response.text


async def test_unknown_filters_are_422(client: AsyncTestClient, note_index: NoteType) -> None:
    assert (await client.get("/search", params={"q": "x", "type": "bogus"})).status_code == 422
    assert (await client.get("/search", params={"q": "x", "locale": "fr"})).status_code == 422
    api = await client.get("/api/v1/search", params={"q": "x", "types": "note,bogus"})
    assert api.status_code == 422 and "type" in api.json()["errors"]


async def test_suggest_partial_lists_hits(client: AsyncTestClient, note_index: NoteType) -> None:
    await _seed(note_index)
    response = await client.get("/search/suggest", params={"q": "timline"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'role="option"' in response.text and 'data-hit-id="3"' in response.text
    assert "<mark>Timelin</mark>e basics" in response.text  # the typo-tolerant match is highlighted


async def test_api_search_shape_and_audience(client: AsyncTestClient, note_index: NoteType) -> None:
    await _seed(note_index)
    body = (await client.get("/api/v1/search", params={"q": "invoice", "types": "note"})).json()
    assert body["degraded"] is False and body["total"] == 1
    hit = body["hits"][0]
    assert set(hit) == {"type", "id", "title", "url", "snippet", "locale"}
    assert hit["id"] == 1 and hit["type"] == "note" and hit["url"] == "/notes/1"
    token = (
        await client.post(
            "/api/v1/auth/token", json={"email": (u := await make_user()).email, "password": "correct horse battery"}
        )
    ).json()["token"]
    del u
    body = (
        await client.get("/api/v1/search", params={"q": "invoice"}, headers={"Authorization": f"Bearer {token}"})
    ).json()
    assert body["total"] == 2


async def test_analytics_records_results_and_clicks(client: AsyncTestClient, note_index: NoteType) -> None:
    await _seed(note_index)
    page = await client.get("/search", params={"q": "  Invoice  "})
    token = re.search(r'data-search-log="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    for _ in range(2):  # a repeated beacon records once
        assert (
            await post_form(client, "/search/events", {"kind": "results", "token": token}, page="/search")
        ).status_code == 204
    assert (
        await post_form(
            client,
            "/search/events",
            {"kind": "click", "token": token, "type": "note", "id": "1", "position": "1"},
            page="/search",
        )
    ).status_code == 204
    logs = await SearchQueryLog.select()
    assert [(r["query"], r["result_count"]) for r in logs] == [("invoice", 1)]
    assert await SearchClick.count() == 1
    forged = await post_form(client, "/search/events", {"kind": "results", "token": token[:-3] + "abc"}, page="/search")
    assert forged.status_code == 422


async def test_admin_synonyms_reach_meilisearch(client: AsyncTestClient, note_index: NoteType) -> None:
    await _seed(note_index)
    admin = await make_user("admin")
    await login(client, admin.email)
    response = await post_form(
        client,
        "/admin/search/settings",
        {"synonyms": "receipt, invoice\n", "stop_words": "the, a"},
        page="/admin/search",
    )
    assert response.status_code in (200, 303)
    await jobs.run_pending("test")
    await wait_until_idle()
    settings = await meili_client().index("note").get_settings()
    assert settings.synonyms == {"receipt": ["invoice"], "invoice": ["receipt"]}
    body = (await client.get("/api/v1/search", params={"q": "receipt", "types": "note"})).json()
    assert [h["id"] for h in body["hits"]] == [1]


async def test_admin_search_settings_validate_and_need_admin(client: AsyncTestClient, note_index: NoteType) -> None:
    agent = await make_user("agent")
    await login(client, agent.email)
    assert (await client.get("/admin/search")).status_code == 403
    admin_client = client
    admin = await make_user("admin")
    await post_form(admin_client, "/logout", {}, page="/")
    await login(admin_client, admin.email)
    bad = await post_form(
        admin_client, "/admin/search/settings", {"synonyms": "lonely", "stop_words": ""}, page="/admin/search"
    )
    assert bad.status_code == 422 and "at least two words" in bad.text


async def test_admin_report_lists_zero_result_queries(client: AsyncTestClient, note_index: NoteType) -> None:
    await _seed(note_index)
    for query in ("invoice", "invoice", "unicorn billing"):
        page = await client.get("/search", params={"q": query})
        token = re.search(r'data-search-log="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        await post_form(client, "/search/events", {"kind": "results", "token": token}, page="/search")
    admin = await make_user("admin")
    await login(client, admin.email)
    report = await client.get("/admin/search")
    assert report.status_code == 200
    zero = report.text.split("Queries with no results")[1].split("Queries with results but no click")[0]
    assert "unicorn billing" in zero and ">invoice<" not in zero
    unclicked = report.text.split("Queries with results but no click")[1]
    assert "invoice" in unclicked


async def test_facet_values_cannot_break_the_filter(client: AsyncTestClient, note_index: NoteType) -> None:
    await _seed(note_index)
    for value in ("x\\", 'x" OR audience = "staff', 'x\\" OR pk > 0'):
        response = await client.get("/search", params={"q": "invoice", "category": value})
        assert response.status_code == 200
        assert "simpler mode" not in response.text  # answered by Meilisearch, not the fallback
        assert "Private roadmap" not in response.text and "Exporting" not in response.text

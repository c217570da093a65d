"""Tickets in search (real Meilisearch): staff only, without internal notes; and the web form's
suggestions from the help center, searched with the customer's own audience."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from server import jobs
from server.desk import services
from server.desk.search import documents
from server.search.query import search
from server.search.sync import wait_until_idle
from tests.conftest import csrf_token, fresh_indexes, make_client
from tests.desk.conftest import People
from tests.desk.factories import make_ticket
from tests.factories import login
from tests.kb.factories import make_article, make_category, make_section, translate

NOTE_WORD = "Quokkafraud"


@pytest.fixture
async def indexes(meili_server: str) -> AsyncIterator[None]:
    """Every registered index empty (Meilisearch outlives each test's database)."""
    await fresh_indexes()
    yield


async def drain() -> None:
    await jobs.run_pending("test")
    await wait_until_idle()


async def test_ticket_documents_hold_the_public_conversation_only(people: People) -> None:
    ticket_id = await make_ticket(people.customer, "Printer jams", "The printer jams on page two.")
    await services.add_note(people.agent, ticket_id, f"{NOTE_WORD} suspected")
    await services.add_reply(people.agent, ticket_id, "Try the other tray.")
    [doc] = (await documents.build([ticket_id]))[ticket_id]
    assert doc.type == "ticket" and doc.audience == ["staff"] and doc.url == f"/desk/tickets/{ticket_id}"
    assert "page two" in doc.text and "other tray" in doc.text and NOTE_WORD not in doc.text
    assert doc.facets["status"] == "open"
    other = await make_ticket(people.customer, "同じ問題です", "プリンターが詰まります")
    assert (await documents.build([other]))[other][0].locale == "ja"
    await services.merge_tickets(people.agent, ticket_id, other)
    assert (await documents.build([ticket_id]))[ticket_id] == []


async def test_only_staff_find_tickets(indexes: None, people: People, app: object) -> None:
    ticket_id = await make_ticket(people.customer, "Zebra export broken", "The zebra export fails.")
    await services.add_note(people.agent, ticket_id, f"{NOTE_WORD} note")
    await drain()
    found = await search(people.agent, "zebra", types=["ticket"])
    assert [h.pk for h in found.hits] == [ticket_id] and not found.degraded
    assert (await search(people.agent, NOTE_WORD)).hits == []
    for person in (people.customer, people.org_admin, people.outsider, people.moderator):
        assert [h for h in (await search(person, "zebra")).hits if h.type == "ticket"] == []
    assert (await search(people.moderator, "zebra", types=["ticket"])).total == 0  # staff, but not the desk
    async with make_client(app) as http:  # type: ignore[arg-type]
        await login(http, people.agent.email)
        page = await http.get("/desk/search?q=zebra")
        assert f"/desk/tickets/{ticket_id}" in page.text
        await http.post("/logout", data={"_csrf_token": await csrf_token(http, "/")})
        await login(http, people.customer.email)
        assert "Zebra export" not in (await http.get("/search?q=zebra")).text
        assert (await http.get("/desk/search?q=zebra")).status_code == 403


async def test_fallback_search_is_staff_only(people: People) -> None:
    ticket_id = await make_ticket(people.customer, "Zebra export broken")
    docs, total = await documents.db_search("zebra", None, None, {}, 10)
    assert [d.pk for d in docs] == [ticket_id] and total == 1
    assert await documents.db_search("zebra", ["public", "signed_in"], None, {}, 10) == ([], 0)
    docs, _total = await documents.db_search(f"#{ticket_id}", ["public", "staff"], None, {}, 10)
    assert [d.pk for d in docs] == [ticket_id]


async def test_web_form_suggests_help_articles_the_customer_may_read(
    indexes: None, people: People, client: httpx.AsyncClient
) -> None:
    editor = people.agent
    category = await make_category(editor, "billing")
    section = await make_section(editor, category, "invoices")
    await make_article(editor, section, "Change the company name on invoices", "Go to Billing settings.")
    await make_article(
        editor, section, "Invoice name change runbook", "Internal steps.", visibility="internal", slug="runbook"
    )
    await drain()
    await login(client, people.customer.email)
    form = await client.get("/support/new")
    visit = form.text.split('name="visit" value="')[1].split('"')[0]
    response = await client.get("/support/suggest", params={"subject": "company name on invoice", "visit": visit})
    text = re.sub(r"</?mark>", "", response.text)
    assert "Change the company name on invoices" in text
    assert "runbook" not in text.lower()
    assert "data-deflection-token" in response.text and 'data-deflection-doc="kb:' in response.text


async def test_agents_filter_search_by_status_and_see_each_ticket_as_it_is_now(
    indexes: None, people: People, client: httpx.AsyncClient
) -> None:
    open_ids = [await make_ticket(people.customer, f"Walrus sync fails {n}", "It fails.") for n in range(3)]
    solved = open_ids.pop()
    for ticket_id in open_ids + [solved]:
        await services.add_reply(people.agent, ticket_id, "Looking into it.")  # new -> open
    await services.add_reply(people.agent, solved, "Fixed.", status="solved")
    await drain()
    await login(client, people.agent.email)

    page = (await client.get("/desk/search", params={"q": "walrus"})).text
    assert "3 tickets" in page and all(f"/desk/tickets/{t}" in page for t in [*open_ids, solved])
    assert re.search(r"status=open[^>]*>Open <span class=\"desk-count\">2</span>", page)
    assert re.search(r"status=solved[^>]*>Solved <span class=\"desk-count\">1</span>", page)

    only_solved = (await client.get("/desk/search", params={"q": "walrus", "status": "solved"})).text
    assert "1 ticket" in only_solved and f"/desk/tickets/{solved}" in only_solved
    assert not any(f'/desk/tickets/{t}"' in only_solved for t in open_ids)

    await services.add_reply(people.agent, open_ids[0], "Waiting for logs.", status="pending")  # not indexed yet
    stale = (await client.get("/desk/search", params={"q": "walrus", "status": "open"})).text
    assert f"/desk/tickets/{open_ids[0]}" in stale  # the index still says "open"...
    assert 'ticket-status ticket-status-pending">Pending' in stale  # ...the row shows what the desk holds now
    assert (await client.get("/desk/search", params={"q": "walrus", "status": "bogus"})).status_code == 200


async def test_an_article_in_both_languages_is_suggested_once_in_the_readers_language(
    indexes: None, people: People, client: httpx.AsyncClient
) -> None:
    category = await make_category(people.agent, "billing")
    section = await make_section(people.agent, category, "invoices")
    article = await make_article(people.agent, section, "Qualified invoices", "Qualified invoices for Japan.")
    await translate(people.agent, article, "適格請求書 (Qualified invoices)", "Qualified invoices の発行方法。")
    await drain()
    await login(client, people.customer.email)
    form = await client.get("/support/new")
    visit = form.text.split('name="visit" value="')[1].split('"')[0]

    text = (await client.get("/support/suggest", params={"subject": "qualified invoices", "visit": visit})).text
    assert text.count(f'data-deflection-doc="kb:{article}"') == 1
    assert "適格請求書" not in text and "Qualified invoices" in re.sub(r"</?mark>", "", text)

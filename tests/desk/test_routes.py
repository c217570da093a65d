"""The web form, the portal and the agent desk as people use them, through real HTTP."""

from __future__ import annotations

import re

import httpx

from server.desk import queries, services
from server.desk.tables import DeflectionEvent, Ticket, TicketMessage
from tests.conftest import csrf_token, post_form
from tests.desk.conftest import People
from tests.desk.factories import make_field, make_group, make_macro, make_ticket
from tests.factories import login
from tests.forum.factories import make_category, make_thread

VERSION_RE = re.compile(r'name="version" value="(\d+)"')


async def test_customer_opens_a_ticket_on_the_web_form_and_sees_it_in_the_portal(
    client: httpx.AsyncClient, people: People
) -> None:
    await make_field("order_number", "text", customer_editable=True)
    await make_field("internal_score", "number")
    await login(client, people.customer.email)
    form = await client.get("/support/new")
    assert form.status_code == 200 and "Order Number" in form.text and "Internal Score" not in form.text
    invalid = await post_form(client, "/support/new", {"subject": "", "body": ""})
    assert invalid.status_code == 422 and "Write a subject." in invalid.text
    token = await csrf_token(client, "/support/new")
    response = await client.post(
        "/support/new",
        data={"subject": "Export fails", "body": "CSV *export* stops", "cf_order_number": "A-17", "_csrf_token": token},
        files={"attachments": ("trace.log", b"Traceback...", "text/plain")},
    )
    assert response.status_code == 200 and "Export fails" in response.text
    ticket_id = int(str(response.url).rsplit("/", 1)[1])
    assert "<em>export</em>" in response.text and "trace.log" in response.text and "A-17" in response.text
    listing = await client.get("/support/tickets")
    assert f"/support/tickets/{ticket_id}" in listing.text
    ticket = await queries.get_ticket(ticket_id)
    assert ticket and ticket["channel"] == "web" and await queries.field_values(ticket_id) == {"order_number": "A-17"}


async def test_customer_replies_with_an_attachment_and_marks_solved(client: httpx.AsyncClient, people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    await login(client, people.customer.email)
    page = f"/support/tickets/{ticket_id}"
    token = await csrf_token(client, page)
    response = await client.post(
        f"{page}/reply", data={"body": "More detail", "_csrf_token": token}, files={"attachments": ("a.png", b"PNG")}
    )
    assert response.status_code == 200 and "More detail" in response.text and "a.png" in response.text
    bad = await client.post(
        f"{page}/reply", data={"body": "x", "_csrf_token": token}, files={"attachments": ("evil.html", b"<script>")}
    )
    assert bad.status_code == 422 and "cannot be attached" in bad.text
    solved = await post_form(client, f"{page}/solve", {}, page=page)
    assert solved.status_code == 200
    assert (await Ticket.select(Ticket.status).where(Ticket.id == ticket_id).first())["status"] == "solved"  # type: ignore[index]


async def test_portal_lists_own_tickets_and_org_admins_see_their_organisation(
    client: httpx.AsyncClient, people: People
) -> None:
    mine = await make_ticket(people.customer, "Casey's question")
    colleague = await make_ticket(people.colleague, "Colin's question")
    outsider = await make_ticket(people.outsider, "Oscar's question")
    await login(client, people.customer.email)
    text = (await client.get("/support/tickets")).text
    assert "Casey&#39;s question" in text and "Colin" not in text and "Oscar" not in text
    assert (await client.get("/support/tickets?show=organisation")).text.count("/support/tickets/") == 1
    await client.post("/logout", data={"_csrf_token": await csrf_token(client, "/")})
    await login(client, people.org_admin.email)
    text = (await client.get("/support/tickets?show=organisation")).text
    assert f"/support/tickets/{mine}" in text and f"/support/tickets/{colleague}" in text
    assert f"/support/tickets/{outsider}" not in text


async def test_the_requester_reads_their_own_status_names(client: httpx.AsyncClient, people: People) -> None:
    held = await make_ticket(people.customer, "Held question")
    waiting = await make_ticket(people.customer, "Waiting question")
    for ticket_id, status in ((held, "on_hold"), (waiting, "pending")):
        ticket = await queries.get_ticket(ticket_id)
        assert ticket is not None
        await services.update_ticket(people.agent, ticket_id, ticket["version"], {"status": status})
    await login(client, people.customer.email)

    listing = (await client.get("/support/tickets")).text
    assert "On hold" not in listing and "Awaiting your reply" in listing
    held_page = (await client.get(f"/support/tickets/{held}")).text
    assert '<span class="ticket-status ticket-status-open">Open</span>' in held_page
    await client.post("/locale", data={"locale": "ja", "next": "/", "_csrf_token": await csrf_token(client, "/")})
    assert "ご返信待ち" in (await client.get(f"/support/tickets/{waiting}")).text

    await login(client, people.agent.email)  # the team keeps the real names
    assert "ticket-status-on_hold" in (await client.get(f"/desk/tickets/{held}")).text


async def test_internal_notes_never_appear_on_customer_pages(client: httpx.AsyncClient, people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    from server.desk import services

    await services.add_note(people.agent, ticket_id, "SECRET-NOTE about this customer")
    await services.update_ticket(people.agent, ticket_id, 1, {"tags": ["secret-tag"], "assignee": people.agent.user_id})
    for person in (people.customer, people.org_admin):
        await login(client, person.email)
        text = (await client.get(f"/support/tickets/{ticket_id}")).text
        assert "SECRET-NOTE" not in text and "secret-tag" not in text and "Internal note" not in text
        await client.post("/logout", data={"_csrf_token": await csrf_token(client, "/")})
    await login(client, people.agent.email)
    text = (await client.get(f"/desk/tickets/{ticket_id}")).text
    assert "SECRET-NOTE" in text and "ticket-message-internal" in text


async def test_agent_desk_views_and_ticket_page(client: httpx.AsyncClient, people: People) -> None:
    group_id = await make_group("Billing", members=[people.agent])
    first = await make_ticket(people.customer, "First problem")
    second = await make_ticket(people.outsider, "Second problem")
    await login(client, people.agent.email)
    home = await client.get("/desk?view=unassigned")
    assert home.status_code == 200 and "First problem" in home.text and "Second problem" in home.text
    assert "data-desk-row" in home.text and "/static/js/desk.js" in home.text
    page = await client.get(f"/desk/tickets/{first}")
    assert page.status_code == 200 and "Casey Customer" in page.text and "Acme Corp" in page.text
    version = VERSION_RE.search(page.text).group(1)  # type: ignore[union-attr]
    saved = await post_form(
        client,
        f"/desk/tickets/{first}/fields",
        {
            "version": version,
            "status": "open",
            "priority": "high",
            "ticket_type": "incident",
            "team": str(group_id),
            "assignee": str(people.agent.user_id),
            "tags": "billing",
        },
        page=f"/desk/tickets/{first}",
    )
    assert saved.status_code == 200
    mine = await client.get("/desk?view=mine")
    assert "First problem" in mine.text and "Second problem" not in mine.text
    groups = await client.get("/desk?view=groups")
    assert "First problem" in groups.text
    stale = await post_form(
        client,
        f"/desk/tickets/{first}/fields",
        {"version": version, "status": "pending", "priority": "low", "ticket_type": "question", "tags": ""},
        page=f"/desk/tickets/{second}",
    )
    assert stale.status_code == 409
    assert "Someone else changed this ticket" in stale.text and "Normal → High" in stale.text
    partial = await client.get("/desk?view=all", headers={"HX-Request": "true", "HX-Target": "desk-list"})
    assert partial.text.lstrip().startswith('<div id="desk-list">')


async def test_agent_replies_notes_and_applies_a_macro(client: httpx.AsyncClient, people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    macro_id = await make_macro("Ask for logs", "Hello {{requester.first_name}}!", actions={"status": "pending"})
    await login(client, people.agent.email)
    page = f"/desk/tickets/{ticket_id}"
    text = (await client.get(page)).text
    version = VERSION_RE.search(text).group(1)  # type: ignore[union-attr]
    note = await post_form(client, f"{page}/messages", {"internal": "1", "body": "Checked the logs"}, page=page)
    assert note.status_code == 200 and "Checked the logs" in note.text
    reply = await post_form(client, f"{page}/messages", {"internal": "0", "body": "We are on it"}, page=page)
    assert reply.status_code == 200
    version = VERSION_RE.search(reply.text).group(1)  # type: ignore[union-attr]
    used = await post_form(client, f"{page}/macro", {"macro": str(macro_id), "version": version}, page=page)
    assert used.status_code == 200 and "Hello Casey!" in used.text
    kinds = [r["kind"] for r in await TicketMessage.select(TicketMessage.kind).where(TicketMessage.ticket == ticket_id)]
    assert kinds.count("internal") == 1 and kinds.count("public") == 3
    preview = await post_form(client, "/desk/preview", {"body": "**bold**"}, page=page)
    assert "<strong>bold</strong>" in preview.text


async def test_merge_and_links_from_the_ticket_page(client: httpx.AsyncClient, people: People) -> None:
    source = await make_ticket(people.customer, "Duplicate")
    target = await make_ticket(people.customer, "Original")
    await login(client, people.agent.email)
    page = f"/desk/tickets/{source}"
    linked = await post_form(client, f"{page}/links", {"other": f"#{target}"}, page=page)
    assert linked.status_code == 200 and f"/desk/tickets/{target}" in linked.text
    bad = await post_form(client, f"{page}/merge", {"target": "abc"}, page=page)
    assert bad.status_code == 422
    merged = await post_form(client, f"{page}/merge", {"target": str(target)}, page=page)
    assert merged.status_code == 200 and str(merged.url).endswith(f"/desk/tickets/{target}")
    row = await Ticket.select(Ticket.merged_into).where(Ticket.id == source).first()
    assert row and row["merged_into"] == target


async def test_deflection_events_are_recorded_from_signed_tokens(client: httpx.AsyncClient, people: People) -> None:
    from server.desk import deflection

    await login(client, people.customer.email)
    form = await client.get("/support/new")
    visit = re.search(r'name="visit" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    shown = deflection.shown_token(visit, "export", ["kb:1", "kb:2"])
    token = await csrf_token(client, "/support/new")
    for data in (
        {"kind": "shown", "token": shown},
        {"kind": "click", "token": shown, "doc": "kb:2"},
        {"kind": "left", "token": visit},
        {"kind": "left", "token": visit},
    ):
        response = await client.post("/support/deflection", data={**data, "_csrf_token": token})
        assert response.status_code == 204
    forged = await client.post(
        "/support/deflection", data={"kind": "click", "token": shown, "doc": "kb:9", "_csrf_token": token}
    )
    assert forged.status_code == 422
    junk = await client.post("/support/deflection", data={"kind": "left", "token": "junk", "_csrf_token": token})
    assert junk.status_code == 422
    kinds = [r["kind"] for r in await DeflectionEvent.select(DeflectionEvent.kind).order_by(DeflectionEvent.id)]
    assert kinds == ["shown", "click", "left"]
    await post_form(
        client, "/support/new", {"subject": "Still stuck", "body": "Help", "visit": visit}, page="/support/new"
    )
    kinds = [r["kind"] for r in await DeflectionEvent.select(DeflectionEvent.kind).order_by(DeflectionEvent.id)]
    assert kinds == ["shown", "click", "left", "submitted"]
    other = await make_ticket(people.outsider)
    assert other
    # Another user's visit token is refused.
    other_visit = deflection.new_visit(people.outsider)
    response = await client.post(
        "/support/deflection", data={"kind": "left", "token": other_visit, "_csrf_token": token}
    )
    assert response.status_code == 422


async def test_suggest_without_search_content_answers_quietly(client: httpx.AsyncClient, people: People) -> None:
    await login(client, people.customer.email)
    response = await client.get("/support/suggest?subject=hi")
    assert response.status_code == 200 and 'id="support-suggestions"' in response.text


async def test_pages_render_in_japanese(client: httpx.AsyncClient, people: People) -> None:
    from server.desk import services
    from tests.factories import make_user

    agent = await make_user("agent", locale="ja", name="佐藤 美咲")
    customer = await make_user(locale="ja", name="小林 翔")
    ticket_id = await make_ticket(customer, "タイムラインが表示されません", "読み込みが終わりません。")
    await make_field("due", "date")
    await services.update_ticket(agent, ticket_id, 1, {"status": "pending", "priority": "high"})
    await login(client, agent.email)
    home = await client.get("/desk?view=all")
    assert home.status_code == 200 and "未解決のすべて" in home.text and "保留（お客様待ち）" in home.text
    page = await client.get(f"/desk/tickets/{ticket_id}")
    assert page.status_code == 200 and "お客様の情報" in page.text and "優先度: 通常 → 高" in page.text
    await client.post("/logout", data={"_csrf_token": await csrf_token(client, "/")})
    await login(client, customer.email)
    form = await client.get("/support/new")
    assert "送信する" in form.text
    mine = await client.get(f"/support/tickets/{ticket_id}")
    assert mine.status_code == 200 and "問題は解決しましたか？" in mine.text and "優先度" not in mine.text


async def test_ticket_sidebar_shows_the_requesters_recent_community_activity(
    client: httpx.AsyncClient, people: People
) -> None:
    category = await make_category("questions")
    asked = await make_thread(people.customer, category, "Exports time out on large boards")
    ticket_id = await make_ticket(people.customer, "Export problem")
    await login(client, people.agent.email)
    page = await client.get(f"/desk/tickets/{ticket_id}")
    assert "Recent community activity" in page.text
    assert f'href="/community/t/{asked}/1">Exports time out on large boards</a>' in page.text
    assert "started the thread" in page.text

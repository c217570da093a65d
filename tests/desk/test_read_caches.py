"""The desk's read pages keep short per-process caches (the session's actor, the agents, groups,
macros and field definitions); a change made in this process shows at once, and the merged
queries (the view counts, a ticket's links) read what the separate ones did."""

from __future__ import annotations

from datetime import timedelta

import httpx

from server.accounts import services as accounts
from server.accounts.auth import utcnow
from server.accounts.tables import User
from server.desk import queries, services
from server.desk.tables import Ticket
from tests.conftest import csrf_token, post_form
from tests.desk.conftest import People
from tests.desk.factories import make_ticket
from tests.factories import login


async def test_a_removed_agent_role_applies_at_the_next_request(client: httpx.AsyncClient, people: People) -> None:
    await login(client, people.agent.email)
    assert (await client.get("/desk")).status_code == 200
    assert (await client.get("/desk")).status_code == 200  # served from the cached actor

    await accounts.admin_set_roles(people.admin, people.agent.user_id, ["customer"])

    assert (await client.get("/desk")).status_code == 403


async def test_a_deactivated_agent_is_signed_out_at_the_next_request(client: httpx.AsyncClient, people: People) -> None:
    await login(client, people.agent.email)
    assert (await client.get("/desk")).status_code == 200

    await accounts.admin_set_active(people.admin, people.agent.user_id, False)

    response = await client.get("/desk", follow_redirects=False)
    assert response.status_code == 303  # to the sign-in page


async def test_signing_out_ends_the_cached_session(client: httpx.AsyncClient, people: People) -> None:
    await login(client, people.agent.email)
    cookie = client.cookies.get("kz_session")
    assert (await client.get("/desk")).status_code == 200
    await client.post("/logout", data={"_csrf_token": await csrf_token(client, "/")})

    client.cookies.set("kz_session", cookie)  # replayed after sign-out
    assert (await client.get("/desk", follow_redirects=False)).status_code == 303


async def test_a_macro_saved_by_an_admin_shows_on_the_ticket_page_at_once(
    client: httpx.AsyncClient, people: People
) -> None:
    ticket_id = await make_ticket(people.customer)
    await login(client, people.agent.email)
    page = f"/desk/tickets/{ticket_id}"
    assert "Refund steps" not in (await client.get(page)).text  # the macros are now cached

    await login(client, people.admin.email)
    saved = await post_form(
        client, "/admin/desk/macros/new", {"name": "Refund steps", "body_md": "Hi", "active": "1"}, page="/admin/desk"
    )
    assert saved.status_code in (200, 303)

    assert "Refund steps" in (await client.get(page)).text


async def test_view_counts_in_one_statement_match_each_view(people: People) -> None:
    for n in range(3):
        await make_ticket(people.customer, subject=f"Ticket {n}")
    first = await Ticket.select(Ticket.id, Ticket.version).order_by(Ticket.id).first()
    await services.update_ticket(people.agent, first["id"], first["version"], {"assignee": people.agent.user_id})

    counts = await queries.view_counts(people.agent)

    for view in queries.VIEWS:
        assert counts[view] == await queries.capped_count([queries.view_clause(people.agent, view)]), view
    assert counts["unassigned"] == 2
    assert counts["all"] == 3


async def test_links_in_one_query(people: People) -> None:
    a, b, c, child = [await make_ticket(people.customer, subject=f"T{n}") for n in range(4)]
    await services.link_related(people.agent, a, b)
    await services.link_related(people.agent, c, a)
    await services.set_parent(people.agent, child, a)

    found = await queries.links(a)
    assert sorted(r["id"] for r in found["related"]) == [b, c]
    assert [r["id"] for r in found["children"]] == [child]
    assert found["parent"] == []

    of_child = await queries.links(child, await queries.get_ticket(child))
    assert [r["id"] for r in of_child["parent"]] == [a]
    assert of_child["parent"][0]["subject"] == "T0"
    assert of_child["related"] == [] and of_child["children"] == []


async def test_list_rows_show_every_change_and_the_badge_as_of_now(client: httpx.AsyncClient, people: People) -> None:
    """Rows are rendered once per distinct content (server/desk/rows.py): a changed value, a
    renamed requester or a badge that turned at-risk by the clock is a different row."""
    ticket_id = await make_ticket(people.customer, subject="Export fails")
    await login(client, people.agent.email)
    first = (await client.get("/desk?view=all")).text
    assert "Export fails" in first and (await client.get("/desk?view=all")).text.count("Export fails") == 1

    version = (await Ticket.select(Ticket.version).where(Ticket.id == ticket_id).first())["version"]
    await services.update_ticket(people.agent, ticket_id, version, {"status": "pending"})
    await User.update({User.display_name: "Renamed Customer"}).where(User.id == people.customer.user_id)
    page = (await client.get("/desk?view=all")).text
    assert "ticket-status-pending" in page and "Renamed Customer" in page

    soon = utcnow() + timedelta(hours=1)
    await Ticket.update({Ticket.sla_due_at: soon, Ticket.sla_at_risk_at: soon}).where(Ticket.id == ticket_id)
    assert "sla-ok" in (await client.get("/desk?view=all")).text
    await Ticket.update({Ticket.sla_at_risk_at: utcnow() - timedelta(minutes=1)}).where(Ticket.id == ticket_id)
    assert "sla-at_risk" in (await client.get("/desk?view=all")).text


async def test_view_counts_stop_at_the_cap(people: People) -> None:
    for n in range(queries.COUNT_CAP + 1):
        await make_ticket(people.customer, subject=f"Ticket {n}")
    counts = await queries.view_counts(people.agent)
    assert counts["unassigned"] == queries.COUNT_CAP
    assert queries.count_label(counts["unassigned"]) == f"{queries.COUNT_CAP - 1}+"
    assert queries.count_label(7) == "7"

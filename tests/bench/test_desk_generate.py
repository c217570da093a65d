"""The desk benchmark's generator (bench/desk_generate.py) writes data the desk really serves:
an agent's session and API token work, every default view and a 20-message ticket page render."""

from __future__ import annotations

import re

import httpx

from bench.desk_generate import SIZES, generate
from server.desk.sla_tables import TicketSla
from server.desk.tables import Ticket, TicketMessage

VIEWS = ("mine", "unassigned", "groups", "pending", "sla", "solved", "all")


async def test_generated_desk_renders_for_its_agent(client: httpx.AsyncClient) -> None:
    made = await generate(SIZES["tiny"], seed=3)
    assert made.tickets == 200
    assert await Ticket.count() == 200
    assert await TicketMessage.count() == made.messages
    assert 4.0 < made.messages / made.tickets < 6.0
    assert await TicketMessage.count().where(TicketMessage.ticket == made.twenty_ticket_id) == 20
    statuses = {r["status"] for r in await Ticket.select(Ticket.status).distinct()}
    assert {"closed", "open"} <= statuses
    locales = {r["locale"] for r in await Ticket.select(Ticket.locale).distinct()}
    assert locales == {"en", "ja"}
    # Every running SLA clock has its timer row.
    running = await Ticket.count().where(Ticket.sla_due_at.is_not_null())
    assert running > 0
    assert (
        await TicketSla.count().where(
            TicketSla.first_reply_due_at.is_not_null() | TicketSla.next_reply_due_at.is_not_null()
        )
        == running
    )

    client.cookies.set("kz_session", made.session_token)
    for view in VIEWS:
        response = await client.get(f"/desk?view={view}")
        assert response.status_code == 200, view
    # The pending view lists exactly the pending tickets (newest first, the first page).
    pending = (
        await Ticket.select(Ticket.id).where(Ticket.status == "pending").order_by(Ticket.updated_at, ascending=False)
    )
    page = (await client.get("/desk?view=pending")).text
    shown = [int(n) for n in re.findall(r'href="/desk/tickets/(\d+)"', page)]
    assert list(dict.fromkeys(shown)) == [r["id"] for r in pending][:25]

    ticket = await Ticket.select(Ticket.subject).where(Ticket.id == made.twenty_ticket_id).first()
    response = await client.get(f"/desk/tickets/{made.twenty_ticket_id}")
    assert response.status_code == 200
    assert ticket["subject"] in response.text

    client.cookies.clear()
    listed = await client.get("/api/v1/tickets?limit=5", headers={"Authorization": f"Bearer {made.api_token}"})
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 5

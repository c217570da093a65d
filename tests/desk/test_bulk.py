"""Bulk actions: one transaction for every selected ticket, each checked on its own (version,
rules), with a result per ticket."""

from __future__ import annotations

import re

import httpx
import pytest
from litestar.exceptions import PermissionDeniedException

from server import realtime
from server.desk import bulk, queries, services
from server.desk.tables import Ticket, TicketMessage
from server.errors import Invalid
from tests.conftest import csrf_token
from tests.desk.conftest import People
from tests.desk.factories import make_macro, make_ticket
from tests.factories import login


async def _version(ticket_id: int) -> int:
    row = await Ticket.select(Ticket.version).where(Ticket.id == ticket_id).first()
    assert row
    return row["version"]


async def test_bulk_status_skips_a_parent_with_open_children_and_a_stale_row(people: People) -> None:
    parent = await make_ticket(people.customer, "Outage")
    child = await make_ticket(people.colleague, "Me too")
    plain = await make_ticket(people.customer, "Unrelated")
    stale = await make_ticket(people.outsider, "Changed meanwhile")
    await services.set_parent(people.agent, child, parent)
    selection = [(parent, await _version(parent)), (plain, await _version(plain)), (stale, await _version(stale))]
    await services.update_ticket(people.agent2, stale, await _version(stale), {"priority": "high"})
    with realtime.capture() as sent:
        results = await bulk.bulk_apply(people.agent, selection, "status", "solved")
    by_id = {r.ticket_id: r for r in results}
    assert [r.ticket_id for r in results] == sorted([parent, plain, stale])
    assert by_id[plain].done and not by_id[parent].done and not by_id[stale].done
    assert f"#{child}" in by_id[parent].reason and "child" in by_id[parent].reason
    assert "changed" in by_id[stale].reason
    statuses = {r["id"]: r["status"] for r in await Ticket.select(Ticket.id, Ticket.status)}
    assert statuses[plain] == "solved" and statuses[parent] == "new" and statuses[stale] == "new"
    # Only the changed ticket is broadcast.
    assert {e.channel for e in sent} == {f"ticket:{plain}", "desk:0"}
    assert [e.payload["ticket_id"] for e in sent if e.channel == "desk:0"] == [plain]


async def test_bulk_assign_tags_and_macro(people: People) -> None:
    first = await make_ticket(people.customer, "One", tags=["old"])
    second = await make_ticket(people.colleague, "Two")

    async def selection() -> list[tuple[int, int]]:
        return [(first, await _version(first)), (second, await _version(second))]

    results = await bulk.bulk_apply(people.agent, await selection(), "assign", "me")
    assert all(r.done for r in results)
    assert {(await queries.get_ticket(t))["assignee"] for t in (first, second)} == {people.agent.user_id}  # type: ignore[index]
    await bulk.bulk_apply(people.agent, await selection(), "add_tags", "vip, billing")
    await bulk.bulk_apply(people.agent, await selection(), "remove_tags", "old")
    assert (await queries.get_ticket(first))["tags"] == ["vip", "billing"]  # type: ignore[index]
    assert (await queries.get_ticket(second))["tags"] == ["vip", "billing"]  # type: ignore[index]
    macro = await make_macro("Closing", "Thanks {{requester.first_name}}!", actions={"status": "pending"})
    results = await bulk.bulk_apply(people.agent, await selection(), "macro", str(macro))
    assert all(r.done for r in results)
    replies = (
        await TicketMessage.select(TicketMessage.body_md)
        .where(TicketMessage.kind == "public")
        .order_by(TicketMessage.id)
    )
    assert [r["body_md"] for r in replies][-2:] == ["Thanks Casey!", "Thanks Colin!"]
    assert {(await queries.get_ticket(t))["status"] for t in (first, second)} == {"pending"}  # type: ignore[index]
    unassigned = await bulk.bulk_apply(people.agent, await selection(), "assign", "none")
    assert all(r.done for r in unassigned)


async def test_bulk_input_and_policy(people: People) -> None:
    ticket = await make_ticket(people.customer)
    with pytest.raises(PermissionDeniedException):
        await bulk.bulk_apply(people.customer, [(ticket, 1)], "status", "solved")
    for action, value, field in (
        ("explode", "", "action"),
        ("status", "done", "value"),
        ("assign", str(people.customer.user_id), "value"),  # not an agent
        ("add_tags", "", "value"),
        ("macro", "999", "value"),
    ):
        with pytest.raises(Invalid) as bad:
            await bulk.bulk_apply(people.agent, [(ticket, 1)], action, value)
        assert field in bad.value.errors
    with pytest.raises(Invalid):
        await bulk.bulk_apply(people.agent, [], "status", "open")
    with pytest.raises(Invalid):
        bulk.parse_selection(["1:x"])
    assert bulk.parse_selection(["3:1", "2:5", "3:2"]) == [(2, 5), (3, 2)]
    missing = await bulk.bulk_apply(people.agent, [(ticket, 1), (999_999, 1)], "status", "open")
    assert [r.done for r in missing] == [True, False] and missing[1].reason


async def test_bulk_route_reports_each_ticket(client: httpx.AsyncClient, people: People) -> None:
    parent = await make_ticket(people.customer, "Parent ticket")
    child = await make_ticket(people.customer, "Child ticket")
    other = await make_ticket(people.colleague, "Other ticket")
    await services.set_parent(people.agent, child, parent)
    await login(client, people.agent.email)
    home = await client.get("/desk?view=all")
    boxes = re.findall(r'name="t" value="(\d+:\d+)" form="desk-bulk-form"', home.text)
    assert len(boxes) == 3 and 'id="desk-bulk-form"' in home.text
    token = await csrf_token(client, "/desk")
    wanted = [b for b in boxes if int(b.split(":")[0]) in (parent, other)]
    response = await client.post(
        "/desk/bulk",
        data={
            "t": wanted,
            "action": "status",
            "value_status": "solved",
            "next": "/desk?view=all",
            "_csrf_token": token,
        },
    )
    assert response.status_code == 200
    assert "1 changed, 1 skipped." in response.text and f"Solve the child tickets first: #{child}" in response.text
    assert 'href="/desk?view=all"' in response.text
    empty = await client.post("/desk/bulk", data={"action": "status", "value_status": "open", "_csrf_token": token})
    assert empty.status_code == 422 and "Select at least one ticket." in empty.text
    await client.post("/logout", data={"_csrf_token": token})
    await login(client, people.customer.email)
    token = await csrf_token(client, "/")
    denied = await client.post(
        "/desk/bulk", data={"t": wanted, "action": "status", "value_status": "open", "_csrf_token": token}
    )
    assert denied.status_code == 403

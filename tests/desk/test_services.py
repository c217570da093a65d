"""Ticket actions through the real services and database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from server import jobs
from server.accounts.auth import utcnow
from server.desk import queries, services
from server.desk.attachments import Upload
from server.desk.tables import Ticket, TicketAttachment, TicketFollower, TicketMessage
from server.errors import Invalid, NotFound
from server.policy import ANONYMOUS
from tests.desk.conftest import People
from tests.desk.factories import make_field, make_group, make_macro, make_ticket
from tests.factories import Mailbox


async def status_of(ticket_id: int) -> str:
    row = await Ticket.select(Ticket.status).where(Ticket.id == ticket_id).first()
    return row["status"]


async def version_of(ticket_id: int) -> int:
    row = await Ticket.select(Ticket.version).where(Ticket.id == ticket_id).first()
    return row["version"]


async def test_open_ticket_records_requester_organisation_and_first_message(people: People) -> None:
    ticket_id = await make_ticket(people.customer, "Export   fails", "The **CSV** export stops.", tags=["Export"])
    ticket = await queries.get_ticket(ticket_id)
    assert ticket is not None
    assert ticket["subject"] == "Export fails" and ticket["status"] == "new" and ticket["channel"] == "web"
    assert ticket["requester"] == people.customer.user_id
    assert ticket["organisation"] == min(people.customer.org_ids)
    assert ticket["tags"] == ["export"] and ticket["version"] == 1
    messages = await queries.conversation(people.agent, ticket_id)
    assert [m["kind"] for m in messages] == ["public"]
    assert "<strong>CSV</strong>" in messages[0]["body_html"]


async def test_open_ticket_checks_input_and_needs_an_account(people: People) -> None:
    with pytest.raises(Invalid) as caught:
        await services.open_ticket(people.customer, " ", "", priority="whenever")
    assert set(caught.value.errors) == {"subject", "body", "priority"}
    with pytest.raises(NotAuthorizedException):
        await services.open_ticket(ANONYMOUS, "Hi", "There")
    with pytest.raises(Invalid):
        await services.open_ticket(people.customer, "Hi", "There", custom_fields={"secret_field": "x"})


async def test_agent_reply_opens_and_customer_reply_reopens(people: People, mailbox: Mailbox) -> None:
    ticket_id = await make_ticket(people.customer)
    await services.add_reply(people.agent, ticket_id, "Try again please.", status="pending")
    assert await status_of(ticket_id) == "pending"
    ticket = await queries.get_ticket(ticket_id)
    assert ticket and ticket["first_replied_at"] is not None
    await services.add_reply(people.customer, ticket_id, "Still broken.")
    assert await status_of(ticket_id) == "open"
    await services.update_ticket(people.agent, ticket_id, await version_of(ticket_id), {"status": "solved"})
    await services.add_reply(people.customer, ticket_id, "It came back.")
    assert await status_of(ticket_id) == "open"
    mails = await mailbox.messages(to=people.customer.email)
    assert any("Try again please." in m.body for m in mails)
    assert any(f"#{ticket_id}" in m.subject for m in mails)


async def test_notes_are_for_agents_and_never_reach_customers(people: People, mailbox: Mailbox) -> None:
    ticket_id = await make_ticket(people.customer)
    with pytest.raises(PermissionDeniedException):
        await services.add_note(people.customer, ticket_id, "I am sneaky")
    await services.add_note(people.agent, ticket_id, "Customer is on the legacy plan")
    agent_view = await queries.conversation(people.agent, ticket_id)
    customer_view = await queries.conversation(people.customer, ticket_id)
    assert [m["kind"] for m in agent_view] == ["public", "internal"]
    assert [m["kind"] for m in customer_view] == ["public"]
    mails = await mailbox.messages()
    assert not any("legacy plan" in m.body for m in mails)


async def test_update_with_a_stale_version_conflicts_and_shows_the_other_change(people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    await services.update_ticket(people.agent, ticket_id, 1, {"priority": "high", "assignee": people.agent.user_id})
    with pytest.raises(services.TicketConflict) as caught:
        await services.update_ticket(people.agent2, ticket_id, 1, {"priority": "low"})
    assert caught.value.current["priority"] == "high" and caught.value.current["version"] == 2
    changes = caught.value.changes[0]["event"]["changes"]
    assert {"field": "priority", "from": "normal", "to": "high"} in changes
    assert caught.value.changes[0]["author_name"] == "Ada Agent"
    assert (await queries.get_ticket(ticket_id))["priority"] == "high"  # type: ignore[index]


async def test_update_validates_fields_and_records_a_system_event(people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    group_id = await make_group("Billing", members=[people.agent])
    field_id = await make_field("seats", "number")
    assert field_id
    with pytest.raises(Invalid) as caught:
        await services.update_ticket(
            people.agent, ticket_id, 1, {"status": "done", "assignee": people.customer.user_id}, {"seats": "many"}
        )
    assert set(caught.value.errors) == {"status", "assignee", "cf_seats"}
    ticket = await services.update_ticket(
        people.agent, ticket_id, 1, {"team": group_id, "tags": "vip, export"}, {"seats": "12"}
    )
    assert ticket["team"] == group_id and ticket["tags"] == ["vip", "export"] and ticket["version"] == 2
    assert await queries.field_values(ticket_id) == {"seats": "12"}
    events = [m for m in await queries.conversation(people.agent, ticket_id) if m["kind"] == "system"]
    fields_changed = {c["field"] for c in events[-1]["event"]["changes"]}
    assert fields_changed == {"team", "tags", "cf:seats"}
    with pytest.raises(PermissionDeniedException):
        await services.update_ticket(people.customer, ticket_id, 2, {"priority": "urgent"})


async def test_macro_fills_placeholders_safely_and_sets_fields(people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    macro_id = await make_macro(
        "Need logs",
        "Hi {{requester.first_name}}, please send logs for #{{ticket.id}}. {{unknown.name}}",
        actions={"status": "pending", "add_tags": ["needs-logs"]},
    )
    await services.apply_macro(people.agent, ticket_id, macro_id, 1)
    ticket = await queries.get_ticket(ticket_id)
    assert ticket and ticket["status"] == "pending" and ticket["tags"] == ["needs-logs"]
    reply = [m for m in await queries.conversation(people.customer, ticket_id)][-1]
    assert reply["body_md"].startswith(f"Hi Casey, please send logs for #{ticket_id}.")
    assert "{{unknown.name}}" in reply["body_md"]


async def test_placeholder_values_cannot_inject_markup(people: People) -> None:
    from tests.factories import make_user

    sneaky = await make_user(name="[click](javascript:alert(1)) <b>x</b>")
    ticket_id = await make_ticket(sneaky)
    macro_id = await make_macro("Hello", "Dear {{requester.name}}")
    await services.apply_macro(people.agent, ticket_id, macro_id, 1)
    reply = [m for m in await queries.conversation(people.agent, ticket_id) if m["kind"] == "public"][-1]
    assert "<a" not in reply["body_html"] and "<b>" not in reply["body_html"]
    assert "[click](javascript:alert(1))" in reply["body_html"]


async def test_customer_marks_solved_and_solved_tickets_close_after_the_configured_days(people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    with pytest.raises(NotFound):
        await services.mark_solved(people.outsider, ticket_id)
    await services.mark_solved(people.customer, ticket_id)
    assert await status_of(ticket_id) == "solved"
    await jobs.run_pending()
    assert await status_of(ticket_id) == "solved"  # not due yet: the timer waits 4 days
    past = utcnow() - timedelta(days=5)
    await Ticket.update({Ticket.solved_at: past}).where(Ticket.id == ticket_id)
    await jobs.Job.update({jobs.Job.run_at: past}).where(jobs.Job.kind == services.AUTO_CLOSE_KIND)
    await jobs.run_pending()
    assert await status_of(ticket_id) == "closed"
    with pytest.raises(Invalid):
        await services.add_reply(people.customer, ticket_id, "One more thing")


async def test_a_reopened_ticket_is_not_closed_by_its_old_timer(people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    await services.mark_solved(people.customer, ticket_id)
    await services.add_reply(people.customer, ticket_id, "Wait, it is back")
    past = utcnow() - timedelta(days=5)
    await jobs.Job.update({jobs.Job.run_at: past}).where(jobs.Job.kind == services.AUTO_CLOSE_KIND)
    await jobs.run_pending()
    assert await status_of(ticket_id) == "open"
    assert await services.close_due_tickets() == 0


async def test_sweep_closes_every_due_ticket(people: People) -> None:
    ids = [await make_ticket(people.customer, f"Issue {n}") for n in range(3)]
    for ticket_id in ids[:2]:
        await services.mark_solved(people.customer, ticket_id)
    await Ticket.update({Ticket.solved_at: utcnow() - timedelta(days=10)}).where(Ticket.id == ids[0])
    assert await services.close_due_tickets() == 1
    assert [await status_of(i) for i in ids] == ["closed", "solved", "new"]


async def test_merge_moves_messages_closes_the_source_and_tells_both_requesters(
    people: People, mailbox: Mailbox
) -> None:
    source = await make_ticket(people.outsider, "Login broken", "Cannot log in")
    target = await make_ticket(people.customer, "Sign-in fails", "Sign-in fails for everyone")
    upload = Upload("log.txt", b"error 500")
    await services.add_reply(people.outsider, source, "Screenshot attached", uploads=[upload])
    await services.merge_tickets(people.agent, source, target)
    merged = await queries.get_ticket(source)
    assert merged and merged["merged_into"] == target and merged["status"] == "closed"
    bodies = [m["body_md"] for m in await queries.conversation(people.agent, target) if m["kind"] == "public"]
    assert bodies == ["Cannot log in", "Screenshot attached", "Sign-in fails for everyone"] or set(bodies) == {
        "Cannot log in",
        "Screenshot attached",
        "Sign-in fails for everyone",
    }
    assert await TicketAttachment.count().where(TicketAttachment.ticket == target) == 1
    assert await TicketFollower.exists().where(
        (TicketFollower.ticket == target) & (TicketFollower.user == people.outsider.user_id)
    )
    await queries.access_ticket(people.outsider, target)  # copied on the survivor: can follow it
    mails_out = await mailbox.messages(to=people.outsider.email)
    assert any("merged" in m.subject.lower() and f"/support/tickets/{target}" in m.body for m in mails_out)
    assert any("merged" in m.subject.lower() for m in await mailbox.messages(to=people.customer.email))
    with pytest.raises(Invalid):
        await services.merge_tickets(people.agent, source, target)
    with pytest.raises(Invalid):
        await services.merge_tickets(people.agent, target, target)


async def test_parent_cannot_be_solved_while_children_are_open(people: People) -> None:
    parent = await make_ticket(people.customer, "Outage")
    child = await make_ticket(people.colleague, "Outage for me too")
    await services.set_parent(people.agent, child, parent)
    with pytest.raises(Invalid) as caught:
        await services.update_ticket(people.agent, parent, await version_of(parent), {"status": "solved"})
    assert f"#{child}" in caught.value.errors["status"]
    with pytest.raises(Invalid):
        await services.mark_solved(people.customer, parent)
    with pytest.raises(Invalid):
        await services.set_parent(people.agent, parent, child)  # no cycles
    await services.update_ticket(people.agent, child, await version_of(child), {"status": "solved"})
    await services.update_ticket(people.agent, parent, await version_of(parent), {"status": "solved"})
    assert await status_of(parent) == "solved"


async def test_related_links_are_symmetric_and_unique(people: People) -> None:
    one = await make_ticket(people.customer, "One")
    two = await make_ticket(people.customer, "Two")
    await services.link_related(people.agent, one, two)
    await services.link_related(people.agent, two, one)
    assert [t["id"] for t in (await queries.links(one))["related"]] == [two]
    assert [t["id"] for t in (await queries.links(two))["related"]] == [one]
    await services.unlink_related(people.agent, two, one)
    assert (await queries.links(one))["related"] == []
    with pytest.raises(Invalid):
        await services.link_related(people.agent, one, one)
    with pytest.raises(PermissionDeniedException):
        await services.link_related(people.customer, one, two)


async def test_followers_can_read_and_get_public_replies(people: People, mailbox: Mailbox) -> None:
    ticket_id = await make_ticket(people.customer)
    with pytest.raises(NotFound):
        await queries.access_ticket(people.outsider, ticket_id)
    await services.add_follower(people.agent, ticket_id, people.outsider.email)
    await queries.access_ticket(people.outsider, ticket_id)
    await services.add_note(people.agent, ticket_id, "internal remark")
    await services.add_reply(people.agent, ticket_id, "public answer")
    bodies = [m.body for m in await mailbox.messages(to=people.outsider.email)]
    assert any("public answer" in b for b in bodies) and not any("internal remark" in b for b in bodies)
    await services.remove_follower(people.agent, ticket_id, people.outsider.user_id)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        await queries.access_ticket(people.outsider, ticket_id)


async def test_org_admins_see_their_organisations_tickets_only(people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    await queries.access_ticket(people.org_admin, ticket_id)
    await queries.access_ticket(people.agent, ticket_id)
    for stranger in (people.colleague, people.outsider, people.outsider_admin, people.moderator, ANONYMOUS):
        with pytest.raises(NotFound):
            await queries.access_ticket(stranger, ticket_id)


async def test_views_count_and_page_with_a_keyset_cursor(people: People) -> None:
    group_id = await make_group("Tier 1", members=[people.agent])
    ids = [await make_ticket(people.customer, f"Ticket {n}") for n in range(7)]
    await services.update_ticket(people.agent, ids[0], 1, {"assignee": people.agent.user_id})
    await services.update_ticket(people.agent, ids[1], 1, {"team": group_id, "status": "pending"})
    await services.update_ticket(people.agent, ids[2], 1, {"status": "solved"})
    counts = await queries.view_counts(people.agent)
    assert counts == {"mine": 1, "unassigned": 5, "groups": 1, "pending": 1, "sla": 0, "solved": 1, "all": 6}
    assert (await queries.view_counts(people.agent2))["mine"] == 0
    seen: list[int] = []
    cursor = ""
    while True:
        rows, cursor = await queries.list_view(people.agent, "all", cursor=cursor, limit=4)
        seen += [r["id"] for r in rows]
        if not cursor:
            break
    assert len(seen) == 6 and len(set(seen)) == 6
    oldest_first, _ = await queries.list_view(people.agent, "all", sort="created", limit=10)
    assert [r["id"] for r in oldest_first] == sorted(seen)
    assert (await TicketMessage.count().where(TicketMessage.kind == "system")) == 3


async def test_a_customer_reads_neither_internal_notes_nor_their_files(people: People) -> None:
    ticket_id = await make_ticket(people.customer, "Export fails", "The CSV export stops.")
    await services.add_reply(people.agent, ticket_id, "Send the log, please", uploads=[Upload("steps.txt", b"1. 2.")])
    await services.add_note(people.agent, ticket_id, "Their plan is expired", uploads=[Upload("plan.txt", b"x")])
    for_customer = await queries.conversation(people.customer, ticket_id)
    assert [m["body_md"] for m in for_customer] == ["The CSV export stops.", "Send the log, please"]
    assert [[f["filename"] for f in m["attachments"]] for m in for_customer] == [[], ["steps.txt"]]
    for_agent = await queries.conversation(people.agent, ticket_id)
    files = {m["body_md"]: [f["filename"] for f in m["attachments"]] for m in for_agent if m["kind"] != "system"}
    assert files["Their plan is expired"] == ["plan.txt"] and files["Send the log, please"] == ["steps.txt"]

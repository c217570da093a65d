"""SLA timers on real tickets: recomputed on every event, the at-risk/breached view, escalation by
the worker (idempotent), the ticket page, and the admin pages."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from server import jobs
from server.accounts.auth import utcnow
from server.desk import queries, services, sla
from server.desk.sla_tables import TicketSla
from server.desk.tables import Ticket, TicketMessage
from server.desk.web import describe_event
from server.jobs import Job
from tests.conftest import post_form
from tests.desk.conftest import People
from tests.desk.factories import ADMIN, make_group, make_ticket
from tests.factories import Mailbox, login


async def make_policy(priority: str = "normal", **kw: Any) -> int:
    data = {
        "name": f"{priority.title()} SLA",
        "priority": priority,
        "first_reply_minutes": "60",
        "next_reply_minutes": "120",
        "resolution_minutes": "480",
        "notify_lead": True,
        **kw,
    }
    return await sla.save_policy(ADMIN, None, data)


async def timers(ticket_id: int) -> dict[str, Any]:
    row = await TicketSla.select().where(TicketSla.ticket == ticket_id).output(load_json=True).first()
    assert row is not None
    return row


async def ticket_row(ticket_id: int) -> dict[str, Any]:
    row = await Ticket.select().where(Ticket.id == ticket_id).first()
    assert row is not None
    return row


async def age(ticket_id: int, minutes: float) -> None:
    """Move the ticket and its conversation `minutes` into the past, then recompute."""
    shift = timedelta(minutes=minutes)
    for message in await TicketMessage.select(TicketMessage.id, TicketMessage.created_at).where(
        TicketMessage.ticket == ticket_id
    ):
        await TicketMessage.update({TicketMessage.created_at: message["created_at"] - shift}).where(
            TicketMessage.id == message["id"]
        )
    row = await ticket_row(ticket_id)
    await Ticket.update(
        {Ticket.created_at: row["created_at"] - shift, Ticket.updated_at: row["updated_at"] - shift}
    ).where(Ticket.id == ticket_id)
    await sla.recompute(ticket_id)


def close_to(a: datetime | None, b: datetime, seconds: float = 5) -> bool:
    return a is not None and abs((a - b).total_seconds()) <= seconds


async def test_timers_follow_every_ticket_event(people: People) -> None:
    await make_policy("normal")
    await make_policy("urgent", first_reply_minutes="15", next_reply_minutes="30", resolution_minutes="120")
    ticket_id = await make_ticket(people.customer)
    created = (await ticket_row(ticket_id))["created_at"]
    row = await timers(ticket_id)
    assert row["state"] == "ok"
    assert close_to(row["first_reply_due_at"], created + timedelta(minutes=60))
    assert close_to(row["resolution_due_at"], created + timedelta(minutes=480))
    assert row["next_reply_due_at"] is None
    assert (await ticket_row(ticket_id))["sla_due_at"] == row["first_reply_due_at"]

    await services.add_reply(people.agent, ticket_id, "Looking into it.")
    row = await timers(ticket_id)
    assert row["first_reply_due_at"] is None and row["resolution_due_at"] is not None
    assert (await ticket_row(ticket_id))["sla_due_at"] == row["resolution_due_at"]

    await services.add_reply(people.customer, ticket_id, "Any news?")
    row = await timers(ticket_id)
    assert close_to(row["next_reply_due_at"], utcnow() + timedelta(minutes=120))
    assert (await ticket_row(ticket_id))["sla_due_at"] == row["next_reply_due_at"]

    version = (await ticket_row(ticket_id))["version"]
    await services.update_ticket(people.agent, ticket_id, version, {"priority": "urgent"})
    row = await timers(ticket_id)
    assert close_to(row["next_reply_due_at"], utcnow() + timedelta(minutes=30))
    assert close_to(row["resolution_due_at"], created + timedelta(minutes=120), 10)

    await services.add_reply(people.agent, ticket_id, "Please try this.", status="pending", version=version + 1)
    row = await timers(ticket_id)
    assert row["next_reply_due_at"] is None and row["resolution_due_at"] is None
    assert row["resolution_paused"] and row["state"] == "paused"
    assert (await ticket_row(ticket_id))["sla_due_at"] is None

    await services.add_reply(people.customer, ticket_id, "Did not help.")  # reopens: resolution resumes
    row = await timers(ticket_id)
    assert row["resolution_due_at"] is not None and row["next_reply_due_at"] is not None

    await services.update_ticket(
        people.agent, ticket_id, (await ticket_row(ticket_id))["version"], {"status": "solved"}
    )
    row = await timers(ticket_id)
    assert row["state"] == "done" and (await ticket_row(ticket_id))["sla_due_at"] is None


async def test_a_new_ticket_is_inserted_with_the_timers_its_history_gives(people: People) -> None:
    await make_policy("normal")
    await make_policy("high", first_reply_minutes="30", next_reply_minutes="60", resolution_minutes="240")
    by_customer = await make_ticket(people.customer, "From the portal")
    by_agent = await make_ticket(people.agent, "Logged by an agent", priority="high")  # its first reply is theirs
    for ticket_id in (by_customer, by_agent):
        inserted, stored = await ticket_row(ticket_id), await timers(ticket_id)
        assert inserted["sla_due_at"] is not None and inserted["sla_at_risk_at"] is not None
        await sla.recompute(ticket_id, now=stored["computed_at"])  # the same timers, from the history
        again = await timers(ticket_id)
        for column in ("state", "first_reply_due_at", "next_reply_due_at", "resolution_due_at"):
            assert again[column] == stored[column], column
        recomputed = await ticket_row(ticket_id)
        assert (recomputed["sla_due_at"], recomputed["sla_at_risk_at"]) == (
            inserted["sla_due_at"],
            inserted["sla_at_risk_at"],
        )
    assert (await timers(by_agent))["first_reply_due_at"] is None  # an agent's first message is a reply


async def test_no_policy_no_timers_and_deleting_a_policy_clears_them(people: People) -> None:
    ticket_id = await make_ticket(people.customer, priority="low")
    assert await TicketSla.count().where(TicketSla.ticket == ticket_id) == 0
    assert (await ticket_row(ticket_id))["sla_due_at"] is None
    policy_id = await make_policy("low")
    await jobs.run_pending()  # a changed policy re-targets the unsolved tickets
    assert (await ticket_row(ticket_id))["sla_due_at"] is not None
    await sla.delete_policy(ADMIN, policy_id)
    await jobs.run_pending()
    assert (await ticket_row(ticket_id))["sla_due_at"] is None


async def test_business_hours_calendar_applies_to_the_ticket(people: People) -> None:
    calendar_id = await sla.save_calendar(
        ADMIN,
        None,
        {
            "name": "Tokyo office",
            "time_zone": "Asia/Tokyo",
            **{d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")},
        },
    )
    await make_policy("high", calendar=str(calendar_id), first_reply_minutes="60")
    ticket_id = await make_ticket(people.customer, priority="high")
    due = (await timers(ticket_id))["first_reply_due_at"]
    from zoneinfo import ZoneInfo

    local = due.astimezone(ZoneInfo("Asia/Tokyo"))
    assert local.weekday() < 5 and (9, 0) <= (local.hour, local.minute) <= (18, 0)


async def test_sla_view_lists_at_risk_and_breached_tickets_sorted_by_due(people: People) -> None:
    await make_policy("normal")  # first reply 60 min: at risk after 45
    breached = await make_ticket(people.customer, "Breached one")
    at_risk = await make_ticket(people.customer, "At risk one")
    fine = await make_ticket(people.customer, "Fine one")
    await age(breached, 90)
    await age(at_risk, 50)
    await age(fine, 5)
    rows, _cursor = await queries.list_view(people.agent, "sla", sort="due")
    assert [r["id"] for r in rows] == [breached, at_risk]
    assert (await queries.view_counts(people.agent))["sla"] == 2
    assert sla.badge(rows[0])["state"] == "breached" and sla.badge(rows[1])["state"] == "at_risk"  # type: ignore[index]
    # Sorting any view by due time leaves out tickets without a running clock.
    unsolved, _cursor = await queries.list_view(people.agent, "all", sort="due")
    assert [r["id"] for r in unsolved] == [breached, at_risk, fine]
    page1, cursor = await queries.list_view(people.agent, "all", sort="due", limit=2)
    page2, _cursor = await queries.list_view(people.agent, "all", sort="due", cursor=cursor, limit=2)
    assert [r["id"] for r in page1 + page2] == [breached, at_risk, fine]

    # Paused (pending) tickets leave the view; solving one does too.
    await services.add_reply(people.agent, at_risk, "Need more info", status="pending", version=1)
    rows, _cursor = await queries.list_view(people.agent, "sla", sort="due")
    assert [r["id"] for r in rows] == [breached]


async def test_desk_pages_show_the_sla_view_badges_and_ticket_panel(client: httpx.AsyncClient, people: People) -> None:
    await make_policy("normal")
    breached = await make_ticket(people.customer, "Overdue printer")
    await age(breached, 120)
    await login(client, people.agent.email)
    listing = await client.get("/desk?view=sla")
    assert listing.status_code == 200
    assert "SLA at risk or breached" in listing.text and "Overdue printer" in listing.text
    assert "sla-badge sla-breached" in listing.text
    ticket_page = await client.get(f"/desk/tickets/{breached}")
    assert ticket_page.status_code == 200
    assert "Normal SLA" in ticket_page.text and "First reply" in ticket_page.text and "Breached" in ticket_page.text
    await login(client, people.customer.email)
    portal = await client.get(f"/support/tickets/{breached}")
    assert "sla-badge" not in portal.text and "Normal SLA" not in portal.text


async def test_check_jobs_are_queued_at_the_at_risk_and_due_instants_once(people: People) -> None:
    await make_policy("normal", next_reply_minutes="", resolution_minutes="")
    ticket_id = await make_ticket(people.customer)
    due = (await timers(ticket_id))["first_reply_due_at"]
    rows = (
        await Job.select(Job.idempotency_key, Job.run_at, Job.payload)
        .where(Job.kind == sla.CHECK_KIND)
        .output(load_json=True)
    )
    assert sorted(r["payload"]["what"] for r in rows) == ["due", "risk"]
    due_job = next(r for r in rows if r["payload"]["what"] == "due")
    assert close_to(due_job["run_at"], due, 1)
    for _ in range(3):  # recomputing again does not queue the same check twice
        await sla.recompute(ticket_id)
    assert await Job.count().where(Job.kind == sla.CHECK_KIND) == 2
    await jobs.run_pending()  # nothing is due yet
    assert await Job.count().where((Job.kind == sla.CHECK_KIND) & (Job.status == "queued")) == 2


async def test_breach_escalates_once_mails_the_lead_and_reassigns(people: People, mailbox: Mailbox) -> None:
    group = await make_group("Tier 1", members=[people.agent, people.agent2], lead=people.agent2)
    await make_policy("normal", reassign_to_lead=True)
    ticket_id = await make_ticket(people.customer, "Server down")
    await services.update_ticket(people.agent, ticket_id, 1, {"team": group, "assignee": people.agent.user_id})
    await age(ticket_id, 61)  # the first reply is now overdue: the due check is queued to run now
    await jobs.run_pending()
    mails = await mailbox.messages(to=people.agent2.email)
    assert len(mails) == 1 and f"#{ticket_id}" in mails[0].subject and "SLA" in mails[0].subject
    assert "First reply" in mails[0].body and f"/desk/tickets/{ticket_id}" in mails[0].body
    row = await ticket_row(ticket_id)
    assert row["assignee"] == people.agent2.user_id
    events = (
        await TicketMessage.select(TicketMessage.event)
        .where((TicketMessage.ticket == ticket_id) & (TicketMessage.kind == "system"))
        .output(load_json=True)
    )
    assert sum(1 for e in events if e["event"].get("event") == "sla_breached") == 1
    sla_row = await timers(ticket_id)
    assert len(sla_row["escalated"]) == 1

    # Re-running the check (a retry, a duplicate job, another worker) changes nothing.
    due = int(sla_row["first_reply_due_at"].timestamp())
    assert not await sla.escalate_if_breached(ticket_id, "first_reply", due)
    await jobs.enqueue(sla.CHECK_KIND, {"ticket_id": ticket_id, "target": "first_reply", "due": due, "what": "due"})
    await jobs.run_pending()
    assert len(await mailbox.messages(to=people.agent2.email)) == 1
    # The customer is never told, and sees no SLA event.
    assert not [m for m in await mailbox.messages(to=people.customer.email) if "SLA" in m.subject + m.body]
    assert all(m["kind"] == "public" for m in await queries.conversation(people.customer, ticket_id))
    # Agents see the breach in the conversation.
    conversation = await queries.conversation(people.agent, ticket_id)
    lines = [line for m in conversation if m["kind"] == "system" for line in describe_event(m["event"])]
    assert any(line.startswith("SLA breached: First reply was due") for line in lines)


async def test_a_met_or_moved_target_is_not_escalated(people: People, mailbox: Mailbox) -> None:
    group = await make_group("Tier 1", members=[people.agent], lead=people.agent2)
    await make_policy("normal")
    ticket_id = await make_ticket(people.customer)
    await services.update_ticket(people.agent, ticket_id, 1, {"team": group})
    due = int((await timers(ticket_id))["first_reply_due_at"].timestamp())
    await services.add_reply(people.agent, ticket_id, "On it.")  # met before the check runs
    assert not await sla.escalate_if_breached(ticket_id, "first_reply", due, now=utcnow() + timedelta(hours=2))
    await Job.update({Job.run_at: utcnow() - timedelta(seconds=1)}).where(Job.kind == sla.CHECK_KIND)
    await jobs.run_pending()
    assert not await mailbox.messages(to=people.agent2.email)
    assert (await timers(ticket_id))["escalated"] == []


async def test_admin_pages_create_calendars_and_policies_with_field_errors(
    client: httpx.AsyncClient, people: People
) -> None:
    await login(client, people.admin.email)
    overview = await client.get("/admin/desk/sla")
    assert overview.status_code == 200 and "No SLA policies yet." in overview.text
    bad = await post_form(
        client,
        "/admin/desk/sla/calendars/new",
        {"name": "", "time_zone": "Mars/Base", "mon": "9-5", "holidays": "31/12/2026"},
    )
    assert bad.status_code == 422
    assert "Choose a time zone" in bad.text and "09:00-12:00" in bad.text and "YYYY-MM-DD" in bad.text
    good = await post_form(
        client,
        "/admin/desk/sla/calendars/new",
        {"name": "Berlin office", "time_zone": "Europe/Berlin", "mon": "09:00-17:00", "holidays": "2026-12-25 Xmas"},
        page="/admin/desk/sla/calendars/new",
    )
    assert good.status_code == 200 and "Berlin office" in good.text and "Europe/Berlin" in good.text
    calendar_id = (await sla.calendars())[0]["id"]
    edit = await client.get(f"/admin/desk/sla/calendars/{calendar_id}")
    assert "2026-12-25" in edit.text and "09:00-17:00" in edit.text

    policy = {"name": "Urgent", "priority": "urgent", "first_reply_minutes": "30", "calendar": str(calendar_id)}
    created = await post_form(client, "/admin/desk/sla/policies/new", policy)
    assert created.status_code == 200 and "Urgent" in created.text and "30 min" in created.text
    duplicate = await post_form(client, "/admin/desk/sla/policies/new", policy)
    assert duplicate.status_code == 422 and "Another policy already covers this priority." in duplicate.text
    empty = await post_form(
        client, "/admin/desk/sla/policies/new", {"name": "x", "priority": "low", "first_reply_minutes": "-3"}
    )
    assert empty.status_code == 422 and "Enter between 1 and" in empty.text
    in_use = await post_form(
        client, f"/admin/desk/sla/calendars/{calendar_id}/delete", {}, page=f"/admin/desk/sla/calendars/{calendar_id}"
    )
    assert in_use.status_code == 409 and "Policies use this calendar" in in_use.text
    assert (await client.get("/admin/desk/sla/policies/999999")).status_code == 404
    await login(client, people.agent.email)
    assert (await client.get("/admin/desk/sla")).status_code == 403


async def test_demo_desk_has_calendars_policies_timers_and_ratings(monkeypatch: Any) -> None:
    from server.desk import demo
    from server.desk.sla_tables import CsatRating, SlaCalendar, SlaPolicy
    from tests.desk.test_demo import _seed_people

    monkeypatch.setattr(demo, "TICKETS", 60)
    await _seed_people()
    assert await demo.load_demo_desk() == 60
    names = {r["name"] for r in await SlaCalendar.select(SlaCalendar.name)}
    assert {"Tokyo office hours", "New York office hours", "24/7"} <= names
    assert sorted(r["priority"] for r in await SlaPolicy.select(SlaPolicy.priority)) == sorted(
        ["low", "normal", "high", "urgent"]
    )
    unsolved = await Ticket.count().where(Ticket.status.is_in(["new", "open"]))
    assert await Ticket.count().where(Ticket.sla_due_at.is_not_null()) >= unsolved > 0
    assert await TicketSla.count() == 60
    assert await CsatRating.count().where(CsatRating.rating != "") > 0
    admin = (await queries.agents())[0]
    from server.accounts.auth import load_actor

    agent = await load_actor(admin["id"])
    assert agent is not None
    assert (await queries.view_counts(agent))["sla"] > 0
    # Breaches from before the demo was loaded are not escalated by the worker afterwards.
    await jobs.run_pending()
    events = await TicketMessage.select(TicketMessage.event).output(load_json=True)
    assert not [e for e in events if e["event"].get("event") == "sla_breached"]
    assert await demo.load_demo_desk() == 0


async def test_merged_and_customer_solved_tickets_stop_their_clocks(people: People) -> None:
    await make_policy("normal")
    source = await make_ticket(people.customer, "Duplicate")
    target = await make_ticket(people.customer, "Original")
    await services.merge_tickets(people.agent, source, target)
    assert (await ticket_row(source))["sla_due_at"] is None and (await timers(source))["state"] == "done"
    assert (await ticket_row(target))["sla_due_at"] is not None
    await services.mark_solved(people.customer, target)
    assert (await ticket_row(target))["sla_due_at"] is None


async def test_a_changed_policy_applies_at_once_to_new_tickets_and_by_the_job_to_open_ones(people: People) -> None:
    policy_id = await make_policy("normal")
    first = await make_ticket(people.customer)  # the policy is now cached in this process
    created = (await ticket_row(first))["created_at"]
    assert close_to((await timers(first))["first_reply_due_at"], created + timedelta(minutes=60))

    changed = {"name": "Normal SLA", "priority": "normal", "first_reply_minutes": "15", "notify_lead": True}
    await sla.save_policy(ADMIN, policy_id, changed)
    second = await make_ticket(people.customer)
    second_created = (await ticket_row(second))["created_at"]
    assert close_to((await timers(second))["first_reply_due_at"], second_created + timedelta(minutes=15))

    await jobs.run_pending()  # the save's recompute job re-targets the open ticket
    assert close_to((await timers(first))["first_reply_due_at"], created + timedelta(minutes=15))

"""CSAT through real mail, real links and real pages: asked on solve, rated from the mailed link
without signing in (GET shows, POST records), changed within a week, one reminder, refused links,
the portal form, the agents' panel and report."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from server import jobs
from server.accounts.auth import utcnow
from server.desk import csat, services
from server.desk.sla_tables import CsatRating
from server.desk.tables import Ticket
from server.jobs import Job
from tests.conftest import csrf_token, post_form
from tests.desk.conftest import People
from tests.desk.factories import make_group, make_ticket
from tests.factories import Mailbox, login, make_user

SECRET = "SECRET-NOTE-7731"
GOOD_LINK_RE = re.compile(r"http://testserver\.local(/support/csat/\d+\?token=[^\s]+&rating=good)")
BAD_LINK_RE = re.compile(r"http://testserver\.local(/support/csat/\d+\?token=[^\s]+&rating=bad)")


async def solved_ticket(people: People, subject: str = "Export fails") -> int:
    group = await make_group("Tier 1", members=[people.agent])
    ticket_id = await make_ticket(people.customer, subject)
    await services.update_ticket(people.agent, ticket_id, 1, {"team": group, "assignee": people.agent.user_id})
    await services.add_note(people.agent, ticket_id, f"{SECRET}: customer is difficult")
    await services.add_reply(people.agent, ticket_id, "Fixed in today's release.", status="solved", version=2)
    return ticket_id


async def rating_of(ticket_id: int) -> dict:
    row = await CsatRating.select().where(CsatRating.ticket == ticket_id).first()
    assert row is not None
    return row


async def ask_mail(mailbox: Mailbox, email: str) -> str:
    mails = [m for m in await mailbox.messages(to=email) if "How did we do?" in m.subject or "いかが" in m.subject]
    assert len(mails) == 1, [m.subject for m in await mailbox.messages(to=email)]
    return mails[0].body


def token_of(path: str) -> str:
    return parse_qs(urlparse(path).query)["token"][0]


async def test_solving_asks_by_mail_and_the_link_rates_without_signing_in(
    client: httpx.AsyncClient, people: People, mailbox: Mailbox
) -> None:
    ticket_id = await solved_ticket(people)
    body = await ask_mail(mailbox, people.customer.email)
    assert SECRET not in body and "customer is difficult" not in body
    good = GOOD_LINK_RE.search(body)
    assert good and BAD_LINK_RE.search(body)

    form = await client.get(good.group(1))  # anonymous: the link is the proof
    assert form.status_code == 200
    assert 'value="good" checked' in form.text and "Export fails" in form.text
    assert SECRET not in form.text and "Fixed in today" not in form.text
    assert (await rating_of(ticket_id))["rating"] == ""  # opening the link records nothing

    token = token_of(good.group(1))
    page = good.group(1)
    sent = await post_form(
        client, f"/support/csat/{ticket_id}", {"token": token, "rating": "good", "comment": "Quick and kind"}, page=page
    )
    assert sent.status_code == 200 and "Thank you for your rating." in sent.text
    row = await rating_of(ticket_id)
    assert (row["rating"], row["comment"], row["agent"]) == ("good", "Quick and kind", people.agent.user_id)

    # Changed within the week
    changed = await post_form(client, f"/support/csat/{ticket_id}", {"token": token, "rating": "bad"}, page=page)
    assert changed.status_code == 200 and (await rating_of(ticket_id))["rating"] == "bad"
    invalid = await post_form(client, f"/support/csat/{ticket_id}", {"token": token, "rating": "meh"}, page=page)
    assert invalid.status_code == 422 and "Choose good or bad." in invalid.text

    # After the week: a clear 410, on the form and on its POST
    await CsatRating.update({CsatRating.solved_at: utcnow() - timedelta(days=8)}).where(CsatRating.ticket == ticket_id)
    late = await client.get(page)
    assert late.status_code == 410 and "that time is over" in late.text
    token_form = await csrf_token(client, "/login")
    late_post = await client.post(
        f"/support/csat/{ticket_id}", data={"token": token, "rating": "good", "_csrf_token": token_form}
    )
    assert late_post.status_code == 410 and (await rating_of(ticket_id))["rating"] == "bad"


async def test_forged_foreign_and_expired_links_are_refused(
    client: httpx.AsyncClient, people: People, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket_id = await solved_ticket(people)
    other_id = await make_ticket(people.outsider, "Other request")
    await services.update_ticket(people.agent, other_id, 1, {"status": "solved"})
    token = csat.make_token(ticket_id, people.customer.user_id)  # type: ignore[arg-type]

    forged = await client.get(f"/support/csat/{ticket_id}?token={token[:-3]}abc")
    assert forged.status_code == 400 and "not valid" in forged.text
    made_up = csat.make_token(ticket_id, people.customer.user_id).replace(".", "x", 1)  # type: ignore[arg-type]
    assert (await client.get(f"/support/csat/{ticket_id}?token={made_up}")).status_code == 400
    assert (await client.get(f"/support/csat/{ticket_id}")).status_code == 400

    foreign = await client.get(f"/support/csat/{other_id}?token={token}")
    assert foreign.status_code == 400 and "belongs to another request" in foreign.text
    page = f"/support/csat/{ticket_id}?token={token}"
    reused = await post_form(client, f"/support/csat/{other_id}", {"token": token, "rating": "bad"}, page=page)
    assert reused.status_code == 400
    assert await CsatRating.count().where(CsatRating.rating != "") == 0

    # A link signed for another requester of the same ticket id is refused too.
    stranger = csat.make_token(ticket_id, people.outsider.user_id)  # type: ignore[arg-type]
    assert (await client.get(f"/support/csat/{ticket_id}?token={stranger}")).status_code == 400

    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - csat.TOKEN_MAX_AGE_SECONDS - 60)
    old = csat.make_token(ticket_id, people.customer.user_id)  # type: ignore[arg-type]
    monkeypatch.setattr(time, "time", real_time)
    expired = await client.get(f"/support/csat/{ticket_id}?token={old}")
    assert expired.status_code == 400 and "expired" in expired.text


async def test_unsolved_tickets_cannot_be_rated(client: httpx.AsyncClient, people: People) -> None:
    ticket_id = await solved_ticket(people)
    await services.add_reply(people.customer, ticket_id, "It came back.")  # reopens
    token = csat.make_token(ticket_id, people.customer.user_id)  # type: ignore[arg-type]
    response = await client.get(f"/support/csat/{ticket_id}?token={token}")
    assert response.status_code == 409 and "not solved" in response.text


async def test_one_reminder_when_unanswered(people: People, mailbox: Mailbox) -> None:
    ticket_id = await solved_ticket(people)
    reminders = await Job.select(Job.run_at).where(Job.kind == csat.REMIND_KIND)
    assert len(reminders) == 1
    assert abs((reminders[0]["run_at"] - utcnow()) - csat.REMINDER_AFTER) < timedelta(minutes=1)
    await jobs.run_pending()
    assert not [m for m in await mailbox.messages(to=people.customer.email) if "Reminder" in m.subject]

    await Job.update({Job.run_at: utcnow() - timedelta(seconds=1)}).where(Job.kind == csat.REMIND_KIND)
    await jobs.run_pending()
    solved_epoch = int((await rating_of(ticket_id))["solved_at"].timestamp())
    assert not await csat.send_reminder(ticket_id, solved_epoch)  # a retry sends nothing more
    await jobs.enqueue(csat.REMIND_KIND, {"ticket_id": ticket_id, "solved": solved_epoch})
    await jobs.run_pending()
    reminders_sent = [m for m in await mailbox.messages(to=people.customer.email) if "Reminder" in m.subject]
    assert len(reminders_sent) == 1
    assert SECRET not in reminders_sent[0].body and GOOD_LINK_RE.search(reminders_sent[0].body)


async def test_no_reminder_once_rated(people: People, mailbox: Mailbox) -> None:
    ticket_id = await solved_ticket(people)
    await csat.record(ticket_id, people.customer.user_id, "good", "")  # type: ignore[arg-type]
    solved_epoch = int((await rating_of(ticket_id))["solved_at"].timestamp())
    assert not await csat.send_reminder(ticket_id, solved_epoch)


async def test_japanese_requester_gets_japanese_mail_and_page(
    client: httpx.AsyncClient, people: People, mailbox: Mailbox
) -> None:
    requester = await make_user(locale="ja", name="山田 花子")
    ticket_id = await make_ticket(requester, "請求書について")
    await services.update_ticket(people.agent, ticket_id, 1, {"status": "solved"})
    body = await ask_mail(mailbox, requester.email)
    assert "満足" in body
    link = GOOD_LINK_RE.search(body)
    assert link
    page = await client.get(link.group(1), headers={"Accept-Language": "en"})
    assert page.status_code == 200 and '<html lang="ja">' in page.text and "評価を送信" in page.text


async def test_portal_form_agents_panel_and_report(client: httpx.AsyncClient, people: People) -> None:
    ticket_id = await solved_ticket(people, "Invoice wrong")
    await login(client, people.customer.email)
    portal = await client.get(f"/support/tickets/{ticket_id}")
    assert "How did we do?" in portal.text and 'name="rating"' in portal.text
    missing = await post_form(client, f"/support/tickets/{ticket_id}/csat", {}, page=f"/support/tickets/{ticket_id}")
    assert missing.status_code == 422 and "Choose good or bad." in missing.text
    rated = await post_form(
        client,
        f"/support/tickets/{ticket_id}/csat",
        {"rating": "bad", "comment": "Took too long"},
        page=f"/support/tickets/{ticket_id}",
    )
    assert rated.status_code == 200 and "Thank you for your rating." in rated.text and "Took too long" in rated.text

    # The organisation's admin sees the ticket but does not rate it for the requester.
    await login(client, people.org_admin.email)
    seen = await client.get(f"/support/tickets/{ticket_id}")
    assert seen.status_code == 200 and 'name="rating"' not in seen.text
    denied = await post_form(
        client, f"/support/tickets/{ticket_id}/csat", {"rating": "good"}, page=f"/support/tickets/{ticket_id}"
    )
    assert denied.status_code == 403
    await login(client, people.outsider.email)
    hidden = await post_form(client, f"/support/tickets/{ticket_id}/csat", {"rating": "good"}, page="/support/tickets")
    assert hidden.status_code == 404
    assert (await rating_of(ticket_id))["rating"] == "bad"

    # Agents: on the ticket, in the customer's past tickets, and in the report.
    other = await make_ticket(people.customer, "A newer one")
    await login(client, people.agent.email)
    desk_page = await client.get(f"/desk/tickets/{ticket_id}")
    assert "Satisfaction" in desk_page.text and "Took too long" in desk_page.text
    context = await client.get(f"/desk/tickets/{other}")
    assert "csat-badge csat-bad" in context.text
    report = await client.get("/desk/reports/csat")
    assert report.status_code == 200
    assert "Ada Agent" in report.text and "Tier 1" in report.text and "Took too long" in report.text
    assert "0%" in report.text
    bad_range = await client.get("/desk/reports/csat?start=2026-13-01")
    assert bad_range.status_code == 422 and "YYYY-MM-DD" in bad_range.text
    await login(client, people.customer.email)
    assert (await client.get("/desk/reports/csat")).status_code == 403
    ticket = await Ticket.select(Ticket.status).where(Ticket.id == ticket_id).first()
    assert ticket and ticket["status"] == "solved"


async def test_api_shows_the_rating_to_agents_only(client: httpx.AsyncClient, people: People) -> None:
    from server.accounts import services as accounts

    ticket_id = await solved_ticket(people)
    await csat.record(ticket_id, people.customer.user_id, "good", "Great")  # type: ignore[arg-type]
    agent_token = await accounts.create_api_token(people.agent, "t")
    customer_token = await accounts.create_api_token(people.customer, "t")
    agent_view = await client.get(f"/api/v1/tickets/{ticket_id}", headers={"Authorization": f"Bearer {agent_token}"})
    assert agent_view.status_code == 200 and agent_view.json()["csat"]["rating"] == "good"
    own_view = await client.get(f"/api/v1/tickets/{ticket_id}", headers={"Authorization": f"Bearer {customer_token}"})
    assert own_view.status_code == 200 and own_view.json()["csat"] is None

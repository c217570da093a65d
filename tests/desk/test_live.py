"""The desk's live side: which events the services publish, the fragments each audience group
gets (customers never an internal note), who may subscribe, presence, and the reply collision."""

from __future__ import annotations

import re

import httpx
import pytest

from server import realtime
from server.desk import live, services
from server.desk.tables import TicketMessage
from server.policy import ANONYMOUS
from tests.conftest import csrf_token
from tests.desk.conftest import People
from tests.desk.factories import make_ticket
from tests.factories import login

SEEN_RE = re.compile(r'name="seen_message_id" value="(\d+)"')


async def test_actions_publish_to_the_ticket_and_the_queue(people: People) -> None:
    with realtime.capture() as sent:
        ticket_id = await make_ticket(people.customer)
    assert [(e.channel, e.event) for e in sent] == [("desk:0", "desk.queue")]
    with realtime.capture() as sent:
        await services.add_reply(people.agent, ticket_id, "We are on it")
    channel = f"ticket:{ticket_id}"
    assert [(e.channel, e.event) for e in sent] == [
        (channel, "ticket.message.created"),  # the reply
        ("desk:0", "desk.queue"),  # once per action, although the status changed too
        (channel, "ticket.message.created"),  # the system event new → open
        (channel, "ticket.updated"),
    ]
    assert all(e.event_id for e in sent)
    with realtime.capture() as sent:
        await services.add_note(people.agent, ticket_id, "VIP")
    assert [e.event for e in sent] == ["ticket.message.created", "desk.queue"]


async def test_customers_never_get_internal_notes_or_system_events(people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    reply_id = await services.add_reply(people.agent, ticket_id, "**Try** restarting")
    note_id = await services.add_note(people.agent, ticket_id, "Zanshin: VIP customer")
    system = await TicketMessage.select(TicketMessage.id).where(TicketMessage.kind == "system").first()
    assert system is not None
    reply = {"ticket_id": ticket_id, "message_id": reply_id}
    note = {"ticket_id": ticket_id, "message_id": note_id}
    for_customer = await live.render_message(reply, "customer", "en")
    assert for_customer.startswith(f'<ol id="conversation-{ticket_id}" hx-swap-oob="beforeend">')
    assert "<strong>Try</strong>" in for_customer and f'id="m{reply_id}"' in for_customer
    assert await live.render_message(note, "customer", "en") == ""
    assert await live.render_message({"ticket_id": ticket_id, "message_id": system["id"]}, "customer", "en") == ""
    for_agents = await live.render_message(note, "agent", "ja")
    assert "Zanshin" in for_agents and "社内メモ" in for_agents
    # A message that moved to another ticket (merge) is not appended to the old one's page.
    assert await live.render_message({"ticket_id": ticket_id + 1, "message_id": reply_id}, "agent", "en") == ""
    updated = await live.render_updated({"ticket_id": ticket_id}, "customer", "en")
    assert f'<span id="ticket-status-{ticket_id}" hx-swap-oob="true">' in updated and "Open" in updated
    assert "ticket-summary" not in updated
    assert f'id="ticket-summary-{ticket_id}"' in await live.render_updated({"ticket_id": ticket_id}, "agent", "en")
    assert await live.render_queue({"ticket_id": ticket_id}, "customer", "en") == ""


async def test_subscriptions_follow_the_policy(people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    assert await live.authorize_ticket(people.agent, ticket_id) == "agent"
    assert await live.authorize_ticket(people.admin, ticket_id) == "agent"
    assert await live.authorize_ticket(people.customer, ticket_id) == "customer"
    assert await live.authorize_ticket(people.org_admin, ticket_id) == "customer"
    assert await live.authorize_ticket(people.colleague, ticket_id) is None
    assert await live.authorize_ticket(people.outsider, ticket_id) is None
    assert await live.authorize_ticket(people.moderator, ticket_id) is None
    assert await live.authorize_ticket(ANONYMOUS, ticket_id) is None
    assert await live.authorize_ticket(people.agent, 999_999) is None
    await services.add_follower(people.agent, ticket_id, people.colleague.email)
    assert await live.authorize_ticket(people.colleague, ticket_id) == "customer"  # copied on it
    assert await live.authorize_queue(people.agent, 0) == "agent"
    assert await live.authorize_queue(people.agent, 1) is None
    for actor in (people.customer, people.org_admin, people.moderator, ANONYMOUS):
        assert await live.authorize_queue(actor, 0) is None


async def test_presence_lists_the_agents_viewing_and_announces_changes(people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    with realtime.capture() as sent:
        first = await live.heartbeat(people.agent, ticket_id)
        again = await live.heartbeat(people.agent, ticket_id)  # nothing changed: nothing sent
        both = await live.heartbeat(people.agent2, ticket_id)
    assert [v["name"] for v in first] == ["Ada Agent"] and again == first
    assert [v["name"] for v in both] == ["Ada Agent", "Ben Agent"]
    assert [(e.event, [v["name"] for v in e.payload["viewers"]]) for e in sent] == [
        ("ticket.presence", ["Ada Agent"]),
        ("ticket.presence", ["Ada Agent", "Ben Agent"]),
    ]
    assert all(e.event_id is None for e in sent)  # ephemeral
    html = await live.render_presence(sent[-1].payload, "agent", "en")
    assert f'id="desk-viewers-{ticket_id}"' in html and 'hx-swap-oob="true"' in html and ">BA<" in html
    assert await live.render_presence(sent[-1].payload, "customer", "en") == ""
    with realtime.capture() as sent:
        await live.leave(people.agent, ticket_id)
    assert [v["name"] for v in sent[0].payload["viewers"]] == ["Ben Agent"]
    with pytest.raises(Exception, match="not allowed"):
        await live.heartbeat(people.customer, ticket_id)


async def test_typing_indicator_names_the_count_of_others() -> None:
    assert "2 other people are typing a reply" in await live.render_typing("ticket:3", 2, "en")
    assert 'id="live-typing-ticket-3"' in await live.render_typing("ticket:3", 0, "en")


async def test_reply_after_someone_else_replied_is_a_409_until_sent_anyway(
    client: httpx.AsyncClient, people: People
) -> None:
    ticket_id = await make_ticket(people.customer)
    await login(client, people.agent.email)
    page = f"/desk/tickets/{ticket_id}"
    text = (await client.get(page)).text
    seen = SEEN_RE.search(text)
    assert seen and f'data-live-channel="ticket:{ticket_id}"' in text and 'data-live-typing="ticket:' in text
    # While Ada types, Ben answers the customer.
    await services.add_reply(people.agent2, ticket_id, "Ben got there first")
    token = await csrf_token(client, page)
    form = {"body": "Ada's answer", "internal": "0", "seen_message_id": seen.group(1), "_csrf_token": token}
    collision = await client.post(f"{page}/messages", data=form)
    assert collision.status_code == 409
    assert "Someone replied while you were typing" in collision.text and "Ben got there first" in collision.text
    assert "Ada&#39;s answer" in collision.text and 'name="force" value="1"' in collision.text
    assert not await TicketMessage.exists().where(TicketMessage.body_md == "Ada's answer")
    # An internal note is not a reply to the customer: no warning.
    note = await client.post(f"{page}/messages", data={**form, "internal": "1", "body": "note"})
    assert note.status_code == 200
    sent = await client.post(f"{page}/messages", data={**form, "force": "1"})
    assert sent.status_code == 200 and "Reply sent." in sent.text
    assert await TicketMessage.exists().where(TicketMessage.body_md == "Ada's answer")
    # Her own reply does not warn her next time.
    newer = SEEN_RE.search(collision.text)
    assert newer
    again = await client.post(f"{page}/messages", data={**form, "body": "Follow-up", "seen_message_id": newer.group(1)})
    assert again.status_code == 200


async def test_presence_routes_are_for_agents(client: httpx.AsyncClient, people: People) -> None:
    ticket_id = await make_ticket(people.customer)
    await login(client, people.customer.email)
    token = await csrf_token(client, f"/support/tickets/{ticket_id}")
    denied = await client.post(f"/desk/tickets/{ticket_id}/presence", headers={"x-csrftoken": token})
    assert denied.status_code == 403
    page = (await client.get(f"/support/tickets/{ticket_id}")).text
    assert f'data-live-channel="ticket:{ticket_id}"' in page and f'id="conversation-{ticket_id}"' in page

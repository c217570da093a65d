"""Chat actions against the real database: tickets and transcripts, taking and capacity,
retries, visibility, limits, and what is published where."""

from __future__ import annotations

import pytest
from litestar.exceptions import PermissionDeniedException

from server import jobs, realtime
from server.accounts.tables import User
from server.channels.chat import services
from server.channels.chat.services import ChatConflict
from server.channels.chat.tables import ChatMessage, ChatSession
from server.desk import services as desk
from server.desk.tables import Ticket, TicketMessage
from server.errors import Invalid, NotFound
from server.policy import ANONYMOUS
from tests.channels.chat.conftest import Cast


async def _conversation(ticket_id: int) -> list[tuple[str, str]]:
    rows = await (
        TicketMessage.select(TicketMessage.kind, TicketMessage.body_md)
        .where((TicketMessage.ticket == ticket_id) & (TicketMessage.kind != "system"))
        .order_by(TicketMessage.id)
    )
    return [(r["kind"], r["body_md"]) for r in rows]


async def _online(*agents: object) -> None:
    for agent in agents:
        await services.set_availability(agent, "online", 3)  # type: ignore[arg-type]


async def test_a_visitor_chat_is_a_ticket_from_the_start_and_holds_the_transcript(cast: Cast) -> None:
    sid = await services.start_chat(ANONYMOUS, "My printer is on fire", name="Vera Visitor", email="Vera@Example.test")
    session = await services.get_session(sid)
    assert session is not None and session["status"] == "waiting" and session["anonymous"]
    ticket = await Ticket.select().where(Ticket.id == session["ticket"]).first()
    assert ticket["channel"] == "chat" and ticket["channel_ref"] == str(sid)
    requester = await User.select().where(User.id == ticket["requester"]).first()
    assert requester["email"] == "vera@example.test" and requester["email_verified_at"] is None
    assert await _conversation(ticket["id"]) == [("public", "My printer is on fire")]

    await _online(cast.agent)
    await services.take_chat(cast.agent, sid)
    await services.send_agent_message(cast.agent, sid, "Unplug it, please.")
    await services.send_customer_message(ANONYMOUS, sid, sid, "Done, it stopped.\nThanks!")
    await services.send_agent_message(cast.agent, sid, "*Great*")
    assert await _conversation(ticket["id"]) == [("public", "My printer is on fire")]  # until it ends
    await services.end_chat(ANONYMOUS, sid, sid)
    await jobs.run_pending("test")  # the worker's chat.transcript job
    conversation = await _conversation(ticket["id"])
    assert [kind for kind, _body in conversation] == ["public", "public"]
    transcript = conversation[1][1]
    assert transcript.startswith("**Chat transcript**")
    lines = ["Unplug it, please.", "> Done, it stopped.\n> Thanks!", "*Great*"]
    assert [transcript.index(line) for line in lines] == sorted(transcript.index(line) for line in lines)
    assert "**Ada Agent**" in transcript and "**Vera Visitor**" in transcript
    reply = (
        await TicketMessage.select(TicketMessage.author, TicketMessage.channel, TicketMessage.body_html)
        .where((TicketMessage.ticket == ticket["id"]) & (TicketMessage.kind == "public"))
        .order_by(TicketMessage.id, ascending=False)
        .first()
    )
    assert reply["author"] == cast.agent.user_id and reply["channel"] == "chat"
    assert "<em>Great</em>" in reply["body_html"]
    # The agent's answer counts as the first reply; no mail went to the customer who chatted.
    ticket = await Ticket.select().where(Ticket.id == ticket["id"]).first()
    assert ticket["status"] == "open" and ticket["first_replied_at"] is not None
    assert not await jobs.Job.exists().where(jobs.Job.kind.like("mail%"))
    assert await services.add_transcript(sid) == 0  # once


async def test_a_chat_left_alone_ends_by_itself_with_its_transcript(cast: Cast) -> None:
    sid = await services.start_chat(cast.customer, "Anyone?")
    await services.send_customer_message(cast.customer, sid, None, "Hello?")
    session = await services.get_session(sid)
    assert session is not None
    assert not await services.end_idle(sid, now=session["last_message_at"] + services.IDLE / 2)
    assert await services.end_idle(sid, now=session["last_message_at"] + services.IDLE * 2)
    assert (await services.get_session(sid) or {})["status"] == "ended"
    assert await jobs.Job.exists().where(jobs.Job.kind == services.IDLE_KIND)
    await jobs.run_pending("test")
    conversation = await _conversation(session["ticket"])
    assert len(conversation) == 2 and "> Hello?" in conversation[1][1]


async def test_the_visitor_email_of_an_existing_customer_is_reused_but_a_staff_address_is_refused(cast: Cast) -> None:
    sid = await services.start_chat(ANONYMOUS, "Hello", name="Casey", email=cast.customer.email)
    session = await services.get_session(sid)
    assert session is not None and session["requester"] == cast.customer.user_id
    with pytest.raises(Invalid) as refused:
        await services.start_chat(ANONYMOUS, "Hello", name="Mallory", email=cast.agent.email)
    assert "email" in refused.value.errors
    with pytest.raises(Invalid) as missing:
        await services.start_chat(ANONYMOUS, "Hello", name="", email="not-an-email")
    assert set(missing.value.errors) == {"name", "email"}
    with pytest.raises(PermissionDeniedException):
        await services.start_chat(cast.agent, "Agents do not start chats")


async def test_only_one_agent_takes_a_chat_and_capacity_holds(cast: Cast) -> None:
    first = await services.start_chat(cast.customer, "First")
    second = await services.start_chat(cast.outsider, "Second")
    await services.set_availability(cast.agent, "online", 1)
    await services.take_chat(cast.agent, first)
    with pytest.raises(ChatConflict, match="Ada Agent took this chat first"):
        await services.take_chat(cast.agent2, first)
    with pytest.raises(ChatConflict, match="capacity of 1"):
        await services.take_chat(cast.agent, second)
    with pytest.raises(PermissionDeniedException):  # not the agent of this chat
        await services.send_agent_message(cast.agent2, first, "Let me butt in")
    with pytest.raises(ChatConflict):  # nobody took it yet
        await services.send_agent_message(cast.agent2, second, "Hello?")
    await services.end_chat(cast.agent, first, None)
    await services.take_chat(cast.agent, second)  # room again
    assert [c["id"] for c in await services.agent_chats(cast.agent.user_id or 0)] == [second]
    assert await services.waiting_chats() == []


async def test_availability_decides_who_is_online(cast: Cast) -> None:
    assert await services.agents_online() == 0
    await services.set_availability(cast.agent, "away", 3)
    assert await services.agents_online() == 0
    await services.set_availability(cast.agent, "online", 5)
    assert await services.agents_online() == 1
    assert (await services.agent_state(cast.agent.user_id or 0))["capacity"] == 5
    with pytest.raises(Invalid) as bad:
        await services.set_availability(cast.agent, "dancing", 0)
    assert set(bad.value.errors) == {"availability", "capacity"}


async def test_a_retried_message_is_stored_once(cast: Cast) -> None:
    sid = await services.start_chat(cast.customer, "Hi")
    first, created = await services.send_customer_message(cast.customer, sid, None, "Are you there?", "ref-1")
    again, created_again = await services.send_customer_message(cast.customer, sid, None, "Are you there?", "ref-1")
    assert created and not created_again and first["id"] == again["id"]
    assert await ChatMessage.count().where(ChatMessage.session == sid) == 2


async def test_customers_see_only_their_own_chats(cast: Cast) -> None:
    mine = await services.start_chat(cast.customer, "Mine")
    visitor_chat = await services.start_chat(ANONYMOUS, "A visitor's", name="Vic", email="vic@example.test")
    assert (await services.access_chat(cast.customer, mine, None))["id"] == mine
    assert (await services.access_chat(cast.agent, visitor_chat, None))["id"] == visitor_chat
    for actor, chat, cookie in [
        (cast.outsider, mine, None),
        (ANONYMOUS, mine, None),
        (ANONYMOUS, visitor_chat, mine),  # a cookie names one chat only
        (cast.customer, visitor_chat, None),
    ]:
        with pytest.raises(NotFound):
            await services.access_chat(actor, chat, cookie)
        with pytest.raises(NotFound):
            await services.send_customer_message(actor, chat, cookie, "let me in")
    assert (await services.access_chat(ANONYMOUS, visitor_chat, visitor_chat))["id"] == visitor_chat


async def test_limits_and_inert_markdown(cast: Cast) -> None:
    sid = await services.start_chat(cast.customer, "Hi")
    with pytest.raises(Invalid):
        await services.send_customer_message(cast.customer, sid, None, "x" * (services.MAX_CHARS + 1))
    with pytest.raises(Invalid):
        await services.send_customer_message(cast.customer, sid, None, "   ")
    message, _ = await services.send_customer_message(
        cast.customer, sid, None, "<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    html = message["body_html"]
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html and "&lt;script" in html
    await services.end_chat(cast.customer, sid, None)
    with pytest.raises(ChatConflict):
        await services.send_customer_message(cast.customer, sid, None, "one more thing")


async def test_events_go_to_the_chat_channel_and_notes_never_do(cast: Cast) -> None:
    with realtime.capture() as sent:
        sid = await services.start_chat(cast.customer, "Hi")
    assert [(e.channel, e.event) for e in sent] == [
        ("desk:0", "desk.queue"),
        (f"chat:{sid}", "chat.message"),
        ("chatq:0", "chat.queue"),
    ]
    await _online(cast.agent)
    with realtime.capture() as sent:
        await services.take_chat(cast.agent, sid)
        message, _ = await services.send_customer_message(cast.customer, sid, None, "Still there")
        await services.mark_seen(cast.agent, sid, message["id"])
        await services.typing(cast.agent, sid, None)
    assert [(e.channel, e.event) for e in sent] == [
        (f"chat:{sid}", "chat.message"),
        (f"chat:{sid}", "chat.status"),
        ("chatq:0", "chat.queue"),
        (f"chat:{sid}", "chat.message"),
        (f"chat:{sid}", "chat.seen"),
        (f"chat:{sid}", "chat.typing"),
    ]
    session = await services.get_session(sid)
    assert session is not None
    with realtime.capture() as sent:
        await desk.add_note(cast.agent, session["ticket"], "Zanshin: VIP")
    assert not [e for e in sent if e.channel.startswith("chat")]


async def test_the_offline_form_opens_an_acknowledged_chat_ticket(cast: Cast) -> None:
    ticket_id = await services.open_offline_ticket(ANONYMOUS, "Call me back", name="Olive", email="olive@example.test")
    ticket = await Ticket.select().where(Ticket.id == ticket_id).first()
    assert ticket["channel"] == "chat" and ticket["subject"] == "Chat: Call me back"
    assert await jobs.Job.exists().where(jobs.Job.kind.like("mail%"))
    assert not await ChatSession.exists()

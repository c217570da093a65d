"""Chat actions: start (signed in or as a named visitor), write, type, see, take, end; agents'
availability; the offline form; the transcript on the chat's ticket.

Every chat opens its ticket in the same transaction as the chat (channel "chat", channel_ref =
the session id), with the first message as the ticket's first message, so agents see it in the
desk at once. Each later message is stored and published on `chat:{id}` (after commit). When the
chat ends (either side, or `IDLE` after its last message), the worker's `chat.transcript` job
adds the rest of the conversation to the ticket as one public reply, once, sending no mail.
(Copying every line as it happens was measured: one ticket reply per chat line is ~15 queries
in the worker, and on SQLite every writer waits for the others, so 1,000 lively chats could not
keep their delivery time; see docs/BENCHMARKS.md.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from litestar.exceptions import PermissionDeniedException

from server import i18n, jobs, policy
from server.accounts import services as accounts
from server.accounts.auth import load_actor, utcnow
from server.accounts.tables import User
from server.channels.chat import live
from server.channels.chat.tables import AVAILABILITY, ChatAgent, ChatMessage, ChatSession
from server.db import Tx, atomic, is_postgres
from server.desk import services as desk
from server.desk.tables import TicketMessage
from server.errors import Invalid, NotFound
from server.i18n import LOCALES, _
from server.markdown import MarkdownTooLarge, render
from server.policy import Actor, ensure

log = logging.getLogger("kizuna.chat")

MAX_CHARS = 2000
MAX_CAPACITY = 50
DEFAULT_CAPACITY = 3
ONLINE_TTL = timedelta(minutes=10)  # "online" without a chat page open this long counts as away
TRANSCRIPT_KIND = "chat.transcript"
IDLE_KIND = "chat.idle"
IDLE = timedelta(minutes=30)  # a chat without messages this long ends by itself
IDLE_CHECK_SECONDS = 600  # at most one idle check queued per chat per this window
CLIENT_REF_CHARS = 40


class ChatConflict(Exception):
    """The chat moved on (taken by someone else, ended) or the agent is full: a 409."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def _one_writer() -> AsyncIterator[None]:
    """On SQLite, chat messages from this process wait their turn here, first come first
    served, instead of all spinning in SQLite's busy handler (which has no order, so under load
    some writers starve for seconds). PostgreSQL takes them concurrently."""
    if is_postgres():
        yield
        return
    loop = asyncio.get_running_loop()
    lock = _write_locks.get(loop)
    if lock is None:
        lock = _write_locks[loop] = asyncio.Lock()
    async with lock:
        yield


# Loading ------------------------------------------------------------------------------------


async def get_session(session_id: int) -> dict[str, Any] | None:
    return (
        await ChatSession.select(
            *ChatSession.all_columns(),
            ChatSession.requester.display_name.as_alias("requester_name"),
            ChatSession.requester.email.as_alias("requester_email"),
            ChatSession.agent.display_name.as_alias("agent_name"),
        )
        .where(ChatSession.id == session_id)
        .first()
    )


async def access_chat(actor: Actor, session_id: int, visitor_session_id: int | None) -> dict[str, Any]:
    """The session when the actor may see it; NotFound otherwise (as for a missing one)."""
    session = await get_session(session_id)
    if session is None or not policy.can_see_chat(actor, session["requester"], session_id, visitor_session_id):
        raise NotFound
    return session


async def messages(session_id: int) -> list[dict[str, Any]]:
    return await (
        ChatMessage.select(
            *ChatMessage.all_columns(),
            ChatMessage.author.display_name.as_alias("author_name"),
        )
        .where(ChatMessage.session == session_id)
        .order_by(ChatMessage.id)
    )


async def get_message(message_id: int) -> dict[str, Any] | None:
    return (
        await ChatMessage.select(
            *ChatMessage.all_columns(),
            ChatMessage.author.display_name.as_alias("author_name"),
        )
        .where(ChatMessage.id == message_id)
        .first()
    )


async def open_session_for(actor: Actor, visitor_session_id: int | None) -> dict[str, Any] | None:
    """The visitor's chat that has not ended (their cookie's, else their newest as requester)."""
    if visitor_session_id is not None:
        session = await get_session(visitor_session_id)
        if session is not None and session["status"] != "ended":
            return session
    if actor.is_authenticated and not actor.is_agent:
        row = (
            await ChatSession.select(ChatSession.id)
            .where((ChatSession.requester == actor.user_id) & (ChatSession.status != "ended"))
            .order_by(ChatSession.id, ascending=False)
            .first()
        )
        if row is not None:
            return await get_session(row["id"])
    return None


# Validation ---------------------------------------------------------------------------------


def check_body(body: str, errors: dict[str, str]) -> str:
    body = body.strip()
    if not body:
        errors["body"] = _("Write a message.")
    elif len(body) > MAX_CHARS:
        errors["body"] = _("Keep chat messages under %(n)s characters.", n=MAX_CHARS)
    return body


def _clean_ref(client_ref: str) -> str:
    ref = client_ref.strip()[:CLIENT_REF_CHARS]
    return ref if all(ch.isalnum() or ch in "-_" for ch in ref) else ""


async def _requester_for(name: str, email: str, locale: str, errors: dict[str, str]) -> Actor | None:
    """An anonymous visitor's requester: the customer account with this email, or a new,
    unverified one. The visitor gets none of that account's rights: only this chat."""
    name, email = " ".join(name.split()), accounts.normalise_email(email)
    if not name:
        errors["name"] = _("Tell us your name.")
    elif len(name) > 80:
        errors["name"] = _("Use at most %(n)s characters.", n=80)
    accounts._check_email(email, errors)
    if errors:
        return None
    row = await User.select(User.id, User.is_active).where(User.email == email).first()
    if row is None:
        try:
            user_id = await accounts.create_user(
                email, secrets.token_urlsafe(24), name, [], locale=locale if locale in LOCALES else "en", verified=False
            )
        except Invalid:  # created meanwhile by someone else
            row = await User.select(User.id, User.is_active).where(User.email == email).first()
            if row is None:
                raise
            user_id = row["id"]
    else:
        user_id = row["id"]
    found = await load_actor(user_id)
    if found is None:
        errors["email"] = _("This address cannot be used for chat. Sign in or use another address.")
        return None
    if found.is_staff:
        errors["email"] = _("This address belongs to a staff account. Sign in to use it.")
        return None
    return _as_customer(found)


def _as_customer(requester: Actor) -> Actor:
    """The requester with a customer's rights only (their own transcript)."""
    return dataclasses.replace(requester, roles=frozenset({"customer"}), admin_org_ids=frozenset())


def _subject(body: str) -> str:
    first = " ".join(body.split())
    if len(first) > 70:
        first = first[:69].rstrip() + "…"
    return _("Chat: %(text)s", text=first)


# Customers ----------------------------------------------------------------------------------


async def start_chat(
    actor: Actor,
    body: str,
    *,
    name: str = "",
    email: str = "",
    locale: str = "en",
    source_url: str = "",
) -> int:
    """A new chat waiting for an agent, with its ticket. Anonymous visitors give a name and an
    email; the caller sets their cookie to the returned session id."""
    ensure(policy.can_start_chat(actor), _("Agents answer chats from the desk."))
    errors: dict[str, str] = {}
    body = check_body(body, errors)
    async with atomic() as tx:
        if actor.is_authenticated:
            requester: Actor | None = actor
            visitor_name = actor.display_name
        else:
            requester = await _requester_for(name, email, locale, errors)
            visitor_name = " ".join(name.split())
        if errors or requester is None:
            raise Invalid(errors)
        moment = utcnow()
        source = source_url.strip() if source_url.startswith(("https://", "http://")) else ""
        rows = await ChatSession.insert(
            ChatSession(
                requester=requester.user_id,
                anonymous=not actor.is_authenticated,
                visitor_name=visitor_name[:80],
                status="waiting",
                locale=locale if locale in LOCALES else "en",
                source_url=source[:300],
                created_at=moment,
                last_message_at=moment,
            )
        ).returning(ChatSession.id)
        session_id: int = rows[0]["id"]
        ticket_id = await desk.open_ticket(
            requester, _subject(body), body, channel="chat", channel_ref=str(session_id), notify=False
        )
        first = (
            await TicketMessage.select(TicketMessage.id)
            .where(TicketMessage.ticket == ticket_id)
            .order_by(TicketMessage.id)
            .first()
        )
        await ChatSession.update({ChatSession.ticket: ticket_id}).where(ChatSession.id == session_id)
        message_rows = await ChatMessage.insert(
            ChatMessage(
                session=session_id,
                author=requester.user_id,
                side="customer",
                body_md=body,
                body_html=render(body),
                ticket_message=first["id"] if first else None,
                created_at=moment,
            )
        ).returning(ChatMessage.id)
        await live.message_added(tx, session_id, message_rows[0]["id"])
        await live.queue_changed(tx, session_id)
        await _check_idle_later(session_id, moment)
    return session_id


async def _write(
    session: dict[str, Any], author: Actor, side: str, body: str, client_ref: str
) -> tuple[dict[str, Any], bool]:
    """Store one message (once per client_ref) and publish it; (message, new?)."""
    errors: dict[str, str] = {}
    body = check_body(body, errors)
    if errors:
        raise Invalid(errors)
    ref = _clean_ref(client_ref)
    session_id = session["id"]
    async with _one_writer(), atomic() as tx:
        moment = utcnow()
        # Lock the session row (PostgreSQL): one writer at a time per chat, so refs stay unique.
        touched = await (
            ChatSession.update({ChatSession.last_message_at: moment})
            .where(ChatSession.id == session_id)
            .returning(ChatSession.status)
        )
        current = touched[0] if touched else None
        if ref:
            existing = (
                await ChatMessage.select(ChatMessage.id)
                .where((ChatMessage.session == session_id) & (ChatMessage.client_ref == ref))
                .first()
            )
            if existing is not None:  # a retry of a message we already have
                found = await get_message(existing["id"])
                assert found is not None
                return found, False
        if current is None or current["status"] == "ended":
            raise ChatConflict(_("This chat has ended."))
        html = render(body)
        rows = await ChatMessage.insert(
            ChatMessage(
                session=session_id,
                author=author.user_id,
                side=side,
                body_md=body,
                body_html=html,
                client_ref=ref,
                created_at=moment,
            )
        ).returning(ChatMessage.id)
        message = {
            "id": rows[0]["id"],
            "session": session_id,
            "author": author.user_id,
            "author_name": author.display_name if side == "agent" else session["requester_name"],
            "side": side,
            "body_md": body,
            "body_html": html,
            "client_ref": ref,
            "created_at": moment,
        }
        await _check_idle_later(session_id, moment)
        # The event carries what its fragments show, so the fan-out renders without a query.
        await live.message_added(tx, session_id, message["id"], message=message, session=session)
    return message, True


async def send_customer_message(
    actor: Actor,
    session_id: int,
    visitor_session_id: int | None,
    body: str,
    client_ref: str = "",
    *,
    session: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], bool]:
    """`session`: the caller's `access_chat` result for this actor, when it has one."""
    if session is None or session["id"] != session_id:
        session = await access_chat(actor, session_id, visitor_session_id)
    ensure(policy.can_write_chat_as_customer(actor, session["requester"], session_id, visitor_session_id))
    author = Actor(user_id=session["requester"])  # the requester writes, signed in or through the cookie
    return await _write(session, author, "customer", body, client_ref)


async def send_agent_message(
    actor: Actor, session_id: int, body: str, client_ref: str = "", *, session: dict[str, Any] | None = None
) -> tuple[dict[str, Any], bool]:
    ensure(policy.can_answer_chats(actor))
    if session is None or session["id"] != session_id:
        session = await access_chat(actor, session_id, None)
    if session["status"] == "waiting":
        raise ChatConflict(_("Take the chat before you answer."))
    ensure(
        policy.can_write_chat_as_agent(actor, session["agent"]),
        _("%(name)s is handling this chat.", name=session["agent_name"] or "?"),
    )
    return await _write(session, actor, "agent", body, client_ref)


async def typing(actor: Actor, session_id: int, visitor_session_id: int | None) -> None:
    """Tell the other side someone is typing (not stored)."""
    session = await access_chat(actor, session_id, visitor_session_id)
    if session["status"] == "ended":
        return
    if actor.is_agent:
        if not policy.can_write_chat_as_agent(actor, session["agent"]):
            return
        await live.typing(session_id, "agent", actor.display_name)
    else:
        ensure(policy.can_write_chat_as_customer(actor, session["requester"], session_id, visitor_session_id))
        await live.typing(session_id, "customer", session["visitor_name"] or session["requester_name"])


async def mark_seen(actor: Actor, session_id: int, up_to: int) -> int:
    """The agent's page showed the customer's messages up to `up_to`: they become "seen"."""
    ensure(policy.can_answer_chats(actor))
    session = await access_chat(actor, session_id, None)
    if not policy.can_write_chat_as_agent(actor, session["agent"]):
        return session["agent_seen_message_id"]
    async with atomic() as tx:
        row = (
            await ChatMessage.select(ChatMessage.id)
            .where((ChatMessage.session == session_id) & (ChatMessage.side == "customer") & (ChatMessage.id <= up_to))
            .order_by(ChatMessage.id, ascending=False)
            .first()
        )
        newest = row["id"] if row else 0
        before = await ChatSession.select(ChatSession.agent_seen_message_id).where(ChatSession.id == session_id).first()
        since = before["agent_seen_message_id"] if before else 0
        if newest <= since:
            return since
        await ChatSession.update({ChatSession.agent_seen_message_id: newest}).where(ChatSession.id == session_id)
        await live.seen(tx, session_id, since, newest)
    return newest


async def end_chat(actor: Actor, session_id: int, visitor_session_id: int | None) -> None:
    session = await access_chat(actor, session_id, visitor_session_id)
    if actor.is_agent:
        ensure(
            session["status"] == "waiting" or policy.can_write_chat_as_agent(actor, session["agent"]),
            _("%(name)s is handling this chat.", name=session["agent_name"] or "?"),
        )
    else:
        ensure(policy.can_write_chat_as_customer(actor, session["requester"], session_id, visitor_session_id))
    async with atomic() as tx:
        ended = await (
            ChatSession.update({ChatSession.status: "ended", ChatSession.ended_at: utcnow()})
            .where((ChatSession.id == session_id) & (ChatSession.status != "ended"))
            .returning(ChatSession.id)
        )
        if not ended:
            return
        await _system_message(tx, session_id, "ended", actor.user_id if actor.is_agent else None)
        await jobs.enqueue(TRANSCRIPT_KIND, {"session_id": session_id}, key=f"{TRANSCRIPT_KIND}:{session_id}")
        await live.status_changed(tx, session_id)
        if session["status"] == "waiting":
            await live.queue_changed(tx, session_id)


async def _system_message(tx: Tx, session_id: int, what: str, author_id: int | None) -> None:
    """A line in the conversation ("Ada joined", "The chat ended"): `body_md` names what
    happened, rendered in each reader's language."""
    rows = await ChatMessage.insert(
        ChatMessage(session=session_id, author=author_id, side="system", body_md=what, created_at=utcnow())
    ).returning(ChatMessage.id)
    await live.message_added(tx, session_id, rows[0]["id"])


# Offline form -------------------------------------------------------------------------------


async def open_offline_ticket(actor: Actor, body: str, *, name: str = "", email: str = "", locale: str = "en") -> int:
    """Nobody is online: the message becomes an ordinary ticket (channel "chat"), acknowledged
    by email like the web form."""
    ensure(policy.can_start_chat(actor), _("Agents answer chats from the desk."))
    errors: dict[str, str] = {}
    body = check_body(body, errors)
    async with atomic():
        requester = actor if actor.is_authenticated else await _requester_for(name, email, locale, errors)
        if errors or requester is None:
            raise Invalid(errors)
        return await desk.open_ticket(requester, _subject(body), body, channel="chat", channel_ref="offline")


# Agents -------------------------------------------------------------------------------------


async def agent_state(user_id: int) -> dict[str, Any]:
    row = await ChatAgent.select().where(ChatAgent.user == user_id).first()
    active = await ChatSession.count().where((ChatSession.agent == user_id) & (ChatSession.status == "active"))
    if row is None:
        return {"availability": "offline", "capacity": DEFAULT_CAPACITY, "active": active}
    if row["availability"] == "online" and row["seen_at"] < utcnow() - ONLINE_TTL:
        row["availability"] = "away"
    return {"availability": row["availability"], "capacity": row["capacity"], "active": active}


async def _upsert_agent(user_id: int, values: dict[Any, Any]) -> None:
    moment = utcnow()
    updated = (
        await ChatAgent.update({ChatAgent.seen_at: moment, **values})
        .where(ChatAgent.user == user_id)
        .returning(ChatAgent.id)
    )
    if not updated:
        row = ChatAgent(user=user_id, seen_at=moment)
        for column, value in values.items():
            setattr(row, column._meta.name, value)
        await ChatAgent.insert(row).on_conflict(target=ChatAgent.user, action="DO NOTHING")


async def set_availability(actor: Actor, availability: str, capacity: str | int) -> None:
    ensure(policy.can_answer_chats(actor))
    errors: dict[str, str] = {}
    if availability not in AVAILABILITY:
        errors["availability"] = _("Choose online, away or offline.")
    try:
        cap = int(capacity)
    except (TypeError, ValueError):
        cap = -1
    if not 1 <= cap <= MAX_CAPACITY:
        errors["capacity"] = _("Capacity is a number from 1 to %(n)s.", n=MAX_CAPACITY)
    if errors:
        raise Invalid(errors)
    async with atomic() as tx:
        await _upsert_agent(actor.user_id or 0, {ChatAgent.availability: availability, ChatAgent.capacity: cap})
        await live.queue_changed(tx, 0)


async def heartbeat(actor: Actor) -> None:
    """The agent has a chat page open: "online" stays fresh."""
    ensure(policy.can_answer_chats(actor))
    async with atomic():
        await ChatAgent.update({ChatAgent.seen_at: utcnow()}).where(ChatAgent.user == actor.user_id)


async def agents_online() -> int:
    """Agents online now (with a chat page open recently), whatever their load."""
    return await ChatAgent.count().where(
        (ChatAgent.availability == "online") & (ChatAgent.seen_at >= utcnow() - ONLINE_TTL)
    )


async def take_chat(actor: Actor, session_id: int) -> None:
    """The agent answers a waiting chat: 409 when someone took it first or the agent is full."""
    ensure(policy.can_answer_chats(actor))
    session = await access_chat(actor, session_id, None)
    async with atomic() as tx:
        # Serialise this agent's takes (two tabs), then count what they hold.
        await _upsert_agent(actor.user_id or 0, {})
        state = await agent_state(actor.user_id or 0)
        if state["active"] >= state["capacity"]:
            raise ChatConflict(_("You are at your capacity of %(n)s chats. End one first.", n=state["capacity"]))
        taken = await (
            ChatSession.update(
                {ChatSession.status: "active", ChatSession.agent: actor.user_id, ChatSession.accepted_at: utcnow()}
            )
            .where((ChatSession.id == session_id) & (ChatSession.status == "waiting"))
            .returning(ChatSession.id)
        )
        if not taken:
            current = await get_session(session_id)
            if current and current["status"] == "ended":
                raise ChatConflict(_("This chat has ended."))
            raise ChatConflict(_("%(name)s took this chat first.", name=(current or session)["agent_name"] or "?"))
        await _system_message(tx, session_id, "joined", actor.user_id)
        await live.status_changed(tx, session_id)
        await live.queue_changed(tx, session_id)


async def waiting_chats(limit: int = 100) -> list[dict[str, Any]]:
    return await (
        ChatSession.select(
            ChatSession.id,
            ChatSession.visitor_name,
            ChatSession.created_at,
            ChatSession.ticket,
            ChatSession.requester.email.as_alias("requester_email"),
        )
        .where(ChatSession.status == "waiting")
        .order_by(ChatSession.id)
        .limit(limit)
    )


async def agent_chats(agent_id: int) -> list[dict[str, Any]]:
    return await (
        ChatSession.select(
            ChatSession.id, ChatSession.visitor_name, ChatSession.accepted_at, ChatSession.ticket, ChatSession.status
        )
        .where((ChatSession.agent == agent_id) & (ChatSession.status == "active"))
        .order_by(ChatSession.id)
    )


# The transcript on the ticket ---------------------------------------------------------------


def _transcript_body(session: dict[str, Any], lines: list[dict[str, Any]]) -> str:
    """Markdown: who said what, when; each line's own Markdown kept (rendered inert)."""
    token = i18n.set_locale(session["locale"])
    try:
        title = _("Chat transcript")
        parts = [f"**{title}**"]
        for line in lines:
            who = line["author_name"] if line["side"] == "agent" else session["visitor_name"] or line["author_name"]
            stamp = line["created_at"].strftime("%Y-%m-%d %H:%M UTC")
            quoted = "\n".join("> " + text for text in line["body_md"].splitlines())
            parts.append(f"**{who}** · {stamp}\n\n{quoted}")
    finally:
        i18n._current_locale.reset(token)
    return "\n\n".join(parts)


async def add_transcript(session_id: int) -> int:
    """Add the lines after the first to the chat's ticket as one public reply, once (by the
    agent who answered, else by the requester). Returns the ticket message id, 0 for none."""
    async with atomic():
        await ChatSession.update({ChatSession.id: ChatSession.id}).where(ChatSession.id == session_id)  # row lock
        session = await get_session(session_id)
        if session is None or session["ticket"] is None:
            return 0
        lines = await (
            ChatMessage.select(
                ChatMessage.id,
                ChatMessage.side,
                ChatMessage.body_md,
                ChatMessage.created_at,
                ChatMessage.author.display_name.as_alias("author_name"),
            )
            .where(
                (ChatMessage.session == session_id)
                & ChatMessage.ticket_message.is_null()
                & ChatMessage.side.is_in(["customer", "agent"])
            )
            .order_by(ChatMessage.id)
        )
        if not lines:
            return 0
        author = await load_actor(session["agent"]) if session["agent"] else None
        if author is None or not author.is_agent:
            requester = await load_actor(session["requester"])
            author = _as_customer(requester) if requester is not None else None
        copied = 0
        if author is not None:
            try:
                copied = await desk.add_reply(
                    author, session["ticket"], _transcript_body(session, lines), channel="chat", notify=False
                )
            except (Invalid, NotFound, PermissionDeniedException, MarkdownTooLarge) as exc:
                log.warning("chat %s: transcript not added to ticket %s: %r", session_id, session["ticket"], exc)
        await ChatMessage.update({ChatMessage.ticket_message: copied}).where(
            ChatMessage.id.is_in([line["id"] for line in lines])
        )
    return copied


async def end_idle(session_id: int, *, now: datetime | None = None) -> bool:
    """End the chat when nothing was said for IDLE (the visitor closed the tab)."""
    moment = now or utcnow()
    session = await get_session(session_id)
    if session is None or session["status"] == "ended" or session["last_message_at"] > moment - IDLE:
        return False
    async with atomic() as tx:
        ended = await (
            ChatSession.update({ChatSession.status: "ended", ChatSession.ended_at: moment})
            .where((ChatSession.id == session_id) & (ChatSession.status != "ended"))
            .returning(ChatSession.id)
        )
        if not ended:
            return False
        await _system_message(tx, session_id, "ended", None)
        await jobs.enqueue(TRANSCRIPT_KIND, {"session_id": session_id}, key=f"{TRANSCRIPT_KIND}:{session_id}")
        await live.status_changed(tx, session_id)
        if session["status"] == "waiting":
            await live.queue_changed(tx, session_id)
    return True


@jobs.handler(TRANSCRIPT_KIND, retry_cap_seconds=300)
async def _transcript_job(job: jobs.ClaimedJob) -> None:
    await add_transcript(int(job.payload["session_id"]))


async def _check_idle_later(session_id: int, last_message_at: datetime, *, again: bool = False) -> None:
    """Queue the idle check for IDLE after `last_message_at` (inside a transaction). Messages
    share one check per window; a check that finds the chat spoken since (`again`) queues the
    next one itself."""
    due = last_message_at + IDLE + timedelta(seconds=30)
    slot = f"at{int(due.timestamp())}" if again else str(int(due.timestamp()) // IDLE_CHECK_SECONDS)
    await jobs.enqueue(
        IDLE_KIND,
        {"session_id": session_id},
        key=f"{IDLE_KIND}:{session_id}:{slot}",
        delay=max(timedelta(), due - utcnow()),
    )


@jobs.handler(IDLE_KIND, retry_cap_seconds=300)
async def _idle_job(job: jobs.ClaimedJob) -> None:
    session_id = int(job.payload["session_id"])
    if not await end_idle(session_id):
        session = await get_session(session_id)
        if session is not None and session["status"] != "ended":  # spoken since: look again later
            async with atomic():
                await _check_idle_later(session_id, session["last_message_at"], again=True)

"""Chat over the one `/live` websocket: the `chat` and `chatq` topics and their fragments.

- `chat:{session id}`: the conversation. Agents subscribe as group "agent"; the requester
  (signed in) or the anonymous visitor whose signed cookie names the session as "customer".
  Both groups get the same messages (a chat has no internal side: notes live on the ticket and
  never travel here), each rendered from its reader's point of view; "seen" marks go to the
  customer only; each side hears the other typing.
- `chatq:0`: the waiting queue, for agents; its event replaces the waiting list.

Messages are stored before they are published (`realtime.publish` inside the writer's
transaction), so a reconnecting page catches up from its last event id, in order, each once.
Typing is ephemeral: posted over HTTP by each side (anonymous visitors have no user id for the
hub's own typing pings) and expired by static/js/chat.js.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server import policy, realtime
from server.channels.chat import visitor
from server.channels.chat.tables import ChatMessage, ChatSession
from server.db import Tx
from server.policy import Actor
from server.templating import render_in_locale as render_fragment

CHAT_KIND = "chat"
QUEUE_KIND = "chatq"
QUEUE_CHANNEL = "chatq:0"
MESSAGE_EVENT = "chat.message"
SEEN_EVENT = "chat.seen"
STATUS_EVENT = "chat.status"
TYPING_EVENT = "chat.typing"
QUEUE_EVENT = "chat.queue"


def chat_channel(session_id: int) -> str:
    return realtime.channel_name(CHAT_KIND, session_id)


# Who may subscribe ----------------------------------------------------------------------------


async def authorize_chat(actor: Actor, session_id: int) -> str | None:
    row = await ChatSession.select(ChatSession.requester).where(ChatSession.id == session_id).first()
    if row is None:
        return None
    return policy.chat_channel_group(actor, row["requester"], session_id, visitor.current())


async def authorize_queue(actor: Actor, object_id: int) -> str | None:
    return policy.chat_queue_channel_group(actor) if object_id == 0 else None


# Rendering ------------------------------------------------------------------------------------


async def _session(session_id: int) -> dict[str, Any] | None:
    from server.channels.chat import services

    return await services.get_session(session_id)


async def render_message(payload: dict[str, Any], group: str, locale: str) -> str:
    from server.channels.chat import services

    session_id = int(payload["session_id"])
    if "m" in payload and "s" in payload:  # written by the sender: no query
        message = {**payload["m"], "created_at": datetime.fromisoformat(payload["m"]["created_at"])}
        session: dict[str, Any] | None = payload["s"]
    else:
        message = await services.get_message(int(payload["message_id"]))
        session = await _session(session_id)
    if message is None or session is None or message["session"] != session_id:
        return ""
    html = render_fragment("chat/_message.html", {"m": message, "session": session, "group": group}, locale)
    other = "agent" if group == "customer" else "customer"
    clear = render_fragment("chat/_typing.html", {"session_id": session_id, "name": ""}, locale)
    return (clear if message["side"] == other else "") + (
        f'<ol id="chat-log-{session_id}" hx-swap-oob="beforeend">{html}</ol>'
    )


async def render_seen(payload: dict[str, Any], group: str, locale: str) -> str:
    if group != "customer":
        return ""
    session_id = int(payload["session_id"])
    rows = await (
        ChatMessage.select(ChatMessage.id)
        .where(
            (ChatMessage.session == session_id)
            & (ChatMessage.side == "customer")
            & (ChatMessage.id > int(payload["since"]))
            & (ChatMessage.id <= int(payload["up_to"]))
        )
        .order_by(ChatMessage.id)
    )
    return render_fragment("chat/_seen.html", {"ids": [r["id"] for r in rows]}, locale)


async def render_status(payload: dict[str, Any], group: str, locale: str) -> str:
    session = await _session(int(payload["session_id"]))
    if session is None:
        return ""
    return render_fragment("chat/_status.html", {"session": session, "group": group, "oob": True}, locale)


async def render_typing(payload: dict[str, Any], group: str, locale: str) -> str:
    side = payload.get("side")
    if (group == "customer" and side != "agent") or (group == "agent" and side != "customer"):
        return ""
    context = {"session_id": int(payload["session_id"]), "name": str(payload.get("name", ""))[:80]}
    return render_fragment("chat/_typing.html", context, locale)


async def render_queue(payload: dict[str, Any], group: str, locale: str) -> str:
    from server.channels.chat import services

    if group != "agent":
        return ""
    context = {"waiting": await services.waiting_chats(), "oob": True}
    return render_fragment("chat/_waiting.html", context, locale)


# Publishing (inside the caller's transaction) ---------------------------------------------------


SESSION_FIELDS = ("id", "visitor_name", "requester_name", "agent_seen_message_id")
MESSAGE_FIELDS = ("id", "session", "side", "author_name", "body_md", "body_html", "client_ref")


async def message_added(
    tx: Tx,
    session_id: int,
    message_id: int,
    *,
    message: dict[str, Any] | None = None,
    session: dict[str, Any] | None = None,
) -> None:
    """`message` and `session` (optional): what the fragment shows, carried in the event so
    rendering it for each audience needs no query."""
    payload: dict[str, Any] = {"session_id": session_id, "message_id": message_id}
    if message is not None and session is not None:
        payload["m"] = {key: message[key] for key in MESSAGE_FIELDS} | {"created_at": message["created_at"].isoformat()}
        payload["s"] = {key: session[key] for key in SESSION_FIELDS}
    await realtime.publish(tx, chat_channel(session_id), MESSAGE_EVENT, payload)


async def seen(tx: Tx, session_id: int, since: int, up_to: int) -> None:
    payload = {"session_id": session_id, "since": since, "up_to": up_to}
    await realtime.publish(tx, chat_channel(session_id), SEEN_EVENT, payload)


async def status_changed(tx: Tx, session_id: int) -> None:
    await realtime.publish(tx, chat_channel(session_id), STATUS_EVENT, {"session_id": session_id})


async def queue_changed(tx: Tx, session_id: int) -> None:
    once: set[str] = tx.__dict__.setdefault("_chat_queue_once", set())
    if QUEUE_CHANNEL in once:
        return
    once.add(QUEUE_CHANNEL)
    await realtime.publish(tx, QUEUE_CHANNEL, QUEUE_EVENT, {"session_id": session_id})


async def typing(session_id: int, side: str, name: str) -> None:
    await realtime.publish_ephemeral(
        chat_channel(session_id), TYPING_EVENT, {"session_id": session_id, "side": side, "name": name[:80]}
    )


realtime.register_topic(CHAT_KIND, authorize_chat)
realtime.register_topic(QUEUE_KIND, authorize_queue)
realtime.register_event(MESSAGE_EVENT, render_message)
realtime.register_event(SEEN_EVENT, render_seen)
realtime.register_event(STATUS_EVENT, render_status)
realtime.register_event(TYPING_EVENT, render_typing)
realtime.register_event(QUEUE_EVENT, render_queue)

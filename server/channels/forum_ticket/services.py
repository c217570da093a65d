"""Forum to ticket: convert a thread or a post, post an agent's reply back, and the cross links.

A conversion opens a ticket (channel `forum`, channel_ref `thread:<id>` or `post:<id>`) for the
author of the thread or post, titled with the thread's title, its first message quoting the post
with a link back; an internal note records which agent converted it. Converting again returns
the existing ticket. Staff see the ticket links on the thread page; the public sees nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server import i18n, policy
from server.accounts.auth import load_actor, utcnow
from server.channels.forum_ticket.tables import ForumTicketLink, ForumTicketReply
from server.db import atomic
from server.desk import queries as desk_queries
from server.desk import services as desk_services
from server.desk.tables import TicketMessage
from server.errors import Invalid, NotFound
from server.forum import queries as forum_queries
from server.forum import services as forum_services
from server.forum.tables import ForumThread
from server.forum.urls import thread_url
from server.i18n import _
from server.policy import Actor, ensure, ensure_signed_in
from server.settings import get_settings

QUOTE_CHARS = 20_000  # a quoted post stays well under the ticket renderer's 64 KiB


@dataclass(frozen=True)
class Conversion:
    ticket_id: int
    created: bool  # False: the thread or post had been converted before


class AlreadyPosted(Exception):
    """The reply was posted to the thread before; `url` is that post."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def _ensure_agent(actor: Actor) -> None:
    ensure_signed_in(actor)
    ensure(policy.can_convert_forum_to_ticket(actor), _("Only agents can turn community posts into tickets."))


async def _existing(source: str) -> int | None:
    row = await ForumTicketLink.select(ForumTicketLink.ticket).where(ForumTicketLink.source == source).first()
    return row["ticket"] if row else None


async def _lock_thread(thread_id: int) -> None:
    """On PostgreSQL this row lock serialises conversions of one thread (SQLite serialises writers)."""
    await ForumThread.update({ForumThread.locked: ForumThread.locked}).where(ForumThread.id == thread_id)


def _quote(text: str) -> str:
    text = text.strip()
    if len(text) > QUOTE_CHARS:
        text = text[:QUOTE_CHARS] + "…"
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _ticket_body(locale: str, thread: dict[str, Any], post: dict[str, Any]) -> str:
    """The ticket's first message, in the requester's language: the post quoted, a link back."""
    url = get_settings().base_url + thread_url(thread["id"], thread["slug"], post["number"])
    title = thread["title"].replace("[", "\\[").replace("]", "\\]")
    token = i18n.set_locale(locale)
    try:
        where = _("Posted in the community:")
    finally:
        i18n._current_locale.reset(token)
    return f"{_quote(post['body_md'])}\n\n{where} [{title} #{post['number']}]({url})\n"


async def convert_thread(actor: Actor, thread_id: int) -> Conversion:
    _ensure_agent(actor)
    async with atomic():
        thread, category = await forum_queries.access_thread(actor, thread_id)
        first = await forum_queries.post_by_number(thread_id, 1)
        if first is None:
            raise NotFound
        return await _convert(actor, thread, category, first, f"thread:{thread_id}")


async def convert_post(actor: Actor, post_id: int) -> Conversion:
    """A single post; the first post stands for its thread (the same conversion)."""
    _ensure_agent(actor)
    async with atomic():
        post, thread, category = await forum_queries.access_post(actor, post_id)
        source = f"thread:{thread['id']}" if post["number"] == 1 else f"post:{post_id}"
        return await _convert(actor, thread, category, post, source)


async def convert_post_number(actor: Actor, thread_id: int, number: int) -> Conversion:
    """Post `number` of the thread (the thread page's panel asks for a number)."""
    _ensure_agent(actor)
    async with atomic():
        thread, category = await forum_queries.access_thread(actor, thread_id)
        post = await forum_queries.post_by_number(thread_id, number)
        if post is None:
            raise Invalid({"number": _("Enter the number of a post in this thread.")})
        source = f"thread:{thread_id}" if number == 1 else f"post:{post['id']}"
        return await _convert(actor, thread, category, post, source)


async def _convert(
    actor: Actor, thread: dict[str, Any], category: dict[str, Any], post: dict[str, Any], source: str
) -> Conversion:
    await _lock_thread(thread["id"])
    existing = await _existing(source)
    if existing is not None:
        return Conversion(existing, False)
    if post["deleted_at"] is not None:
        raise Invalid({"post": _("This post was deleted.")})
    requester = await load_actor(post["author_id"]) if post["author_id"] else None
    if requester is None:
        raise Invalid({"post": _("The author's account no longer exists, so there is nobody to open the ticket for.")})
    if not policy.can_read_forum_thread(requester, category, thread):
        raise Invalid(
            {"post": _("The author can no longer read this thread. Open a ticket for them from the desk instead.")}
        )
    ticket_id = await desk_services.open_ticket(
        requester,
        thread["title"],
        _ticket_body(requester.locale, thread, post),
        channel="forum",
        channel_ref=source,
    )
    await ForumTicketLink.insert(
        ForumTicketLink(
            ticket=ticket_id,
            thread=thread["id"],
            post=post["id"] if source.startswith("post:") else None,
            source=source,
            created_by=actor.user_id,
            created_at=utcnow(),
        )
    )
    what = _("thread") if source.startswith("thread:") else _("post #%(n)s", n=post["number"])
    note = _("%(name)s opened this ticket from a community %(what)s.", name=actor.display_name, what=what)
    await desk_services.add_note(actor, ticket_id, note)
    return Conversion(ticket_id, True)


# Posting back ---------------------------------------------------------------------------------


async def _link_of(ticket_id: int) -> dict[str, Any] | None:
    return (
        await ForumTicketLink.select(
            ForumTicketLink.thread,
            ForumTicketLink.post,
            ForumTicketLink.post.number.as_alias("post_number"),
            ForumTicketLink.thread.title.as_alias("title"),
            ForumTicketLink.thread.slug.as_alias("slug"),
        )
        .where(ForumTicketLink.ticket == ticket_id)
        .first()
    )


async def post_back(actor: Actor, ticket_id: int, message_id: int) -> dict[str, Any]:
    """Post the agent's own public reply to the thread the ticket came from, as that agent,
    through the forum's own action (locked threads and category rules answer 403)."""
    ensure_signed_in(actor)
    ensure(policy.can_use_desk(actor))
    async with atomic():
        await desk_queries.access_ticket(actor, ticket_id)
        link = await _link_of(ticket_id)
        if link is None:
            raise Invalid({"forum": _("This ticket did not come from the community.")})
        message = (
            await TicketMessage.select(
                TicketMessage.id, TicketMessage.kind, TicketMessage.author, TicketMessage.body_md
            )
            .where((TicketMessage.id == message_id) & (TicketMessage.ticket == ticket_id))
            .first()
        )
        if message is None:
            raise Invalid({"forum": _("Choose a reply of this ticket.")})
        if message["kind"] != "public":
            raise Invalid({"forum": _("Only public replies can be posted to the community.")})
        ensure(
            policy.can_post_ticket_reply_to_forum(actor, message["author"]),
            _("Only the agent who wrote this reply can post it to the community."),
        )
        done = (
            await ForumTicketReply.select(
                ForumTicketReply.post.number.as_alias("number"), ForumTicketReply.post.thread.as_alias("thread")
            )
            .where(ForumTicketReply.message == message_id)
            .first()
        )
        if done is not None:
            raise AlreadyPosted(thread_url(done["thread"], "", done["number"]))
        try:
            post = await forum_services.create_reply(
                actor, link["thread"], message["body_md"], reply_to=link["post_number"]
            )
        except NotFound:
            raise Invalid({"forum": _("The thread was deleted or hidden; the reply was not posted.")}) from None
        await ForumTicketReply.insert(
            ForumTicketReply(
                ticket=ticket_id, message=message_id, post=post["id"], created_by=actor.user_id, created_at=utcnow()
            )
        )
    return post


# Cross links ----------------------------------------------------------------------------------


async def ticket_panel(ticket: dict[str, Any]) -> dict[str, Any] | None:
    """What the desk's ticket page shows for a forum ticket: the thread (or post) it came from
    and which replies were posted back. Agents only read that page."""
    if ticket["channel"] != "forum":
        return None
    link = await _link_of(ticket["id"])
    if link is None:
        return None
    posted = await ForumTicketReply.select(
        ForumTicketReply.message, ForumTicketReply.post.number.as_alias("number")
    ).where(ForumTicketReply.ticket == ticket["id"])
    return {
        "thread_id": link["thread"],
        "title": link["title"],
        "url": thread_url(link["thread"], link["slug"], link["post_number"]),
        "post_number": link["post_number"],
        "posted": {row["message"]: thread_url(link["thread"], "", row["number"]) for row in posted},
    }


async def thread_panel(actor: Actor, thread_id: int) -> dict[str, Any] | None:
    """For agents on a thread page: the tickets made from the thread and its posts."""
    if not policy.can_see_forum_ticket_links(actor):
        return None
    rows = (
        await ForumTicketLink.select(
            ForumTicketLink.ticket,
            ForumTicketLink.post.number.as_alias("post_number"),
            ForumTicketLink.ticket.subject.as_alias("subject"),
            ForumTicketLink.ticket.status.as_alias("status"),
        )
        .where(ForumTicketLink.thread == thread_id)
        .order_by(ForumTicketLink.id)
    )
    return {"thread_id": thread_id, "links": rows, "thread_converted": any(r["post_number"] is None for r in rows)}

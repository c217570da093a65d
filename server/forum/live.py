"""The forum's realtime and notification hooks: the "thread" topic (who may subscribe), the
renderers of its events (htmx out-of-band fragments, rendered once per audience group and
locale), and the "thread"/"category" notification targets.

Fragments never carry per-user controls: edit/delete/accept buttons are in every fragment with
the author's (or asker's) id, and static/js/forum.js shows them only to that viewer (or to a
moderator); the server checks every action again anyway.
"""

from __future__ import annotations

from typing import Any

from server import notifications, policy, realtime
from server.forum import queries
from server.i18n import _
from server.policy import Actor
from server.templating import render_in_locale


async def last_event_id() -> int:
    """The newest stored event id, put on the page so its socket replays what happened while
    the page was being rendered."""
    return await realtime.current_event_id()


def typing_id(thread_id: int) -> str:
    return realtime.typing_element_id(f"thread:{thread_id}")


REACTION_KINDS = (
    ("like", "👍"),
    ("heart", "❤️"),
    ("laugh", "😄"),
    ("hooray", "🎉"),
    ("eyes", "👀"),
    ("thinking", "🤔"),
)


def reaction_kinds() -> list[tuple[str, str, str]]:
    """(kind, emoji, label in the current locale), computed once per render, not per post."""
    labels = {
        "like": _("Like"),
        "heart": _("Love"),
        "laugh": _("Funny"),
        "hooray": _("Hooray"),
        "eyes": _("Looking"),
        "thinking": _("Thinking"),
    }
    return [(kind, emoji, labels[kind]) for kind, emoji in REACTION_KINDS]


def render_fragment(name: str, context: dict[str, Any], locale: str) -> str:
    return render_in_locale(name, {**context, "reaction_kinds": reaction_kinds()}, locale)


def post_context(
    post: dict[str, Any],
    thread: dict[str, Any],
    category: dict[str, Any],
    group: str,
    mine: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """What templates/forum/_post.html needs (a page adds per-viewer state through `mine`)."""
    return {
        "post": post,
        "thread": thread,
        "category": category,
        "group": group,
        "mine": mine,
        "reaction_kinds": reaction_kinds(),
    }


async def _load(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
    thread = await queries.get_thread(int(payload["thread_id"]))
    if thread is None:
        return None
    category = await queries.category_by_id(thread["category_id"])
    if category is None:
        return None
    post = await queries.get_post(int(payload["post_id"])) if payload.get("post_id") else {}
    if post is None:
        return None
    return post, thread, category


async def render_post_created(payload: dict[str, Any], group: str, locale: str) -> str:
    loaded = await _load(payload)
    if loaded is None:
        return ""
    post, thread, category = loaded
    html = render_fragment("forum/_post.html", post_context(post, thread, category, group), locale)
    # Appended only where the list of the thread's last page is on screen (earlier pages
    # have another id, so the swap finds no target and does nothing).
    return f'<div id="posts-tail-{thread["id"]}" hx-swap-oob="beforeend">{html}</div>' + render_fragment(
        "forum/_thread_stats.html", {"thread": thread, "oob": True}, locale
    )


async def render_post_changed(payload: dict[str, Any], group: str, locale: str) -> str:
    loaded = await _load(payload)
    if loaded is None:
        return ""
    post, thread, category = loaded
    context = {**post_context(post, thread, category, group), "oob": True}
    return render_fragment("forum/_post.html", context, locale)


async def render_reactions(payload: dict[str, Any], group: str, locale: str) -> str:
    loaded = await _load(payload)
    if loaded is None:
        return ""
    post, thread, category = loaded
    context = {**post_context(post, thread, category, group), "oob": True}
    return render_fragment("forum/_reaction_counts.html", context, locale)


async def render_answer(payload: dict[str, Any], group: str, locale: str) -> str:
    loaded = await _load(payload)
    if loaded is None:
        return ""
    _post, thread, category = loaded
    accepted = await queries.get_post(thread["accepted_post_id"]) if thread["accepted_post_id"] else None
    context = {"thread": thread, "category": category, "accepted": accepted, "group": group, "oob": True}
    html = render_fragment("forum/_accepted.html", context, locale)
    # The markers on the posts: the new answer gets one, the previous one loses it.
    for post_id in {payload.get("post_id"), payload.get("previous_id")} - {None}:
        marker = {"post_id": post_id, "accepted": post_id == thread["accepted_post_id"], "oob": True}
        html += render_fragment("forum/_accepted_marker.html", marker, locale)
    return html


async def authorize_thread(actor: Actor, thread_id: int) -> str | None:
    thread = await queries.get_thread(thread_id)
    if thread is None:
        return None
    category = await queries.category_by_id(thread["category_id"])
    if category is None:
        return None
    return policy.forum_channel_group(actor, category, thread)


async def can_read_thread(actor: Actor, thread_id: int) -> bool:
    return await authorize_thread(actor, thread_id) is not None


async def can_read_category(actor: Actor, category_id: int) -> bool:
    category = await queries.category_by_id(category_id)
    return category is not None and policy.can_read_forum_category(actor, category)


realtime.register_topic("thread", authorize_thread)
realtime.register_event("post.created", render_post_created)
realtime.register_event("post.edited", render_post_changed)
realtime.register_event("post.deleted", render_post_changed)
realtime.register_event("reaction.changed", render_reactions)
realtime.register_event("answer.accepted", render_answer)
notifications.register_target("thread", can_read_thread)
notifications.register_target("category", can_read_category)

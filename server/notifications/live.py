"""The bell's live unread count: the `user:{id}` topic (that user only) and its event."""

from __future__ import annotations

from typing import Any

from server import i18n, policy, realtime
from server.db import Tx
from server.policy import Actor
from server.templating import environment

UNREAD_EVENT = "notifications.unread"


def user_channel(user_id: int) -> str:
    return realtime.channel_name("user", user_id)


async def authorize_user_channel(actor: Actor, user_id: int) -> str | None:
    return policy.user_channel_group(actor, user_id)


async def render_unread(payload: dict[str, Any], group: str, locale: str) -> str:
    """The bell's badge, swapped out-of-band by htmx's ws extension."""
    if group != "self":
        return ""
    token = i18n.set_locale(locale)
    try:
        return (
            environment().get_template("notifications/_bell_count.html").render(unread=int(payload["unread"]), oob=True)
        )
    finally:
        i18n._current_locale.reset(token)


async def publish_unread(tx: Tx, user_id: int) -> None:
    """In the caller's transaction: tell the user's open pages their new unread count."""
    from server.notifications.services import unread_count

    await realtime.publish(tx, user_channel(user_id), UNREAD_EVENT, {"unread": await unread_count(user_id)})


def register() -> None:
    """Topic kind "user" belongs to notifications: the one channel per person."""
    realtime.register_topic("user", authorize_user_channel)
    realtime.register_event(UNREAD_EVENT, render_unread)


register()

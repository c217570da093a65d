"""Notifications: subscriptions (watching / tracking / normal / muted), in-app notifications with
a live bell, and email (immediate or daily digest) with unsubscribe links that need no login.

Features call only the names below.

- A *target kind* ("thread", "category", later "ticket") is registered once with `can_read`, so a
  subscription or a notification is only ever made for someone the policy lets read the target.
  Optional: `parent` (a thread's category, so the thread inherits its level) and `describe`
  (titles and links for the preferences page).
- Features describe what happened as an `Activity` and call `record_activity` inside their
  `atomic()`: it enqueues the fan-out job in the same transaction. The worker decides recipients
  (watchers of the thread and its category, mentioned users, the author replied to), drops those
  who muted the target or may not read it, stores notifications, bumps the live bell and queues
  email per each recipient's preference.
- Pages include `notifications/_subscription.html` with `target_kind`, `target_id` and `level`
  (from `subscription_level`) for the watch/track/mute control.
"""

from __future__ import annotations

from server.notifications import registry
from server.notifications.activity import Activity
from server.notifications.registry import CanRead, Describe, Parent
from server.notifications.services import LEVELS, set_subscription, subscribe_automatically, subscription_level

__all__ = [
    "LEVELS",
    "Activity",
    "CanRead",
    "record_activity",
    "register_target",
    "set_subscription",
    "subscribe_automatically",
    "subscription_level",
]

FAN_OUT = "notifications.fan_out"


def register_target(
    kind: str, can_read: CanRead, *, parent: Parent | None = None, describe: Describe | None = None
) -> None:
    registry.register(kind, can_read, parent=parent, describe=describe)


async def record_activity(activity: Activity) -> None:
    """Inside the caller's atomic(): enqueue the fan-out job. A repeated activity is one job;
    the same activity naming new people (an edit adding a mention) is a new job, which tells
    only the new people (each notification's key is the activity's key plus its recipient)."""
    from server import jobs

    await jobs.enqueue(FAN_OUT, activity.to_payload(), key=activity.job_key(FAN_OUT))

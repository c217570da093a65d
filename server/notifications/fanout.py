"""The worker's side of `record_activity`: who hears about an activity, and how.

Recipients: watchers of the target (and of its parent for new threads and posts), mentioned
users, the person replied to and anyone the activity names. Dropped: the actor, whoever muted
the target or its parent, inactive accounts, and whoever may not read the content (its
audience labels *and* the target kind's `can_read`). Each recipient gets one notification per
activity (a unique key makes a retried job a no-op), a live bell update, and email per their
preference: right away, in the daily digest, or none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server import jobs, mail, policy
from server.accounts.auth import load_actors
from server.accounts.tables import User
from server.db import atomic
from server.notifications import digest, live, registry, unsubscribe
from server.notifications.activity import PARENT_WATCHER_KINDS, TARGET_WATCHER_KINDS, Activity
from server.notifications.services import DEFAULT_PREFS, effective_level, headline
from server.notifications.tables import Notification, NotificationSubscription
from server.policy import Actor
from server.settings import get_settings

log = logging.getLogger("kizuna.notifications")

KIND = "notifications.fan_out"
# When one person has several reasons, the strongest names the notification.
REASON_ORDER = ("mention", "reply", "direct", "watching")
TITLE_LIMIT = 300
EXCERPT_LIMIT = 500


@dataclass
class Candidate:
    user_id: int
    reasons: set[str]
    via: tuple[str, int] | None = None  # the subscription that made them a watcher

    def reason(self) -> str:
        return next(r for r in REASON_ORDER if r in self.reasons)


async def _levels(kind: str, target_id: int) -> dict[int, dict[str, Any]]:
    rows = await NotificationSubscription.select(
        NotificationSubscription.user, NotificationSubscription.level, NotificationSubscription.chosen_by_user
    ).where((NotificationSubscription.target_kind == kind) & (NotificationSubscription.target_id == target_id))
    return {row["user"]: row for row in rows}


async def candidates(activity: Activity) -> dict[int, Candidate]:
    """Everyone with a reason to hear about the activity, before access checks."""
    target_rows = await _levels(activity.target_kind, activity.target_id)
    has_parent = activity.parent_kind is not None and activity.parent_id is not None
    parent_rows = await _levels(activity.parent_kind, activity.parent_id) if has_parent else {}  # type: ignore[arg-type]
    found: dict[int, Candidate] = {}

    def add(user_id: int, reason: str, via: tuple[str, int] | None = None) -> None:
        candidate = found.setdefault(user_id, Candidate(user_id, set()))
        candidate.reasons.add(reason)
        if via is not None and candidate.via is None:
            candidate.via = via

    muted: set[int] = set()
    for user_id in target_rows.keys() | parent_rows.keys():
        own, parent = target_rows.get(user_id), parent_rows.get(user_id)
        level = effective_level(own, parent)
        if level == "muted":
            muted.add(user_id)
        elif level == "watching":
            if own is not None and own["level"] == "watching":
                if activity.kind in TARGET_WATCHER_KINDS:
                    add(user_id, "watching", (activity.target_kind, activity.target_id))
            elif activity.kind in PARENT_WATCHER_KINDS:
                add(user_id, "watching", (activity.parent_kind, activity.parent_id))  # type: ignore[arg-type]
    for user_id in activity.mentioned_user_ids:
        add(int(user_id), "mention")
    if activity.replied_to_user_id is not None:
        add(int(activity.replied_to_user_id), "reply")
    for user_id in activity.recipient_user_ids:
        add(int(user_id), "direct")
    for user_id in muted | {activity.actor_id}:
        found.pop(user_id, None)
    return found


async def _may_read(actor: Actor | None, activity: Activity) -> bool:
    if actor is None:  # unknown or deactivated
        return False
    if not policy.can_read_audience(actor, activity.audience):
        return False
    return await registry.can_read(actor, activity.target_kind, activity.target_id)


def _clean_title(text: str) -> str:
    return " ".join((text or "").split())[:TITLE_LIMIT]


def _clean_excerpt(text: str) -> str:
    text = (text or "").strip()
    return text if len(text) <= EXCERPT_LIMIT else text[: EXCERPT_LIMIT - 1].rstrip() + "…"


async def fan_out(activity: Activity, *, now: datetime) -> list[int]:
    """Store and deliver the activity's notifications; returns the ids created this time."""
    found = await candidates(activity)
    if not found:
        return []
    users = {
        row["id"]: row
        for row in await User.select(
            User.id, User.email, User.locale, User.time_zone, User.email_verified_at, User.notification_prefs
        )
        .where(User.id.is_in(list(found)))
        .output(load_json=True)
    }
    actors = await load_actors(list(users))
    chosen: list[tuple[Candidate, dict[str, Any], dict[str, Any]]] = []
    for user_id, candidate in sorted(found.items()):
        user = users.get(user_id)
        if user is None:
            continue
        stored = user["notification_prefs"] if isinstance(user["notification_prefs"], dict) else {}
        prefs = {**DEFAULT_PREFS, **stored}
        if not prefs.get("mentions", True):
            candidate.reasons.discard("mention")
        if not candidate.reasons or not await _may_read(actors.get(user_id), activity):
            continue
        chosen.append((candidate, user, prefs))
    created: list[int] = []
    title, excerpt = _clean_title(activity.title), _clean_excerpt(activity.excerpt)
    async with atomic() as tx:
        for candidate, user, prefs in chosen:
            email_mode = prefs.get("email", "immediate") if user["email_verified_at"] is not None else "off"
            row = Notification(
                recipient=candidate.user_id,
                kind=activity.kind,
                reason=candidate.reason(),
                actor=activity.actor_id,
                target_kind=activity.target_kind,
                target_id=activity.target_id,
                object_id=activity.object_id,
                url=activity.url[:500],
                title=title,
                excerpt=excerpt,
                dedupe_key=f"{activity.dedupe_key}:{candidate.user_id}"[:200],
                created_at=now,
                digest_pending=email_mode == "daily",
            )
            inserted = (
                await Notification.insert(row)
                .on_conflict(target=Notification.dedupe_key, action="DO NOTHING")
                .returning(Notification.id)
            )
            if not inserted:
                continue  # a retry: this person was told already
            notification_id = inserted[0]["id"]
            created.append(notification_id)
            await live.publish_unread(tx, candidate.user_id)
            if email_mode == "immediate":
                await _queue_immediate(notification_id, candidate, user, activity, title, excerpt)
                await Notification.update({Notification.emailed_at: now}).where(Notification.id == notification_id)
            elif email_mode == "daily":
                await digest.schedule(candidate.user_id, user["time_zone"], now)
    return created


async def _queue_immediate(
    notification_id: int, candidate: Candidate, user: dict[str, Any], activity: Activity, title: str, excerpt: str
) -> None:
    actor_row = await User.select(User.display_name).where(User.id == activity.actor_id).first()
    # Watching by subscription: the link stops that subscription; otherwise all email.
    via = candidate.via if candidate.reason() == "watching" else None
    token = unsubscribe.make_token(candidate.user_id, *(via or (None, None)))
    base = get_settings().base_url
    item = {
        "kind": activity.kind,
        "reason": candidate.reason(),
        "title": title,
        "actor_name": actor_row["display_name"] if actor_row else "",
    }
    await mail.queue_mail(
        user["email"],
        "notification",
        {
            "item": item,
            "headline": headline,
            "excerpt": excerpt,
            "link": base + (activity.url or "/notifications"),
            "unsubscribe_url": unsubscribe.unsubscribe_url(token),
            "unsubscribe_kind": via[0] if via else None,
            "preferences_url": f"{base}/notifications/preferences",
        },
        locale=user["locale"],
        key=f"notification:{notification_id}",
        headers=unsubscribe.mail_headers(token),
    )


@jobs.handler(KIND)
async def fan_out_job(job: jobs.ClaimedJob) -> None:
    await fan_out(Activity.from_payload(job.payload), now=jobs.now())

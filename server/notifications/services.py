"""Notification actions: subscribing, reading and marking notifications, email preferences.

Every function here acts for one person; the policy decides who may (the owner only), and a
target kind's `can_read` decides what may be followed (404 when not).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from server import policy
from server.accounts.tables import EMAIL_NOTIFY_MODES, User
from server.db import atomic
from server.errors import Invalid, NotFound
from server.i18n import _
from server.notifications import live, registry
from server.notifications.tables import Notification, NotificationSubscription
from server.policy import Actor
from server.prepared import prepared

LEVELS = ("watching", "tracking", "normal", "muted")
AUTOMATIC_RANK = {"normal": 0, "tracking": 1, "watching": 2}
DEFAULT_PREFS: dict[str, Any] = {"email": "immediate", "mentions": True}
PAGE_SIZE = 30


def utcnow() -> datetime:
    return datetime.now(UTC)


def subscription_key(user_id: int, kind: str, target_id: int) -> str:
    return f"{user_id}:{kind}:{target_id}"


def effective_level(target: dict[str, Any] | None, parent: dict[str, Any] | None) -> str:
    """The level that decides what a person hears about a target.

    A choice made on the target itself wins; otherwise a muted parent mutes everything in it
    (an automatic subscription, e.g. from replying once, does not undo that); otherwise the
    target's own row, then the parent's level, then "normal".
    """
    if target is not None and target["chosen_by_user"]:
        return str(target["level"])
    if parent is not None and parent["level"] == "muted":
        return "muted"
    if target is not None:
        return str(target["level"])
    if parent is not None:
        return str(parent["level"])
    return "normal"


# Subscriptions -------------------------------------------------------------------------------


async def _rows_by_key(keys: list[str]) -> dict[str, dict[str, Any]]:
    rows = await NotificationSubscription.select(
        NotificationSubscription.unique_key, NotificationSubscription.level, NotificationSubscription.chosen_by_user
    ).where(NotificationSubscription.unique_key.is_in(keys))
    return {row["unique_key"]: row for row in rows}


async def subscription_level(user_id: int | None, kind: str, target_id: int) -> str:
    """The user's effective level for a target (inheriting from its registered parent)."""
    if user_id is None:
        return "normal"
    own = subscription_key(user_id, kind, target_id)
    parent = await registry.parent_of(kind, target_id)
    parent_key = subscription_key(user_id, *parent) if parent else None
    rows = await _rows_by_key([own] + ([parent_key] if parent_key else []))
    return effective_level(rows.get(own), rows.get(parent_key) if parent_key else None)


async def _upsert(user_id: int, kind: str, target_id: int, level: str, *, chosen: bool) -> None:
    moment = utcnow()
    row = NotificationSubscription(
        user=user_id,
        target_kind=kind,
        target_id=target_id,
        level=level,
        chosen_by_user=chosen,
        unique_key=subscription_key(user_id, kind, target_id),
        created_at=moment,
        updated_at=moment,
    )
    await NotificationSubscription.insert(row).on_conflict(
        target=NotificationSubscription.unique_key,
        action="DO UPDATE",
        values=[
            NotificationSubscription.level,
            NotificationSubscription.chosen_by_user,
            NotificationSubscription.updated_at,
        ],
    )


async def set_subscription(actor: Actor, kind: str, target_id: int, level: str) -> None:
    """The actor's own choice for a target (checked against the kind's `can_read`: 404 if not)."""
    policy.ensure_signed_in(actor)
    if level not in LEVELS:
        raise Invalid({"level": _("Choose watching, tracking, normal or muted.")})
    readable = await registry.can_read(actor, kind, target_id)
    if not policy.can_subscribe(actor, readable):
        raise NotFound
    assert actor.user_id is not None
    async with atomic():
        await _upsert(actor.user_id, kind, target_id, level, chosen=True)


async def subscribe_automatically(user_id: int, kind: str, target_id: int, level: str) -> None:
    """Auto-watch a thread one started / auto-track one replied to, unless the user chose
    already; an automatic level only ever goes up (tracking never replaces watching)."""
    if level not in AUTOMATIC_RANK:
        raise ValueError(f"automatic subscriptions are watching, tracking or normal, not {level!r}")
    key = subscription_key(user_id, kind, target_id)
    async with atomic():
        existing = (await _rows_by_key([key])).get(key)
        if existing is None:
            moment = utcnow()
            row = NotificationSubscription(
                user=user_id,
                target_kind=kind,
                target_id=target_id,
                level=level,
                chosen_by_user=False,
                unique_key=key,
                created_at=moment,
                updated_at=moment,
            )
            await NotificationSubscription.insert(row).on_conflict(
                target=NotificationSubscription.unique_key, action="DO NOTHING"
            )
        elif not existing["chosen_by_user"] and AUTOMATIC_RANK.get(existing["level"], 0) < AUTOMATIC_RANK[level]:
            await NotificationSubscription.update(
                {NotificationSubscription.level: level, NotificationSubscription.updated_at: utcnow()}
            ).where(NotificationSubscription.unique_key == key)


async def unsubscribe_by_link(user_id: int, kind: str, target_id: int, level: str) -> None:
    """A signed link's owner stops watching (or mutes) a target; no session, no read check:
    lowering one's own level reveals nothing."""
    if level not in ("normal", "muted"):
        raise ValueError(level)
    async with atomic():
        if await User.exists().where(User.id == user_id):
            await _upsert(user_id, kind, target_id, level, chosen=True)


async def subscriptions_of(actor: Actor) -> list[dict[str, Any]]:
    """The actor's subscriptions with a title and link where the target kind can describe them."""
    policy.ensure_signed_in(actor)
    rows = (
        await NotificationSubscription.select(
            NotificationSubscription.target_kind,
            NotificationSubscription.target_id,
            NotificationSubscription.level,
            NotificationSubscription.chosen_by_user,
        )
        .where(NotificationSubscription.user == actor.user_id)
        .order_by(NotificationSubscription.target_kind)
        .order_by(NotificationSubscription.updated_at, ascending=False)
        .limit(500)
    )
    shown: list[dict[str, Any]] = []
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_kind.setdefault(row["target_kind"], []).append(row)
    for kind, kind_rows in by_kind.items():
        if registry.get(kind) is None:
            continue
        described = await registry.describe(kind, [r["target_id"] for r in kind_rows])
        for row in kind_rows:
            if not await registry.can_read(actor, kind, row["target_id"]):
                continue  # lost access since: do not show its title
            title, url = described.get(row["target_id"], ("", ""))
            shown.append({**row, "title": title, "url": url})
    return shown


# Email preferences ---------------------------------------------------------------------------


async def preferences(user_id: int) -> dict[str, Any]:
    row = await User.select(User.notification_prefs).where(User.id == user_id).output(load_json=True).first()
    stored = (row or {}).get("notification_prefs") or {}
    return {**DEFAULT_PREFS, **(stored if isinstance(stored, dict) else {})}


async def _write_prefs(user_id: int, changes: dict[str, Any]) -> None:
    async with atomic():
        row = await User.select(User.notification_prefs).where(User.id == user_id).output(load_json=True).first()
        if row is None:
            return
        stored = row["notification_prefs"] if isinstance(row["notification_prefs"], dict) else {}
        await User.update({User.notification_prefs: {**DEFAULT_PREFS, **stored, **changes}}).where(User.id == user_id)


async def set_email_mode(actor: Actor, mode: str, *, mentions: bool | None = None) -> None:
    policy.ensure_signed_in(actor)
    if mode not in EMAIL_NOTIFY_MODES:
        raise Invalid({"email_mode": _("Choose an option from the list.")})
    assert actor.user_id is not None
    changes: dict[str, Any] = {"email": mode}
    if mentions is not None:
        changes["mentions"] = mentions
    await _write_prefs(actor.user_id, changes)


async def stop_all_email(user_id: int) -> None:
    """From a signed unsubscribe link: no more notification email of any kind."""
    await _write_prefs(user_id, {"email": "off"})


# Notifications -------------------------------------------------------------------------------


@prepared
def _unread_count(user_id: Any) -> Any:
    return Notification.count().where((Notification.recipient == user_id) & Notification.read_at.is_null())


async def unread_count(user_id: int) -> int:
    """One COUNT over the partial index of unread rows (on every page: the bell)."""
    return await _unread_count(user_id)


async def list_notifications(actor: Actor, *, before_id: int | None = None, limit: int = PAGE_SIZE) -> list[dict]:
    """The actor's notifications, newest first; `before_id` pages back (keyset)."""
    policy.ensure_signed_in(actor)
    where = Notification.recipient == actor.user_id
    if before_id is not None:
        where &= Notification.id < before_id
    return await _select(where, limit)


async def get_notification(actor: Actor, notification_id: int) -> dict[str, Any]:
    await _owned(actor, notification_id)
    rows = await _select(Notification.id == notification_id, 1)
    return rows[0]


async def _select(where: Any, limit: int) -> list[dict[str, Any]]:
    rows = (
        await Notification.select(
            Notification.id,
            Notification.kind,
            Notification.reason,
            Notification.target_kind,
            Notification.target_id,
            Notification.url,
            Notification.title,
            Notification.excerpt,
            Notification.created_at,
            Notification.read_at,
            Notification.actor.display_name.as_alias("actor_name"),
        )
        .where(where)
        .order_by(Notification.id, ascending=False)
        .limit(limit)
    )
    return [{**row, "headline": headline(row)} for row in rows]


async def _owned(actor: Actor, notification_id: int) -> dict[str, Any]:
    """The actor's own notification; anyone else's looks missing (404)."""
    policy.ensure_signed_in(actor)
    row = (
        await Notification.select(Notification.id, Notification.recipient, Notification.url, Notification.read_at)
        .where(Notification.id == notification_id)
        .first()
    )
    if row is None or not policy.can_manage_notifications(actor, row["recipient"]):
        raise NotFound
    return row


async def mark_read(actor: Actor, notification_id: int) -> str:
    """Mark one of the actor's notifications read; returns its link."""
    row = await _owned(actor, notification_id)
    if row["read_at"] is None:
        async with atomic() as tx:
            await Notification.update({Notification.read_at: utcnow()}).where(
                (Notification.id == notification_id) & Notification.read_at.is_null()
            )
            await live.publish_unread(tx, row["recipient"])
    return str(row["url"] or "/notifications")


async def mark_all_read(actor: Actor) -> None:
    policy.ensure_signed_in(actor)
    assert actor.user_id is not None
    async with atomic() as tx:
        await Notification.update({Notification.read_at: utcnow()}).where(
            (Notification.recipient == actor.user_id) & Notification.read_at.is_null()
        )
        await live.publish_unread(tx, actor.user_id)


def headline(row: dict[str, Any]) -> str:
    """One sentence saying what happened, in the current locale (page or mail)."""
    who = row.get("actor_name") or _("Someone")
    title = row.get("title") or _("a conversation")
    reason, kind = row.get("reason"), row.get("kind")
    if kind == "answer.accepted":
        if reason in ("reply", "direct"):
            return _("%(actor)s accepted your answer in “%(title)s”", actor=who, title=title)
        return _("%(actor)s accepted an answer in “%(title)s”", actor=who, title=title)
    if kind == "reaction.added":
        return _("%(actor)s reacted to your post in “%(title)s”", actor=who, title=title)
    if reason == "mention":
        return _("%(actor)s mentioned you in “%(title)s”", actor=who, title=title)
    if reason == "reply":
        return _("%(actor)s replied to you in “%(title)s”", actor=who, title=title)
    if kind == "thread.created":
        return _("%(actor)s started “%(title)s”", actor=who, title=title)
    if kind == "post.created":
        return _("%(actor)s posted in “%(title)s”", actor=who, title=title)
    return _("%(actor)s: new activity in “%(title)s”", actor=who, title=title)

"""The daily digest: one mail a day listing what a "daily" person was told.

Storing a notification for someone on the daily mode enqueues their digest job for the next
08:00 in their time zone, keyed by that local date (so many notifications make one job). The
job lists the still-unread pending ones in one mail and marks every pending one digested.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server import jobs, mail
from server.accounts.tables import User
from server.db import atomic
from server.notifications import unsubscribe
from server.notifications.tables import Notification
from server.settings import get_settings

KIND = "notifications.digest"
MAIL_KEY = "notifications.digest-mail"  # the mail job's key (the digest job holds KIND's)
DIGEST_HOUR = 8
MAX_ITEMS = 50


def _zone(time_zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def next_digest_at(time_zone: str, now: datetime) -> datetime:
    """The first DIGEST_HOUR o'clock in `time_zone` strictly after `now` (UTC)."""
    zone = _zone(time_zone)
    local = now.astimezone(zone)
    day = local.date()
    while True:
        moment = datetime.combine(day, time(DIGEST_HOUR), tzinfo=zone)
        if moment > local:
            return moment.astimezone(UTC)
        day += timedelta(days=1)


def digest_date(time_zone: str, at: datetime) -> str:
    return at.astimezone(_zone(time_zone)).date().isoformat()


async def schedule(user_id: int, time_zone: str, now: datetime) -> None:
    """In the caller's transaction: make sure the user's next digest job exists."""
    at = next_digest_at(time_zone, now)
    date = digest_date(time_zone, at)
    await jobs.enqueue(
        KIND,
        {"user_id": user_id, "date": date},
        key=f"{KIND}:{user_id}:{date}",
        delay=max(at - jobs.now(), timedelta()),
    )


async def send_digest(user_id: int, date: str, *, now: datetime) -> int:
    """Mail the pending notifications (the unread ones) and mark them digested. Returns how
    many were listed; 0 sends nothing."""
    from server.notifications.services import headline, preferences

    user = (
        await User.select(User.email, User.locale, User.is_active, User.email_verified_at)
        .where(User.id == user_id)
        .first()
    )
    prefs = await preferences(user_id)
    async with atomic():
        rows = (
            await Notification.select(
                Notification.id,
                Notification.kind,
                Notification.reason,
                Notification.url,
                Notification.title,
                Notification.excerpt,
                Notification.read_at,
                Notification.actor.display_name.as_alias("actor_name"),
            )
            .where((Notification.recipient == user_id) & (Notification.digest_pending == True))  # noqa: E712
            .order_by(Notification.id)
        )
        if not rows:
            return 0
        unread = [row for row in rows if row["read_at"] is None]
        can_mail = user is not None and user["is_active"] and user["email_verified_at"] is not None
        listed = 0
        if unread and can_mail and prefs.get("email") != "off":
            assert user is not None
            token = unsubscribe.make_token(user_id)
            base = get_settings().base_url
            items: list[dict[str, Any]] = [
                {**row, "link": base + (row["url"] or "/notifications"), "excerpt": _short(row["excerpt"])}
                for row in unread[:MAX_ITEMS]
            ]
            await mail.queue_mail(
                user["email"],
                "notification_digest",
                {
                    "items": items,
                    "more": max(0, len(unread) - MAX_ITEMS),
                    "headline": headline,
                    "notifications_url": f"{base}/notifications",
                    "preferences_url": f"{base}/notifications/preferences",
                    "unsubscribe_url": unsubscribe.unsubscribe_url(token),
                },
                locale=user["locale"],
                key=f"{MAIL_KEY}:{user_id}:{date}",
                headers=unsubscribe.mail_headers(token),
            )
            listed = len(items)
        await Notification.update({Notification.digest_pending: False, Notification.digested_at: now}).where(
            Notification.id.is_in([row["id"] for row in rows])
        )
    return listed


def _short(text: str, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@jobs.handler(KIND)
async def digest_job(job: jobs.ClaimedJob) -> None:
    await send_digest(int(job.payload["user_id"]), str(job.payload["date"]), now=jobs.now())

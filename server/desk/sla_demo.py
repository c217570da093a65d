"""Demo SLA and CSAT data: office-hours calendars for Tokyo and New York, a 24/7 one, a policy
per priority, and satisfaction ratings on the demo desk's solved tickets. Idempotent."""

from __future__ import annotations

import random
from datetime import timedelta

from server.accounts.auth import utcnow
from server.db import atomic
from server.desk import sla
from server.desk.businesshours import WEEKDAYS
from server.desk.sla_tables import CsatRating, SlaCalendar, SlaPolicy, TicketSla
from server.desk.tables import Ticket
from server.policy import Actor

SYSTEM = Actor(roles=frozenset({"admin"}))
SEED = 20261205
WEEKDAYS_ONLY = WEEKDAYS[:5]

CALENDARS = [
    (
        "Tokyo office hours",
        "Asia/Tokyo",
        "09:00-12:00, 13:00-18:00",
        WEEKDAYS_ONLY,
        "2026-12-29 年末休業\n2026-12-30 年末休業\n2026-12-31 大晦日\n2027-01-01 元日\n2027-01-11 成人の日",
    ),
    (
        "New York office hours",
        "America/New_York",
        "09:00-17:00",
        WEEKDAYS_ONLY,
        "2026-11-26 Thanksgiving\n2026-12-25 Christmas Day\n2027-01-01 New Year's Day",
    ),
    ("24/7", "UTC", "00:00-24:00", WEEKDAYS, ""),
]

POLICIES = [
    # name, priority, calendar, first reply, next reply, resolution (business minutes), reassign
    ("Low priority", "low", "Tokyo office hours", 8 * 60, 16 * 60, 5 * 9 * 60, False),
    ("Normal priority", "normal", "Tokyo office hours", 4 * 60, 8 * 60, 3 * 9 * 60, False),
    ("High priority", "high", "New York office hours", 60, 4 * 60, 16 * 60, False),
    ("Urgent", "urgent", "24/7", 30, 60, 8 * 60, True),
]

COMMENTS_GOOD = ["Quick and clear, thank you!", "丁寧なご対応ありがとうございました。", ""]
COMMENTS_BAD = ["It took three days to get an answer.", "回答が遅かったです。", ""]


async def load_calendars_and_policies() -> None:
    ids = {}
    for name, zone, hours, days, holidays in CALENDARS:
        row = await SlaCalendar.select(SlaCalendar.id).where(SlaCalendar.name == name).first()
        if row is None:
            data = {"name": name, "time_zone": zone, "holidays": holidays, **{d: hours for d in days}}
            ids[name] = await sla.save_calendar(SYSTEM, None, data)
        else:
            ids[name] = row["id"]
    for name, priority, calendar, first, following, resolution, reassign in POLICIES:
        if await SlaPolicy.exists().where(SlaPolicy.priority == priority):
            continue
        data = {
            "name": name,
            "priority": priority,
            "calendar": str(ids[calendar]),
            "first_reply_minutes": str(first),
            "next_reply_minutes": str(following),
            "resolution_minutes": str(resolution),
            "notify_lead": True,
            "reassign_to_lead": reassign,
        }
        await sla.save_policy(SYSTEM, None, data)


async def settle_demo_tickets(ref_prefix: str) -> None:
    """After the demo moved its tickets into the past: recompute their timers, count the
    breaches that already happened as escalated (a fresh demo does not mail the leads about
    last week), and give the solved ones satisfaction ratings."""
    rng = random.Random(SEED)
    now = utcnow()
    rows = await Ticket.select(Ticket.id, Ticket.solved_at).where(Ticket.channel_ref.like(f"{ref_prefix}%"))
    async with atomic():
        for row in rows:
            clocks = await sla.recompute(row["id"])
            if clocks is None:
                continue
            past = [f"{t.target}:{int(t.due_at.timestamp())}" for t in clocks.running if t.due_at and t.due_at <= now]
            if past:
                await TicketSla.update({TicketSla.escalated: past}).where(TicketSla.ticket == row["id"])
            if row["solved_at"] is not None:
                await _rate(rng, row["id"], row["solved_at"])


async def _rate(rng: random.Random, ticket_id: int, solved_at: object) -> None:
    roll = rng.random()
    values: dict[object, object] = {CsatRating.solved_at: solved_at, CsatRating.asked_at: solved_at}
    if roll < 0.72:
        values.update({CsatRating.rating: "good", CsatRating.comment: rng.choice(COMMENTS_GOOD)})
    elif roll < 0.85:
        values.update({CsatRating.rating: "bad", CsatRating.comment: rng.choice(COMMENTS_BAD)})
    if CsatRating.rating in values:
        values[CsatRating.rated_at] = solved_at + timedelta(hours=rng.uniform(1, 30))  # type: ignore[operator]
    await CsatRating.update(values).where(CsatRating.ticket == ticket_id)

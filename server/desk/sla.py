"""SLA timers: which policy applies, when each target is due, and escalation on breach.

Targets (business minutes of the policy's calendar, or 24/7 without one):

- first reply: from the ticket's creation to the first public reply by an agent;
- next reply: from a customer's public message (after the first agent reply) to the next
  public agent reply; while one is running, further customer messages do not restart it;
- resolution: from creation to solved. Like Zendesk's agent work time, it runs while the ticket
  is new or open and pauses while it is pending or on hold (waiting on the customer or a third
  party); solving stops it, a reopen resumes it with the time already used.

Solving (or closing) fulfils every running clock. The timers are recomputed from the ticket's
whole history on every event (opened, public reply, status or priority change, merge), so a
priority change re-targets the ticket from its original start, as Zendesk does. A target is at
risk when less than 25% of it is left, breached when its due time has passed while it runs.

The ticket row carries the earliest due and at-risk instants of its running clocks, which is all
the "SLA at risk or breached" view needs: `sla_at_risk_at <= now`, sorted by `sla_due_at`. The
state is therefore always current in views and badges, without waiting for a job. The worker
still gets a job per running target at its at-risk and due instants: it re-checks the ticket
(recomputes, so the stored state follows) and, on a breach it has not escalated yet, records a
system event, mails the group lead and, if the policy says so, hands the ticket to the lead.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from server import jobs, policy
from server.accounts.auth import utcnow
from server.accounts.tables import UserRole
from server.db import atomic
from server.desk.businesshours import (
    WEEKDAYS,
    BusinessCalendar,
    Calendar,
    CalendarError,
    add_business_time,
    business_seconds_between,
    calendar_from_row,
    check_time_zone,
    parse_day,
    parse_holidays,
)
from server.desk.sla_tables import SlaCalendar, SlaPolicy, TicketSla
from server.desk.tables import PRIORITIES, UNSOLVED, DeskGroup, Ticket, TicketMessage
from server.errors import Invalid, NotFound
from server.i18n import _, get_locale
from server.mail import queue_mail
from server.policy import Actor, ensure
from server.prepared import insert, prepared
from server.settings import get_settings
from server.shortcache import ShortCache
from server.webhooks import services as webhooks

log = logging.getLogger("kizuna.desk.sla")

RISK_SHARE = 0.25  # at risk when less than this share of the target is left
CHECK_KIND = "desk.sla_check"
RECOMPUTE_KIND = "desk.sla_recompute"
RECOMPUTE_BATCH = 200
RUNNING = ("new", "open")  # the resolution clock runs in these statuses
STOPPED = ("solved", "closed")
MAX_TARGET_MINUTES = 365 * 24 * 60
STAFF_ROLES = ("agent", "admin")

_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("kizuna_sla_quiet", default=False)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Recompute timers without queueing re-check jobs (demo data, imports); settle afterwards."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


# The clock model (pure) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    first_reply: int | None = None  # minutes
    next_reply: int | None = None
    resolution: int | None = None


@dataclass(frozen=True)
class Event:
    """`kind`: "customer" or "agent" (a public message), or "status" (a change to `status`)."""

    at: datetime
    kind: str
    status: str = ""


@dataclass(frozen=True)
class Timer:
    target: str
    minutes: int
    due_at: datetime | None  # None while paused
    at_risk_at: datetime | None
    paused: bool = False
    used_seconds: float = 0.0


@dataclass(frozen=True)
class Breach:
    target: str
    due_at: datetime
    met_at: datetime | None  # None: still running, or paused after the breach


@dataclass
class Clocks:
    timers: dict[str, Timer] = field(default_factory=dict)
    breaches: list[Breach] = field(default_factory=list)

    @property
    def running(self) -> list[Timer]:
        return [t for t in self.timers.values() if not t.paused]

    @property
    def due_at(self) -> datetime | None:
        return min((t.due_at for t in self.running if t.due_at), default=None)

    @property
    def at_risk_at(self) -> datetime | None:
        return min((t.at_risk_at for t in self.running if t.at_risk_at), default=None)

    def state(self, now: datetime) -> str:
        return state_at(self.due_at, self.at_risk_at, now, paused=bool(self.timers))


def state_at(due_at: datetime | None, at_risk_at: datetime | None, now: datetime, *, paused: bool = False) -> str:
    """ok / at_risk / breached for a running clock; paused or done when none runs."""
    if due_at is None:
        return "paused" if paused else "done"
    if due_at <= now:
        return "breached"
    if at_risk_at is not None and at_risk_at <= now:
        return "at_risk"
    return "ok"


def _due(calendar: Calendar, start: datetime, minutes: int, used: float = 0.0) -> tuple[datetime, datetime]:
    """(due, at risk) of a target of `minutes` started at `start` with `used` seconds gone."""
    total = minutes * 60.0
    due = add_business_time(calendar, start, max(0.0, total - used))
    at_risk = add_business_time(calendar, start, max(0.0, total * (1 - RISK_SHARE) - used))
    return due, at_risk


def compute_clocks(
    targets: Targets, calendar: Calendar, created_at: datetime, events: list[Event], now: datetime
) -> Clocks:
    """The timers of a ticket created at `created_at` (status new) after `events`, as of `now`."""
    events = sorted(events, key=lambda e: e.at)
    status = "new"
    breaches: list[Breach] = []
    # First reply
    first_due = _due(calendar, created_at, targets.first_reply)[0] if targets.first_reply is not None else None
    first_open = targets.first_reply is not None
    agent_replied = False
    # Next reply
    next_start: datetime | None = None
    # Resolution
    res_used = 0.0
    res_since: datetime | None = created_at
    res_breached = False

    def res_due(since: datetime, used: float) -> datetime | None:
        if targets.resolution is None:
            return None
        return _due(calendar, since, targets.resolution, used)[0]

    for event in events:
        if event.kind == "agent":
            if not agent_replied:
                agent_replied = True
                if first_open and first_due is not None:
                    if event.at > first_due:
                        breaches.append(Breach("first_reply", first_due, event.at))
                    first_open = False
            elif next_start is not None:
                if targets.next_reply is not None:
                    due = _due(calendar, next_start, targets.next_reply)[0]
                    if event.at > due:
                        breaches.append(Breach("next_reply", due, event.at))
                next_start = None
        elif event.kind == "customer":
            if agent_replied and next_start is None and status != "closed":
                next_start = event.at
        elif event.kind == "status" and event.status != status:
            new = event.status
            if new in STOPPED:
                if first_open and first_due is not None:
                    if event.at > first_due:
                        breaches.append(Breach("first_reply", first_due, event.at))
                    first_open = False
                if next_start is not None:
                    if targets.next_reply is not None:
                        due = _due(calendar, next_start, targets.next_reply)[0]
                        if event.at > due:
                            breaches.append(Breach("next_reply", due, event.at))
                    next_start = None
            if res_since is not None and new not in RUNNING:  # pause or stop
                due = res_due(res_since, res_used)
                res_used += business_seconds_between(calendar, res_since, event.at)
                if due is not None and event.at > due and not res_breached:
                    res_breached = True
                    breaches.append(Breach("resolution", due, event.at if new in STOPPED else None))
                res_since = None
            elif res_since is None and new in RUNNING:
                res_since = event.at
            status = new

    timers: dict[str, Timer] = {}
    if first_open and targets.first_reply is not None:
        due, risk = _due(calendar, created_at, targets.first_reply)
        timers["first_reply"] = Timer("first_reply", targets.first_reply, due, risk)
    if next_start is not None and targets.next_reply is not None:
        due, risk = _due(calendar, next_start, targets.next_reply)
        timers["next_reply"] = Timer("next_reply", targets.next_reply, due, risk)
    if targets.resolution is not None and status not in STOPPED:
        if res_since is not None:
            due, risk = _due(calendar, res_since, targets.resolution, res_used)
            timers["resolution"] = Timer("resolution", targets.resolution, due, risk, used_seconds=res_used)
        else:
            timers["resolution"] = Timer(
                "resolution", targets.resolution, None, None, paused=True, used_seconds=res_used
            )
    for timer in timers.values():
        already = timer.target == "resolution" and res_breached
        if timer.due_at is not None and timer.due_at <= now and not already:
            breaches.append(Breach(timer.target, timer.due_at, None))
    return Clocks(timers, breaches)


# Policies and calendars ----------------------------------------------------------------------


@dataclass(frozen=True)
class AppliedPolicy:
    id: int
    name: str
    targets: Targets
    calendar: Calendar
    calendar_name: str
    notify_lead: bool
    reassign_to_lead: bool


# A priority's policy, per process for two seconds: every new ticket and every timer recompute
# needs it. Saving or deleting a policy or calendar clears it here at once; another process may
# apply the old policy for up to two seconds, and the recompute job those saves queue clears its
# process's copy first, so every unsolved ticket ends on the new policy.
POLICIES = ShortCache(ttl_seconds=2.0, max_entries=64)


def forget_policies() -> None:
    POLICIES.clear()


async def policy_for(priority: str, tier: str | None = None) -> AppliedPolicy | None:
    """The policy of a priority (a tier-specific one first, once tiers exist)."""
    return await POLICIES.cached((priority, tier), lambda: _load_policy(priority, tier))


async def _load_policy(priority: str, tier: str | None) -> AppliedPolicy | None:
    rows = (
        await SlaPolicy.select(
            *SlaPolicy.all_columns(),
            SlaPolicy.calendar.name.as_alias("calendar_name"),
            SlaPolicy.calendar.time_zone.as_alias("calendar_zone"),
            SlaPolicy.calendar.hours.as_alias("calendar_hours"),
            SlaPolicy.calendar.holidays.as_alias("calendar_holidays"),
        )
        .where(SlaPolicy.priority == priority)
        .output(load_json=True)
    )
    rows = [r for r in rows if r["tier"] in (None, tier)]
    if not rows:
        return None
    row = sorted(rows, key=lambda r: (r["tier"] is None, r["id"]))[0]
    calendar = None
    if row["calendar"] is not None:
        calendar = calendar_from_row(row["calendar_zone"], row["calendar_hours"], row["calendar_holidays"])
    return AppliedPolicy(
        id=row["id"],
        name=row["name"],
        targets=Targets(row["first_reply_minutes"], row["next_reply_minutes"], row["resolution_minutes"]),
        calendar=calendar,
        calendar_name=row["calendar_name"] or "",
        notify_lead=row["notify_lead"],
        reassign_to_lead=row["reassign_to_lead"],
    )


async def ticket_events(ticket_id: int) -> list[Event]:
    """Public messages (by customers or agents) and status changes, oldest first."""
    rows = (
        await TicketMessage.select(
            TicketMessage.kind, TicketMessage.author, TicketMessage.event, TicketMessage.created_at
        )
        .where((TicketMessage.ticket == ticket_id) & TicketMessage.kind.is_in(["public", "system"]))
        .order_by(TicketMessage.created_at)
        .order_by(TicketMessage.id)
        .output(load_json=True)
    )
    authors = {r["author"] for r in rows if r["kind"] == "public" and r["author"] is not None}
    staff: set[int] = set()
    if authors:
        found = await UserRole.select(UserRole.user).where(
            UserRole.user.is_in(sorted(authors)) & UserRole.role.is_in(list(STAFF_ROLES))
        )
        staff = {r["user"] for r in found}
    events = []
    for row in rows:
        if row["kind"] == "public":
            events.append(Event(row["created_at"], "agent" if row["author"] in staff else "customer"))
            continue
        event = row["event"] or {}
        for change in event.get("changes", []):
            if change.get("field") == "status":
                events.append(Event(row["created_at"], "status", str(change.get("to"))))
        if event.get("event") == "merged_into":
            events.append(Event(row["created_at"], "status", "closed"))
    return events


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


async def recompute(
    ticket_id: int, *, now: datetime | None = None, schedule: bool = True, new: dict[str, Any] | None = None
) -> Clocks | None:
    """Recompute a ticket's timers from its history and store them; with `schedule`, queue the
    re-check jobs at the running targets' at-risk and due instants (idempotent keys).
    `new`: a ticket inserted in this transaction, with the values it was inserted with (status,
    priority, created_at, updated_at): no ticket row to re-read, no timers stored yet. (A ticket
    whose first event is known before its insert takes `timers_for_new` and `store_new`.)"""
    moment = now or utcnow()
    async with atomic():
        if new is not None:
            ticket: dict[str, Any] | None = {**new, "id": ticket_id, "sla_due_at": None}
        else:
            ticket = (
                await Ticket.select(
                    Ticket.id, Ticket.status, Ticket.priority, Ticket.created_at, Ticket.updated_at, Ticket.sla_due_at
                )
                .where(Ticket.id == ticket_id)
                .first()
            )
        if ticket is None:
            return None
        applied = await policy_for(ticket["priority"])
        if applied is None:
            if new is None:
                await TicketSla.delete().where(TicketSla.ticket == ticket_id)
            if ticket["sla_due_at"] is not None:
                await Ticket.update({Ticket.sla_due_at: None, Ticket.sla_at_risk_at: None}).where(
                    Ticket.id == ticket_id
                )
            return None
        events = await ticket_events(ticket_id)
        last_status = next((e.status for e in reversed(events) if e.kind == "status"), "new")
        if last_status != ticket["status"]:  # a change written without a status event (imports, merges)
            events.append(Event(ticket["updated_at"], "status", ticket["status"]))
        clocks = _clocks(applied, ticket["created_at"], events, moment, ticket_id)
        await _store(ticket_id, applied, clocks, moment, new=new is not None)
        if schedule:
            await _schedule_checks(ticket_id, clocks, moment)
    return clocks


@dataclass(frozen=True)
class NewTimers:
    """The timers of a ticket about to be inserted (`timers_for_new`), stored by `store_new`."""

    applied: AppliedPolicy
    clocks: Clocks


async def timers_for_new(priority: str, created_at: datetime, first_by_staff: bool) -> NewTimers | None:
    """The timers of a ticket before it is inserted, so its row carries `sla_due_at` and
    `sla_at_risk_at` from the start (one UPDATE less per new ticket). Its one event is its first
    message, by staff or by the requester. None: no policy for the priority."""
    applied = await policy_for(priority)
    if applied is None:
        return None
    events = [Event(created_at, "agent" if first_by_staff else "customer")]
    return NewTimers(applied, _clocks(applied, created_at, events, created_at, None))


async def store_new(ticket_id: int, timers: NewTimers, moment: datetime) -> None:
    """The timer row of a ticket inserted with `timers` (in the same transaction), and its checks."""
    await _store(ticket_id, timers.applied, timers.clocks, moment, new=True, ticket_row=False)
    await _schedule_checks(ticket_id, timers.clocks, moment)


def _clocks(
    applied: AppliedPolicy, created_at: datetime, events: list[Event], moment: datetime, ticket_id: Any
) -> Clocks:
    try:
        return compute_clocks(applied.targets, applied.calendar, created_at, events, moment)
    except CalendarError:
        log.error("SLA calendar of policy %s never opens; ticket %s has no timers", applied.id, ticket_id)
        return Clocks()


async def _schedule_checks(ticket_id: int, clocks: Clocks, moment: datetime) -> None:
    """Queue the re-checks at each running target's at-risk and due instants (idempotent keys)."""
    if _quiet.get():
        return
    for timer in clocks.running:
        assert timer.due_at is not None and timer.at_risk_at is not None
        if timer.at_risk_at > moment:
            await _schedule_check(ticket_id, timer.target, timer.at_risk_at, moment, "risk")
        await _schedule_check(ticket_id, timer.target, timer.due_at, moment, "due")


async def _store(
    ticket_id: int,
    applied: AppliedPolicy,
    clocks: Clocks,
    moment: datetime,
    *,
    new: bool = False,
    ticket_row: bool = True,
) -> None:
    """Write the timer row; with `ticket_row`, the ticket's own due and at-risk columns too."""
    timers = clocks.timers
    resolution = timers.get("resolution")
    values = {
        TicketSla.policy: applied.id,
        TicketSla.state: clocks.state(moment),
        TicketSla.first_reply_due_at: timers["first_reply"].due_at if "first_reply" in timers else None,
        TicketSla.next_reply_due_at: timers["next_reply"].due_at if "next_reply" in timers else None,
        TicketSla.resolution_due_at: resolution.due_at if resolution else None,
        TicketSla.resolution_paused: bool(resolution and resolution.paused),
        TicketSla.resolution_used_seconds: int(resolution.used_seconds) if resolution else 0,
        TicketSla.breaches: [
            {"target": b.target, "due_at": b.due_at.isoformat(), "met_at": b.met_at.isoformat() if b.met_at else None}
            for b in clocks.breaches
        ],
        TicketSla.computed_at: moment,
    }
    if new or not await TicketSla.update(values).where(TicketSla.ticket == ticket_id).returning(TicketSla.id):
        await insert(TicketSla, {"ticket": ticket_id, **{column._meta.name: v for column, v in values.items()}})
    if ticket_row:
        await Ticket.update({Ticket.sla_due_at: clocks.due_at, Ticket.sla_at_risk_at: clocks.at_risk_at}).where(
            Ticket.id == ticket_id
        )


async def _schedule_check(ticket_id: int, target: str, at: datetime, moment: datetime, what: str) -> None:
    await jobs.enqueue(
        CHECK_KIND,
        {"ticket_id": ticket_id, "target": target, "due": _epoch(at), "what": what},
        key=f"{CHECK_KIND}:{ticket_id}:{target}:{what}:{_epoch(at)}",
        delay=max(at - moment, timedelta()),
    )


# Escalation ----------------------------------------------------------------------------------


async def escalate_if_breached(ticket_id: int, target: str, due_epoch: int, *, now: datetime | None = None) -> bool:
    """On a breach of `target` due at `due_epoch` that is still current and not yet escalated:
    a system event, a mail to the group lead and, per policy, reassignment to the lead."""
    from server.desk import queries, services

    moment = now or utcnow()
    async with atomic():
        await services._lock(ticket_id)
        row = await TicketSla.select().where(TicketSla.ticket == ticket_id).output(load_json=True).first()
        ticket = await queries.get_ticket(ticket_id)
        if row is None or ticket is None or ticket["status"] not in UNSOLVED:
            return False
        due = row[f"{target}_due_at"] if target in ("first_reply", "next_reply", "resolution") else None
        if due is None or _epoch(due) != due_epoch or due > moment:
            return False  # met, paused, re-targeted or not due yet: a newer job covers it
        key = f"{target}:{due_epoch}"
        if key in (row["escalated"] or []):
            return False
        await TicketSla.update({TicketSla.escalated: [*(row["escalated"] or []), key]}).where(TicketSla.id == row["id"])
        applied = await SlaPolicy.select().where(SlaPolicy.id == row["policy"]).first() if row["policy"] else None
        lead = None
        if ticket["team"] is not None:
            lead = (
                await DeskGroup.select(
                    DeskGroup.lead,
                    DeskGroup.lead.email.as_alias("email"),
                    DeskGroup.lead.locale.as_alias("locale"),
                    DeskGroup.lead.is_active.as_alias("active"),
                )
                .where(DeskGroup.id == ticket["team"])
                .first()
            )
            if lead is not None and (lead["lead"] is None or not lead["active"]):
                lead = None
        event: dict[str, Any] = {"event": "sla_breached", "target": target, "due_at": due.isoformat()}
        await services._insert_message(ticket_id, None, "system", event=event, moment=moment)
        await webhooks.emit("sla.breached", ticket_id=ticket_id, target=target, due_at=due.isoformat())
        if applied and applied["notify_lead"] and lead:
            await queue_mail(
                lead["email"],
                "desk_sla_breach",
                {
                    "ticket_id": ticket_id,
                    "subject": ticket["subject"],
                    "target": target,
                    "due_at": due,
                    "priority": ticket["priority"],
                    "url": get_settings().base_url + f"/desk/tickets/{ticket_id}",
                },
                locale=lead["locale"] or "en",
                key=f"desk.sla.breach:{ticket_id}:{key}",
            )
        if applied and applied["reassign_to_lead"] and lead and ticket["assignee"] != lead["lead"]:
            await services._apply_changes(None, ticket, {"assignee": lead["lead"]})
    return True


@jobs.handler(CHECK_KIND)
async def _check_job(job: jobs.ClaimedJob) -> None:
    ticket_id = int(job.payload["ticket_id"])
    await recompute(ticket_id)
    if job.payload.get("what") == "due":
        await escalate_if_breached(ticket_id, str(job.payload["target"]), int(job.payload["due"]))


@jobs.handler(RECOMPUTE_KIND)
async def _recompute_job(job: jobs.ClaimedJob) -> None:
    """After a policy or calendar changed: recompute unsolved tickets, a batch per job."""
    forget_policies()  # this process may hold the old policy for two seconds
    after = int(job.payload.get("after", 0))
    rows = (
        await Ticket.select(Ticket.id)
        .where((Ticket.id > after) & Ticket.status.is_in(list(UNSOLVED)))
        .order_by(Ticket.id)
        .limit(RECOMPUTE_BATCH)
    )
    for row in rows:
        await recompute(row["id"])
    if len(rows) == RECOMPUTE_BATCH:
        async with atomic():
            await jobs.enqueue(RECOMPUTE_KIND, {"after": rows[-1]["id"]})


async def _recompute_all_later() -> None:
    """Inside a policy or calendar save: after the commit this process forgets its cached
    policies, and the worker recomputes every unsolved ticket's timers."""
    async with atomic() as tx:  # the save's own transaction
        await jobs.enqueue(RECOMPUTE_KIND, {"after": 0})
        tx.on_commit(forget_policies)


# Reads for pages -----------------------------------------------------------------------------


def target_labels() -> dict[str, str]:
    return {"first_reply": _("First reply"), "next_reply": _("Next reply"), "resolution": _("Resolution")}


def state_labels() -> dict[str, str]:
    return {
        "ok": _("On track"),
        "at_risk": _("At risk"),
        "breached": _("Breached"),
        "paused": _("Paused"),
        "done": _("Met"),
        "none": _("No SLA"),
    }


# state_labels() per locale, for badge(): a list page asks for a badge on every row.
_STATE_LABELS: dict[str, dict[str, str]] = {}


def badge(row: dict[str, Any]) -> dict[str, Any] | None:
    """The SLA badge of a ticket row (with sla_due_at and sla_at_risk_at), as of now."""
    due = row.get("sla_due_at")
    if due is None:
        return None
    state = state_at(due, row.get("sla_at_risk_at"), utcnow())
    locale = get_locale()
    labels = _STATE_LABELS.get(locale)
    if labels is None:
        labels = _STATE_LABELS[locale] = state_labels()
    return {"state": state, "label": labels[state], "due_at": due}


@prepared
def _ticket_sla(ticket_id: Any) -> Any:
    return (
        TicketSla.select(*TicketSla.all_columns(), TicketSla.ticket.priority.as_alias("ticket_priority"))
        .where(TicketSla.ticket == ticket_id)
        .limit(1)
        .output(load_json=True)
    )


async def ticket_panel(ticket_id: int) -> dict[str, Any] | None:
    """What the ticket page shows: policy, each target's due time and state, past breaches."""
    row = await _ticket_sla.first(ticket_id)  # with its ticket's priority
    if row is None or row["policy"] is None or row["ticket_priority"] is None:
        return None
    applied = await policy_for(row["ticket_priority"])
    if applied is None:
        return None
    now = utcnow()
    labels = target_labels()
    targets = []
    for target in ("first_reply", "next_reply", "resolution"):
        minutes = getattr(applied.targets, target)
        due = row[f"{target}_due_at"]
        if minutes is None:
            continue
        if due is not None:
            left = business_seconds_between(applied.calendar, now, due)
            state = "breached" if due <= now else ("at_risk" if left < minutes * 60 * RISK_SHARE else "ok")
        elif target == "resolution" and row["resolution_paused"]:
            state = "paused"
        else:
            continue
        targets.append({"target": target, "label": labels[target], "due_at": due, "state": state, "minutes": minutes})
    states = [t["state"] for t in targets]
    state = next((s for s in ("breached", "at_risk", "ok", "paused") if s in states), "done")
    breaches = [
        {
            "label": labels.get(b["target"], b["target"]),
            "due_at": datetime.fromisoformat(b["due_at"]),
            "met_at": datetime.fromisoformat(b["met_at"]) if b.get("met_at") else None,
        }
        for b in row["breaches"] or []
    ]
    return {
        "policy_name": applied.name,
        "calendar_name": applied.calendar_name or _("24/7"),
        "state": state,
        "state_label": state_labels()[state],
        "targets": targets,
        "breaches": breaches,
    }


def describe_breach(event: dict[str, Any]) -> str:
    label = target_labels().get(str(event.get("target")), str(event.get("target")))
    due = str(event.get("due_at", ""))[:16].replace("T", " ")
    return _("SLA breached: %(target)s was due %(due)s UTC.", target=label, due=due)


# Admin: calendars and policies ---------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


async def calendars() -> list[dict[str, Any]]:
    return await SlaCalendar.select().order_by(SlaCalendar.name).output(load_json=True)


async def policies() -> list[dict[str, Any]]:
    rows = (
        await SlaPolicy.select(*SlaPolicy.all_columns(), SlaPolicy.calendar.name.as_alias("calendar_name"))
        .order_by(SlaPolicy.priority)
        .order_by(SlaPolicy.id)
        .output(load_json=True)
    )
    order = {p: i for i, p in enumerate(PRIORITIES)}
    return sorted(rows, key=lambda r: (order.get(r["priority"], 9), r["id"]))


def _check_name(raw: Any, errors: dict[str, str], limit: int) -> str:
    name = " ".join(str(raw or "").split())
    if not name or len(name) > limit:
        errors["name"] = _("Give it a name (up to %(n)s characters).", n=limit)
    return name


async def save_calendar(actor: Actor, calendar_id: int | None, data: dict[str, Any]) -> int:
    """`data`: name, time_zone, one text per weekday ("mon": "09:00-12:00, 13:00-18:00"),
    holidays (one YYYY-MM-DD per line)."""
    ensure(policy.can_administer_desk(actor))
    errors: dict[str, str] = {}
    name = _check_name(data.get("name"), errors, 80)
    try:
        zone = check_time_zone(str(data.get("time_zone", "")))
    except CalendarError:
        zone = ""
        errors["time_zone"] = _("Choose a time zone from the list, such as Asia/Tokyo.")
    hours: dict[str, list[list[int]]] = {}
    for day in WEEKDAYS:
        try:
            hours[day] = [list(pair) for pair in parse_day(str(data.get(day, "")), day)]
        except CalendarError as exc:
            errors[day] = _("Write hours like 09:00-12:00, 13:00-18:00 (not “%(text)s”).", text=str(exc))
    if not any(errors.get(day) for day in WEEKDAYS) and not any(hours.values()):
        errors["hours"] = _("Open the calendar on at least one day.")
    try:
        holidays = [d.isoformat() for d in parse_holidays(str(data.get("holidays", "")))]
    except CalendarError as exc:
        holidays = []
        errors["holidays"] = _("Write one date per line as YYYY-MM-DD (not “%(text)s”).", text=str(exc))
    if len(holidays) > 1000:
        errors["holidays"] = _("Keep the list under %(n)s dates.", n=1000)
    if zone and not errors:
        try:
            BusinessCalendar(zone, tuple(tuple((s, e) for s, e in hours[d]) for d in WEEKDAYS))
        except CalendarError:
            errors["hours"] = _("Open the calendar on at least one day.")
    async with atomic():
        clash = SlaCalendar.exists().where(SlaCalendar.name == name)
        if calendar_id is not None:
            clash = clash.where(SlaCalendar.id != calendar_id)
        if name and "name" not in errors and await clash:
            errors["name"] = _("Another calendar already has this name.")
        if errors:
            raise Invalid(errors)
        values = {
            SlaCalendar.name: name,
            SlaCalendar.time_zone: zone,
            SlaCalendar.hours: hours,
            SlaCalendar.holidays: holidays,
        }
        if calendar_id is None:
            rows = await SlaCalendar.insert(
                SlaCalendar(created_at=_now(), **{c._meta.name: v for c, v in values.items()})
            ).returning(SlaCalendar.id)
            calendar_id = rows[0]["id"]
        else:
            if not await SlaCalendar.update(values).where(SlaCalendar.id == calendar_id).returning(SlaCalendar.id):
                raise NotFound
            await _recompute_all_later()
    return calendar_id


async def delete_calendar(actor: Actor, calendar_id: int) -> None:
    ensure(policy.can_administer_desk(actor))
    async with atomic():
        if not await SlaCalendar.exists().where(SlaCalendar.id == calendar_id):
            raise NotFound
        if await SlaPolicy.exists().where(SlaPolicy.calendar == calendar_id):
            raise Invalid({"calendar": _("Policies use this calendar: give them another one first.")})
        await SlaCalendar.delete().where(SlaCalendar.id == calendar_id)


def _minutes(raw: Any, key: str, errors: dict[str, str]) -> int | None:
    text = str(raw if raw is not None else "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        errors[key] = _("Enter whole minutes, or leave empty for no target.")
        return None
    if not 1 <= value <= MAX_TARGET_MINUTES:
        errors[key] = _("Enter between 1 and %(n)s minutes.", n=MAX_TARGET_MINUTES)
        return None
    return value


async def save_policy(actor: Actor, policy_id: int | None, data: dict[str, Any]) -> int:
    """`data`: name, priority, tier (empty: any), calendar (id, empty: 24/7), first_reply_minutes,
    next_reply_minutes, resolution_minutes (empty: no target), notify_lead, reassign_to_lead."""
    ensure(policy.can_administer_desk(actor))
    errors: dict[str, str] = {}
    name = _check_name(data.get("name"), errors, 120)
    priority = str(data.get("priority", ""))
    if priority not in PRIORITIES:
        errors["priority"] = _("Choose a priority from the list.")
    tier = " ".join(str(data.get("tier") or "").split())[:40] or None
    targets = {key: _minutes(data.get(key), key, errors) for key in ("first_reply_minutes", "next_reply_minutes")}
    targets["resolution_minutes"] = _minutes(data.get("resolution_minutes"), "resolution_minutes", errors)
    if not errors and all(v is None for v in targets.values()):
        errors["first_reply_minutes"] = _("Set at least one target.")
    raw_calendar = str(data.get("calendar") or "").strip()
    calendar_id: int | None = None
    if raw_calendar:
        calendar_id = int(raw_calendar) if raw_calendar.isdigit() else 0
    async with atomic():
        if calendar_id is not None and not await SlaCalendar.exists().where(SlaCalendar.id == calendar_id):
            errors["calendar"] = _("Choose a calendar from the list.")
        if "priority" not in errors:
            clash = SlaPolicy.exists().where(
                (SlaPolicy.priority == priority) & (SlaPolicy.tier == tier if tier else SlaPolicy.tier.is_null())
            )
            if policy_id is not None:
                clash = clash.where(SlaPolicy.id != policy_id)
            if await clash:
                errors["priority"] = _("Another policy already covers this priority.")
        if errors:
            raise Invalid(errors)
        values = {
            SlaPolicy.name: name,
            SlaPolicy.priority: priority,
            SlaPolicy.tier: tier,
            SlaPolicy.calendar: calendar_id,
            SlaPolicy.first_reply_minutes: targets["first_reply_minutes"],
            SlaPolicy.next_reply_minutes: targets["next_reply_minutes"],
            SlaPolicy.resolution_minutes: targets["resolution_minutes"],
            SlaPolicy.notify_lead: bool(data.get("notify_lead")),
            SlaPolicy.reassign_to_lead: bool(data.get("reassign_to_lead")),
        }
        if policy_id is None:
            rows = await SlaPolicy.insert(
                SlaPolicy(created_at=_now(), **{c._meta.name: v for c, v in values.items()})
            ).returning(SlaPolicy.id)
            policy_id = rows[0]["id"]
        elif not await SlaPolicy.update(values).where(SlaPolicy.id == policy_id).returning(SlaPolicy.id):
            raise NotFound
        await _recompute_all_later()
    return policy_id


async def delete_policy(actor: Actor, policy_id: int) -> None:
    ensure(policy.can_administer_desk(actor))
    async with atomic():
        if not await SlaPolicy.delete().where(SlaPolicy.id == policy_id).returning(SlaPolicy.id):
            raise NotFound
        await _recompute_all_later()


def _install_template_helpers() -> None:
    """`sla_badge(row)` for every template that lists tickets (the desk's lists, live fragments)."""
    from server.templating import environment

    environment().globals["sla_badge"] = badge


_install_template_helpers()

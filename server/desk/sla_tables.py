"""SLA tables: business-hours calendars, policies (targets by priority, later by perk tier) and
each ticket's timers. The ticket row itself carries the two instants views filter and sort on
(`Ticket.sla_due_at`, `Ticket.sla_at_risk_at`); the rest lives here."""

from piccolo.columns import JSON, Boolean, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.table import Table

from server.accounts.tables import User
from server.desk.tables import DeskGroup, Ticket

TARGETS = ("first_reply", "next_reply", "resolution")
SLA_STATES = ("none", "ok", "at_risk", "breached", "paused", "done")


class SlaCalendar(Table, tablename="desk_sla_calendar"):
    """Opening hours in a time zone: {"mon": [[540, 1080]], ...} in local minutes, and holidays
    (["2027-01-01", ...], local dates closed all day)."""

    name = Varchar(length=80, unique=True)
    time_zone = Varchar(length=64, default="UTC")
    hours = JSON(default={})
    holidays = JSON(default=[])
    created_at = Timestamptz()


class SlaPolicy(Table, tablename="desk_sla_policy"):
    """Targets in business minutes for tickets of one priority (and, once perks land, one tier;
    `tier` NULL means any). Services keep (priority, tier) unique among policies. No calendar
    means 24/7."""

    name = Varchar(length=120)
    priority = Varchar(length=10, index=True)
    tier = Varchar(length=40, null=True, default=None)
    calendar = ForeignKey(SlaCalendar, on_delete=OnDelete.restrict, null=True)
    first_reply_minutes = Integer(null=True, default=None)
    next_reply_minutes = Integer(null=True, default=None)
    resolution_minutes = Integer(null=True, default=None)
    notify_lead = Boolean(default=True)  # mail the group lead on a breach
    reassign_to_lead = Boolean(default=False)  # and hand the ticket to the lead
    created_at = Timestamptz()


class TicketSla(Table, tablename="desk_ticket_sla"):
    """A ticket's timers as last recomputed. `breaches`: [{"target", "due_at", "met_at"}] from the
    ticket's history; `escalated`: ["<target>:<due epoch>", ...] breaches already escalated."""

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, unique=True)
    policy = ForeignKey(SlaPolicy, on_delete=OnDelete.set_null, null=True)
    state = Varchar(length=10, default="none")
    first_reply_due_at = Timestamptz(null=True, default=None)
    next_reply_due_at = Timestamptz(null=True, default=None)
    resolution_due_at = Timestamptz(null=True, default=None)
    resolution_paused = Boolean(default=False)
    resolution_used_seconds = Integer(default=0)
    breaches = JSON(default=[])
    escalated = JSON(default=[])
    computed_at = Timestamptz()


class CsatRating(Table, tablename="desk_csat"):
    """The requester's satisfaction with a solved ticket: asked on solve, `rating` good/bad ("" =
    not answered yet), changeable for a week after `solved_at`. `agent`/`team` are who had the
    ticket when it was solved (the report groups by them)."""

    ticket = ForeignKey(Ticket, on_delete=OnDelete.cascade, unique=True)
    requester = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    agent = ForeignKey(User, on_delete=OnDelete.set_null, null=True, index=True)
    team = ForeignKey(DeskGroup, on_delete=OnDelete.set_null, null=True, index=True)
    rating = Varchar(length=4, default="")
    comment = Text(default="")
    solved_at = Timestamptz()
    asked_at = Timestamptz()
    rated_at = Timestamptz(null=True, default=None, index=True)
    reminded_at = Timestamptz(null=True, default=None)

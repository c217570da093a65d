"""Customer satisfaction (CSAT): when a ticket is solved its requester is asked good or bad, with
an optional comment, on the portal's ticket page and by a mailed signed link that needs no
sign-in. The rating can be changed for WINDOW after the solve; one reminder goes out when the
question is still unanswered after REMINDER_AFTER.

The mailed link is signed (itsdangerous, `server.accounts.links`) over the ticket and its
requester: a forged link, one for another ticket, or one older than TOKEN_MAX_AGE is refused.
Opening the link (GET) only shows the form; the rating is recorded by its POST. Neither the
pages nor the mails carry any of the conversation, so internal notes cannot leak through them.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from server import jobs, policy
from server.accounts import links
from server.accounts.auth import utcnow
from server.accounts.tables import User
from server.channels.email import outbound
from server.db import atomic
from server.desk import queries
from server.desk.sla_tables import CsatRating
from server.desk.tables import DeskGroup, Ticket
from server.errors import Invalid, NotFound
from server.i18n import _
from server.policy import Actor, ensure
from server.prepared import prepared
from server.settings import get_settings

RATINGS = ("good", "bad")
WINDOW = timedelta(days=7)
REMINDER_AFTER = timedelta(days=3)
TOKEN_MAX_AGE_SECONDS = 30 * 24 * 3600
MAX_COMMENT_CHARS = 2000
LINK_PURPOSE = "csat"
REMIND_KIND = "desk.csat_remind"

_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("kizuna_csat_quiet", default=False)


class CsatUnavailable(Exception):
    """The rating cannot be given now: `reason` is "not_solved" (409) or "closed" (410, the
    week after the solve is over)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CsatLinkError(Exception):
    """A refused link: `reason` is "invalid" (forged or damaged), "expired" or "other_ticket"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Record the question without mailing it (demo data, imports)."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


# Links ---------------------------------------------------------------------------------------


def make_token(ticket_id: int, requester_id: int) -> str:
    return links.sign(LINK_PURPOSE, {"t": ticket_id, "u": requester_id})


def link(ticket_id: int, requester_id: int, rating: str = "") -> str:
    query = {"token": make_token(ticket_id, requester_id), **({"rating": rating} if rating else {})}
    return f"{get_settings().base_url}/support/csat/{ticket_id}?{urlencode(query)}"


def read_token(ticket_id: int, token: str) -> int:
    """The requester a link was made for; CsatLinkError when it is not a valid link for this ticket."""
    try:
        data = links.unsign(LINK_PURPOSE, token, max_age=TOKEN_MAX_AGE_SECONDS)
        linked_ticket, requester = int(data["t"]), int(data["u"])
    except links.LinkError as exc:
        raise CsatLinkError("expired" if exc.reason == "expired" else "invalid") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise CsatLinkError("invalid") from exc
    if linked_ticket != ticket_id:
        raise CsatLinkError("other_ticket")
    return requester


def link_error_message(reason: str) -> str:
    if reason == "expired":
        return _("This rating link has expired. Sign in and rate the request from its page instead.")
    if reason == "other_ticket":
        return _("This rating link belongs to another request. Use the link from that request's email.")
    return _("This rating link is not valid. Check that you opened the whole link from the email.")


def unavailable_message(reason: str) -> str:
    if reason == "closed":
        return _(
            "Ratings can be given or changed for %(days)s days after a request is solved; that time is over.",
            days=WINDOW.days,
        )
    return _("This request is not solved at the moment, so it cannot be rated yet.")


# Asking ---------------------------------------------------------------------------------------


async def ticket_solved(ticket_id: int) -> None:
    """Called by the desk's services in the transaction that solves a ticket: (re)open the
    question for a week from now, mail it to the requester and schedule one reminder."""
    ticket = await queries.get_ticket(ticket_id)
    if ticket is None or ticket["merged_into"] is not None:
        return
    moment = ticket["solved_at"] or utcnow()
    existing = await CsatRating.select(CsatRating.id).where(CsatRating.ticket == ticket_id).first()
    values = {
        CsatRating.solved_at: moment,
        CsatRating.asked_at: utcnow(),
        CsatRating.agent: ticket["assignee"],
        CsatRating.team: ticket["team"],
        CsatRating.reminded_at: None,
    }
    if existing:
        await CsatRating.update(values).where(CsatRating.id == existing["id"])
    else:
        await CsatRating.insert(
            CsatRating(ticket=ticket_id, requester=ticket["requester"], **{c._meta.name: v for c, v in values.items()})
        )
    if _quiet.get():
        return
    await _mail(ticket, "desk_csat_ask", f"desk.csat.ask:{ticket_id}:{_epoch(moment)}")
    await jobs.enqueue(
        REMIND_KIND,
        {"ticket_id": ticket_id, "solved": _epoch(moment)},
        key=f"{REMIND_KIND}:{ticket_id}:{_epoch(moment)}",
        delay=REMINDER_AFTER,
    )


async def _mail(ticket: dict[str, Any], template: str, key: str) -> None:
    """The question, to the requester only, in their language: subject and links, nothing else."""
    ticket_id, requester = ticket["id"], ticket["requester"]
    await outbound.queue_ticket_mail(
        ticket,
        [outbound.Recipient(ticket["requester_email"], ticket["requester_locale"] or "en", ticket["requester_name"])],
        template,
        key,
        {
            "ticket_id": ticket_id,
            "subject": ticket["subject"],
            "good_url": link(ticket_id, requester, "good"),
            "bad_url": link(ticket_id, requester, "bad"),
            "days": WINDOW.days,
        },
    )


@jobs.handler(REMIND_KIND)
async def _remind_job(job: jobs.ClaimedJob) -> None:
    await send_reminder(int(job.payload["ticket_id"]), int(job.payload["solved"]))


async def send_reminder(ticket_id: int, solved_epoch: int, *, now: datetime | None = None) -> bool:
    """Remind once, if the question of that solve is still open and unanswered."""
    moment = now or utcnow()
    async with atomic():
        row = await CsatRating.select().where(CsatRating.ticket == ticket_id).first()
        ticket = await queries.get_ticket(ticket_id)
        if row is None or ticket is None or row["rating"] or row["reminded_at"] is not None:
            return False
        if _epoch(row["solved_at"]) != solved_epoch or ticket["status"] not in ("solved", "closed"):
            return False
        if moment > row["solved_at"] + WINDOW:
            return False
        await CsatRating.update({CsatRating.reminded_at: moment}).where(CsatRating.id == row["id"])
        await _mail(ticket, "desk_csat_reminder", f"desk.csat.remind:{ticket_id}:{solved_epoch}")
    return True


# Rating ---------------------------------------------------------------------------------------


def _clean(rating: str, comment: str) -> tuple[str, str]:
    errors: dict[str, str] = {}
    if rating not in RATINGS:
        errors["rating"] = _("Choose good or bad.")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARS:
        errors["comment"] = _("Keep the comment under %(n)s characters.", n=MAX_COMMENT_CHARS)
    if errors:
        raise Invalid(errors)
    return rating, comment


@prepared
def _current(ticket_id: Any) -> Any:
    return (
        CsatRating.select(
            *CsatRating.all_columns(),
            CsatRating.agent.display_name.as_alias("agent_name"),
            CsatRating.team.name.as_alias("team_name"),
            CsatRating.ticket.status.as_alias("ticket_status"),
        )
        .where(CsatRating.ticket == ticket_id)
        .limit(1)
    )


async def current(ticket_id: int) -> dict[str, Any] | None:
    """The question of a ticket: rating, comment, when it closes and whether it is still open."""
    row = await _current.first(ticket_id)
    if row is None:
        return None
    status = row.pop("ticket_status")
    row["closes_at"] = row["solved_at"] + WINDOW
    row["open"] = status in ("solved", "closed") and utcnow() <= row["closes_at"]
    return row


async def record(ticket_id: int, requester_id: int, rating: str, comment: str, *, now: datetime | None = None) -> None:
    """Store (or change) the requester's rating. CsatUnavailable when the ticket is not solved
    or the week is over; Invalid on bad input."""
    rating, comment = _clean(rating, comment)
    moment = now or utcnow()
    async with atomic():
        row = await CsatRating.select().where(CsatRating.ticket == ticket_id).first()
        ticket = await Ticket.select(Ticket.status, Ticket.requester).where(Ticket.id == ticket_id).first()
        if ticket is None or ticket["requester"] != requester_id:
            raise CsatLinkError("invalid")
        if row is None or ticket["status"] not in ("solved", "closed"):
            raise CsatUnavailable("not_solved")
        if moment > row["solved_at"] + WINDOW:
            raise CsatUnavailable("closed")
        await CsatRating.update(
            {CsatRating.rating: rating, CsatRating.comment: comment, CsatRating.rated_at: moment}
        ).where(CsatRating.id == row["id"])


async def rate_as(actor: Actor, ticket_id: int, rating: str, comment: str) -> None:
    """The portal: the signed-in requester rates their own ticket."""
    ticket = await queries.access_ticket(actor, ticket_id)
    ensure(policy.can_rate_ticket(actor, ticket["requester"]))
    assert actor.user_id is not None
    await record(ticket_id, actor.user_id, rating, comment)


async def requester_of(ticket_id: int) -> dict[str, Any]:
    row = (
        await Ticket.select(
            Ticket.id,
            Ticket.subject,
            Ticket.requester,
            Ticket.requester.locale.as_alias("locale"),
            Ticket.requester.display_name.as_alias("name"),
        )
        .where(Ticket.id == ticket_id)
        .first()
    )
    if row is None:
        raise NotFound
    return row


# Reports ------------------------------------------------------------------------------------


def _score(good: int, bad: int) -> int | None:
    return round(100 * good / (good + bad)) if good + bad else None


async def report(start: datetime, end: datetime) -> dict[str, Any]:
    """Ratings given in [start, end): totals, per agent, per group, and the latest comments."""
    rows = await CsatRating.select(
        CsatRating.ticket,
        CsatRating.rating,
        CsatRating.comment,
        CsatRating.rated_at,
        CsatRating.agent,
        CsatRating.team,
        CsatRating.ticket.subject.as_alias("subject"),
    ).where((CsatRating.rating != "") & (CsatRating.rated_at >= start) & (CsatRating.rated_at < end))
    asked = await CsatRating.count().where((CsatRating.solved_at >= start) & (CsatRating.solved_at < end))
    agent_ids = sorted({r["agent"] for r in rows if r["agent"]})
    team_ids = sorted({r["team"] for r in rows if r["team"]})
    agents = (
        {
            r["id"]: r["display_name"]
            for r in await User.select(User.id, User.display_name).where(User.id.is_in(agent_ids))
        }
        if agent_ids
        else {}
    )
    teams = (
        {
            r["id"]: r["name"]
            for r in await DeskGroup.select(DeskGroup.id, DeskGroup.name).where(DeskGroup.id.is_in(team_ids))
        }
        if team_ids
        else {}
    )

    def grouped(key: str, names: dict[int, str]) -> list[dict[str, Any]]:
        counts: dict[int | None, list[int]] = {}
        for row in rows:
            pair = counts.setdefault(row[key], [0, 0])
            pair[0 if row["rating"] == "good" else 1] += 1
        out = [
            {"name": names.get(k, "") if k else "", "good": g, "bad": b, "score": _score(g, b)}
            for k, (g, b) in counts.items()
        ]
        return sorted(out, key=lambda r: (-(r["good"] + r["bad"]), r["name"]))

    good = sum(1 for r in rows if r["rating"] == "good")
    bad = len(rows) - good
    comments = sorted((r for r in rows if r["comment"]), key=lambda r: r["rated_at"], reverse=True)[:50]
    for row in comments:
        row["agent_name"] = agents.get(row["agent"], "")
    return {
        "good": good,
        "bad": bad,
        "score": _score(good, bad),
        "asked": asked,
        "response_rate": round(100 * len(rows) / asked) if asked else None,
        "agents": grouped("agent", agents),
        "teams": grouped("team", teams),
        "comments": comments,
    }

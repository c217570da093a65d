"""CSAT pages: the mailed link (no sign-in; GET shows the form, POST records), the portal's
rating form, and the agents' report per agent and per group."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from litestar import Request, Router, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from server import i18n, policy, ratelimit
from server.accounts.auth import CurrentActor
from server.desk import csat
from server.desk.support_routes import _ticket_context as portal_ticket_context
from server.errors import Invalid
from server.i18n import _
from server.policy import ensure, ensure_signed_in
from server.web.flash import flash
from server.web.forms import form_data
from server.web.render import page, redirect

RATE_LIMIT = ratelimit.Limit("desk_csat", attempts=30, window_seconds=3600)
REPORT_DAYS = 30


def _error_page(request: Request[Any, Any, Any], message: str, status_code: int) -> Template:
    return page(request, "support/csat_error.html", {"message": message}, status_code=status_code)


async def _link_context(request: Request[Any, Any, Any], ticket_id: int, token: str) -> dict[str, Any] | Template:
    """The ticket and requester of a valid link, rendered from here on in the requester's
    language; an error page otherwise (400 bad link, 409 not solved, 410 too late)."""
    try:
        requester = csat.read_token(ticket_id, token)
    except csat.CsatLinkError as exc:
        return _error_page(request, csat.link_error_message(exc.reason), 400)
    ticket = await csat.requester_of(ticket_id)
    if ticket["requester"] != requester:
        return _error_page(request, csat.link_error_message("invalid"), 400)
    i18n.set_locale(ticket["locale"] if ticket["locale"] in i18n.LOCALES else "en")  # reset by the middleware
    current = await csat.current(ticket_id)
    if current is None or not current["open"]:
        reason = "closed" if current is not None and current["solved_at"] + csat.WINDOW < datetime.now(UTC) else ""
        if reason == "closed":
            return _error_page(request, csat.unavailable_message("closed"), 410)
        return _error_page(request, csat.unavailable_message("not_solved"), 409)
    return {"ticket": ticket, "current": current, "token": token}


@get("/support/csat/{ticket_id:int}")
async def link_form(
    request: Request[Any, Any, Any], ticket_id: FromPath[int], token: FromQuery[str] = "", rating: FromQuery[str] = ""
) -> Template:
    """Opening the mailed link shows the form with the chosen answer ticked; it records nothing."""
    context = await _link_context(request, ticket_id, token[:1000])
    if isinstance(context, Template):
        return context
    current = context["current"]
    chosen = rating if rating in csat.RATINGS else current["rating"]
    values = {"rating": chosen, "comment": current["comment"]}
    return page(request, "support/csat.html", {**context, "values": values})


@post("/support/csat/{ticket_id:int}")
async def link_submit(request: Request[Any, Any, Any], ticket_id: FromPath[int]) -> Template:
    values = await form_data(request)
    await ratelimit.hit(RATE_LIMIT, f"csat:{ticket_id}")
    context = await _link_context(request, ticket_id, values.get("token", "")[:1000])
    if isinstance(context, Template):
        return context
    try:
        await csat.record(
            ticket_id, context["ticket"]["requester"], values.get("rating", ""), values.get("comment", "")
        )
    except Invalid as exc:
        return page(request, "support/csat.html", {**context, "values": values, "errors": exc.errors}, status_code=422)
    except csat.CsatUnavailable as exc:
        return _error_page(request, csat.unavailable_message(exc.reason), 410 if exc.reason == "closed" else 409)
    return page(request, "support/csat_done.html", {**context, "rating": values.get("rating")})


@post("/support/tickets/{ticket_id:int}/csat")
async def portal_rate(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]
) -> Template | Redirect:
    ensure_signed_in(actor)
    values = await form_data(request)
    try:
        await csat.rate_as(actor, ticket_id, values.get("rating", ""), values.get("comment", ""))
    except Invalid as exc:
        context = await portal_ticket_context(actor, ticket_id)
        context.update(errors=exc.errors, values=values)
        return page(request, "support/ticket.html", context, status_code=422)
    except csat.CsatUnavailable as exc:
        context = await portal_ticket_context(actor, ticket_id)
        context.update(errors={"rating": csat.unavailable_message(exc.reason)}, values=values)
        return page(request, "support/ticket.html", context, status_code=410 if exc.reason == "closed" else 409)
    except csat.CsatLinkError:
        return _error_page(request, csat.link_error_message("invalid"), 400)
    flash(request, _("Thank you for your rating."), "success")
    return redirect(f"/support/tickets/{ticket_id}")


def _day(value: str, default: date, key: str, errors: dict[str, str]) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[key] = _("Enter a date as YYYY-MM-DD.")
        return default


@get("/desk/reports/csat")
async def report(
    request: Request[Any, Any, Any], actor: CurrentActor, start: FromQuery[str] = "", end: FromQuery[str] = ""
) -> Template:
    """Ratings given between two dates (inclusive), in the agent's time zone."""
    ensure_signed_in(actor)
    ensure(policy.can_see_csat_reports(actor))
    zone = i18n_zone(actor.time_zone)
    today = datetime.now(zone).date()
    errors: dict[str, str] = {}
    first = _day(start[:10], today - timedelta(days=REPORT_DAYS - 1), "start", errors)
    last = _day(end[:10], today, "end", errors)
    if not errors and last < first:
        errors["end"] = _("The end date is before the start date.")
    if not errors and (last - first).days > 366 * 3:
        errors["end"] = _("Choose at most three years.")
    values = {"start": start or first.isoformat(), "end": end or last.isoformat()}
    data = None
    if not errors:
        since = datetime.combine(first, time(), zone)
        until = datetime.combine(last + timedelta(days=1), time(), zone)
        data = await csat.report(since, until)
    return page(
        request,
        "desk/csat_report.html",
        {"report": data, "values": values, "errors": errors},
        status_code=422 if errors else 200,
    )


def i18n_zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


router = Router(path="/", include_in_schema=False, route_handlers=[link_form, link_submit, portal_rate, report])

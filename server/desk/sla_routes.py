"""Admin pages for SLA policies and business-hours calendars, under /admin/desk/sla."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from server import policy
from server.accounts.auth import CurrentActor
from server.desk import fields, sla
from server.desk.businesshours import WEEKDAYS, format_day, time_zone_names
from server.desk.sla_tables import SlaCalendar, SlaPolicy
from server.desk.tables import PRIORITIES
from server.errors import Invalid, NotFound
from server.i18n import _
from server.policy import Actor, ensure, ensure_signed_in
from server.web.flash import flash
from server.web.forms import checked, form_data
from server.web.render import page, redirect


def _admin(actor: Actor) -> None:
    ensure_signed_in(actor)
    ensure(policy.can_administer_desk(actor))


def weekday_names() -> dict[str, str]:
    return {
        "mon": _("Monday"),
        "tue": _("Tuesday"),
        "wed": _("Wednesday"),
        "thu": _("Thursday"),
        "fri": _("Friday"),
        "sat": _("Saturday"),
        "sun": _("Sunday"),
    }


def _hours_text(hours: dict[str, list[list[int]]]) -> str:
    return "; ".join(f"{weekday_names()[d]} {format_day(hours[d])}" for d in WEEKDAYS if hours.get(d))


@get("/admin/desk/sla")
async def overview(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin(actor)
    calendars = await sla.calendars()
    for calendar in calendars:
        calendar["summary"] = _hours_text(calendar["hours"])
    return page(
        request,
        "desk/admin/sla.html",
        {"policies": await sla.policies(), "calendars": calendars, "priorities": fields.priority_labels()},
    )


# Calendars ----------------------------------------------------------------------------------


async def _calendar_form(
    request: Request[Any, Any, Any],
    calendar_id: int | None,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
) -> Template:
    context = {
        "calendar_id": calendar_id,
        "values": values,
        "errors": errors or {},
        "weekdays": weekday_names(),
        "zones": time_zone_names(),
    }
    return page(request, "desk/admin/sla_calendar_form.html", context, status_code=422 if errors else 200)


@get("/admin/desk/sla/calendars/new")
async def new_calendar(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin(actor)
    office = "09:00-17:00"
    values = {"time_zone": actor.time_zone or "UTC", **{d: office for d in WEEKDAYS[:5]}}
    return await _calendar_form(request, None, values)


@get("/admin/desk/sla/calendars/{calendar_id:int}")
async def edit_calendar(request: Request[Any, Any, Any], actor: CurrentActor, calendar_id: FromPath[int]) -> Template:
    _admin(actor)
    row = await SlaCalendar.select().where(SlaCalendar.id == calendar_id).output(load_json=True).first()
    if row is None:
        raise NotFound
    values = {
        "name": row["name"],
        "time_zone": row["time_zone"],
        "holidays": "\n".join(row["holidays"]),
        **{d: format_day(row["hours"].get(d, [])) for d in WEEKDAYS},
    }
    return await _calendar_form(request, calendar_id, values)


async def _save_calendar(request: Request[Any, Any, Any], actor: Actor, calendar_id: int | None) -> Template | Redirect:
    values = await form_data(request)
    try:
        await sla.save_calendar(actor, calendar_id, values)
    except Invalid as exc:
        return await _calendar_form(request, calendar_id, values, exc.errors)
    flash(request, _("Calendar saved."), "success")
    return redirect("/admin/desk/sla")


@post("/admin/desk/sla/calendars/new")
async def create_calendar(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    _admin(actor)
    return await _save_calendar(request, actor, None)


@post("/admin/desk/sla/calendars/{calendar_id:int}")
async def update_calendar(
    request: Request[Any, Any, Any], actor: CurrentActor, calendar_id: FromPath[int]
) -> Template | Redirect:
    _admin(actor)
    return await _save_calendar(request, actor, calendar_id)


@post("/admin/desk/sla/calendars/{calendar_id:int}/delete")
async def delete_calendar(
    request: Request[Any, Any, Any], actor: CurrentActor, calendar_id: FromPath[int]
) -> Template | Redirect:
    _admin(actor)
    try:
        await sla.delete_calendar(actor, calendar_id)
    except Invalid as exc:
        row = await SlaCalendar.select().where(SlaCalendar.id == calendar_id).output(load_json=True).first()
        assert row is not None
        values = {
            "name": row["name"],
            "time_zone": row["time_zone"],
            "holidays": "\n".join(row["holidays"]),
            **{d: format_day(row["hours"].get(d, [])) for d in WEEKDAYS},
        }
        response = await _calendar_form(request, calendar_id, values, exc.errors)
        response.status_code = 409
        return response
    flash(request, _("Calendar deleted."), "success")
    return redirect("/admin/desk/sla")


# Policies -----------------------------------------------------------------------------------


async def _policy_form(
    request: Request[Any, Any, Any], policy_id: int | None, values: dict[str, Any], errors: dict[str, str] | None = None
) -> Template:
    context = {
        "policy_id": policy_id,
        "values": values,
        "errors": errors or {},
        "priorities": fields.priority_labels(),
        "priority_choices": PRIORITIES,
        "calendars": await sla.calendars(),
    }
    return page(request, "desk/admin/sla_policy_form.html", context, status_code=422 if errors else 200)


@get("/admin/desk/sla/policies/new")
async def new_policy(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin(actor)
    return await _policy_form(request, None, {"priority": "normal", "notify_lead": True})


@get("/admin/desk/sla/policies/{policy_id:int}")
async def edit_policy(request: Request[Any, Any, Any], actor: CurrentActor, policy_id: FromPath[int]) -> Template:
    _admin(actor)
    row = await SlaPolicy.select().where(SlaPolicy.id == policy_id).first()
    if row is None:
        raise NotFound
    values = {k: ("" if v is None else v) for k, v in row.items()}
    return await _policy_form(request, policy_id, values)


async def _save_policy(request: Request[Any, Any, Any], actor: Actor, policy_id: int | None) -> Template | Redirect:
    values: dict[str, Any] = dict(await form_data(request))
    values["notify_lead"] = checked(values, "notify_lead")
    values["reassign_to_lead"] = checked(values, "reassign_to_lead")
    try:
        await sla.save_policy(actor, policy_id, values)
    except Invalid as exc:
        return await _policy_form(request, policy_id, values, exc.errors)
    flash(request, _("SLA policy saved."), "success")
    return redirect("/admin/desk/sla")


@post("/admin/desk/sla/policies/new")
async def create_policy(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    _admin(actor)
    return await _save_policy(request, actor, None)


@post("/admin/desk/sla/policies/{policy_id:int}")
async def update_policy(
    request: Request[Any, Any, Any], actor: CurrentActor, policy_id: FromPath[int]
) -> Template | Redirect:
    _admin(actor)
    return await _save_policy(request, actor, policy_id)


@post("/admin/desk/sla/policies/{policy_id:int}/delete")
async def delete_policy(request: Request[Any, Any, Any], actor: CurrentActor, policy_id: FromPath[int]) -> Redirect:
    _admin(actor)
    await sla.delete_policy(actor, policy_id)
    flash(request, _("SLA policy deleted."), "success")
    return redirect("/admin/desk/sla")


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        overview,
        new_calendar,
        edit_calendar,
        create_calendar,
        update_calendar,
        delete_calendar,
        new_policy,
        edit_policy,
        create_policy,
        update_policy,
        delete_policy,
    ],
)

"""Admin pages for the desk: groups (teams), custom ticket fields and macros."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from server import policy
from server.accounts.auth import CurrentActor
from server.desk import fields, placeholders, queries, services
from server.desk.tables import PRIORITIES, STATUSES, TICKET_TYPES, DeskField, DeskGroupMember, DeskMacro
from server.errors import Invalid, NotFound
from server.i18n import _, get_locale
from server.policy import Actor, ensure, ensure_signed_in
from server.web.flash import flash
from server.web.forms import checked, form_data, form_list
from server.web.render import page, redirect


def _admin(actor: Actor) -> None:
    ensure_signed_in(actor)
    ensure(policy.can_administer_desk(actor))


def _id(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        raise Invalid({"id": _("Choose a value from the list.")}) from None


@get("/admin/desk")
async def overview(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin(actor)
    return page(
        request,
        "desk/admin/overview.html",
        {
            "groups": await queries.groups(),
            "custom_fields": await queries.field_definitions(active_only=False),
            "macros": await queries.macros(active_only=False),
            "field_types": fields.field_type_labels(),
            "field_label": fields.field_label,
            "locale": get_locale(),
        },
    )


# Groups -------------------------------------------------------------------------------------


async def _group_form(
    request: Request[Any, Any, Any], group: dict[str, Any] | None, values: dict[str, Any], **extra: Any
) -> Template:
    context = {"group": group, "values": values, "agents": await queries.agents(), **extra}
    return page(request, "desk/admin/group_form.html", context, status_code=422 if extra.get("errors") else 200)


@get("/admin/desk/groups/new")
async def new_group(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin(actor)
    return await _group_form(request, None, {"members": []})


@get("/admin/desk/groups/{group_id:int}")
async def edit_group(request: Request[Any, Any, Any], actor: CurrentActor, group_id: FromPath[int]) -> Template:
    _admin(actor)
    group = next((g for g in await queries.groups() if g["id"] == group_id), None)
    if group is None:
        raise NotFound
    members = await DeskGroupMember.select(DeskGroupMember.user).where(DeskGroupMember.team == group_id)
    values = {**group, "lead": group["lead"] or "", "members": [m["user"] for m in members]}
    return await _group_form(request, group, values)


async def _save_group(request: Request[Any, Any, Any], actor: Actor, group_id: int | None) -> Template | Redirect:
    values: dict[str, Any] = dict(await form_data(request))
    try:
        members = [int(v) for v in await form_list(request, "members") if v.isdigit()]
        values["members"] = members
        await services.save_group(
            actor, group_id, values.get("name", ""), values.get("description", ""), _id(values.get("lead")), members
        )
    except Invalid as exc:
        group = {"id": group_id} if group_id else None
        return await _group_form(request, group, values, errors=exc.errors)
    flash(request, _("Group saved."), "success")
    queries.clear_reference_cache()  # the desk pages show the change at once
    return redirect("/admin/desk")


@post("/admin/desk/groups/new")
async def create_group(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    _admin(actor)
    return await _save_group(request, actor, None)


@post("/admin/desk/groups/{group_id:int}")
async def update_group(
    request: Request[Any, Any, Any], actor: CurrentActor, group_id: FromPath[int]
) -> Template | Redirect:
    _admin(actor)
    return await _save_group(request, actor, group_id)


@post("/admin/desk/groups/{group_id:int}/delete")
async def delete_group(request: Request[Any, Any, Any], actor: CurrentActor, group_id: FromPath[int]) -> Redirect:
    _admin(actor)
    await services.delete_group(actor, group_id)
    flash(request, _("Group deleted."), "success")
    queries.clear_reference_cache()  # the desk pages show the change at once
    return redirect("/admin/desk")


# Custom fields ------------------------------------------------------------------------------


async def _field_form(
    request: Request[Any, Any, Any], field_id: int | None, values: dict[str, Any], **extra: Any
) -> Template:
    context = {"field_id": field_id, "values": values, "field_types": fields.field_type_labels(), **extra}
    return page(request, "desk/admin/field_form.html", context, status_code=422 if extra.get("errors") else 200)


@get("/admin/desk/fields/new")
async def new_field(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin(actor)
    return await _field_form(request, None, {"active": True, "field_type": "text"})


@get("/admin/desk/fields/{field_id:int}")
async def edit_field(request: Request[Any, Any, Any], actor: CurrentActor, field_id: FromPath[int]) -> Template:
    _admin(actor)
    row = await DeskField.select().where(DeskField.id == field_id).output(load_json=True).first()
    if row is None:
        raise NotFound
    return await _field_form(request, field_id, {**row, "options": "\n".join(row["options"])})


async def _save_field(request: Request[Any, Any, Any], actor: Actor, field_id: int | None) -> Template | Redirect:
    values: dict[str, Any] = dict(await form_data(request))
    data = {
        **values,
        "options": values.get("options", "").splitlines(),
        "customer_editable": checked(values, "customer_editable"),
        "active": checked(values, "active"),
    }
    try:
        data["position"] = int(values.get("position") or 0)
        await services.save_field(actor, field_id, data)
    except ValueError:
        return await _field_form(request, field_id, values, errors={"position": _("Enter a number.")})
    except Invalid as exc:
        values.update(customer_editable=data["customer_editable"], active=data["active"])
        return await _field_form(request, field_id, values, errors=exc.errors)
    flash(request, _("Field saved."), "success")
    queries.clear_reference_cache()  # the desk pages show the change at once
    return redirect("/admin/desk")


@post("/admin/desk/fields/new")
async def create_field(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    _admin(actor)
    return await _save_field(request, actor, None)


@post("/admin/desk/fields/{field_id:int}")
async def update_field(
    request: Request[Any, Any, Any], actor: CurrentActor, field_id: FromPath[int]
) -> Template | Redirect:
    _admin(actor)
    return await _save_field(request, actor, field_id)


# Macros -------------------------------------------------------------------------------------


async def _macro_form(
    request: Request[Any, Any, Any], macro_id: int | None, values: dict[str, Any], **extra: Any
) -> Template:
    context = {
        "macro_id": macro_id,
        "values": values,
        "groups": await queries.groups(),
        "agents": await queries.agents(),
        "statuses": fields.status_labels(),
        "priorities": fields.priority_labels(),
        "types": fields.type_labels(),
        "status_choices": STATUSES,
        "priority_choices": PRIORITIES,
        "type_choices": TICKET_TYPES,
        "placeholder_names": placeholders.NAMES,
        **extra,
    }
    return page(request, "desk/admin/macro_form.html", context, status_code=422 if extra.get("errors") else 200)


@get("/admin/desk/macros/new")
async def new_macro(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _admin(actor)
    return await _macro_form(request, None, {"active": True})


@get("/admin/desk/macros/{macro_id:int}")
async def edit_macro(request: Request[Any, Any, Any], actor: CurrentActor, macro_id: FromPath[int]) -> Template:
    _admin(actor)
    row = await DeskMacro.select().where(DeskMacro.id == macro_id).output(load_json=True).first()
    if row is None:
        raise NotFound
    actions = row["actions"] or {}
    values = {
        **row,
        **{k: actions.get(k, "") for k in ("status", "priority", "ticket_type", "team", "assignee")},
        "add_tags": ", ".join(actions.get("add_tags", [])),
        "remove_tags": ", ".join(actions.get("remove_tags", [])),
    }
    return await _macro_form(request, macro_id, values)


async def _save_macro(request: Request[Any, Any, Any], actor: Actor, macro_id: int | None) -> Template | Redirect:
    values: dict[str, Any] = dict(await form_data(request))
    try:
        data = {
            "name": values.get("name", ""),
            "body_md": values.get("body_md", ""),
            "internal": checked(values, "internal"),
            "active": checked(values, "active"),
            "position": int(values.get("position") or 0),
            "actions": {
                k: values.get(k, "")
                for k in ("status", "priority", "ticket_type", "team", "assignee", "add_tags", "remove_tags")
            },
        }
        await services.save_macro(actor, macro_id, data)
    except ValueError:
        return await _macro_form(request, macro_id, values, errors={"position": _("Enter a number.")})
    except Invalid as exc:
        values.update(internal=checked(values, "internal"), active=checked(values, "active"))
        return await _macro_form(request, macro_id, values, errors=exc.errors)
    flash(request, _("Macro saved."), "success")
    queries.clear_reference_cache()  # the desk pages show the change at once
    return redirect("/admin/desk")


@post("/admin/desk/macros/new")
async def create_macro(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    _admin(actor)
    return await _save_macro(request, actor, None)


@post("/admin/desk/macros/{macro_id:int}")
async def update_macro(
    request: Request[Any, Any, Any], actor: CurrentActor, macro_id: FromPath[int]
) -> Template | Redirect:
    _admin(actor)
    return await _save_macro(request, actor, macro_id)


@post("/admin/desk/macros/{macro_id:int}/delete")
async def delete_macro(request: Request[Any, Any, Any], actor: CurrentActor, macro_id: FromPath[int]) -> Redirect:
    _admin(actor)
    await services.delete_macro(actor, macro_id)
    flash(request, _("Macro deleted."), "success")
    queries.clear_reference_cache()  # the desk pages show the change at once
    return redirect("/admin/desk")


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        overview,
        new_group,
        edit_group,
        create_group,
        update_group,
        delete_group,
        new_field,
        edit_field,
        create_field,
        update_field,
        new_macro,
        edit_macro,
        create_macro,
        update_macro,
        delete_macro,
    ],
)

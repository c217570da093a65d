"""The agents' workspace pages: filtered lists and saved views, bulk actions, the live view
counts, and the ticket page's presence heartbeat."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from server import policy
from server.accounts.auth import CurrentActor
from server.desk import bulk, fields, live, queries, saved_views
from server.desk.routes import sort_names, view_names
from server.desk.saved_views import ViewSpec
from server.desk.tables import CHANNELS, PRIORITIES, STATUSES
from server.errors import Invalid
from server.i18n import _
from server.policy import Actor, ensure, ensure_signed_in
from server.web.flash import flash
from server.web.forms import form_data, form_list
from server.web.render import page, redirect, safe_next


def _agent(actor: Actor) -> None:
    ensure_signed_in(actor)
    ensure(policy.can_use_desk(actor))


async def nav_context(actor: Actor) -> dict[str, Any]:
    """What templates/desk/_views_nav.html needs: the built-in views and the saved ones, counted."""
    async with queries.page_reads():
        return {
            "counts": await queries.view_counts(actor),
            "views": view_names(),
            "saved_views": await saved_views.nav_entries(actor),
        }


def _partial(request: Request[Any, Any, Any]) -> bool:
    return bool(getattr(request, "htmx", False)) and request.headers.get("hx-target") == "desk-list"


async def _list_page(
    request: Request[Any, Any, Any],
    actor: Actor,
    spec: ViewSpec,
    *,
    saved: dict[str, Any] | None = None,
    editing: dict[str, Any] | None = None,
    after: str = "",
    status_code: int = 200,
    **extra: Any,
) -> Template:
    rows, next_cursor = await saved_views.list_spec(actor, spec, after[:40])
    base = f"/desk/views/{saved['id']}" if saved else "/desk/list"
    query = spec.query()
    context: dict[str, Any] = {
        "spec": spec,
        "spec_query": query,
        "saved": saved,
        "editing": editing,
        "tickets": rows,
        "columns": spec.columns,
        "column_labels": saved_views.column_labels(),
        "all_columns": saved_views.COLUMNS,
        "next_url": f"{base}?{query}&after={next_cursor}" if next_cursor else "",
        "list_url": f"{base}?{query}" + (f"&after={after}" if after else ""),
        "sorts": sort_names(),
        "statuses": fields.status_labels(),
        "priorities": fields.priority_labels(),
        "channels": fields.channel_labels(),
        "status_choices": STATUSES,
        "priority_choices": PRIORITIES,
        "channel_choices": CHANNELS,
        "agents": await queries.cached_agents(),
        "groups": await queries.cached_groups(),
        "my_groups": set(await queries.group_ids_of(actor.user_id)),
        **await nav_context(actor),
        **await bulk.form_context(),
        **extra,
    }
    if saved:
        context["saved_view"] = saved["id"]
    template = "desk/_list.html" if _partial(request) else "desk/list.html"
    return page(request, template, context, status_code=status_code)


def _params(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    return {key: request.query_params.getall(key) for key in request.query_params}


@get("/desk/list")
async def filtered_list(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    """Tickets by the filters, sort and columns in the query string; "save as view" below."""
    _agent(actor)
    params = _params(request)
    errors: dict[str, str] = {}
    spec = saved_views.parse_spec(params, errors)
    editing = None
    edit = (params.get("edit") or [""])[-1]
    if edit.isdigit() and len(edit) < 12:
        editing = await saved_views.access_view(actor, int(edit))
        if editing["owner"] != actor.user_id:
            editing = None
    after = (params.get("after") or [""])[-1]
    return await _list_page(request, actor, spec, editing=editing, after=after, errors=errors)


@get("/desk/views/{view_id:int}")
async def saved_view(request: Request[Any, Any, Any], actor: CurrentActor, view_id: FromPath[int]) -> Template:
    _agent(actor)
    view = await saved_views.access_view(actor, view_id)
    after = request.query_params.get("after", "")
    return await _list_page(request, actor, saved_views.spec_from_row(view), saved=view, after=after)


def _team(values: dict[str, str]) -> int | None:
    raw = values.get("team", "")
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise Invalid({"team": _("Share the view with one of your own groups.")})
    return int(raw)


async def _save(request: Request[Any, Any, Any], actor: Actor, view_id: int | None) -> Template | Redirect:
    values = await form_data(request)
    spec = saved_views.spec_from_query(values.get("query", ""))
    try:
        saved_id = await saved_views.save_view(actor, view_id, values.get("name", ""), _team(values), spec)
    except Invalid as exc:
        editing = await saved_views.access_view(actor, view_id) if view_id is not None else None
        return await _list_page(
            request, actor, spec, editing=editing, status_code=422, errors=exc.errors, values=values
        )
    flash(request, _("View saved."), "success")
    return redirect(f"/desk/views/{saved_id}")


@post("/desk/views")
async def create_view(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    _agent(actor)
    return await _save(request, actor, None)


@post("/desk/views/{view_id:int}")
async def update_view(
    request: Request[Any, Any, Any], actor: CurrentActor, view_id: FromPath[int]
) -> Template | Redirect:
    _agent(actor)
    return await _save(request, actor, view_id)


@post("/desk/views/{view_id:int}/delete")
async def delete_view(request: Request[Any, Any, Any], actor: CurrentActor, view_id: FromPath[int]) -> Redirect:
    _agent(actor)
    await saved_views.delete_view(actor, view_id)
    flash(request, _("View deleted."), "success")
    return redirect("/desk")


@get("/desk/nav")
async def desk_nav(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    """The views with fresh counts (desk_live.js refetches it when the queue changes)."""
    _agent(actor)
    context = await nav_context(actor)
    view = request.query_params.get("view", "")
    saved = request.query_params.get("saved", "")
    if view in context["views"]:
        context["view"] = view
    if saved.isdigit():
        context["saved_view"] = int(saved)
    return page(request, "desk/_views_nav.html", context)


@post("/desk/bulk")
async def bulk_action(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    """One action on the selected tickets; shows what happened to each."""
    _agent(actor)
    values = await form_data(request)
    action = values.get("action", "")
    value = values.get(f"value_{action}", "") if action in bulk.ACTIONS else ""
    back = safe_next(values.get("next"), "/desk")
    try:
        selection = bulk.parse_selection(await form_list(request, "t"))
        results = await bulk.bulk_apply(actor, selection, action, value)
    except Invalid as exc:
        context = {"errors": exc.errors, "results": [], "back": back, **await nav_context(actor)}
        return page(request, "desk/bulk.html", context, status_code=422)
    subjects = {}
    if results:
        from server.desk.tables import Ticket

        rows = await Ticket.select(Ticket.id, Ticket.subject).where(Ticket.id.is_in([r.ticket_id for r in results]))
        subjects = {r["id"]: r["subject"] for r in rows}
    context = {
        "results": results,
        "subjects": subjects,
        "action_label": bulk.action_labels()[action],
        "done": sum(1 for r in results if r.done),
        "skipped": sum(1 for r in results if not r.done),
        "back": back,
        **await nav_context(actor),
    }
    return page(request, "desk/bulk.html", context)


@post("/desk/tickets/{ticket_id:int}/presence", status_code=204)
async def presence(actor: CurrentActor, ticket_id: FromPath[int]) -> None:
    """The ticket page's heartbeat: this agent has it open."""
    _agent(actor)
    await live.heartbeat(actor, ticket_id)


@post("/desk/tickets/{ticket_id:int}/presence/leave", status_code=204)
async def presence_leave(actor: CurrentActor, ticket_id: FromPath[int]) -> Response[None]:
    """Sent (as a beacon) when the page goes away."""
    _agent(actor)
    await live.leave(actor, ticket_id)
    return Response(None, status_code=204)


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        filtered_list,
        saved_view,
        create_view,
        update_view,
        delete_view,
        desk_nav,
        bulk_action,
        presence,
        presence_leave,
    ],
)

"""The agent desk: views of the queue, ticket search, and the ticket page with the
conversation, the reply/note editor, fields, macros, merge, links and the customer's context."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, Router, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from server import policy
from server.accounts.auth import CurrentActor
from server.channels.email import outbound
from server.channels.forum_ticket import services as forum_ticket
from server.desk import attachments, bulk, csat, fields, live, queries, saved_views, services, sla
from server.desk import rows as desk_rows  # noqa: F401 - desk_row() for desk/_list.html
from server.desk.support_routes import too_large_error
from server.desk.tables import PRIORITIES, STATUSES, TICKET_TYPES
from server.desk.web import describe_event, field_names, uploads_from
from server.errors import Invalid
from server.forum import queries as forum_queries
from server.i18n import _, get_locale
from server.markdown import MarkdownTooLarge, render
from server.policy import Actor, ensure, ensure_signed_in
from server.search.query import search
from server.web.flash import flash
from server.web.forms import form_data
from server.web.render import page, redirect

SEARCH_PAGE = 20


def _agent(actor: Actor) -> None:
    ensure_signed_in(actor)
    ensure(policy.can_use_desk(actor))


def view_names() -> dict[str, str]:
    return {
        "mine": _("My open tickets"),
        "unassigned": _("Unassigned"),
        "groups": _("My groups"),
        "pending": _("Pending"),
        "sla": _("SLA at risk or breached"),
        "solved": _("Recently solved"),
        "all": _("All unsolved"),
    }


def sort_names() -> dict[str, str]:
    return {
        "-updated": _("Last updated"),
        "updated": _("Least recently updated"),
        "-created": _("Newest"),
        "created": _("Oldest"),
        "due": _("SLA due first"),
    }


@get("/desk")
async def desk_home(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    view: FromQuery[str] = "mine",
    sort: FromQuery[str] = "-updated",
    after: FromQuery[str] = "",
) -> Template:
    _agent(actor)
    view = view if view in queries.VIEWS else "mine"
    if view == "sla" and "sort" not in request.query_params:
        sort = "due"  # the SLA view lists what is due first
    sort = sort if sort in sort_names() else "-updated"
    async with queries.page_reads():
        rows, next_cursor = await queries.list_view(actor, view, sort=sort, cursor=after[:40])
        context = {
            "view": view,
            "sort": sort,
            "after": after,
            "tickets": rows,
            "next_url": "/desk?" + urlencode({"view": view, "sort": sort, "after": next_cursor}) if next_cursor else "",
            "counts": await queries.view_counts(actor),
            "views": view_names(),
            "saved_views": await saved_views.nav_entries(actor),
            **await bulk.form_context(),
            "sorts": sort_names(),
            "statuses": fields.status_labels(),
            "priorities": fields.priority_labels(),
        }
    partial = getattr(request, "htmx", False) and request.headers.get("hx-target") == "desk-list"
    return page(request, "desk/_list.html" if partial else "desk/home.html", context)


@get("/desk/search")
async def desk_search(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    q: FromQuery[str] = "",
    status: FromQuery[str] = "",
    page_no: FromQuery[int] = 1,
) -> Template:
    _agent(actor)
    status = status if status in STATUSES else ""  # an unknown status filters nothing, like no status
    page_no = max(1, min(page_no, 50))
    result = await search(
        actor,
        q,
        types=["ticket"],
        facets={"status": status} if status else None,
        limit=SEARCH_PAGE,
        offset=(page_no - 1) * SEARCH_PAGE,
        with_facets=("status",),
    )
    current = await queries.tickets_by_id([hit.pk for hit in result.hits])  # the index may lag the desk

    def url(**changes: Any) -> str:
        params = {"q": result.query, "status": status, "page_no": page_no, **changes}
        if not params["status"]:
            del params["status"]
        if params["page_no"] == 1:
            del params["page_no"]
        return "/desk/search?" + urlencode(params)

    return page(
        request,
        "desk/search.html",
        {
            "result": result,
            "q": result.query,
            "status": status,
            "page_no": page_no,
            "page_size": SEARCH_PAGE,
            "current": current,
            "url": url,
            "statuses": fields.status_labels(),
            "priorities": fields.priority_labels(),
            "counts": await queries.view_counts(actor),
            "views": view_names(),
            "saved_views": await saved_views.nav_entries(actor),
        },
    )


async def _ticket_context(actor: Actor, ticket_id: int) -> dict[str, Any]:
    async with queries.page_reads():
        return await _read_ticket_context(actor, ticket_id)


async def _read_ticket_context(actor: Actor, ticket_id: int) -> dict[str, Any]:
    last_event_id = await live.last_event_id()  # before the data: the page's socket replays what follows
    ticket = await queries.access_ticket(actor, ticket_id)
    definitions = await queries.cached_field_definitions()
    values = await queries.field_values(ticket_id)
    locale = get_locale()
    followers = await queries.followers(ticket_id)
    messages = await queries.conversation(actor, ticket_id)
    # Agents read every kind of message, so the newest one is in the conversation just read.
    every_kind = queries.visible_kinds(actor) == ("public", "internal", "system")
    newest_id = max((m["id"] for m in messages), default=0) if every_kind else None
    return {
        "ticket": ticket,
        "messages": messages,
        "statuses": fields.status_labels(),
        "priorities": fields.priority_labels(),
        "types": fields.type_labels(),
        "channels": fields.channel_labels(),
        "status_choices": STATUSES,
        "priority_choices": PRIORITIES,
        "type_choices": TICKET_TYPES,
        "groups": await queries.cached_groups(),
        "agents": await queries.cached_agents(),
        "custom_fields": definitions,
        "field_values": {f"cf_{k}": v for k, v in values.items()},
        "field_label": fields.field_label,
        "locale": locale,
        "macros": await queries.cached_macros(),
        "links": await queries.links(ticket_id, ticket),
        "followers": followers,
        "past_tickets": await queries.past_tickets(ticket["requester"], ticket_id),  # with their CSAT ratings
        "forum_activity": await forum_queries.recent_activity_of(ticket["requester"]) if ticket["requester"] else [],
        "sla": await sla.ticket_panel(ticket_id),
        "csat": await csat.current(ticket_id),
        "forum_link": await forum_ticket.ticket_panel(ticket),  # a forum ticket's thread and posted replies
        "deliveries": await outbound.ticket_deliveries(actor, ticket_id),  # mail state per reply
        "describe": describe_event,
        "field_names": field_names(definitions, locale),
        "max_files": attachments.MAX_FILES,
        "max_file_mb": attachments.MAX_FILE_BYTES // (1024 * 1024),
        **await live.page_context(ticket_id, last_event_id, newest_id),
    }


async def _ticket_page(
    request: Request[Any, Any, Any], actor: Actor, ticket_id: int, status_code: int = 200, **extra: Any
) -> Template:
    context = await _ticket_context(actor, ticket_id)
    context.update(extra)
    return page(request, "desk/ticket.html", context, status_code=status_code)


def _conflict(exc: services.TicketConflict) -> dict[str, Any]:
    return {
        "conflict": {
            "version": exc.current["version"],
            "changes": [
                {"who": c["author_name"] or _("Kizuna"), "when": c["created_at"], "event": c["event"]}
                for c in exc.changes
            ],
        }
    }


@get("/desk/tickets/{ticket_id:int}")
async def ticket_page(request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]) -> Template:
    _agent(actor)
    return await _ticket_page(request, actor, ticket_id)


def _int_or_none(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)  # type: ignore[arg-type]
    except ValueError:
        raise Invalid({name: _("Choose a value from the list.")}) from None


def _version(values: dict[str, str]) -> int:
    version = _int_or_none(values.get("version"), "version")
    if version is None:
        raise Invalid({"version": _("Reload the ticket and try again.")})
    return version


@post("/desk/tickets/{ticket_id:int}/messages", request_max_body_size=attachments.MAX_REQUEST_BYTES)
async def post_message(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]
) -> Template | Redirect:
    """A public reply (optionally setting the status) or, with `internal`, a note."""
    _agent(actor)
    values = await form_data(request)
    internal = values.get("internal") == "1"
    try:
        uploads = await uploads_from(request)
        if internal:
            await services.add_note(actor, ticket_id, values.get("body", ""), uploads=uploads)
        else:
            status = values.get("status") or None
            seen = None if values.get("force") == "1" else _int_or_none(values.get("seen_message_id"), "body")
            await services.add_reply(
                actor,
                ticket_id,
                values.get("body", ""),
                uploads=uploads,
                status=status,
                version=_version(values) if status else None,
                seen_message_id=seen,
            )
    except live.ReplyCollision as exc:
        collision = {"messages": exc.messages, "newest_id": exc.newest_id}
        return await _ticket_page(request, actor, ticket_id, 409, values=values, collision=collision)
    except services.TicketConflict as exc:
        return await _ticket_page(request, actor, ticket_id, 409, values=values, **_conflict(exc))
    except (Invalid, MarkdownTooLarge) as exc:
        errors = exc.errors if isinstance(exc, Invalid) else too_large_error()
        code = 413 if isinstance(exc, MarkdownTooLarge) else getattr(exc, "status_code", 422)  # 507: disk full
        return await _ticket_page(request, actor, ticket_id, code, values=values, errors=errors)
    flash(request, _("Internal note added.") if internal else _("Reply sent."), "success")
    return redirect(f"/desk/tickets/{ticket_id}#latest")


@post("/desk/tickets/{ticket_id:int}/fields")
async def save_fields(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]
) -> Template | Redirect:
    _agent(actor)
    values = await form_data(request)
    definitions = await queries.field_definitions()
    try:
        changes: dict[str, Any] = {
            "status": values.get("status", ""),
            "priority": values.get("priority", ""),
            "ticket_type": values.get("ticket_type", ""),
            "team": _int_or_none(values.get("team"), "team"),
            "assignee": _int_or_none(values.get("assignee"), "assignee"),
            "tags": values.get("tags", ""),
        }
        custom = {d["key"]: values.get(f"cf_{d['key']}", "") for d in definitions}
        await services.update_ticket(actor, ticket_id, _version(values), changes, custom)
    except services.TicketConflict as exc:
        return await _ticket_page(request, actor, ticket_id, 409, **_conflict(exc))
    except Invalid as exc:
        return await _ticket_page(request, actor, ticket_id, 422, errors=exc.errors)
    flash(request, _("Ticket updated."), "success")
    return redirect(f"/desk/tickets/{ticket_id}")


@post("/desk/tickets/{ticket_id:int}/macro")
async def use_macro(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]
) -> Template | Redirect:
    _agent(actor)
    values = await form_data(request)
    try:
        macro_id = _int_or_none(values.get("macro"), "macro")
        if macro_id is None:
            raise Invalid({"macro": _("Choose a macro from the list.")})
        await services.apply_macro(actor, ticket_id, macro_id, _version(values))
    except services.TicketConflict as exc:
        return await _ticket_page(request, actor, ticket_id, 409, **_conflict(exc))
    except Invalid as exc:
        return await _ticket_page(request, actor, ticket_id, 422, errors=exc.errors)
    flash(request, _("Macro applied."), "success")
    return redirect(f"/desk/tickets/{ticket_id}#latest")


async def _ticket_action(request: Request[Any, Any, Any], actor: Actor, ticket_id: int, action: Any, done: str) -> Any:
    try:
        await action()
    except Invalid as exc:
        return await _ticket_page(request, actor, ticket_id, 422, errors=exc.errors)
    flash(request, done, "success")
    return redirect(f"/desk/tickets/{ticket_id}")


@post("/desk/tickets/{ticket_id:int}/merge")
async def merge(request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]) -> Template | Redirect:
    _agent(actor)
    values = await form_data(request)
    await queries.access_ticket(actor, ticket_id)
    try:
        target = _int_or_none(values.get("target", "").lstrip("#"), "target")
        if target is None:
            raise Invalid({"target": _("Enter the number of the ticket to merge into.")})
        await services.merge_tickets(actor, ticket_id, target)
    except Invalid as exc:
        return await _ticket_page(request, actor, ticket_id, 422, errors=exc.errors)
    flash(request, _("Merged into #%(id)s.", id=target), "success")
    return redirect(f"/desk/tickets/{target}")


@post("/desk/tickets/{ticket_id:int}/links")
async def add_link(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]
) -> Template | Redirect:
    _agent(actor)
    values = await form_data(request)

    async def action() -> None:
        other = _int_or_none(values.get("other", "").lstrip("#"), "other")
        if other is None:
            raise Invalid({"other": _("Enter a ticket number.")})
        await services.link_related(actor, ticket_id, other)

    return await _ticket_action(request, actor, ticket_id, action, _("Tickets linked."))


@post("/desk/tickets/{ticket_id:int}/links/{other_id:int}/remove")
async def remove_link(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int], other_id: FromPath[int]
) -> Template | Redirect:
    _agent(actor)

    async def action() -> None:
        await services.unlink_related(actor, ticket_id, other_id)

    return await _ticket_action(request, actor, ticket_id, action, _("Link removed."))


@post("/desk/tickets/{ticket_id:int}/parent")
async def set_parent(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]
) -> Template | Redirect:
    _agent(actor)
    values = await form_data(request)

    async def action() -> None:
        await services.set_parent(actor, ticket_id, _int_or_none(values.get("parent", "").lstrip("#"), "parent"))

    return await _ticket_action(request, actor, ticket_id, action, _("Parent ticket saved."))


@post("/desk/tickets/{ticket_id:int}/followers")
async def add_follower(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]
) -> Template | Redirect:
    _agent(actor)
    values = await form_data(request)

    async def action() -> None:
        await services.add_follower(actor, ticket_id, values.get("email", ""))

    return await _ticket_action(request, actor, ticket_id, action, _("Copied on the ticket."))


@post("/desk/tickets/{ticket_id:int}/followers/{user_id:int}/remove")
async def remove_follower(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int], user_id: FromPath[int]
) -> Template | Redirect:
    _agent(actor)

    async def action() -> None:
        await services.remove_follower(actor, ticket_id, user_id)

    return await _ticket_action(request, actor, ticket_id, action, _("No longer copied."))


@post("/desk/preview")
async def preview(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _agent(actor)
    values = await form_data(request)
    try:
        html, error = render(values.get("body", "")), ""
    except MarkdownTooLarge:
        html, error = "", too_large_error()["body"]
    return page(request, "kb/_preview.html", {"html": html, "error": error})


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        desk_home,
        desk_search,
        ticket_page,
        post_message,
        save_fields,
        use_macro,
        merge,
        add_link,
        remove_link,
        set_parent,
        add_follower,
        remove_follower,
        preview,
    ],
)

"""JSON API for tickets (Bearer tokens). Customers see and write their own tickets' public
conversation; agents see everything and change fields. PATCH names the version it read (409
with the other change when stale); POSTs honour `Idempotency-Key`."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, Router, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import UNSET
from piccolo.columns.combination import Or

from server import policy
from server.accounts.auth import CurrentActor
from server.desk import csat, idempotency, queries, services
from server.desk.schemas import (
    ChangeOut,
    ConflictOut,
    CsatOut,
    MessageCreate,
    MessageList,
    MessageOut,
    TicketCreate,
    TicketList,
    TicketOut,
    TicketUpdate,
)
from server.desk.tables import STATUSES, Ticket
from server.errors import Invalid
from server.i18n import _
from server.markdown import MAX_SOURCE_BYTES, MarkdownTooLarge
from server.policy import Actor, ensure, ensure_signed_in

MAX_LIMIT = 100


def _too_large() -> Response[Any]:
    detail = _("The message is longer than %(n)s KiB.", n=MAX_SOURCE_BYTES // 1024)
    return Response({"status_code": 413, "detail": detail}, status_code=413)


async def ticket_out(actor: Actor, ticket: dict[str, Any]) -> TicketOut:
    agent = policy.can_work_tickets(actor)
    values = await queries.field_values(ticket["id"])
    if not agent:
        shown = {d["key"] for d in await queries.field_definitions(customer_only=True)}
        values = {k: v for k, v in values.items() if k in shown}
    return TicketOut(
        id=ticket["id"],
        url=services.ticket_url(ticket["id"], agent=agent),
        subject=ticket["subject"],
        status=ticket["status"],
        priority=ticket["priority"],
        type=ticket["ticket_type"],
        channel=ticket["channel"],
        requester_id=ticket["requester"],
        requester_name=ticket["requester_name"] or "",
        organisation_id=ticket["organisation"],
        group_id=ticket["team"] if agent else None,
        assignee_id=ticket["assignee"] if agent else None,
        tags=list(ticket["tags"]) if agent else [],
        custom_fields=values,
        version=ticket["version"],
        created_at=ticket["created_at"],
        updated_at=ticket["updated_at"],
        solved_at=ticket["solved_at"],
        merged_into=ticket["merged_into"],
    )


def _conflict(actor: Actor, exc: services.TicketConflict, current: TicketOut) -> Response[Any]:
    body = ConflictOut(
        status_code=409,
        detail=_("Someone else changed this ticket since you read it."),
        current=current,
        changes=[
            ChangeOut(by=c["author_name"] or "", at=c["created_at"], changes=c["event"].get("changes", []))
            for c in exc.changes
        ],
    )
    return Response(body, status_code=409)


def _idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    return request.headers.get("idempotency-key")


async def _once(request: Request[Any, Any, Any], actor: Actor, action: Any) -> Response[Any]:
    print_ = idempotency.fingerprint(request.method, request.url.path, await request.body())
    status, body, replayed = await idempotency.run_once(actor, _idempotency_key(request), print_, action)
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return Response(body, status_code=status, headers=headers)


@post("/api/v1/tickets", tags=["tickets"], status_code=201)
async def create_ticket(
    request: Request[Any, Any, Any], actor: CurrentActor, data: JSONBody[TicketCreate]
) -> Response[Any]:
    """Open a ticket as the caller (channel `api`). Send `Idempotency-Key` to make retries safe."""
    ensure_signed_in(actor)

    async def action() -> tuple[int, Any]:
        ticket_id = await services.open_ticket(
            actor,
            data.subject,
            data.body,
            channel="api",
            priority=data.priority,
            tags=data.tags,
            custom_fields=data.custom_fields,
        )
        ticket = await queries.access_ticket(actor, ticket_id)
        return 201, msgspec.to_builtins(await ticket_out(actor, ticket))

    try:
        return await _once(request, actor, action)
    except MarkdownTooLarge:
        return _too_large()


@get("/api/v1/tickets", tags=["tickets"])
async def list_tickets(
    actor: CurrentActor,
    status: FromQuery[str] = "",
    assignee: FromQuery[str] = "",
    view: FromQuery[str] = "",
    cursor: FromQuery[str] = "",
    limit: FromQuery[int] = 25,
) -> TicketList:
    """Tickets the caller may see, most recently updated first. Agents may filter by `view`
    (mine, unassigned, groups, pending, solved, all) and `assignee` (an id, `me` or `none`)."""
    ensure_signed_in(actor)
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid({"limit": f"limit must be 1–{MAX_LIMIT}"})
    agent = policy.can_work_tickets(actor)
    clauses: list[Any] = []
    if not agent:
        if view or assignee:
            raise Invalid({"view": _("Views and assignees are for agents.")})
        mine: Any = Ticket.requester == actor.user_id
        if actor.admin_org_ids:
            mine = Or(mine, Ticket.organisation.is_in(sorted(actor.admin_org_ids)))
        clauses.append(mine)
    if view:
        if view not in queries.VIEWS:
            raise Invalid({"view": _("Unknown view: %(view)s", view=view)})
        clauses.append(queries.view_clause(actor, view))
    if status:
        if status not in STATUSES:
            raise Invalid({"status": _("Unknown status: %(status)s", status=status)})
        clauses.append(Ticket.status == status)
    if assignee == "me":
        clauses.append(Ticket.assignee == actor.user_id)
    elif assignee == "none":
        clauses.append(Ticket.assignee.is_null())
    elif assignee:
        if not assignee.isdigit() or len(assignee) > 12:
            raise Invalid({"assignee": _("Use an agent's id, me or none.")})
        clauses.append(Ticket.assignee == int(assignee))
    rows, next_cursor = await queries.list_tickets(
        clauses, cursor=cursor[:40], limit=limit, columns=queries.TICKET_COLUMNS
    )
    return TicketList(items=[await ticket_out(actor, row) for row in rows], next_cursor=next_cursor)


@get("/api/v1/tickets/{ticket_id:int}", tags=["tickets"])
async def get_ticket(actor: CurrentActor, ticket_id: FromPath[int]) -> TicketOut:
    ensure_signed_in(actor)
    out = await ticket_out(actor, await queries.access_ticket(actor, ticket_id))
    if policy.can_work_tickets(actor) and (rating := await csat.current(ticket_id)) is not None:
        out.csat = CsatOut(rating["rating"], rating["comment"], rating["asked_at"], rating["rated_at"])
    return out


@patch("/api/v1/tickets/{ticket_id:int}", tags=["tickets"])
async def update_ticket(
    actor: CurrentActor, ticket_id: FromPath[int], data: JSONBody[TicketUpdate]
) -> TicketOut | Response[Any]:
    """Agents change any field; a customer may only send `{"status": "solved"}`. `version` is
    the one you read: when the ticket changed since, 409 shows the current ticket and the changes."""
    ensure_signed_in(actor)
    ticket = await queries.access_ticket(actor, ticket_id)
    if not policy.can_work_tickets(actor):
        others = (data.priority, data.type, data.group_id, data.assignee_id, data.tags, data.custom_fields)
        ensure(data.status == "solved" and all(v is UNSET for v in others))
        if data.version != ticket["version"]:
            exc = services.TicketConflict(ticket, await services.changes_since(ticket_id, data.version))
            return _conflict(actor, exc, await ticket_out(actor, ticket))
        await services.mark_solved(actor, ticket_id)
        return await ticket_out(actor, await queries.access_ticket(actor, ticket_id))
    changes: dict[str, Any] = {}
    for key, value in (
        ("status", data.status),
        ("priority", data.priority),
        ("ticket_type", data.type),
        ("team", data.group_id),
        ("assignee", data.assignee_id),
        ("tags", data.tags),
    ):
        if value is not UNSET:
            changes[key] = value
    custom = None if data.custom_fields is UNSET else data.custom_fields
    try:
        await services.update_ticket(actor, ticket_id, data.version, changes, custom)
    except services.TicketConflict as exc:
        return _conflict(actor, exc, await ticket_out(actor, exc.current))
    return await ticket_out(actor, await queries.access_ticket(actor, ticket_id))


def message_out(message: dict[str, Any]) -> MessageOut:
    return MessageOut(
        id=message["id"],
        kind=message["kind"],
        author_id=message["author"],
        author_name=message["author_name"] or "",
        body=message["body_md"],
        body_html=message["body_html"],
        created_at=message["created_at"],
        attachments=[f"/support/attachments/{a['id']}" for a in message["attachments"]],
    )


@get("/api/v1/tickets/{ticket_id:int}/messages", tags=["tickets"])
async def list_messages(actor: CurrentActor, ticket_id: FromPath[int]) -> MessageList:
    """The conversation, oldest first: public replies, and for agents internal notes too."""
    ensure_signed_in(actor)
    await queries.access_ticket(actor, ticket_id)
    messages = await queries.conversation(actor, ticket_id)
    return MessageList(items=[message_out(m) for m in messages if m["kind"] != "system"])


@post("/api/v1/tickets/{ticket_id:int}/messages", tags=["tickets"], status_code=201)
async def create_message(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int], data: JSONBody[MessageCreate]
) -> Response[Any]:
    """A public reply, or with `internal: true` an internal note (agents only)."""
    ensure_signed_in(actor)
    await queries.access_ticket(actor, ticket_id)
    if data.internal:
        ensure(policy.can_see_internal_notes(actor), _("Only agents can add internal notes."))

    async def action() -> tuple[int, Any]:
        if data.internal:
            message_id = await services.add_note(actor, ticket_id, data.body)
        else:
            message_id = await services.add_reply(actor, ticket_id, data.body, channel="api")
        messages = await queries.conversation(actor, ticket_id)
        message = next(m for m in messages if m["id"] == message_id)
        return 201, msgspec.to_builtins(message_out(message))

    try:
        return await _once(request, actor, action)
    except MarkdownTooLarge:
        return _too_large()


api_router = Router(
    path="/",
    route_handlers=[create_ticket, list_tickets, get_ticket, update_ticket, list_messages, create_message],
)

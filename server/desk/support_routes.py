"""The customer side: the web form with answer suggestions, the portal's ticket list and
ticket page (reply with attachments, mark solved), and attachment downloads."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from server import policy, ratelimit
from server.accounts.auth import CurrentActor
from server.desk import attachments, csat, deflection, fields, live, queries, services
from server.desk.web import describe_event, field_names, uploads_from
from server.errors import Invalid, NotFound
from server.i18n import _, get_locale
from server.markdown import MAX_SOURCE_BYTES, MarkdownTooLarge
from server.policy import Actor, ensure, ensure_signed_in
from server.search import registry
from server.search.query import Hit, search
from server.web.flash import flash
from server.web.forms import form_data
from server.web.render import page, redirect

OPEN_LIMIT = ratelimit.Limit("desk_open", attempts=20, window_seconds=3600)
REPLY_LIMIT = ratelimit.Limit("desk_reply", attempts=60, window_seconds=3600)
SUGGEST_TYPES = ("kb", "thread")
SUGGESTIONS = 5


def too_large_error() -> dict[str, str]:
    return {"body": _("The message is longer than %(n)s KiB.", n=MAX_SOURCE_BYTES // 1024)}


async def _form_context(actor: Actor, values: dict[str, str], visit: str) -> dict[str, Any]:
    definitions = await queries.field_definitions(customer_only=True)
    return {
        "values": values,
        "visit": visit,
        "custom_fields": definitions,
        "locale": get_locale(),
        "field_label": fields.field_label,
        "max_files": attachments.MAX_FILES,
        "max_file_mb": attachments.MAX_FILE_BYTES // (1024 * 1024),
        "allowed_types": ", ".join(sorted(attachments.ALLOWED_TYPES)),
    }


@get("/support/new")
async def new_ticket_form(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    ensure_signed_in(actor)
    ensure(policy.can_open_ticket(actor))
    return page(request, "support/new.html", await _form_context(actor, {}, deflection.new_visit(actor)))


@post("/support/new", request_max_body_size=attachments.MAX_REQUEST_BYTES)
async def create_ticket(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    ensure_signed_in(actor)
    ensure(policy.can_open_ticket(actor))
    await ratelimit.hit(OPEN_LIMIT, f"user:{actor.user_id}")
    values = await form_data(request)
    visit = values.get("visit", "")
    definitions = await queries.field_definitions(customer_only=True)
    custom = {d["key"]: values.get(f"cf_{d['key']}") for d in definitions}
    try:
        uploads = await uploads_from(request)
        ticket_id = await services.open_ticket(
            actor,
            values.get("subject", ""),
            values.get("body", ""),
            channel="web",
            custom_fields={k: v for k, v in custom.items() if v is not None},
            uploads=uploads,
        )
    except (Invalid, MarkdownTooLarge) as exc:
        errors = exc.errors if isinstance(exc, Invalid) else too_large_error()
        context = await _form_context(actor, values, visit or deflection.new_visit(actor))
        context["errors"] = errors
        code = 413 if isinstance(exc, MarkdownTooLarge) else getattr(exc, "status_code", 422)  # 507: disk full
        return page(request, "support/new.html", context, status_code=code)
    if visit:
        with contextlib.suppress(Invalid):  # an expired or foreign visit token does not stop the ticket
            await deflection.record(actor, "submitted", visit, ticket_id=ticket_id)
    flash(request, _("Thank you. Your request #%(id)s has been received.", id=ticket_id), "success")
    return redirect(f"/support/tickets/{ticket_id}")


@get("/support/suggest")
async def suggest(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    subject: FromQuery[str] = "",
    visit: FromQuery[str] = "",
) -> Template:
    """Help articles (and, once the forum registers them, solved threads) matching what the
    customer is typing, searched with the customer's own audience."""
    ensure_signed_in(actor)
    body = request.query_params.get("body", "")  # `body` cannot be a handler parameter in Litestar
    query = " ".join(f"{subject} {body[:300]}".split())[:200]
    hits: list[Any] = []
    if len(query) >= 3:
        names = registry.names()
        if "kb" in names:  # twice as many: an article found in both languages counts once
            found = (await search(actor, query, types=["kb"], limit=SUGGESTIONS * 2)).hits
            hits += one_per_document(found, get_locale())[:SUGGESTIONS]
        if "thread" in names:
            thread_type = registry.get("thread")
            facets = {"solved": "true"} if "solved" in thread_type.facet_fields else {}
            hits += (await search(actor, query, types=["thread"], facets=facets, limit=3)).hits
    docs = [f"{h.type}:{h.pk}" for h in hits]
    token = ""
    if hits and visit:
        try:
            token = deflection.shown_token(visit, query, docs)
        except Invalid:
            token = ""
    return page(request, "support/_suggestions.html", {"hits": hits, "token": token, "q": query})


def one_per_document(hits: list[Hit], locale: str) -> list[Hit]:
    """Each document once, at the rank of its best hit, in the reader's language when that
    version matched too (an article's English and Japanese versions are one suggestion)."""
    chosen: dict[tuple[str, int], Hit] = {}
    for hit in hits:
        key = (hit.type, hit.pk)
        if key not in chosen or (hit.locale == locale and chosen[key].locale != locale):
            chosen[key] = hit
    return list(chosen.values())


@post("/support/deflection", status_code=204)
async def deflection_event(request: Request[Any, Any, Any], actor: CurrentActor) -> None:
    """Beacon from the web form: suggestions shown, one clicked, or the form left unsent."""
    ensure_signed_in(actor)
    values = await form_data(request)
    await deflection.record(actor, values.get("kind", ""), values.get("token", ""), values.get("doc", ""))


# Portal -------------------------------------------------------------------------------------


@get("/support/tickets")
async def my_tickets(
    request: Request[Any, Any, Any], actor: CurrentActor, show: FromQuery[str] = "mine", page_no: FromQuery[int] = 1
) -> Template:
    ensure_signed_in(actor)
    scope = "organisation" if show == "organisation" and actor.admin_org_ids else "mine"
    page_no = max(1, min(page_no, 10_000))
    rows, more = await queries.portal_tickets(actor, scope, page_no)
    context = {
        "tickets": rows,
        "scope": scope,
        "page_no": page_no,
        "more": more,
        **fields.requester_status_context(),
        "is_org_admin": bool(actor.admin_org_ids),
    }
    return page(request, "support/tickets.html", context)


async def _ticket_context(actor: Actor, ticket_id: int) -> dict[str, Any]:
    last_event_id = await live.last_event_id()  # before the data: the page's socket replays what follows
    ticket = await queries.access_ticket(actor, ticket_id)
    definitions = await queries.field_definitions(customer_only=True)
    values = await queries.field_values(ticket_id)
    shown_fields = [
        (fields.field_label(d, get_locale()), values[d["key"]]) for d in definitions if values.get(d["key"])
    ]
    return {
        "ticket": ticket,
        "messages": await queries.conversation(actor, ticket_id),
        **fields.requester_status_context(),
        "shown_fields": shown_fields,
        "can_reply": policy.can_reply_to_ticket(actor, True, ticket["status"]),
        "can_solve": policy.can_solve_own_ticket(actor, ticket["requester"], ticket["organisation"])
        and ticket["status"] not in ("solved", "closed"),
        "describe": describe_event,
        "field_names": field_names(definitions, get_locale()),
        "max_files": attachments.MAX_FILES,
        "max_file_mb": attachments.MAX_FILE_BYTES // (1024 * 1024),
        "last_event_id": last_event_id,
        # The satisfaction question, for the requester only (server/desk/csat.py)
        "csat": await csat.current(ticket_id) if policy.can_rate_ticket(actor, ticket["requester"]) else None,
    }


@get("/support/tickets/{ticket_id:int}")
async def ticket_page(request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]) -> Template:
    ensure_signed_in(actor)
    return page(request, "support/ticket.html", await _ticket_context(actor, ticket_id))


@post("/support/tickets/{ticket_id:int}/reply", request_max_body_size=attachments.MAX_REQUEST_BYTES)
async def reply(request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]) -> Template | Redirect:
    ensure_signed_in(actor)
    await queries.access_ticket(actor, ticket_id)  # 404 before anything else
    await ratelimit.hit(REPLY_LIMIT, f"user:{actor.user_id}")
    values = await form_data(request)
    try:
        uploads = await uploads_from(request)
        await services.add_reply(actor, ticket_id, values.get("body", ""), uploads=uploads)
    except (Invalid, MarkdownTooLarge) as exc:
        context = await _ticket_context(actor, ticket_id)
        context.update(errors=exc.errors if isinstance(exc, Invalid) else too_large_error(), values=values)
        code = 413 if isinstance(exc, MarkdownTooLarge) else getattr(exc, "status_code", 422)  # 507: disk full
        return page(request, "support/ticket.html", context, status_code=code)
    flash(request, _("Your reply was sent."), "success")
    return redirect(f"/support/tickets/{ticket_id}#latest")


@post("/support/tickets/{ticket_id:int}/solve")
async def solve(request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]) -> Template | Redirect:
    ensure_signed_in(actor)
    try:
        await services.mark_solved(actor, ticket_id)
    except Invalid as exc:
        context = await _ticket_context(actor, ticket_id)
        context["errors"] = exc.errors
        return page(request, "support/ticket.html", context, status_code=422)
    flash(request, _("Glad it is solved. Reply if anything comes back."), "success")
    return redirect(f"/support/tickets/{ticket_id}")


@get("/support/attachments/{attachment_id:int}")
async def download(actor: CurrentActor, attachment_id: FromPath[int]) -> Response[bytes]:
    """Always a download (never rendered by the browser), for whoever may read its message."""
    ensure_signed_in(actor)
    row = await queries.access_attachment(actor, attachment_id)
    try:
        data = attachments.path_for(row["storage_key"]).read_bytes()
    except (FileNotFoundError, ValueError):
        raise NotFound from None
    ascii_name = "".join(ch if 32 < ord(ch) < 127 and ch not in '"\\;' else "_" for ch in row["filename"])
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(row['filename'], safe='')}"
    return Response(
        data,
        media_type=row["content_type"],
        headers={
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        new_ticket_form,
        create_ticket,
        suggest,
        deflection_event,
        my_tickets,
        ticket_page,
        reply,
        solve,
        download,
    ],
)

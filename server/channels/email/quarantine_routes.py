"""Admin: the email channel (its addresses, the HTTP endpoint and its secret) and the inbound
messages that made no ticket message (quarantined, failed, ignored), to inspect, retry or delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Router, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from server import policy
from server.accounts.auth import CurrentActor
from server.channels.email import inbound, original, tokens
from server.channels.email.inbound_tables import INBOUND_STATUSES, InboundMail
from server.errors import Invalid, NotFound
from server.i18n import _
from server.policy import Actor, ensure, ensure_signed_in
from server.settings import get_settings
from server.web.flash import flash
from server.web.render import page, redirect

PAGE_SIZE = 50
PROBLEMS = ("quarantined", "failed", "ignored")


def _admin(actor: Actor) -> None:
    ensure_signed_in(actor)
    ensure(policy.can_administer_email_channel(actor))


def status_labels() -> dict[str, str]:
    return {
        "pending": _("Waiting"),
        "done": _("Processed"),
        "ignored": _("Ignored"),
        "quarantined": _("Quarantined"),
        "failed": _("Failed"),
    }


def filter_labels() -> dict[str, str]:
    return {
        "": _("Needs a look (quarantined, failed, ignored)"),
        **{status: status_labels()[status] for status in INBOUND_STATUSES},
        "all": _("Everything"),
    }


async def list_inbound(status: str, page_no: int) -> tuple[list[dict[str, Any]], bool]:
    query = InboundMail.select(
        InboundMail.id,
        InboundMail.received_at,
        InboundMail.source,
        InboundMail.from_address,
        InboundMail.envelope_from,
        InboundMail.subject,
        InboundMail.size_bytes,
        InboundMail.status,
        InboundMail.reason,
        InboundMail.ticket,
        InboundMail.truncated,
    )
    if status == "":
        query = query.where(InboundMail.status.is_in(list(PROBLEMS)))
    elif status != "all":
        query = query.where(InboundMail.status == status)
    rows = await query.order_by(InboundMail.id, ascending=False).limit(PAGE_SIZE + 1).offset((page_no - 1) * PAGE_SIZE)
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


@get("/admin/channels/email")
async def channel_page(
    request: Request[Any, Any, Any], actor: CurrentActor, status: FromQuery[str] = "", page_no: FromQuery[int] = 1
) -> Template:
    _admin(actor)
    if status not in filter_labels():
        raise Invalid({"status": _("Choose a value from the list.")})
    page_no = max(1, min(page_no, 10_000))
    rows, more = await list_inbound(status, page_no)
    settings = get_settings()
    context = {
        "rows": rows,
        "more": more,
        "status": status,
        "page_no": page_no,
        "filters": filter_labels(),
        "status_labels": status_labels(),
        "support_address": tokens.support_address(),
        "endpoint": f"{settings.base_url}/api/v1/inbound/email",
        "secret": settings.inbound_secret,
        "smtp_listen": settings.smtp_listen,
        "max_bytes": inbound.max_bytes(),
    }
    name = "admin/_inbound_mail_rows.html" if getattr(request, "htmx", False) else "admin/channels_email.html"
    return page(request, name, context)


@get("/admin/channels/email/{inbound_id:int}")
async def message_page(request: Request[Any, Any, Any], actor: CurrentActor, inbound_id: FromPath[int]) -> Template:
    _admin(actor)
    row = await InboundMail.select().where(InboundMail.id == inbound_id).output(load_json=True).first()
    if row is None:
        raise NotFound
    return page(
        request,
        "admin/channels_email_message.html",
        {**original.readable(row), "status_labels": status_labels()},
    )


@post("/admin/channels/email/{inbound_id:int}/retry")
async def retry_message(request: Request[Any, Any, Any], actor: CurrentActor, inbound_id: FromPath[int]) -> Redirect:
    page = f"/admin/channels/email/{inbound_id}"
    return await _act(
        request, actor, inbound_id, inbound.retry, _("The message is queued to be processed again."), page
    )


@post("/admin/channels/email/{inbound_id:int}/delete")
async def delete_message(request: Request[Any, Any, Any], actor: CurrentActor, inbound_id: FromPath[int]) -> Redirect:
    return await _act(request, actor, inbound_id, inbound.delete, _("The message is deleted."), "/admin/channels/email")


async def _act(
    request: Request[Any, Any, Any],
    actor: Actor,
    inbound_id: int,
    action: Callable[[Actor, int], Awaitable[Any]],
    done: str,
    then: str,
) -> Redirect:
    """An admin's action on one message: on success say `done` and go to `then`; a refusal is
    shown on the message's page."""
    _admin(actor)
    try:
        await action(actor, inbound_id)
    except Invalid as exc:
        flash(request, " ".join(exc.errors.values()), "error")
        return redirect(f"/admin/channels/email/{inbound_id}")
    flash(request, done, "success")
    return redirect(then)


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[channel_page, message_page, retry_message, delete_message],
)

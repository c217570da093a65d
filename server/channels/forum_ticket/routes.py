"""Forum to ticket routes: "Convert to ticket" on a thread or post (agents), and "Post to the
thread" on an agent's reply of a forum ticket."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from litestar import Request, Router, post
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from server import policy
from server.accounts.auth import CurrentActor
from server.channels.forum_ticket import services
from server.errors import Invalid
from server.i18n import _
from server.markdown import MAX_SOURCE_BYTES, MarkdownTooLarge
from server.policy import ensure, ensure_signed_in
from server.web.flash import flash
from server.web.forms import form_data
from server.web.render import redirect


def _converted(request: Request[Any, Any, Any], conversion: services.Conversion) -> Redirect:
    if conversion.created:
        flash(request, _("Ticket #%(id)s opened from the community.", id=conversion.ticket_id), "success")
    else:
        flash(request, _("This was already turned into ticket #%(id)s.", id=conversion.ticket_id), "info")
    return redirect(f"/desk/tickets/{conversion.ticket_id}")


async def _convert(request: Request[Any, Any, Any], action: Awaitable[services.Conversion]) -> Redirect:
    """Refusals (a deleted post, an author who is gone) answer 422 with the reason on the page."""
    try:
        conversion = await action
    except Invalid as exc:
        raise HTTPException(status_code=422, detail=" ".join(exc.errors.values())) from None
    return _converted(request, conversion)


@post("/community/t/{thread_id:int}/ticket")
async def convert_thread(request: Request[Any, Any, Any], actor: CurrentActor, thread_id: FromPath[int]) -> Redirect:
    """The whole thread, or with `number` one post of it (the panel on the thread page)."""
    ensure_signed_in(actor)
    raw = (await form_data(request)).get("number", "").strip()
    if not raw or raw == "1":
        return await _convert(request, services.convert_thread(actor, thread_id))
    if not raw.isdigit() or len(raw) > 9:
        raise HTTPException(status_code=422, detail=_("Enter the number of a post in this thread."))
    return await _convert(request, services.convert_post_number(actor, thread_id, int(raw)))


@post("/community/posts/{post_id:int}/ticket")
async def convert_post(request: Request[Any, Any, Any], actor: CurrentActor, post_id: FromPath[int]) -> Redirect:
    return await _convert(request, services.convert_post(actor, post_id))


@post("/desk/tickets/{ticket_id:int}/forum-reply")
async def post_back(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int]
) -> Template | Redirect:
    from server.desk.routes import _ticket_page  # the desk's ticket page renders our errors

    ensure_signed_in(actor)
    ensure(policy.can_use_desk(actor))
    values = await form_data(request)
    raw = values.get("message_id", "")
    try:
        if not raw.isdigit() or len(raw) > 12:
            raise Invalid({"forum": _("Choose a reply of this ticket.")})
        created = await services.post_back(actor, ticket_id, int(raw))
    except services.AlreadyPosted:
        flash(request, _("This reply is already in the thread."), "info")
        return redirect(f"/desk/tickets/{ticket_id}#m{raw}")
    except PermissionDeniedException as exc:
        return await _ticket_page(request, actor, ticket_id, 403, errors={"forum": str(exc.detail)})
    except Invalid as exc:
        return await _ticket_page(request, actor, ticket_id, 422, errors=exc.errors)
    except MarkdownTooLarge:
        message = _("The reply is longer than the community allows (%(n)s KiB).", n=MAX_SOURCE_BYTES // 1024)
        return await _ticket_page(request, actor, ticket_id, 413, errors={"forum": message})
    flash(request, _("Posted to the community thread as #%(n)s.", n=created["number"]), "success")
    return redirect(f"/desk/tickets/{ticket_id}#m{raw}")


router = Router(path="/", route_handlers=[convert_thread, convert_post, post_back])

"""Inbound email over HTTP, and the original of an emailed ticket message.

`POST /api/v1/inbound/email` takes one raw RFC 5322 message (`Content-Type: message/rfc822`)
from a mail provider's webhook or a local MTA pipe, authenticated by the channel secret
(`Authorization: Bearer <INBOUND_EMAIL_SECRET>`). It answers 202 with the stored message's id
once the message is durably kept and queued; 401 for a wrong secret, 415 for another content
type, 413 over INBOUND_MAX_BYTES (its first bytes are kept in quarantine), 400 when empty.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.params import FromPath
from litestar.response import Template

from server import policy
from server.accounts.auth import CurrentActor
from server.channels.email import inbound, original
from server.i18n import _
from server.policy import ensure, ensure_signed_in
from server.web.render import page

log = logging.getLogger("kizuna.email.inbound")

CONTENT_TYPE = "message/rfc822"


@post("/api/v1/inbound/email", request_max_body_size=None, status_code=202, summary="Receive one raw email")
async def receive_email(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    scheme, _sep, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not inbound.secret_matches(secret.strip()):
        raise NotAuthorizedException(
            detail=_("The inbound email secret is missing or wrong."), headers={"WWW-Authenticate": "Bearer"}
        )
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != CONTENT_TYPE:
        raise HTTPException(status_code=415, detail=_("Send the raw message as %(type)s.", type=CONTENT_TYPE))
    limit = inbound.max_bytes()
    envelope_from = request.headers.get("x-envelope-from", "")[:998]
    envelope_to = [a.strip() for a in request.headers.get("x-envelope-to", "").split(",") if a.strip()][:100]
    declared = request.headers.get("content-length", "")
    chunks: list[bytes] = []
    size = 0
    too_large = declared.isdigit() and int(declared) > limit
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            too_large = True
        if too_large and size >= inbound.HEAD_BYTES:
            break  # the rest is never read
    if too_large:
        head = b"".join(chunks)[: inbound.HEAD_BYTES]
        total = max(size, int(declared) if declared.isdigit() else 0, len(head))
        inbound_id = await inbound.store_oversize(
            head, total, source="http", envelope_from=envelope_from, envelope_to=envelope_to
        )
        return Response(
            {
                "status_code": 413,
                "detail": _("The message is larger than %(n)s bytes.", n=limit),
                "id": inbound_id,
                "status": "quarantined",
            },
            status_code=413,
        )
    raw = b"".join(chunks)
    if not raw.strip():
        raise HTTPException(status_code=400, detail=_("The message is empty."))
    try:
        inbound_id = await inbound.store_raw(raw, source="http", envelope_from=envelope_from, envelope_to=envelope_to)
    except (sqlite3.OperationalError, OSError) as exc:  # busy database, full disk: the sender retries
        log.error("inbound mail over HTTP not stored: %r", exc)
        raise HTTPException(
            status_code=503, detail=_("The message could not be stored now. Try again."), headers={"Retry-After": "5"}
        ) from exc
    return Response({"id": inbound_id, "status": "pending"}, status_code=202)


async def _original_page(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: int, message_id: int, *, desk: bool
) -> Template:
    context = await original.access_original(actor, ticket_id, message_id)
    back = f"/desk/tickets/{ticket_id}#m{message_id}" if desk else f"/support/tickets/{ticket_id}#m{message_id}"
    return page(request, "channels/email/original.html", {**context, "back": back})


@get("/desk/tickets/{ticket_id:int}/messages/{message_id:int}/mail")
async def desk_original(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int], message_id: FromPath[int]
) -> Template:
    ensure_signed_in(actor)
    ensure(policy.can_use_desk(actor))
    return await _original_page(request, actor, ticket_id, message_id, desk=True)


@get("/support/tickets/{ticket_id:int}/messages/{message_id:int}/mail")
async def support_original(
    request: Request[Any, Any, Any], actor: CurrentActor, ticket_id: FromPath[int], message_id: FromPath[int]
) -> Template:
    return await _original_page(request, actor, ticket_id, message_id, desk=False)


api_router = Router(path="/", route_handlers=[receive_email], tags=["inbound email"])
router = Router(path="/", include_in_schema=False, route_handlers=[desk_original, support_original])

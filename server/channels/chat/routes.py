"""Chat pages and actions: the hosted chat (`/chat`, framable by the widget) for customers and
visitors, and the agents' queue and console (`/desk/chats`).

The customer side is embedded in other sites' pages: their iframe gets neither our session's
nor our CSRF cookie (both SameSite=Lax), so its posts skip the CSRF cookie check and are
checked instead by origin (a browser always sends `Origin` on a cross-site POST; it must be
ours). Posts made by chat.js (header `X-Kizuna-Chat`) get a fragment or 204; plain form posts
a redirect, so the page also works without JavaScript.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from server import i18n, policy, ratelimit
from server.accounts.auth import CurrentActor
from server.channels.chat import services, visitor
from server.channels.chat.services import ChatConflict
from server.errors import Invalid
from server.i18n import _
from server.markdown import MarkdownTooLarge
from server.policy import Actor, ensure
from server.realtime import current_event_id
from server.search import registry
from server.search.query import search
from server.settings import get_settings
from server.web.forms import form_data
from server.web.middleware import CSP
from server.web.render import page, redirect

START_LIMIT = ratelimit.Limit("chat_start", attempts=10, window_seconds=3600)
OFFLINE_LIMIT = ratelimit.Limit("chat_offline", attempts=10, window_seconds=3600)
MESSAGE_LIMIT = ratelimit.Limit("chat_message", attempts=40, window_seconds=60)
TYPING_LIMIT = ratelimit.Limit("chat_typing", attempts=60, window_seconds=60)
SUGGESTIONS = 5
FETCH_HEADER = "x-kizuna-chat"
_SOURCE_TOKEN = re.compile(r"^(https?:|'self'|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?)$")
NO_CSRF = {"exclude_from_csrf": True}


# Helpers ------------------------------------------------------------------------------------


def frame_ancestors(setting: str | None = None) -> str:
    """`frame-ancestors` for the chat pages: ourselves plus CHAT_ALLOWED_ORIGINS (scheme or
    origin sources; anything else is ignored). The default "https:" lets any https site embed
    the widget; every other page keeps `frame-ancestors 'none'`."""
    raw = get_settings().chat_allowed_origins if setting is None else setting
    sources = [token.rstrip("/") for token in raw.split() if _SOURCE_TOKEN.match(token.rstrip("/"))]
    return " ".join(["'self'", *[s for s in sources if s != "'self'"]])


def _framable(response: Response[Any]) -> Response[Any]:
    response.headers["content-security-policy"] = CSP.replace(
        "frame-ancestors 'none'", f"frame-ancestors {frame_ancestors()}"
    )
    return response


def _same_origin(request: Request[Any, Any, Any]) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
    base = urlsplit(get_settings().base_url)
    if origin.rstrip("/") == f"{base.scheme}://{base.netloc}":
        return True
    host = request.headers.get("host", "")
    return bool(host) and urlsplit(origin).netloc == host


def _check_origin(request: Request[Any, Any, Any]) -> None:
    ensure(_same_origin(request), _("This request came from another site."))


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _fetch(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get(FETCH_HEADER) == "1"


def _embed(request: Request[Any, Any, Any]) -> bool:
    return request.query_params.get("embed") == "1"


def _suffix(embed: bool) -> str:
    return "?embed=1" if embed else ""


def _with_cookie(response: Response[Any], session_id: int | None) -> Response[Any]:
    response.headers["set-cookie"] = visitor.cookie_header(session_id)
    return response


def _error_response(status: int, errors: dict[str, str]) -> Response[Any]:
    return Response({"status_code": status, "errors": errors}, status_code=status)


async def _conversation(
    request: Request[Any, Any, Any], actor: Actor, session: dict[str, Any], group: str
) -> dict[str, Any]:
    last_event_id = await current_event_id()  # before the data: the socket replays what follows
    return {
        "session": await services.get_session(session["id"]),
        "messages": await services.messages(session["id"]),
        "group": group,
        "last_event_id": last_event_id,
        "max_chars": services.MAX_CHARS,
        "embed": _embed(request),
        "base_path": f"/chat/s/{session['id']}" if group == "customer" else f"/desk/chats/{session['id']}",
    }


# Customers ----------------------------------------------------------------------------------


async def _start_context(request: Request[Any, Any, Any], actor: Actor) -> dict[str, Any]:
    return {
        "online": await services.agents_online() > 0,
        "staff": not policy.can_start_chat(actor),
        "embed": _embed(request),
        "max_chars": services.MAX_CHARS,
        "source_url": request.query_params.get("from", "")[:300],
    }


@get("/chat")
async def chat_home(request: Request[Any, Any, Any], actor: CurrentActor) -> Response[Any]:
    """The hosted chat: the visitor's open chat, else the start form (or, nobody online, the
    offline form)."""
    session = await services.open_session_for(actor, visitor.current())
    if session is not None:
        return _framable(redirect(f"/chat/s/{session['id']}{_suffix(_embed(request))}"))
    return _framable(page(request, "chat/page.html", await _start_context(request, actor)))


@get("/chat/suggest")
async def suggest(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    """Help articles matching what the customer types, searched with their own audience."""
    body = request.query_params.get("body", "")  # `body` cannot be a handler parameter in Litestar
    query = " ".join(body[:300].split())[:200]
    hits: list[Any] = []
    if len(query) >= 3 and "kb" in registry.names():
        hits = (await search(actor, query, types=["kb"], limit=SUGGESTIONS)).hits
    return page(request, "chat/_suggestions.html", {"hits": hits, "q": query})


@post("/chat/start", opt=NO_CSRF)
async def start(request: Request[Any, Any, Any], actor: CurrentActor) -> Response[Any]:
    _check_origin(request)
    await ratelimit.hit(START_LIMIT, f"ip:{_client(request)}")
    values = await form_data(request)
    try:
        session_id = await services.start_chat(
            actor,
            values.get("body", ""),
            name=values.get("name", ""),
            email=values.get("email", ""),
            locale=i18n.get_locale(),
            source_url=values.get("source_url", ""),
        )
    except (Invalid, MarkdownTooLarge) as exc:
        context = await _start_context(request, actor)
        errors = exc.errors if isinstance(exc, Invalid) else {"body": _("The message is too long.")}
        context.update(errors=errors, values=values)
        return _framable(page(request, "chat/page.html", context, status_code=422))
    response = redirect(f"/chat/s/{session_id}{_suffix(_embed(request))}")
    return _framable(_with_cookie(response, session_id) if not actor.is_authenticated else response)


@post("/chat/offline", opt=NO_CSRF)
async def offline(request: Request[Any, Any, Any], actor: CurrentActor) -> Response[Any]:
    _check_origin(request)
    await ratelimit.hit(OFFLINE_LIMIT, f"ip:{_client(request)}")
    values = await form_data(request)
    try:
        ticket_id = await services.open_offline_ticket(
            actor,
            values.get("body", ""),
            name=values.get("name", ""),
            email=values.get("email", ""),
            locale=i18n.get_locale(),
        )
    except (Invalid, MarkdownTooLarge) as exc:
        context = await _start_context(request, actor)
        errors = exc.errors if isinstance(exc, Invalid) else {"body": _("The message is too long.")}
        context.update(errors=errors, values=values, online=False)
        return _framable(page(request, "chat/page.html", context, status_code=422))
    context = {"ticket_id": ticket_id, "embed": _embed(request)}
    return _framable(page(request, "chat/offline_sent.html", context, status_code=201))


@get("/chat/s/{chat_id:int}")
async def session_page(request: Request[Any, Any, Any], actor: CurrentActor, chat_id: FromPath[int]) -> Response[Any]:
    session = await services.access_chat(actor, chat_id, visitor.current())
    group = "agent" if actor.is_agent else "customer"
    if group == "agent":
        return redirect(f"/desk/chats/{chat_id}")
    return _framable(page(request, "chat/session.html", await _conversation(request, actor, session, group)))


@post("/chat/s/{chat_id:int}/messages", opt=NO_CSRF)
async def customer_message(
    request: Request[Any, Any, Any], actor: CurrentActor, chat_id: FromPath[int]
) -> Response[Any]:
    _check_origin(request)
    session = await services.access_chat(actor, chat_id, visitor.current())  # 404 before anything else
    await ratelimit.hit(MESSAGE_LIMIT, f"chat:{chat_id}")
    values = await form_data(request)
    return await _send(request, actor, session, values, customer=True)


async def _send(
    request: Request[Any, Any, Any], actor: Actor, session: dict[str, Any], values: dict[str, str], *, customer: bool
) -> Response[Any]:
    chat_id = session["id"]
    try:
        if customer:
            message, created = await services.send_customer_message(
                actor, chat_id, visitor.current(), values.get("body", ""), values.get("client_ref", ""), session=session
            )
        else:
            message, created = await services.send_agent_message(
                actor, chat_id, values.get("body", ""), values.get("client_ref", ""), session=session
            )
    except (Invalid, MarkdownTooLarge) as exc:
        errors = exc.errors if isinstance(exc, Invalid) else {"body": _("The message is too long.")}
        if _fetch(request):
            return _error_response(422, errors)
        raise Invalid(errors) from None
    except ChatConflict as exc:
        if _fetch(request):
            return _error_response(409, {"body": exc.message})
        return Response({"status_code": 409, "detail": exc.message}, status_code=409)
    base = f"/chat/s/{chat_id}" if customer else f"/desk/chats/{chat_id}"
    if not _fetch(request):
        return redirect(base + _suffix(_embed(request)))
    context = {"m": message, "session": session, "group": "customer" if customer else "agent"}
    return page(request, "chat/_message.html", context, status_code=201 if created else 200)


@post("/chat/s/{chat_id:int}/typing", opt=NO_CSRF, status_code=204)
async def customer_typing(request: Request[Any, Any, Any], actor: CurrentActor, chat_id: FromPath[int]) -> None:
    _check_origin(request)
    await services.access_chat(actor, chat_id, visitor.current())
    await ratelimit.hit(TYPING_LIMIT, f"chat:{chat_id}:customer")
    await services.typing(actor, chat_id, visitor.current())


@post("/chat/s/{chat_id:int}/end", opt=NO_CSRF)
async def customer_end(request: Request[Any, Any, Any], actor: CurrentActor, chat_id: FromPath[int]) -> Response[Any]:
    _check_origin(request)
    await services.end_chat(actor, chat_id, visitor.current())
    return redirect(f"/chat/s/{chat_id}{_suffix(_embed(request))}")


# Agents -------------------------------------------------------------------------------------


def _availability_labels() -> dict[str, str]:
    return {"online": _("Online"), "away": _("Away"), "offline": _("Offline")}


async def _queue_context(actor: Actor) -> dict[str, Any]:
    last_event_id = await current_event_id()
    return {
        "state": await services.agent_state(actor.user_id or 0),
        "waiting": await services.waiting_chats(),
        "mine": await services.agent_chats(actor.user_id or 0),
        "availability_labels": _availability_labels(),
        "max_capacity": services.MAX_CAPACITY,
        "last_event_id": last_event_id,
    }


def _chat_agent(actor: Actor) -> None:
    policy.ensure_signed_in(actor)
    ensure(policy.can_answer_chats(actor))


@get("/desk/chats")
async def queue_page(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    _chat_agent(actor)
    await services.heartbeat(actor)
    return page(request, "chat/desk_queue.html", await _queue_context(actor))


@post("/desk/chats/availability")
async def availability(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    _chat_agent(actor)
    values = await form_data(request)
    try:
        await services.set_availability(actor, values.get("availability", ""), values.get("capacity", ""))
    except Invalid as exc:
        context = await _queue_context(actor)
        context.update(errors=exc.errors, values=values)
        return page(request, "chat/desk_queue.html", context, status_code=422)
    return redirect("/desk/chats")


@post("/desk/chats/heartbeat", status_code=204)
async def agent_heartbeat(actor: CurrentActor) -> None:
    policy.ensure_signed_in(actor)
    await services.heartbeat(actor)


@get("/desk/chats/{chat_id:int}")
async def console(request: Request[Any, Any, Any], actor: CurrentActor, chat_id: FromPath[int]) -> Template:
    _chat_agent(actor)
    session = await services.access_chat(actor, chat_id, None)
    await services.heartbeat(actor)
    return page(request, "chat/desk_chat.html", await _conversation(request, actor, session, "agent"))


@post("/desk/chats/{chat_id:int}/take")
async def take(request: Request[Any, Any, Any], actor: CurrentActor, chat_id: FromPath[int]) -> Response[Any]:
    _chat_agent(actor)
    try:
        await services.take_chat(actor, chat_id)
    except ChatConflict as exc:
        session = await services.access_chat(actor, chat_id, None)
        context = await _conversation(request, actor, session, "agent")
        context["conflict"] = exc.message
        return page(request, "chat/desk_chat.html", context, status_code=409)
    return redirect(f"/desk/chats/{chat_id}")


@post("/desk/chats/{chat_id:int}/messages")
async def agent_message(request: Request[Any, Any, Any], actor: CurrentActor, chat_id: FromPath[int]) -> Response[Any]:
    _chat_agent(actor)
    session = await services.access_chat(actor, chat_id, None)
    await ratelimit.hit(MESSAGE_LIMIT, f"chat:{chat_id}:agent")
    values = await form_data(request)
    return await _send(request, actor, session, values, customer=False)


@post("/desk/chats/{chat_id:int}/typing", status_code=204)
async def agent_typing(actor: CurrentActor, chat_id: FromPath[int]) -> None:
    _chat_agent(actor)
    await ratelimit.hit(TYPING_LIMIT, f"chat:{chat_id}:agent")
    await services.typing(actor, chat_id, None)


@post("/desk/chats/{chat_id:int}/seen", status_code=204)
async def seen(request: Request[Any, Any, Any], actor: CurrentActor, chat_id: FromPath[int]) -> None:
    _chat_agent(actor)
    values = await form_data(request)
    up_to = values.get("up_to", "")
    if not up_to.isdigit() or len(up_to) > 18:
        raise Invalid({"up_to": _("Name the newest message shown.")})
    await services.mark_seen(actor, chat_id, int(up_to))


@post("/desk/chats/{chat_id:int}/end")
async def agent_end(actor: CurrentActor, chat_id: FromPath[int]) -> Redirect:
    _chat_agent(actor)
    await services.end_chat(actor, chat_id, None)
    return redirect(f"/desk/chats/{chat_id}")


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        chat_home,
        suggest,
        start,
        offline,
        session_page,
        customer_message,
        customer_typing,
        customer_end,
        queue_page,
        availability,
        agent_heartbeat,
        console,
        take,
        agent_message,
        agent_typing,
        seen,
        agent_end,
    ],
)

"""Anonymous visitors: a signed cookie names the one chat session they started.

The cookie is read once per request (and per `/live` websocket) by `ChatVisitorMiddleware`,
which puts the session id in a context variable: the `chat:{id}` topic's authoriser and the
chat routes ask `current()` instead of parsing cookies themselves. The cookie grants access to
that chat session only; it never signs anyone in.

Embedded in another site's page, /chat runs in a third-party iframe: over https the cookie is
`SameSite=None; Secure; Partitioned` so the browser sends it there (and keeps it per embedding
site); over plain http (development) it is `SameSite=Lax`.
"""

from __future__ import annotations

import contextvars
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from litestar._parsers import parse_cookie_string
from litestar.types import ASGIApp, Receive, Scope, Send

from server.settings import get_settings

COOKIE = "kz_chat"
MAX_AGE_SECONDS = 7 * 24 * 3600

_current: contextvars.ContextVar[int | None] = contextvars.ContextVar("kizuna_chat_visitor", default=None)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt="kizuna.chat.visitor")


def sign(session_id: int) -> str:
    return _serializer().dumps({"s": session_id})


def read(token: str) -> int | None:
    try:
        data: Any = _serializer().loads(token, max_age=MAX_AGE_SECONDS)
        session_id = data["s"]
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    return session_id if isinstance(session_id, int) else None


def current() -> int | None:
    """The chat session this request's visitor cookie names, if it is valid."""
    return _current.get()


def cookie_header(session_id: int | None) -> str:
    """A Set-Cookie value: the visitor's session, or (None) its removal."""
    value, age = (sign(session_id), MAX_AGE_SECONDS) if session_id is not None else ("", 0)
    parts = [f"{COOKIE}={value}", "Path=/", f"Max-Age={age}", "HttpOnly"]
    if get_settings().secure_cookies:
        parts += ["Secure", "SameSite=None", "Partitioned"]
    else:
        parts.append("SameSite=Lax")
    return "; ".join(parts)


class ChatVisitorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        session_id = None
        for name, value in scope.get("headers", []):
            if name == b"cookie" and COOKIE.encode() in value:
                token = parse_cookie_string(value.decode("latin-1")).get(COOKIE)
                session_id = read(token) if token else None
                break
        reset = _current.set(session_id)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(reset)

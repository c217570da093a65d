"""One-shot messages shown on the next full page, carried in a signed cookie.

`flash()` may be called before a redirect; the `before_send` hook writes the cookie, and the
next page that renders the base layout reads and clears it.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from litestar import Request
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.types import Message, Scope

from server.settings import get_settings

COOKIE = "kz_flash"
_OUT = "_kz_flash_out"
_CLEAR = "_kz_flash_clear"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(get_settings().secret_key, salt="kizuna.flash")


def flash(request: Request[Any, Any, Any], message: str, category: str = "info") -> None:
    request.scope.setdefault(_OUT, []).append([category, message])  # type: ignore[misc]


def pop_flashes(request: Request[Any, Any, Any]) -> list[tuple[str, str]]:
    raw = request.cookies.get(COOKIE)
    pending = request.scope.pop(_OUT, [])  # type: ignore[misc]
    stored: list[list[str]] = []
    if raw:
        request.scope[_CLEAR] = True  # type: ignore[literal-required]
        try:
            stored = _serializer().loads(raw)
        except BadSignature:
            stored = []
    return [(str(c), str(m)) for c, m in [*stored, *pending]][:10]


async def write_flash_cookie(message: Message, scope: Scope) -> None:
    """App `before_send` hook."""
    if message["type"] != "http.response.start":
        return
    pending = scope.get(_OUT)  # type: ignore[call-overload]
    if pending:
        value = _serializer().dumps(pending)
        cookie = Cookie(
            key=COOKIE, value=value, path="/", httponly=True, samesite="lax", secure=get_settings().secure_cookies
        )
    elif scope.get(_CLEAR):  # type: ignore[call-overload]
        cookie = Cookie(key=COOKIE, value="", path="/", max_age=0, httponly=True, samesite="lax")
    else:
        return
    MutableScopeHeaders.from_message(message).add("set-cookie", cookie.to_header(header=""))


__all__ = ["flash", "pop_flashes", "write_flash_cookie"]

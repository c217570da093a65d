"""Request ids, structured access logs and security headers for every response."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.settings import get_settings

log = structlog.get_logger("kizuna.http")
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def security_headers() -> list[tuple[str, str]]:
    headers = [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
        ("cross-origin-opener-policy", "same-origin"),
    ]
    if get_settings().secure_cookies:
        headers.append(("strict-transport-security", "max-age=31536000; includeSubDomains"))
    return headers


async def add_response_headers(message: Message, scope: Scope) -> None:
    """App `before_send` hook: every response, including errors raised before any route or
    middleware ran (unknown paths, wrong methods, CSRF failures), gets the security headers."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    if request_id := scope.get("kizuna_request_id"):  # type: ignore[call-overload]
        headers["x-request-id"] = request_id
    for name, value in security_headers():
        if name not in headers:
            framable = "frame-ancestors 'none'" not in headers.get("content-security-policy", CSP)
            if name == "x-frame-options" and framable:
                continue  # a page that may be framed (the chat widget's /chat) names where in its CSP
            headers[name] = value


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        scope["kizuna_request_id"] = request_id  # type: ignore[typeddict-unknown-key]

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except HTTPException as exc:  # answered by the app's exception handler, outside this middleware
            status = exc.status_code
            raise
        finally:
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            structlog.contextvars.unbind_contextvars("request_id")

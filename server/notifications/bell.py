"""The bell's initial unread count, read once per page with one indexed COUNT.

Jinja renders synchronously, so the count is read before the handler runs and left in the
request state, where `notifications/_bell.html` finds it. Only signed-in GETs of HTML pages pay
for it: the API, static files, htmx partials and websockets do not.
"""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from server.notifications.services import unread_count

STATE_KEY = "notification_unread"
SKIPPED_PREFIXES = ("/api/", "/static/", "/schema", "/healthz")


class UnreadCountMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["path"].startswith(SKIPPED_PREFIXES):
            state = scope.setdefault("state", {})
            actor = state.get("actor")
            is_htmx = any(name == b"hx-request" for name, _value in scope.get("headers", []))
            if actor is not None and actor.is_authenticated and not is_htmx:
                # One statement: outside a transaction it runs on an idle pooled connection
                # (server/db.py), in one hand-off to its thread instead of three (BEGIN, COMMIT).
                state[STATE_KEY] = await unread_count(actor.user_id)
        await self.app(scope, receive, send)

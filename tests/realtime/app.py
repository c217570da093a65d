"""The app as the realtime tests serve it: the real `create_app()` plus the test topic kind and a
small JSON route that publishes inside a real transaction (optionally rolled back)."""

from __future__ import annotations

from typing import Any

from litestar import get, post
from litestar.exceptions import ValidationException

from server import realtime
from server.app import create_app
from server.db import atomic
from server.realtime.hub import get_hub
from tests.realtime import topics


class _RolledBack(Exception):
    pass


@post("/api/_test/publish")
async def publish_route(data: dict[str, Any]) -> dict[str, Any]:
    """{"channel", "event", "payload", "rollback": bool, "ephemeral": bool} → {"id"}"""
    channel, event, payload = data["channel"], data["event"], data.get("payload", {})
    if data.get("ephemeral"):
        await realtime.publish_ephemeral(channel, event, payload)
        return {"id": None}
    event_id = None
    try:
        async with atomic() as tx:
            event_id = await realtime.publish(tx, channel, event, payload)
            if data.get("rollback"):
                raise _RolledBack
    except _RolledBack:
        return {"id": None, "rolled_back": event_id}
    return {"id": event_id}


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>live test</title>
<meta name="htmx-config" content='{{"includeIndicatorStyles": false, "allowEval": false}}'>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<script src="/static/vendor/htmx/htmx-2.0.11.min.js" defer></script>
<script src="/static/vendor/htmx/ext-ws-2.0.4.min.js" defer></script>
<script src="/static/js/live.js" defer></script></head>
<body><div id="room-{room}">{shown}</div><div id="live-typing-room-{room}"></div>
<span hidden data-live-channel="room:{room}" data-live-last-event-id="{last}"></span>
<textarea data-live-typing="room:{room}"></textarea></body></html>"""


@get("/_test/page", media_type="text/html")
async def page_route(room: int, last: int, shown: str = "") -> str:
    """A page as features write them: what it shows (`shown`: the posts, by number, already in
    the page's data), a channel marker and the event id read before that data."""
    posts = "".join(f'<p id="said-{int(n)}">{int(n)}</p>' for n in shown.split(",") if n.isdigit())
    return PAGE.format(room=room, last=last, shown=posts)


@get("/api/_test/stats")
async def stats_route(channel: str = "") -> dict[str, Any]:
    hub = await get_hub()
    if hub is None:
        raise ValidationException("no hub")
    return {
        "subscribers": hub.subscriber_count(channel or None),
        "render_calls": [[*key, count] for key, count in topics.render_calls.items()],
    }


app = create_app()
app.register(publish_route)
app.register(stats_route)
app.register(page_route)

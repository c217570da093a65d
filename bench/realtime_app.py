"""The app as `python -m bench.realtime` serves it: the real `create_app()` plus a bench topic
kind whose event renders a forum-post-sized fragment, and JSON routes to publish and count."""

from __future__ import annotations

from typing import Any

from litestar import get, post
from markupsafe import escape

from server import realtime
from server.app import create_app
from server.db import atomic
from server.policy import Actor
from server.realtime.hub import get_hub

CHANNEL_KIND = "benchroom"
EVENT = "bench.post"
BODY = (
    "Thanks, that worked. For anyone finding this later: the export only picks up the new "
    "timeline once the sync has finished, so wait for the green tick before you press Export. "
) * 4
renders = 0


async def authorize(actor: Actor, room_id: int) -> str | None:
    return "reader"


async def render(payload: dict[str, Any], group: str, locale: str) -> str:
    """About the size of a rendered forum post (~1.4 KB)."""
    global renders
    renders += 1
    n = int(payload["n"])
    return (
        f'<div hx-swap-oob="beforeend:#posts"><article id="post-{n}" class="post" data-author="7">'
        f'<header><a href="/u/7">Mika Tanaka</a> <time datetime="2026-12-04T10:00:00Z">just now</time></header>'
        f'<div class="post-body"><p>{escape(BODY)}</p></div>'
        f'<footer><button class="reaction" data-kind="like">♥ 0</button></footer></article></div>'
    )


@post("/api/_bench/publish")
async def publish_route(data: dict[str, Any]) -> dict[str, Any]:
    async with atomic() as tx:
        event_id = await realtime.publish(tx, f"{CHANNEL_KIND}:{int(data['room'])}", EVENT, {"n": int(data["n"])})
    return {"id": event_id}


@get("/api/_bench/stats")
async def stats_route(channel: str) -> dict[str, Any]:
    hub = await get_hub()
    return {"subscribers": hub.subscriber_count(channel) if hub else 0, "renders": renders}


realtime.register_topic(CHANNEL_KIND, authorize)
realtime.register_event(EVENT, render)
app = create_app()
app.register(publish_route)
app.register(stats_route)

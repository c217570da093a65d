"""A test-only topic kind and events, registered by the test server (tests/realtime/app.py) and by
processes that publish like the worker does (tests/realtime/publisher.py), never by the app.

`room:<id>`: anyone may subscribe to rooms below 1000 (group "reader", staff get "staff"); rooms
from 1000 are for staff only; room 13 is refused to everyone.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from markupsafe import escape

from server import i18n, realtime
from server.policy import Actor

STAFF_ROOMS_FROM = 1000
FORBIDDEN_ROOM = 13

render_calls: Counter[tuple[str, str, str]] = Counter()  # (event, group, locale) -> calls


async def authorize_room(actor: Actor, room_id: int) -> str | None:
    if room_id == FORBIDDEN_ROOM:
        return None
    if actor.is_staff:
        return "staff"
    return None if room_id >= STAFF_ROOMS_FROM else "reader"


async def render_said(payload: dict[str, Any], group: str, locale: str) -> str:
    """One message appended to the room's list; staff also see the internal note."""
    render_calls["room.said", group, locale] += 1
    note = f' data-note="{escape(payload.get("note", ""))}"' if group == "staff" else ""
    return (
        f'<div hx-swap-oob="beforeend:#room-{int(payload["room"])}">'
        f'<p id="said-{int(payload["n"])}" data-group="{escape(group)}" data-locale="{escape(i18n.get_locale())}"'
        f"{note}>{escape(payload['text'])}</p></div>"
    )


async def render_staff_only(payload: dict[str, Any], group: str, locale: str) -> str:
    render_calls["room.staff_only", group, locale] += 1
    return f'<p id="secret">{escape(payload["text"])}</p>' if group == "staff" else ""


realtime.register_topic("room", authorize_room)
realtime.register_event("room.said", render_said)
realtime.register_event("room.staff_only", render_staff_only)

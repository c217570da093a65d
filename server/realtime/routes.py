"""`/live`: one websocket per page carrying several channels.

    ws(s)://host/live?channels=thread:42,user:3&last_event_id=1234

Every channel is authorised by its topic kind (`authorize(actor, id)` → audience group); one
unknown or forbidden channel refuses the connection (close 1008, which htmx's ws extension does
not retry). A browser's Origin must be ours (cross-site websocket hijacking). The server sends
JSON frames: `{"type": "event", "id", "channel", "event", "html"}` (html: out-of-band fragments;
id null for ephemeral events), `{"type": "hello", "id"}` (the newest event id once connected and
caught up: where a client without an id resumes from) and `{"type": "stale"}` (too much was
missed to replay: reload). The client may
send `{"type": "typing", "channel": "thread:42"}` and `{"type": "ping"}`; anything else, or more
than a few messages a second, closes that connection (1003 / 1008).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from urllib.parse import urlsplit

from litestar import WebSocket, websocket

from server import i18n
from server.policy import ANONYMOUS, Actor
from server.realtime import registry
from server.realtime.hub import Connection, Hub, frame, get_hub
from server.realtime.publishing import current_event_id
from server.settings import get_settings

log = logging.getLogger("kizuna.realtime")

PATH = "/live"
MAX_CHANNELS = 20
MAX_MESSAGE_BYTES = 512
BURST = 10  # client messages allowed at once...
REFILL_PER_SECOND = 1.0  # ...and refilled at this rate
CLOSE_POLICY = 1008
CLOSE_UNSUPPORTED = 1003
CLOSE_UNAVAILABLE = 1011


def _origin_allowed(socket: WebSocket) -> bool:
    """Browsers always send Origin on websockets; it must be our BASE_URL or this very host."""
    origin = socket.headers.get("origin")
    if origin is None:
        return True  # not a browser: no ambient cookies to hijack
    base = urlsplit(get_settings().base_url)
    if origin.rstrip("/") == f"{base.scheme}://{base.netloc}":
        return True
    host = socket.headers.get("host", "")
    return bool(host) and urlsplit(origin).netloc == host


def _parse_channels(raw: str) -> list[str] | None:
    channels = list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not channels or len(channels) > MAX_CHANNELS:
        return None
    return channels


async def _authorize(actor: Actor, channels: list[str]) -> tuple[dict[str, str], str | None]:
    """Audience group per channel, or the first channel refused."""
    groups: dict[str, str] = {}
    for channel in channels:
        parsed = registry.parse_channel(channel)
        authorize = registry.topic_authorizer(parsed[0]) if parsed else None
        if parsed is None or authorize is None:
            return groups, channel
        try:
            group = await authorize(actor, parsed[1])
        except Exception:
            log.exception("authorising realtime channel %s failed", channel)
            group = None
        if not group:
            return groups, channel
        groups[channel] = group
    return groups, None


class _Bucket:
    """A token bucket per connection: a burst of BURST messages, then REFILL_PER_SECOND."""

    __slots__ = ("tokens", "stamp")

    def __init__(self) -> None:
        self.tokens = float(BURST)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(float(BURST), self.tokens + (now - self.stamp) * REFILL_PER_SECOND)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _client_message(text: str | None) -> dict[str, str] | None:
    """A known, small client message, or None."""
    if text is None or len(text) > MAX_MESSAGE_BYTES:
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("type") not in ("typing", "ping"):
        return None
    if message["type"] == "typing" and not isinstance(message.get("channel"), str):
        return None
    return message


@websocket(PATH, include_in_schema=False)
async def live(socket: WebSocket) -> None:
    if not _origin_allowed(socket):
        await socket.close(code=CLOSE_POLICY, reason="origin")  # before accept: the handshake gets 403
        return
    actor: Actor = socket.scope.get("state", {}).get("actor", ANONYMOUS)
    channels = _parse_channels(socket.query_params.get("channels", ""))
    last_raw = socket.query_params.get("last_event_id", "")
    last_event_id = int(last_raw) if last_raw.isdigit() and len(last_raw) < 19 else None
    groups, refused = await _authorize(actor, channels or [])
    await socket.accept()
    if channels is None:
        await socket.close(code=CLOSE_POLICY, reason=f"channels: 1 to {MAX_CHANNELS} required")
        return
    if refused is not None:
        await socket.close(code=CLOSE_POLICY, reason=f"forbidden channel {refused}"[:120])
        return
    hub = await get_hub()
    if hub is None:
        await socket.close(code=CLOSE_UNAVAILABLE, reason="realtime unavailable")
        return
    conn = Connection(socket.send, actor.user_id, i18n.get_locale(), groups)
    try:
        await hub.join(conn)
        if last_event_id is not None:
            await hub.catch_up(conn, last_event_id)
        conn.enqueue(frame(type="hello", id=await current_event_id()))  # a baseline for reconnecting
        await _receive_loop(socket, conn, hub)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("realtime connection failed")
    finally:
        await hub.leave(conn)


async def _receive_loop(socket: WebSocket, conn: Connection, hub: Hub) -> None:
    bucket = _Bucket()
    while True:
        event = await socket.receive()
        if event["type"] == "websocket.disconnect":
            return
        if conn.closed:  # told to go (backlog): wait for the client's close
            continue
        if not bucket.take():
            conn.close(CLOSE_POLICY, "too many messages")
            continue
        message = _client_message(event.get("text"))  # type: ignore[arg-type]
        if message is None:
            conn.close(CLOSE_UNSUPPORTED, "unsupported message")
            continue
        if message["type"] == "typing":
            await hub.typing_ping(conn, message["channel"])

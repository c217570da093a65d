"""`publish` (stored in the caller's transaction, broadcast after commit), `publish_ephemeral`,
a capture for tests, and the purge of old events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from server import jobs
from server.db import Tx
from server.prepared import insert, prepared
from server.realtime import bus, registry
from server.realtime.hub import _stamp
from server.realtime.tables import RealtimeEvent

KEEP_EVENTS = timedelta(days=1)
PURGE_KIND = "realtime.purge"
PURGE_EVERY_EVENTS = 200  # every so many stored events, make sure an (hourly, idempotent) purge is queued


@dataclass(frozen=True)
class SentEvent:
    channel: str
    event: str
    payload: dict[str, Any]
    event_id: int | None


_captures: list[list[SentEvent]] = []


@contextmanager
def capture() -> Iterator[list[SentEvent]]:
    """Record what is broadcast inside the block (stored events once their transaction commits):
    `with realtime.capture() as sent: ...; assert [e.channel for e in sent] == ["thread:1"]`."""
    sent: list[SentEvent] = []
    _captures.append(sent)
    try:
        yield sent
    finally:
        _captures.remove(sent)


def _record(event: SentEvent) -> None:
    for sent in _captures:
        sent.append(event)


def _check(channel: str, event: str, payload: dict[str, Any]) -> str:
    if registry.parse_channel(channel) is None:
        raise ValueError(f"realtime channel {channel!r} is malformed or its kind is not registered")
    if registry.event_renderer(event) is None:
        raise ValueError(f"realtime event {event!r} is not registered (register_event)")
    return json.dumps(payload)  # must be JSON; raises TypeError otherwise


async def publish(tx: Tx, channel: str, event: str, payload: dict[str, Any]) -> int:
    """Store the event in the caller's transaction; broadcast it after commit. Returns its id."""
    _check(channel, event, payload)
    moment = datetime.now(UTC)
    event_id: int = await insert(
        RealtimeEvent, {"channel": channel, "event": event, "payload": payload, "created_at": moment}
    )
    if event_id % PURGE_EVERY_EVENTS == 0:
        hour = moment.strftime("%Y%m%d%H")
        await jobs.enqueue(PURGE_KIND, {}, key=f"{PURGE_KIND}:{hour}", delay=timedelta(minutes=1))
    message = {"i": event_id, "k": _stamp(moment), "c": channel, "e": event, "p": payload}

    async def after_commit() -> None:
        _record(SentEvent(channel, event, payload, event_id))
        await bus.broadcast(message)

    tx.on_commit(after_commit)
    return event_id


async def publish_ephemeral(channel: str, event: str, payload: dict[str, Any]) -> None:
    """Broadcast now, keep nothing (presence and the like). Typing indicators need no call:
    clients send typing pings and the hub counts them (see live.js `kzLive.typing`)."""
    _check(channel, event, payload)
    _record(SentEvent(channel, event, payload, None))
    await bus.broadcast({"i": None, "c": channel, "e": event, "p": payload})


@prepared
def _newest_event() -> Any:
    return RealtimeEvent.select(RealtimeEvent.id).order_by(RealtimeEvent.id, ascending=False).limit(1)


async def current_event_id() -> int:
    """The newest stored event id. Read it *before* the data a page shows and put it on the
    page's `ws-connect` element as `data-live-last-event-id`, so the page's socket replays
    anything that happened while the page was being rendered."""
    row = await _newest_event.first()
    return row["id"] if row else 0


async def purge(older_than: timedelta = KEEP_EVENTS) -> int:
    """Delete events past the catch-up horizon; the newest event always stays, so ids never
    start again (a reconnecting client's last id must stay meaningful)."""
    newest = await current_event_id()
    cutoff = datetime.now(UTC) - older_than
    deleted = (
        await RealtimeEvent.delete()
        .where((RealtimeEvent.created_at < cutoff) & (RealtimeEvent.id < newest))
        .returning(RealtimeEvent.id)
    )
    return len(deleted)


@jobs.handler(PURGE_KIND)
async def _purge_job(job: jobs.ClaimedJob) -> None:
    await purge()

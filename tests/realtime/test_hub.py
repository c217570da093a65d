"""The hub and `publish` in-process: the channels plugin really runs (memory backend); the only
stand-in is each connection's ASGI `send`, which records frames (and can stall like a slow client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.channels.backends.memory import MemoryChannelsBackend

from server import realtime
from server.db import atomic
from server.realtime import hub as hub_module
from server.realtime.bus import LivePlugin
from server.realtime.hub import MAX_BACKLOG, Connection, Hub
from server.realtime.tables import RealtimeEvent
from tests.realtime import topics


class Socket:
    """What the hub sends to one client; `stall()` makes sends wait like a full TCP buffer."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.open = asyncio.Event()
        self.open.set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.open.wait()
        self.messages.append(message)

    def stall(self) -> None:
        self.open.clear()

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(m["text"]) for m in self.messages if m["type"] == "websocket.send"]


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    plugin = LivePlugin(backend=MemoryChannelsBackend(), arbitrary_channels_allowed=True)
    async with plugin:
        found = await hub_module.get_hub()
        assert found is not None
        yield found


def connect(
    hub: Hub, group: str = "reader", locale: str = "en", user_id: int | None = None
) -> tuple[Connection, Socket]:
    socket = Socket()
    return Connection(socket.send, user_id, locale, {"room:1": group}), socket


def said(n: int) -> dict[str, Any]:
    return {"i": n, "k": "t", "c": "room:1", "e": "room.said", "p": {"room": 1, "n": n, "text": f"m{n}"}}


async def test_one_render_per_group_and_locale(hub: Hub) -> None:
    pairs = [connect(hub) for _ in range(50)] + [connect(hub, locale="ja") for _ in range(20)]
    pairs += [connect(hub, group="staff") for _ in range(5)]
    for conn, _socket in pairs:
        await hub.join(conn)
    topics.render_calls.clear()
    await hub.dispatch(said(1))
    assert dict(topics.render_calls) == {
        ("room.said", "reader", "en"): 1,
        ("room.said", "reader", "ja"): 1,
        ("room.said", "staff", "en"): 1,
    }
    assert all(len(socket.frames) == 1 for _conn, socket in pairs)
    await hub.dispatch(said(1))  # the same event again (from the poll, say): not sent twice
    assert all(len(socket.frames) == 1 for _conn, socket in pairs)


async def test_a_slow_client_delays_nobody_and_is_told_to_reconnect(hub: Hub) -> None:
    (slow, slow_socket), (fast, fast_socket) = connect(hub), connect(hub)
    await hub.join(slow)
    await hub.join(fast)
    slow_socket.stall()
    for n in range(1, 4):
        await hub.dispatch(said(n))
    assert [f["id"] for f in fast_socket.frames] == [1, 2, 3]
    assert slow_socket.frames == []
    slow_socket.open.set()
    await asyncio.sleep(0.01)
    assert [f["id"] for f in slow_socket.frames] == [1, 2, 3]  # in order once it drains
    slow_socket.stall()
    for n in range(4, 4 + MAX_BACKLOG + 2):
        await hub.dispatch(said(n))
    assert slow.closed
    assert len(fast_socket.frames) == 3 + MAX_BACKLOG + 2
    slow_socket.open.set()
    await asyncio.sleep(0.01)
    closes = [m for m in slow_socket.messages if m["type"] == "websocket.close"]
    assert [m["code"] for m in closes] == [1013]  # reconnect, then catch up from the event log
    assert len(slow_socket.frames) <= 4  # what was already on its way, nothing queued after


class GatedBackend(MemoryChannelsBackend):
    """The memory backend, whose subscribe waits for `opened` like a slow bus round trip."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = asyncio.Event()

    async def subscribe(self, channels: Any) -> None:
        await self.opened.wait()
        await super().subscribe(channels)


async def test_a_connection_joins_only_once_its_channel_is_subscribed() -> None:
    backend = GatedBackend()
    async with LivePlugin(backend=backend, arbitrary_channels_allowed=True):
        hub = await hub_module.get_hub()
        assert hub is not None
        (first, _), (second, second_socket) = connect(hub), connect(hub)
        first_join = asyncio.create_task(hub.join(first))
        await asyncio.sleep(0.01)  # the first connection's subscribe is on its way
        second_join = asyncio.create_task(hub.join(second))
        await asyncio.sleep(0.01)
        assert not first_join.done() and not second_join.done()  # neither is told "hello" yet

        backend.opened.set()
        await asyncio.wait_for(asyncio.gather(first_join, second_join), 5)
        async with atomic() as tx:
            await realtime.publish(tx, "room:1", "room.said", {"room": 1, "n": 1, "text": "m1"})
        await asyncio.sleep(0.05)
        assert [f["event"] for f in second_socket.frames] == ["room.said"]


async def test_a_connection_waiting_on_a_subscribe_that_fails_fails_too() -> None:
    backend = GatedBackend()

    async def refuse(channels: Any) -> None:
        await backend.opened.wait()
        raise ConnectionError("bus down")

    backend.subscribe = refuse  # type: ignore[method-assign]
    async with LivePlugin(backend=backend, arbitrary_channels_allowed=True):
        hub = await hub_module.get_hub()
        assert hub is not None
        (first, _), (second, _) = connect(hub), connect(hub)
        first_join = asyncio.create_task(hub.join(first))
        await asyncio.sleep(0.01)
        second_join = asyncio.create_task(hub.join(second))
        await asyncio.sleep(0.01)
        backend.opened.set()
        results = await asyncio.wait_for(asyncio.gather(first_join, second_join, return_exceptions=True), 5)
        assert all(isinstance(r, ConnectionError) for r in results), results  # neither is told "hello"
        assert "room:1" not in hub.subscribers  # the next connection subscribes again


async def test_publish_broadcasts_after_commit_only() -> None:
    with realtime.capture() as sent:
        with pytest.raises(RuntimeError):
            async with atomic() as tx:
                await realtime.publish(tx, "room:1", "room.said", {"room": 1, "n": 1, "text": "no"})
                raise RuntimeError("rolled back")
        async with atomic() as tx:
            event_id = await realtime.publish(tx, "room:1", "room.said", {"room": 1, "n": 2, "text": "yes"})
            assert sent == []  # not before commit
    assert [(e.channel, e.event, e.event_id) for e in sent] == [("room:1", "room.said", event_id)]
    assert await RealtimeEvent.count() == 1


async def test_publish_refuses_unknown_channels_and_events() -> None:
    async with atomic() as tx:
        with pytest.raises(ValueError, match="not registered"):
            await realtime.publish(tx, "room:1", "room.unknown", {})
        with pytest.raises(ValueError, match="malformed"):
            await realtime.publish(tx, "nosuchkind:1", "room.said", {})
        with pytest.raises(ValueError, match="malformed"):
            await realtime.publish(tx, "room:x", "room.said", {})


async def test_purge_drops_old_events_but_keeps_the_newest() -> None:
    old = datetime.now(UTC) - timedelta(days=2)
    for n in range(3):
        await RealtimeEvent.insert(RealtimeEvent(channel="room:1", event="room.said", payload={"n": n}, created_at=old))
    assert await realtime.purge() == 2
    assert await RealtimeEvent.count() == 1  # ids must not start again
    async with atomic() as tx:
        await realtime.publish(tx, "room:1", "room.said", {"room": 1, "n": 9, "text": "new"})
    assert await realtime.purge() == 1
    assert [row["payload"] for row in await RealtimeEvent.select(RealtimeEvent.payload).output(load_json=True)] == [
        {"room": 1, "n": 9, "text": "new"}
    ]

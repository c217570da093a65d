"""The transport between processes: Litestar channels over Redis, PostgreSQL or memory.

- `REDIS_URL` set: Redis pub/sub, so every web process and the worker share events.
- PostgreSQL without Redis: LISTEN/NOTIFY on the application database (payloads above NOTIFY's
  8000-byte limit travel as a reference to the stored event).
- SQLite without Redis: in-process memory. Events that another process (the worker) stores
  reach the web process through a one-query-per-second poll of the event log (see hub.py);
  ephemeral events from another process are lost. That is the single-process dev setup.

Backend channel names carry a namespace derived from DATABASE_URL, so two installations (or
test runs) sharing one Redis never see each other's events (Redis pub/sub ignores db numbers).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from litestar.channels import ChannelsPlugin
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.backends.redis import RedisChannelsPubSubBackend

from server.settings import Settings, get_settings

log = logging.getLogger("kizuna.realtime")

NOTIFY_LIMIT_BYTES = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
CONTROL_CHANNEL = "_hub"  # the hub's subscriber always holds this one, so it never runs dry


def backend_kind(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    if settings.redis_url:
        return "redis"
    if settings.is_postgres:
        return "postgres"
    return "memory"


def namespace(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    digest = hashlib.sha256(settings.database_url.encode()).hexdigest()[:10]
    return f"kz{digest}:"


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


class PgNotifyBackend(AsyncPgChannelsBackend):
    """LISTEN on one dedicated connection; NOTIFY through the app's own pool (Litestar's
    backend would open a new connection for every publish)."""

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        await pg_notify(data, channels)


async def pg_notify(data: bytes, channels: Iterable[str]) -> None:
    from server.realtime.tables import RealtimeEvent

    text = data.decode()
    for channel in channels:
        await RealtimeEvent.raw("SELECT pg_notify({}, {})", channel, text)


def make_backend(settings: Settings | None = None) -> ChannelsBackend:
    settings = settings or get_settings()
    kind = backend_kind(settings)
    if kind == "redis":
        from redis.asyncio import Redis

        return RedisChannelsPubSubBackend(redis=Redis.from_url(settings.redis_url or ""))
    if kind == "postgres":
        return PgNotifyBackend(dsn=settings.database_url)
    return MemoryChannelsBackend()


class LivePlugin(ChannelsPlugin):
    """The channels plugin of a web process; while it runs, publishes go through it and the
    process's hub receives from it."""

    async def __aenter__(self) -> LivePlugin:
        global _active
        tune_gc()
        await super().__aenter__()
        _active = self
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        global _active
        from server.realtime.hub import stop_hub

        await stop_hub()
        if _active is self:
            _active = None
        await super().__aexit__(exc_type, exc_val, exc_tb)


_active: LivePlugin | None = None

GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """A web process holds thousands of long-lived sockets (~100 objects each). With CPython's
    default thresholds a full collection walks all of them every few thousand allocations, and a
    fan-out to 5,000 subscribers allocates that many: measured, one event in five then took over a
    second instead of ~200 ms. Collect young objects in larger batches (full collections become
    rare, not gone) and freeze what start-up created (modules, templates), which is never garbage."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def channels_plugin(settings: Settings | None = None) -> LivePlugin:
    """The plugin for create_app (arbitrary channels: the websocket route authorises them)."""
    return LivePlugin(backend=make_backend(settings), arbitrary_channels_allowed=True)


def active_plugin() -> LivePlugin | None:
    return _active


class _Standalone:
    """Publishing from a process without the web app (the worker, a CLI command)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.redis: Any = None

    async def publish(self, data: bytes, channel: str) -> None:
        settings = get_settings()
        kind = backend_kind(settings)
        if kind == "postgres":
            await pg_notify(data, [channel])
        elif kind == "redis":
            loop = asyncio.get_running_loop()
            if self.redis is None or self.loop is not loop:
                from redis.asyncio import Redis

                self.redis, self.loop = Redis.from_url(settings.redis_url or ""), loop
            await self.redis.publish(channel, data)
        # memory: nothing to reach; stored events reach the web process through its poll

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None


_standalone = _Standalone()


async def close_standalone() -> None:
    """For a short-lived publishing process: release its Redis connection."""
    await _standalone.close()


async def broadcast(message: dict[str, Any]) -> None:
    """Send one event (stored or ephemeral) to every process's hub."""
    data = encode(message)
    if len(data) > NOTIFY_LIMIT_BYTES and backend_kind() == "postgres":
        if message.get("i") is None:
            log.warning("ephemeral event %s on %s too large for NOTIFY; dropped", message["e"], message["c"])
            return
        data = encode({"i": message["i"], "k": message["k"], "c": message["c"], "ref": 1})
    channel = namespace() + message["c"]
    plugin = active_plugin()
    if plugin is not None:
        plugin.publish(data, channel)
    else:
        await _standalone.publish(data, channel)

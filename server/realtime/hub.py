"""One hub per web process: its websocket connections by channel, audience group and locale.

An event arrives once per process (from the channels plugin, or from the event-log poll on the
single-process memory backend). The hub renders it once per (audience group, locale) present
among the channel's local subscribers and hands the same frame to each of them. A connection
costs a small object and no task of its own: a short-lived sender task exists only while it
has frames waiting, so one slow client never delays the others. A client that falls too far
behind is closed with 1013 and catches up from the event log when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import types
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.channels import Subscriber

from server import i18n
from server.db import is_postgres
from server.realtime import bus, registry
from server.realtime.tables import RealtimeEvent

log = logging.getLogger("kizuna.realtime")

TYPING_EVENT = "_typing"
TYPING_SECONDS = 5.0
TYPING_PING_EVERY = 2.0  # a connection's typing pings are relayed at most this often
MAX_BACKLOG = 256  # frames waiting for one client before it is told to reconnect
CATCH_UP_LIMIT = 500  # more missed events than this: the client is told to reload
RESEND_SECONDS = 10.0  # PostgreSQL: ids commit out of order; resend this recent window
RESEND_IDS = 1000
POLL_SECONDS = 1.0
FRAME_CACHE = 2048

Send = Callable[[dict[str, Any]], Awaitable[None]]


def frame(**fields: Any) -> str:
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


class Connection:
    """One websocket: who it is, the channels it holds (with its group in each), its outbox."""

    __slots__ = (
        "_send",
        "user_id",
        "locale",
        "groups",
        "outbox",
        "sender",
        "catchup",
        "replayed",
        "closed",
        "last_typing",
    )

    def __init__(self, send: Send, user_id: int | None, locale: str, groups: dict[str, str]) -> None:
        self._send = send
        self.user_id = user_id
        self.locale = locale
        self.groups = groups
        self.outbox: deque[str] | None = None
        self.sender: asyncio.Task[None] | None = None
        self.catchup: list[tuple[int | None, str]] | None = None  # live frames held while catching up
        self.replayed: set[int] | None = None  # ids sent by catch-up, whose live copy may still come
        self.closed = False
        self.last_typing = 0.0

    def push(self, event_id: int | None, text: str) -> None:
        if self.closed:
            return
        if self.catchup is not None:
            self.catchup.append((event_id, text))
            return
        if self.replayed and event_id in self.replayed:
            self.replayed.discard(event_id)
            return
        self.enqueue(text)

    def enqueue(self, text: str) -> None:
        if self.closed:
            return
        if self.sender is None:
            # Idle: start the send right here. Writing to a socket whose buffer has room completes
            # without suspending, so a fan-out to thousands costs no task per connection; only a
            # send that has to wait (a slow client) is finished by a task of its own.
            coro = self._send({"type": "websocket.send", "text": text})
            try:
                waiting_on = coro.send(None)
            except StopIteration:
                return
            except Exception:  # the client went away; the handler's receive loop cleans up
                self.closed = True
                return
            self.outbox = deque()
            self.sender = asyncio.get_running_loop().create_task(self._drain(coro, waiting_on))
            return
        if self.outbox is None:
            self.outbox = deque()
        if len(self.outbox) >= MAX_BACKLOG:
            self.close(1013, "too far behind; reconnect to catch up")
            return
        self.outbox.append(text)

    async def _drain(self, started: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        try:
            await _resume(started, waiting_on)
            while self.outbox and not self.closed:
                await self._send({"type": "websocket.send", "text": self.outbox.popleft()})
        except Exception:  # the client went away; the handler's receive loop cleans up
            self.closed = True
        finally:
            self.sender = None
            self.outbox = None  # idle connections hold no deque

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.outbox = None
        asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):  # already gone
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Generator[Any, Any, Any]:
    """Finish, inside a task, a coroutine that was started by hand and suspended on `waiting_on`
    (what Python 3.12's eager tasks do): pass what it waits for up to the task, and the results
    (or exceptions, such as cancellation) back down."""
    while True:
        try:
            value = yield waiting_on
        except BaseException as exc:  # noqa: BLE001 - thrown in by the task: hand it on
            try:
                waiting_on = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                waiting_on = coro.send(value)
            except StopIteration as stop:
                return stop.value


Groups = dict[tuple[str, str], set[Connection]]  # (audience group, locale) -> connections


class Hub:
    def __init__(self, plugin: bus.LivePlugin) -> None:
        self.plugin = plugin
        self.channels: dict[str, Groups] = {}
        self.subscribers: dict[str, Subscriber | None] = {}
        self.subscribing: dict[str, asyncio.Event] = {}  # set once the channel's subscribe is done
        self.tasks: set[asyncio.Task[None]] = set()
        self.recent: OrderedDict[str, None] = OrderedDict()
        self.frames: OrderedDict[tuple[int, str, str, str], str | None] = OrderedDict()
        self.typing: dict[str, dict[int, float]] = {}
        self.typing_timers: dict[str, asyncio.TimerHandle] = {}
        self.namespace = bus.namespace()

    # Lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        if bus.backend_kind() == "memory" and not is_postgres():
            self._spawn(self._poll())

    async def stop(self) -> None:
        for timer in self.typing_timers.values():
            timer.cancel()
        for task in list(self.tasks):
            task.cancel()
        for channel_groups in self.channels.values():
            for conns in channel_groups.values():
                for conn in conns:
                    conn.close(1012, "server restarting")
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # Membership -------------------------------------------------------------------------------

    async def join(self, conn: Connection) -> None:
        """Add the connection to its channels; returns once every one of them is subscribed on
        the bus, also those another connection started subscribing (so nothing published after
        the connection's "hello" can miss it)."""
        new: list[str] = []
        pending: list[tuple[str, asyncio.Event]] = []
        for channel, group in conn.groups.items():
            groups = self.channels.setdefault(channel, {})
            groups.setdefault((group, conn.locale), set()).add(conn)
            if channel not in self.subscribers:
                self.subscribers[channel] = None  # being subscribed
                self.subscribing[channel] = asyncio.Event()
                new.append(channel)
            elif (subscribed := self.subscribing.get(channel)) is not None:
                pending.append((channel, subscribed))
        for channel in new:
            try:
                subscriber = await self.plugin.subscribe(self.namespace + channel)
            except BaseException:
                self.subscribers.pop(channel, None)
                raise
            finally:
                self.subscribing.pop(channel).set()
            if channel not in self.channels:  # everyone left meanwhile
                await self.plugin.unsubscribe(subscriber)
                self.subscribers.pop(channel, None)
                continue
            self.subscribers[channel] = subscriber
            self._spawn(self._listen(subscriber))
        for channel, subscribed in pending:
            await subscribed.wait()
            if self.subscribers.get(channel) is None:  # the other connection's subscribe failed
                raise ConnectionError(f"realtime: subscribing to {channel} failed")

    async def leave(self, conn: Connection) -> None:
        conn.closed = True
        if conn.sender is not None and not conn.sender.done():
            conn.sender.cancel()
        for channel, group in conn.groups.items():
            groups = self.channels.get(channel)
            if groups is None:
                continue
            conns = groups.get((group, conn.locale))
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del groups[(group, conn.locale)]
            if not groups:
                del self.channels[channel]
                self._forget_typing(channel)
                subscriber = self.subscribers.get(channel)
                if subscriber is not None:
                    del self.subscribers[channel]
                    await self.plugin.unsubscribe(subscriber)

    def subscriber_count(self, channel: str | None = None) -> int:
        if channel is not None:
            return sum(len(conns) for conns in self.channels.get(channel, {}).values())
        return len({conn for groups in self.channels.values() for conns in groups.values() for conn in conns})

    # Receiving --------------------------------------------------------------------------------

    async def _listen(self, subscriber: Subscriber) -> None:
        async for data in subscriber.iter_events():
            try:
                await self.dispatch(json.loads(data))
            except Exception:
                log.exception("realtime dispatch failed")

    async def _poll(self) -> None:
        """Memory backend on SQLite: pick up events other processes (the worker) stored.
        SQLite serialises writers, so ids commit in order and a watermark is exact."""
        watermark = await _max_event_id()
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if not self.channels:
                continue
            try:
                top = await _max_event_id()
                if top < watermark:  # the log was emptied (tests): ids start again
                    watermark = 0
                if top == watermark:
                    continue
                rows = await (
                    RealtimeEvent.select()
                    .where(RealtimeEvent.id > watermark)
                    .order_by(RealtimeEvent.id)
                    .limit(CATCH_UP_LIMIT)
                    .output(load_json=True)
                )
                for row in rows:
                    watermark = max(watermark, row["id"])
                    if row["channel"] in self.channels:
                        await self.dispatch(_message_from_row(row))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("realtime event-log poll failed")

    def _seen(self, message: dict[str, Any]) -> bool:
        """Has this stored event been dispatched here already (from the bus or the poll)?"""
        key = f"{message['i']}@{message.get('k', '')}"
        if key in self.recent:
            return True
        self.recent[key] = None
        if len(self.recent) > 4096:
            self.recent.popitem(last=False)
        return False

    async def dispatch(self, message: dict[str, Any]) -> None:
        channel = message["c"]
        if message.get("ref"):  # too large for the transport: read it from the log
            row = await RealtimeEvent.select().where(RealtimeEvent.id == message["i"]).first().output(load_json=True)
            if row is None:
                return
            message = _message_from_row(row)
        event_id = message.get("i")
        if event_id is not None and self._seen(message):
            return
        if message["e"] == TYPING_EVENT:
            await self._typing_update(channel, int(message["p"].get("u", 0)))
            return
        groups = self.channels.get(channel)
        if not groups:
            return
        for (group, locale), conns in list(groups.items()):
            text = await self.render(event_id, message, group, locale)
            if text is None:
                continue
            for conn in list(conns):
                conn.push(event_id, text)

    async def render(self, event_id: int | None, message: dict[str, Any], group: str, locale: str) -> str | None:
        """The frame of one event for one (group, locale); stored events are cached, so a crowd
        reconnecting after a restart does not render the same fragment again and again."""
        cache_key = (event_id, message.get("k", ""), group, locale) if event_id is not None else None
        if cache_key is not None and cache_key in self.frames:
            self.frames.move_to_end(cache_key)
            return self.frames[cache_key]
        renderer = registry.event_renderer(message["e"])
        text: str | None = None
        if renderer is None:
            log.warning("no renderer registered for realtime event %r", message["e"])
        else:
            token = i18n.set_locale(locale)
            try:
                html = await renderer(message["p"], group, locale)
            except Exception:
                log.exception("rendering realtime event %s for %s/%s failed", message["e"], group, locale)
                html = ""
            finally:
                i18n._current_locale.reset(token)
            if html:
                text = frame(type="event", id=event_id, channel=message["c"], event=message["e"], html=html)
        if cache_key is not None:
            self.frames[cache_key] = text
            if len(self.frames) > FRAME_CACHE:
                self.frames.popitem(last=False)
        return text

    # Catch-up ---------------------------------------------------------------------------------

    async def catch_up(self, conn: Connection, last_event_id: int) -> None:
        """Send what the client missed since `last_event_id`, then the live frames held
        meanwhile, each event once."""
        conn.catchup = []
        try:
            channels = list(conn.groups)
            condition = RealtimeEvent.id > last_event_id
            if is_postgres():
                recent = datetime.now(UTC) - timedelta(seconds=RESEND_SECONDS)
                condition = condition | (
                    (RealtimeEvent.id > last_event_id - RESEND_IDS) & (RealtimeEvent.created_at >= recent)
                )
            rows = await (
                RealtimeEvent.select()
                .where(RealtimeEvent.channel.is_in(channels) & condition)
                .order_by(RealtimeEvent.id)
                .limit(CATCH_UP_LIMIT + 1)
                .output(load_json=True)
            )
            sent: set[int] = set()
            if len(rows) > CATCH_UP_LIMIT:
                conn.enqueue(frame(type="stale"))
            else:
                for row in rows:
                    message = _message_from_row(row)
                    text = await self.render(row["id"], message, conn.groups[row["channel"]], conn.locale)
                    sent.add(row["id"])
                    if text is not None:
                        conn.enqueue(text)
            held, conn.catchup = conn.catchup, None
            for event_id, text in held:
                if event_id is None or event_id not in sent:
                    conn.enqueue(text)
                else:
                    sent.discard(event_id)
            # an event the query saw may still be on its way here live: drop that copy too
            conn.replayed = sent or None
        finally:
            conn.catchup = None

    # Typing -----------------------------------------------------------------------------------

    async def typing_ping(self, conn: Connection, channel: str) -> None:
        """A client says its user is typing on `channel`: tell every process (ephemeral)."""
        if conn.user_id is None or channel not in conn.groups:
            return
        now = asyncio.get_running_loop().time()
        if now - conn.last_typing < TYPING_PING_EVERY:
            return
        conn.last_typing = now
        await bus.broadcast({"i": None, "c": channel, "e": TYPING_EVENT, "p": {"u": conn.user_id}})

    async def _typing_update(self, channel: str, user_id: int) -> None:
        if channel not in self.channels or not user_id:
            return
        loop = asyncio.get_running_loop()
        typers = self.typing.setdefault(channel, {})
        is_new = user_id not in typers
        typers[user_id] = loop.time() + TYPING_SECONDS
        if is_new:
            await self._send_typing(channel)
        self._schedule_expiry(channel)

    def _schedule_expiry(self, channel: str) -> None:
        typers = self.typing.get(channel)
        if old := self.typing_timers.pop(channel, None):
            old.cancel()
        if not typers:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.05, min(typers.values()) - loop.time())
        self.typing_timers[channel] = loop.call_later(delay, lambda: self._spawn(self._expire(channel)))

    async def _expire(self, channel: str) -> None:
        self.typing_timers.pop(channel, None)
        typers = self.typing.get(channel)
        if not typers:
            return
        now = asyncio.get_running_loop().time()
        gone = [user for user, until in typers.items() if until <= now]
        for user in gone:
            del typers[user]
        if gone:
            await self._send_typing(channel)
        if not typers:
            self.typing.pop(channel, None)
        self._schedule_expiry(channel)

    def _forget_typing(self, channel: str) -> None:
        self.typing.pop(channel, None)
        if timer := self.typing_timers.pop(channel, None):
            timer.cancel()

    async def _send_typing(self, channel: str) -> None:
        """Each subscriber sees how many *other* people type: at most a few distinct frames."""
        groups = self.channels.get(channel)
        if not groups:
            return
        typers = self.typing.get(channel, {})
        parsed = registry.parse_channel(channel)
        if parsed is None:
            return
        renderer = registry.typing_renderer(parsed[0]) or default_typing_indicator
        frames: dict[tuple[str, int], str] = {}
        for (_group, locale), conns in list(groups.items()):
            for conn in list(conns):
                others = len(typers) - (1 if conn.user_id in typers else 0)
                key = (locale, others)
                if key not in frames:
                    token = i18n.set_locale(locale)
                    try:
                        html = await renderer(channel, others, locale)
                    except Exception:
                        log.exception("typing indicator for %s failed", channel)
                        html = ""
                    finally:
                        i18n._current_locale.reset(token)
                    frames[key] = frame(type="event", id=None, channel=channel, event="typing", html=html)
                conn.push(None, frames[key])


def typing_element_id(channel: str) -> str:
    """The id of the element a page keeps for a channel's typing indicator."""
    return "live-typing-" + channel.replace(":", "-")


async def default_typing_indicator(channel: str, others: int, locale: str) -> str:
    from markupsafe import escape

    text = i18n.ngettext("%(num)d person is replying…", "%(num)d people are replying…", others) if others else ""
    return (
        f'<div id="{typing_element_id(channel)}" hx-swap-oob="true" class="live-typing" '
        f'aria-live="polite">{escape(text)}</div>'
    )


def _message_from_row(row: dict[str, Any]) -> dict[str, Any]:
    payload = row["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload)
    return {"i": row["id"], "k": _stamp(row["created_at"]), "c": row["channel"], "e": row["event"], "p": payload}


def _stamp(moment: datetime) -> str:
    """The creation time as the bus carries it (with the id, it names an event uniquely even
    when a test empties the log and ids start again)."""
    return f"{moment.timestamp():.6f}"


async def _max_event_id() -> int:
    row = await RealtimeEvent.select(RealtimeEvent.id).order_by(RealtimeEvent.id, ascending=False).first()
    return row["id"] if row else 0


_hub: Hub | None = None


async def get_hub() -> Hub | None:
    """This process's hub, started on first use; None when the channels plugin is not running."""
    global _hub
    plugin = bus.active_plugin()
    if plugin is None:
        return None
    if _hub is None or _hub.plugin is not plugin:
        _hub = Hub(plugin)
        _hub.start()
    return _hub


async def stop_hub() -> None:
    global _hub
    if _hub is not None:
        hub, _hub = _hub, None
        await hub.stop()

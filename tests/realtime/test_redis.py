"""Several processes share events through Redis: two web processes and a worker-like publisher."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.realtime.conftest import WebProcess, hello, next_frame, start_web, stop
from tests.realtime.test_live import open_live, run_publisher, said, session_cookie

REDIS_URL = "redis://127.0.0.1:6379/11"


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def two_webs(database: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebProcess, WebProcess]]:
    if not _redis_reachable():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    first = start_web(tmp_path_factory.mktemp("redis-a"), "web-a", {"REDIS_URL": REDIS_URL})
    second = start_web(tmp_path_factory.mktemp("redis-b"), "web-b", {"REDIS_URL": REDIS_URL})
    yield first, second
    stop(first.process)
    stop(second.process)


async def test_events_cross_web_processes_and_come_from_the_worker(two_webs: tuple[WebProcess, WebProcess]) -> None:
    first, second = two_webs
    async with open_live(first, "room:21") as on_first, open_live(second, "room:21") as on_second:
        await hello(on_first)  # subscribed on Redis, as the page's socket is before it is told
        await hello(on_second)
        from_web = first.publish("room:21", "room.said", said(21, 1, "from web A"))
        assert (await next_frame(on_first))["id"] == from_web
        assert (await next_frame(on_second))["id"] == from_web
        from_worker = run_publisher("room:21", said(21, 2, "from the worker"), {"REDIS_URL": REDIS_URL})
        for socket_ in (on_first, on_second):
            frame = await next_frame(socket_)
            assert frame["id"] == from_worker
            assert "from the worker" in frame["html"]


async def test_typing_counts_people_on_other_processes(two_webs: tuple[WebProcess, WebProcess]) -> None:
    first, second = two_webs
    alice, bob = await session_cookie(), await session_cookie()
    async with (
        open_live(first, "room:22", cookie=alice) as on_first,
        open_live(second, "room:22", cookie=bob) as on_second,
    ):
        await hello(on_first)
        await hello(on_second)
        await on_first.send(json.dumps({"type": "typing", "channel": "room:22"}))
        frame = await next_frame(on_second)
        assert frame["event"] == "typing" and "1 person is replying" in frame["html"]

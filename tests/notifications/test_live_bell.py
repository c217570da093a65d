"""The bell updates live: a real uvicorn process serving the app, a real `websockets` client
on the person's `user:{id}` channel, and a fan-out run by this process as the worker would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.accounts import services
from server.policy import Actor
from tests.factories import make_user
from tests.notifications.conftest import FakeTargets, activity, record_and_run
from tests.realtime.conftest import WebProcess, next_frame, start_web, stop


@pytest.fixture(scope="module")
def web(database: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    process = start_web(tmp_path_factory.mktemp("notifications-web"), "web")
    yield process
    stop(process.process)


async def cookie_for(user: Actor) -> str:
    assert user.user_id is not None
    token = await services.start_session(user.user_id, ip="127.0.0.1", user_agent="tests", replaces=None)
    return f"kz_session={token}"


def open_bell(web: WebProcess, user_id: int, cookie: str) -> Any:
    url = f"{web.ws_url}?channels=user:{user_id}"
    return connect(url, additional_headers={"Cookie": cookie}, compression=None)


async def next_event(socket: Any) -> dict[str, Any]:
    while True:
        frame = await next_frame(socket, wait=10)
        if frame["type"] == "event":
            return frame


async def test_a_mention_updates_the_open_bell(targets: FakeTargets, web: WebProcess) -> None:
    author, person = await make_user(name="Aiko"), await make_user()
    assert person.user_id is not None
    targets.add(1)
    async with open_bell(web, person.user_id, await cookie_for(person)) as socket:
        web.wait_subscribers(f"user:{person.user_id}", 1)
        await record_and_run(activity(author, 1, mentioned_user_ids=[person.user_id]))
        frame = await next_event(socket)
        assert frame["channel"] == f"user:{person.user_id}"
        assert frame["event"] == "notifications.unread"
        assert 'id="notification-count"' in frame["html"]
        assert 'hx-swap-oob="true"' in frame["html"]
        assert 'data-unread="1"' in frame["html"]
        await record_and_run(activity(author, 1, object_id=2, mentioned_user_ids=[person.user_id]))
        assert 'data-unread="2"' in (await next_event(socket))["html"]


async def test_nobody_else_may_listen_to_someones_bell(web: WebProcess) -> None:
    person, snoop = await make_user(), await make_user("admin")
    assert person.user_id is not None
    async with open_bell(web, person.user_id, await cookie_for(snoop)) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                json.loads(await socket.recv())
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

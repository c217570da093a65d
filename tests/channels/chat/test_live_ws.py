"""Chat end to end over real websockets: a real server process (tests/realtime's), real
`websockets` clients holding a visitor's chat cookie or an agent's session, and every action
over real HTTP. Delivery, typing both ways, "seen", resuming after a dropped connection with
nothing lost or repeated, and who may not listen."""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import aclosing
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.accounts import services as accounts
from server.channels.chat import services
from server.channels.chat.visitor import COOKIE
from server.policy import Actor
from tests.channels.chat.conftest import Cast
from tests.realtime.conftest import WebProcess, frames_until_quiet, web  # noqa: F401 - the server process fixture

FETCH = {"X-Kizuna-Chat": "1"}
CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]+)"')
SESSION_RE = re.compile(r"/chat/s/(\d+)")


async def _session_cookie(actor: Actor) -> str:
    assert actor.user_id is not None
    return await accounts.start_session(actor.user_id, ip="127.0.0.1", user_agent="tests", replaces=None)


async def _visitor(
    proc: WebProcess, name: str = "Vera Visitor", body: str = "Hello from the widget"
) -> tuple[httpx.AsyncClient, int]:
    client = httpx.AsyncClient(base_url=proc.base_url)
    email = name.split()[0].lower() + "@example.test"
    started = await client.post("/chat/start", data={"name": name, "email": email, "body": body})
    assert started.status_code == 303, started.text
    match = SESSION_RE.search(started.headers["location"])
    assert match and client.cookies.get(COOKIE)
    return client, int(match.group(1))


async def _agent(proc: WebProcess, agent: Actor) -> tuple[httpx.AsyncClient, dict[str, str]]:
    client = httpx.AsyncClient(base_url=proc.base_url, cookies={"kz_session": await _session_cookie(agent)})
    page = await client.get("/desk/chats")
    assert page.status_code == 200, page.text[:300]
    token = CSRF_RE.search(page.text)
    assert token
    return client, {**FETCH, "x-csrftoken": token.group(1)}


def _url(proc: WebProcess, channels: str, last: int | None = None) -> str:
    return f"{proc.ws_url}?channels={channels}" + (f"&last_event_id={last}" if last is not None else "")


async def _frame(socket: Any, event: str, text: str = "", wait: float = 10.0) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), wait))
        if frame["type"] == "event" and frame["event"] == event and text in str(frame["html"]):
            return frame


async def _refused(url: str, cookie: str) -> bool:
    try:
        async with connect(url, additional_headers={"Cookie": cookie}, compression=None) as socket:
            await asyncio.wait_for(socket.recv(), 5)
    except InvalidStatus:
        return True
    except ConnectionClosed as closed:
        return closed.rcvd is not None and closed.rcvd.code == 1008
    return False


async def test_messages_typing_and_seen_travel_between_visitor_and_agent(web: WebProcess, cast: Cast) -> None:  # noqa: F811
    await services.set_availability(cast.agent, "online", 3)
    visitor_http, chat_id = await _visitor(web)
    agent_http, agent_headers = await _agent(web, cast.agent)
    taken = await agent_http.post(f"/desk/chats/{chat_id}/take", headers=agent_headers)
    assert taken.status_code in (200, 303), taken.text[:300]
    channel = f"chat:{chat_id}"
    visitor_cookie = f"{COOKIE}={visitor_http.cookies.get(COOKIE)}"
    agent_cookie = f"kz_session={agent_http.cookies.get('kz_session')}"
    async with (
        aclosing(visitor_http),
        aclosing(agent_http),
        connect(_url(web, channel), additional_headers={"Cookie": visitor_cookie}, compression=None) as visitor,
        connect(_url(web, channel), additional_headers={"Cookie": agent_cookie}, compression=None) as agent,
    ):
        web.wait_subscribers(channel, 2)
        sent = await visitor_http.post(f"/chat/s/{chat_id}/messages", data={"body": "Is my order late?"}, headers=FETCH)
        assert sent.status_code == 201, sent.text
        message_id = int(re.search(r'data-id="(\d+)"', sent.text).group(1))  # type: ignore[union-attr]
        heard = await _frame(agent, "chat.message", "Is my order late?")
        assert "chat-msg-customer" in heard["html"] and "Delivered" not in heard["html"]
        own = await _frame(visitor, "chat.message", "Is my order late?")
        assert "chat-msg-mine" in own["html"] and "Delivered" in own["html"]
        # Typing, each side hearing only the other.
        assert (await agent_http.post(f"/desk/chats/{chat_id}/typing", headers=agent_headers)).status_code == 204
        typing = await _frame(visitor, "chat.typing", "Ada Agent is typing")
        assert f'id="chat-typing-{chat_id}"' in typing["html"] and typing["id"] is None
        assert (await visitor_http.post(f"/chat/s/{chat_id}/typing")).status_code == 204
        await _frame(agent, "chat.typing", "Vera Visitor is typing")
        # The agent's page showed the message: the visitor sees it as seen.
        seen = await agent_http.post(
            f"/desk/chats/{chat_id}/seen", data={"up_to": str(message_id)}, headers=agent_headers
        )
        assert seen.status_code == 204
        marked = await _frame(visitor, "chat.seen", "Seen")
        assert f'id="chat-state-{message_id}"' in marked["html"]
        answer = await agent_http.post(
            f"/desk/chats/{chat_id}/messages", data={"body": "It ships today"}, headers=agent_headers
        )
        assert answer.status_code == 201
        got = await _frame(visitor, "chat.message", "It ships today")
        assert "Ada Agent" in got["html"] and f'id="chat-typing-{chat_id}"' in got["html"]  # clears "typing"
        # Nothing of the agent's own typing came back to the agent.
        rest = await frames_until_quiet(agent, 1.0)
        assert not any(f.get("event") == "chat.typing" and "Ada Agent" in str(f.get("html")) for f in rest)


BODY_RE = re.compile(r'<div class="chat-body"><p>(\w+)</p>')


def _new_lines(frames: list[dict[str, Any]], seen: set[int]) -> list[str]:
    """What a page shows from these frames, keeping (as live.js does) each event id once:
    PostgreSQL's catch-up also resends the last few seconds (ids may commit out of order)."""
    lines = []
    for frame in frames:
        if frame.get("event") != "chat.message" or frame["id"] in seen:
            continue
        seen.add(frame["id"])
        if match := BODY_RE.search(frame["html"]):
            lines.append(match.group(1))
    return lines


async def test_a_dropped_connection_resumes_in_order_without_loss_or_repeats(web: WebProcess, cast: Cast) -> None:  # noqa: F811
    await services.set_availability(cast.agent, "online", 3)
    visitor_http, chat_id = await _visitor(web, "Rei Resume")
    agent_http, agent_headers = await _agent(web, cast.agent)
    await agent_http.post(f"/desk/chats/{chat_id}/take", headers=agent_headers)
    channel = f"chat:{chat_id}"
    cookie = f"{COOKIE}={visitor_http.cookies.get(COOKIE)}"
    seen: set[int] = set()
    async with aclosing(visitor_http), aclosing(agent_http):
        async with connect(_url(web, channel), additional_headers={"Cookie": cookie}, compression=None) as socket:
            hello = json.loads(await asyncio.wait_for(socket.recv(), 5))
            assert hello["type"] == "hello"
            web.wait_subscribers(channel, 1)
            await agent_http.post(f"/desk/chats/{chat_id}/messages", data={"body": "one"}, headers=agent_headers)
            first = await _frame(socket, "chat.message", "one")
            assert _new_lines([first], seen) == ["one"]
        # The connection dropped: three answers arrive meanwhile.
        for text in ("two", "three", "four"):
            reply = await agent_http.post(f"/desk/chats/{chat_id}/messages", data={"body": text}, headers=agent_headers)
            assert reply.status_code == 201
        async with connect(
            _url(web, channel, first["id"]), additional_headers={"Cookie": cookie}, compression=None
        ) as socket:
            frames = await frames_until_quiet(socket, 1.5)
        assert _new_lines(frames, seen) == ["two", "three", "four"]
        ids = [f["id"] for f in frames if f.get("id") is not None and f["id"] > first["id"]]
        assert ids == sorted(set(ids))  # in order, none twice
        # A page that starts from before "one" gets everything, in order.
        async with connect(
            _url(web, channel, hello["id"]), additional_headers={"Cookie": cookie}, compression=None
        ) as socket:
            frames = await frames_until_quiet(socket, 1.5)
        assert _new_lines(frames, set()) == ["one", "two", "three", "four"]


async def test_only_the_chat_s_own_visitor_and_agents_may_listen(web: WebProcess, cast: Cast) -> None:  # noqa: F811
    first_http, first_chat = await _visitor(web, "Fay First")
    second_http, second_chat = await _visitor(web, "Sam Second")
    async with aclosing(first_http), aclosing(second_http):
        first = f"{COOKIE}={first_http.cookies.get(COOKIE)}"
        second = f"{COOKIE}={second_http.cookies.get(COOKIE)}"
        assert await _refused(_url(web, f"chat:{first_chat}"), second)
        assert await _refused(_url(web, f"chat:{first_chat}"), "")
        assert await _refused(_url(web, f"chat:{first_chat}"), f"kz_session={await _session_cookie(cast.outsider)}")
        assert await _refused(_url(web, "chatq:0"), first)
        assert await _refused(_url(web, f"chat:{first_chat},chat:{second_chat}"), first)
        assert await _refused(_url(web, f"chat:{first_chat}"), f"{COOKIE}=forged.cookie")
        agent = f"kz_session={await _session_cookie(cast.agent2)}"
        async with connect(
            _url(web, f"chat:{first_chat},chatq:0"), additional_headers={"Cookie": agent}, compression=None
        ) as socket:
            assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "hello"
        # An internal note on the chat's ticket never reaches the visitor.
        async with connect(
            _url(web, f"chat:{first_chat}"), additional_headers={"Cookie": first}, compression=None
        ) as socket:
            assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "hello"
            web.wait_subscribers(f"chat:{first_chat}", 1)
            session = await services.get_session(first_chat)
            assert session is not None
            bearer = await accounts.create_api_token(cast.agent, "chat tests")
            async with httpx.AsyncClient(base_url=web.base_url, headers={"Authorization": f"Bearer {bearer}"}) as api:
                note = await api.post(
                    f"/api/v1/tickets/{session['ticket']}/messages",
                    json={"body": "Zanshin: refund them quietly", "internal": True},
                )
                assert note.status_code == 201, note.text
            await services.set_availability(cast.agent, "online", 3)
            agent_http, agent_headers = await _agent(web, cast.agent)
            async with aclosing(agent_http):
                taken = await agent_http.post(f"/desk/chats/{first_chat}/take", headers=agent_headers)
                assert taken.status_code in (200, 303)
            joined = await _frame(socket, "chat.message", "joined the chat")
            rest = await frames_until_quiet(socket, 1.0)
            assert "Zanshin" not in json.dumps([joined, *rest])

"""The chat pages over HTTP: framing rules, the visitor cookie, origin checks, the fetch API
of chat.js (fragments, 422, 409, 429), the offline form, and the agents' queue."""

from __future__ import annotations

import re

import httpx

from server.channels.chat import services
from server.channels.chat.routes import frame_ancestors
from server.channels.chat.tables import ChatMessage
from server.channels.chat.visitor import COOKIE
from tests.channels.chat.conftest import Cast
from tests.conftest import csrf_token
from tests.factories import login

FETCH = {"X-Kizuna-Chat": "1"}
SESSION_RE = re.compile(r"/chat/s/(\d+)")


async def _visitor_chat(client: httpx.AsyncClient, body: str = "My invoice is wrong") -> int:
    started = await client.post(
        "/chat/start", data={"name": "Vera Visitor", "email": "vera@example.test", "body": body}, follow_redirects=False
    )
    assert started.status_code == 303, started.text
    assert client.cookies.get(COOKIE)
    match = SESSION_RE.search(started.headers["location"])
    assert match
    return int(match.group(1))


async def test_the_chat_page_may_be_framed_and_no_other_page_may(client: httpx.AsyncClient) -> None:
    page = await client.get("/chat?embed=1")
    assert page.status_code == 200
    assert "frame-ancestors 'self' https:" in page.headers["content-security-policy"]
    assert "x-frame-options" not in page.headers
    assert "script-src 'self'" in page.headers["content-security-policy"]  # the rest of the CSP stays
    assert "data-chat-close" in page.text
    home = await client.get("/")
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    assert home.headers["x-frame-options"] == "DENY"


def test_allowed_origins_accept_origins_and_schemes_only() -> None:
    assert frame_ancestors("https://shop.example http://127.0.0.1:8123 'unsafe-inline' *") == (
        "'self' https://shop.example http://127.0.0.1:8123"
    )
    assert frame_ancestors("") == "'self'"


async def test_nobody_online_shows_the_offline_form_which_opens_a_ticket(client: httpx.AsyncClient, cast: Cast) -> None:
    page = await client.get("/chat")
    assert 'action="/chat/offline' in page.text and "Nobody is available" in page.text
    bad = await client.post("/chat/offline", data={"name": "", "email": "x", "body": ""})
    assert bad.status_code == 422 and "Tell us your name." in bad.text
    sent = await client.post("/chat/offline", data={"name": "Olive", "email": "olive@example.test", "body": "Call me"})
    assert sent.status_code == 201 and "request #" in sent.text


async def test_a_visitor_chats_with_a_signed_cookie(client: httpx.AsyncClient, cast: Cast) -> None:
    await services.set_availability(cast.agent, "online", 3)
    page = await client.get("/chat")
    assert 'action="/chat/start' in page.text
    chat_id = await _visitor_chat(client)
    conversation = await client.get(f"/chat/s/{chat_id}")
    assert conversation.status_code == 200
    assert "My invoice is wrong" in conversation.text and f'data-live-channel="chat:{chat_id}"' in conversation.text
    assert (await client.get("/chat", follow_redirects=False)).headers["location"] == f"/chat/s/{chat_id}"
    sent = await client.post(
        f"/chat/s/{chat_id}/messages", data={"body": "**Still** wrong", "client_ref": "abc-1"}, headers=FETCH
    )
    assert sent.status_code == 201 and "<strong>Still</strong>" in sent.text and "Delivered" in sent.text
    again = await client.post(
        f"/chat/s/{chat_id}/messages", data={"body": "**Still** wrong", "client_ref": "abc-1"}, headers=FETCH
    )
    assert again.status_code == 200 and await ChatMessage.count().where(ChatMessage.session == chat_id) == 2
    too_long = await client.post(
        f"/chat/s/{chat_id}/messages", data={"body": "x" * (services.MAX_CHARS + 1)}, headers=FETCH
    )
    assert too_long.status_code == 422 and "under 2000 characters" in too_long.json()["errors"]["body"]
    assert (await client.post(f"/chat/s/{chat_id}/typing")).status_code == 204
    # Another site cannot post with the visitor's cookie.
    forged = await client.post(
        f"/chat/s/{chat_id}/messages", data={"body": "forged"}, headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403
    # Without the cookie the chat does not exist.
    async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as stranger:  # type: ignore[attr-defined]
        assert (await stranger.get(f"/chat/s/{chat_id}")).status_code == 404
        assert (await stranger.post(f"/chat/s/{chat_id}/messages", data={"body": "hi"})).status_code == 404
    ended = await client.post(f"/chat/s/{chat_id}/end", follow_redirects=False)
    assert ended.status_code == 303
    late = await client.post(f"/chat/s/{chat_id}/messages", data={"body": "one more"}, headers=FETCH)
    assert late.status_code == 409 and late.json()["errors"]["body"] == "This chat has ended."


async def test_messages_are_rate_limited(client: httpx.AsyncClient, cast: Cast) -> None:
    chat_id = await _visitor_chat(client)
    statuses = [
        (await client.post(f"/chat/s/{chat_id}/messages", data={"body": f"n{n}"}, headers=FETCH)).status_code
        for n in range(41)
    ]
    assert statuses[:40] == [201] * 40 and statuses[40] == 429


async def test_agents_take_chats_from_the_queue(client: httpx.AsyncClient, app: object, cast: Cast) -> None:
    first = await services.start_chat(cast.customer, "Where is my order?")
    await login(client, cast.agent.email)
    token = await csrf_token(client, "/desk/chats")
    queue = await client.get("/desk/chats")
    assert "Casey Customer" in queue.text and 'data-live-channel="chatq:0"' in queue.text
    saved = await client.post(
        "/desk/chats/availability", data={"availability": "online", "capacity": "0", "_csrf_token": token}
    )
    assert saved.status_code == 422 and "Capacity is a number" in saved.text
    taken = await client.post(f"/desk/chats/{first}/take", data={"_csrf_token": token}, follow_redirects=False)
    assert taken.status_code == 303
    console = await client.get(f"/desk/chats/{first}")
    assert "Where is my order?" in console.text and "Ada Agent joined the chat." in console.text
    answer = await client.post(
        f"/desk/chats/{first}/messages", data={"body": "On its way"}, headers={**FETCH, "x-csrftoken": token}
    )
    assert answer.status_code == 201 and "chat-msg-mine" in answer.text
    await services.end_chat(cast.agent, first, None)
    again = await client.post(f"/desk/chats/{first}/take", data={"_csrf_token": token})
    assert again.status_code == 409 and "This chat has ended." in again.text

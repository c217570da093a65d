"""Collision detection and live desk updates end to end: a real server process, real websocket
clients (the `websockets` package) holding real sessions, and changes made over real HTTP."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.accounts import services as accounts
from server.policy import Actor
from tests.desk.conftest import People
from tests.desk.factories import make_ticket
from tests.realtime.conftest import WebProcess, frames_until_quiet, web  # noqa: F401 - the server process fixture

CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def _cookie(actor: Actor) -> str:
    assert actor.user_id is not None
    session = await accounts.start_session(actor.user_id, ip="127.0.0.1", user_agent="tests", replaces=None)
    return f"kz_session={session}"


async def _bearer(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {await accounts.create_api_token(actor, 'live desk')}"}


async def _frame(socket: Any, event: str, text: str = "", wait: float = 10.0) -> dict[str, Any]:
    """The first event frame of `event` whose HTML holds `text`."""
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


async def test_agents_see_each_other_viewing_and_typing(web: WebProcess, people: People) -> None:  # noqa: F811
    ticket_id = await make_ticket(people.customer, "Printer jam")
    ada, ben = await _cookie(people.agent), await _cookie(people.agent2)
    url = f"{web.ws_url}?channels=ticket:{ticket_id}"
    async with (
        connect(url, additional_headers={"Cookie": ada}, compression=None) as ada_socket,
        connect(url, additional_headers={"Cookie": ben}, compression=None) as ben_socket,
        httpx.AsyncClient(base_url=web.base_url, cookies={"kz_session": ben.split("=", 1)[1]}) as ben_http,
    ):
        web.wait_subscribers(f"ticket:{ticket_id}", 2)
        # Ben opens the ticket page; its heartbeat says he is viewing.
        page = await ben_http.get(f"/desk/tickets/{ticket_id}")
        assert page.status_code == 200, page.text[:500]
        token = CSRF_RE.search(page.text)
        assert token
        beat = await ben_http.post(f"/desk/tickets/{ticket_id}/presence", headers={"x-csrftoken": token.group(1)})
        assert beat.status_code == 204, beat.text
        viewing = await _frame(ada_socket, "ticket.presence", "Ben Agent")
        assert f'id="desk-viewers-{ticket_id}"' in viewing["html"] and viewing["id"] is None
        # Ben types a reply: Ada is told one other person is typing; Ben is not told about himself.
        await ben_socket.send(json.dumps({"type": "typing", "channel": f"ticket:{ticket_id}"}))
        typing = await _frame(ada_socket, "typing", "1 other person is typing a reply")
        assert f'id="live-typing-ticket-{ticket_id}"' in typing["html"]
        ben_frames = await frames_until_quiet(ben_socket, 1.0)
        assert not any("typing a reply" in str(f.get("html")) for f in ben_frames)


async def test_customer_gets_the_public_reply_but_never_the_internal_note(
    web: WebProcess,  # noqa: F811
    people: People,
) -> None:
    ticket_id = await make_ticket(people.customer, "Cannot log in")
    url = f"{web.ws_url}?channels=ticket:{ticket_id}"
    agent_api = await _bearer(people.agent)
    async with (
        connect(url, additional_headers={"Cookie": await _cookie(people.customer)}, compression=None) as customer,
        connect(url, additional_headers={"Cookie": await _cookie(people.agent2)}, compression=None) as colleague,
        httpx.AsyncClient(base_url=web.base_url, headers=agent_api) as http,
    ):
        web.wait_subscribers(f"ticket:{ticket_id}", 2)
        note = await http.post(
            f"/api/v1/tickets/{ticket_id}/messages", json={"body": "Zanshin: check the VIP flag", "internal": True}
        )
        assert note.status_code == 201, note.text
        reply = await http.post(f"/api/v1/tickets/{ticket_id}/messages", json={"body": "Please reset your password"})
        assert reply.status_code == 201, reply.text
        got = await _frame(customer, "ticket.message.created", "Please reset your password")
        assert f'<ol id="conversation-{ticket_id}" hx-swap-oob="beforeend">' in got["html"]
        status = await _frame(customer, "ticket.updated", "Open")
        assert f'id="ticket-status-{ticket_id}"' in status["html"] and "ticket-summary" not in status["html"]
        rest = await frames_until_quiet(customer, 1.0)
        everything = json.dumps([got, status, *rest])
        assert "Zanshin" not in everything and "Internal note" not in everything and "ticket-event" not in everything
        # The other agent hears both, the note marked as internal.
        heard = await _frame(colleague, "ticket.message.created", "Zanshin")
        assert "ticket-message-internal" in heard["html"]
        await _frame(colleague, "ticket.message.created", "Please reset your password")


async def test_customers_cannot_subscribe_to_others_tickets_or_the_queue(
    web: WebProcess,  # noqa: F811
    people: People,
) -> None:
    colleague_ticket = await make_ticket(people.colleague, "Colin's problem")
    own = await make_ticket(people.customer, "Casey's problem")
    customer = await _cookie(people.customer)
    assert await _refused(f"{web.ws_url}?channels=ticket:{colleague_ticket}", customer)
    assert await _refused(f"{web.ws_url}?channels=desk:0", customer)
    assert await _refused(f"{web.ws_url}?channels=ticket:{own},desk:0", customer)  # one refused channel: all
    assert await _refused(f"{web.ws_url}?channels=ticket:{own}", await _cookie(people.outsider))
    assert await _refused(f"{web.ws_url}?channels=ticket:{own}", "")  # anonymous
    # The org admin may follow the organisation's tickets (customer group).
    async with connect(
        f"{web.ws_url}?channels=ticket:{colleague_ticket}",
        additional_headers={"Cookie": await _cookie(people.org_admin)},
        compression=None,
    ) as socket:
        hello = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert hello["type"] == "hello"


async def test_new_tickets_reach_the_agents_queue(web: WebProcess, people: People) -> None:  # noqa: F811
    async with (
        connect(
            f"{web.ws_url}?channels=desk:0",
            additional_headers={"Cookie": await _cookie(people.agent)},
            compression=None,
        ) as queue,
        httpx.AsyncClient(base_url=web.base_url, headers=await _bearer(people.customer)) as http,
    ):
        web.wait_subscribers("desk:0", 1)
        created = await http.post("/api/v1/tickets", json={"subject": "Live queue", "body": "Is anyone there?"})
        assert created.status_code == 201, created.text
        ticket_id = created.json()["id"]
        pulse = await _frame(queue, "desk.queue", f'data-ticket="{ticket_id}"')
        assert 'id="desk-queue-pulse"' in pulse["html"] and isinstance(pulse["id"], int)

"""Live updates of a thread: which events each action publishes, the fragments they render, who
may subscribe, and (end to end) two real websocket clients seeing each other's posts."""

from __future__ import annotations

import asyncio
import json

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from server import realtime
from server.accounts import services as accounts
from server.forum import live, services
from server.policy import ANONYMOUS, Actor
from tests.factories import make_user
from tests.forum.factories import make_category, make_thread, reply
from tests.realtime.conftest import WebProcess, web  # noqa: F401 - the real server process fixture


async def test_actions_publish_to_the_thread_channel(asker: Actor, helper: Actor, qa_category: int) -> None:
    thread_id = await make_thread(asker, qa_category)
    with realtime.capture() as sent:
        answer = await reply(helper, thread_id, "Try this")
        await services.edit_post(helper, answer["id"], "Try this instead", version=1)
        await services.react(asker, answer["id"], "like")
        await services.accept_answer(asker, answer["id"])
        await services.delete_post(helper, answer["id"])
    assert {e.channel for e in sent} == {f"thread:{thread_id}"}
    assert [e.event for e in sent] == [
        "post.created",
        "post.edited",
        "reaction.changed",
        "answer.accepted",
        "answer.accepted",  # the deleted answer is no longer accepted
        "post.deleted",
    ]
    assert all(e.event_id for e in sent)  # stored: a reconnecting client catches up


async def test_rendered_fragments_swap_out_of_band(asker: Actor, helper: Actor, qa_category: int) -> None:
    thread_id = await make_thread(asker, qa_category)
    answer = await reply(helper, thread_id, "**Bold** answer")
    payload = {"thread_id": thread_id, "post_id": answer["id"]}
    created = await live.render_post_created(payload, "reader", "ja")
    assert created.startswith(f'<div id="posts-tail-{thread_id}" hx-swap-oob="beforeend">')
    assert "<strong>Bold</strong>" in created and "引用" in created  # the group's locale
    assert f'data-owner-id="{helper.user_id}" hidden' in created  # controls revealed client-side
    assert "_csrf_token" not in created  # nothing per-user in a shared fragment
    await services.react(asker, answer["id"], "heart")
    counts = await live.render_reactions(payload, "reader", "en")
    assert f'<span id="rc-{answer["id"]}-heart" hx-swap-oob="true">1</span>' in counts
    await services.accept_answer(asker, answer["id"])
    accepted = await live.render_answer({**payload, "previous_id": None}, "reader", "en")
    assert f'id="accepted-{thread_id}"' in accepted and "Bold" in accepted
    assert f'id="accepted-marker-{answer["id"]}" class="forum-accepted-marker" hx-swap-oob="true">✓' in accepted
    await services.delete_post(helper, answer["id"])
    deleted = await live.render_post_changed(payload, "reader", "en")
    assert 'hx-swap-oob="outerHTML"' in deleted and "This post was deleted." in deleted and "Bold" not in deleted


async def test_subscriptions_follow_the_policy(asker: Actor, moderator: Actor, qa_category: int) -> None:
    public = await make_thread(asker, qa_category)
    staff = await make_category("staff-room", audience="staff", can_start="staff", can_reply="staff")
    staff_thread = await make_thread(moderator, staff)
    assert await live.authorize_thread(ANONYMOUS, public) == "reader"
    assert await live.authorize_thread(asker, public) == "reader"
    assert await live.authorize_thread(moderator, public) == "staff"
    assert await live.authorize_thread(asker, staff_thread) is None
    assert await live.authorize_thread(ANONYMOUS, staff_thread) is None
    assert await live.authorize_thread(moderator, staff_thread) == "staff"
    assert await live.authorize_thread(asker, 999_999) is None
    assert await live.can_read_category(asker, staff) is False


async def _frame_with(socket: object, text: str) -> dict[str, object]:
    """The first event frame whose HTML holds `text` (a client also hears its own posts)."""
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), 10))  # type: ignore[attr-defined]
        if frame["type"] == "event" and text in str(frame["html"]):
            return frame


async def test_two_real_clients_see_each_others_posts(web: WebProcess, asker: Actor, helper: Actor) -> None:  # noqa: F811
    category = await make_category("live-talk", qa=True)
    thread_id = await make_thread(asker, category, "Live thread for two clients")
    staff = await make_category("staff-room", audience="staff", can_start="staff", can_reply="staff")
    staff_thread = await make_thread(await make_user("agent"), staff)
    tokens = {}
    cookies = {}
    for actor in (asker, helper):
        assert actor.user_id is not None
        tokens[actor.user_id] = await accounts.create_api_token(actor, "live")
        session = await accounts.start_session(actor.user_id, ip="127.0.0.1", user_agent="tests", replaces=None)
        cookies[actor.user_id] = f"kz_session={session}"
    url = f"{web.ws_url}?channels=thread:{thread_id}"
    async with (
        connect(url, additional_headers={"Cookie": cookies[asker.user_id]}, compression=None) as first,  # type: ignore[index]
        connect(url, additional_headers={"Cookie": cookies[helper.user_id]}, compression=None) as second,  # type: ignore[index]
        httpx.AsyncClient(base_url=web.base_url) as http,
    ):
        web.wait_subscribers(f"thread:{thread_id}", 2)
        for author, other in ((helper, first), (asker, second)):
            body = f"Hello from {author.display_name}"
            response = await http.post(
                f"/api/v1/forum/threads/{thread_id}/posts",
                json={"body": body},
                headers={"Authorization": f"Bearer {tokens[author.user_id]}"},  # type: ignore[index]
            )
            assert response.status_code == 201, response.text
            frame = await _frame_with(other, body)
            assert frame["event"] == "post.created" and f'id="posts-tail-{thread_id}"' in str(frame["html"])
        # A subscription to a thread in a category the customer cannot read is refused.
        forbidden = f"{web.ws_url}?channels=thread:{staff_thread}"
        try:
            async with connect(forbidden, additional_headers={"Cookie": cookies[asker.user_id]}) as refused:  # type: ignore[index]
                await asyncio.wait_for(refused.recv(), 5)
                raise AssertionError("a forbidden channel was served")
        except InvalidStatus:
            pass
        except Exception as closed:  # closed with a policy violation after the handshake
            assert "1008" in str(closed)

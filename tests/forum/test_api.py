"""The forum JSON API: same policy as the pages, and clear 4xx answers."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from server.accounts.services import create_api_token
from server.forum import services
from server.policy import Actor
from tests.factories import make_user
from tests.forum.factories import make_category, make_thread, reply

API = "/api/v1/forum"


async def bearer(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {await create_api_token(actor, 'tests')}"}


async def test_create_read_reply_edit_accept_react(
    client: AsyncTestClient, asker: Actor, helper: Actor, qa_category: int
) -> None:
    mine, theirs = await bearer(asker), await bearer(helper)
    created = await client.post(
        f"{API}/threads",
        json={"category": "questions", "title": "Export to CSV?", "body": "How do I **export**?", "tags": ["export"]},
        headers=mine,
    )
    assert created.status_code == 201, created.text
    thread = created.json()
    assert thread["posts"][0]["body_html"] == "<p>How do I <strong>export</strong>?</p>\n"
    thread_id = thread["id"]
    answer = await client.post(
        f"{API}/threads/{thread_id}/posts", json={"body": "Use the menu", "reply_to": 1}, headers=theirs
    )
    assert answer.status_code == 201 and answer.json()["number"] == 2 and answer.json()["reply_to"] == 1
    post_id = answer.json()["id"]
    edited = await client.patch(f"{API}/posts/{post_id}", json={"body": "Use the ⋯ menu", "version": 1}, headers=theirs)
    assert edited.status_code == 200 and edited.json()["version"] == 2
    stale = await client.patch(f"{API}/posts/{post_id}", json={"body": "Overwrite", "version": 1}, headers=theirs)
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2 and stale.json()["current_body"] == "Use the ⋯ menu"
    assert (
        await client.patch(f"{API}/posts/{post_id}", json={"body": "Mine now", "version": 2}, headers=mine)
    ).status_code == 403
    assert (await client.post(f"{API}/posts/{post_id}/accept", headers=theirs)).status_code == 403
    accepted = await client.post(f"{API}/posts/{post_id}/accept", headers=mine)
    assert accepted.status_code == 200 and accepted.json()["solved"] and accepted.json()["accepted_post_id"] == post_id
    liked = await client.post(f"{API}/posts/{post_id}/reactions/like", headers=mine)
    assert liked.status_code == 200 and liked.json()["reactions"] == {"like": 1}
    unliked = await client.delete(f"{API}/posts/{post_id}/reactions/like", headers=mine)
    assert unliked.json()["reactions"] == {}
    assert (await client.post(f"{API}/posts/{post_id}/reactions/angry", headers=mine)).status_code == 422
    listed = await client.get(f"{API}/threads", params={"category": "questions", "filter": "solved"})
    assert [t["id"] for t in listed.json()["items"]] == [thread_id]
    one = await client.get(f"{API}/threads/{thread_id}")
    assert one.status_code == 200 and [p["number"] for p in one.json()["posts"]] == [1, 2]
    assert (
        "/schema/openapi.json" and "/api/v1/forum/threads" in (await client.get("/schema/openapi.json")).json()["paths"]
    )


async def test_bad_input_and_forbidden(client: AsyncTestClient, asker: Actor, qa_category: int) -> None:
    headers = await bearer(asker)
    assert (
        await client.post(f"{API}/threads", json={"category": "questions", "title": "t", "body": "b"})
    ).status_code == 401
    staff = await make_category("staff-room", audience="staff", can_start="staff", can_reply="staff")
    news = await make_category("news", can_start="staff", can_reply="staff")
    body = {"title": "A long enough title", "body": "Text"}
    assert (
        await client.post(f"{API}/threads", json={"category": "staff-room", **body}, headers=headers)
    ).status_code == 404
    assert (await client.post(f"{API}/threads", json={"category": "news", **body}, headers=headers)).status_code == 403
    assert (
        await client.post(f"{API}/threads", json={"category": "questions", **body, "x": 1}, headers=headers)
    ).status_code == 400
    short = await client.post(
        f"{API}/threads", json={"category": "questions", "title": "Hi", "body": "b"}, headers=headers
    )
    assert short.status_code == 422 and "title" in short.json()["errors"]
    big = await client.post(
        f"{API}/threads", json={"category": "questions", **body, "body": "x" * 66_000}, headers=headers
    )
    assert big.status_code == 413 and "64 KiB" in big.json()["detail"]
    agent = await make_user("agent")
    hidden = await make_thread(agent, staff)
    assert (await client.get(f"{API}/threads/{hidden}", headers=headers)).status_code == 404
    assert (await client.post(f"{API}/threads/{hidden}/posts", json={"body": "hi"}, headers=headers)).status_code == 404
    locked_out = await make_thread(agent, news)
    assert (
        await client.post(f"{API}/threads/{locked_out}/posts", json={"body": "hi"}, headers=headers)
    ).status_code == 403
    assert (await client.get(f"{API}/threads", params={"category": "staff-room"}, headers=headers)).status_code == 404
    assert (await client.get(f"{API}/threads", params={"filter": "weird"})).status_code == 422


async def test_posting_is_rate_limited(client: AsyncTestClient, asker: Actor, qa_category: int) -> None:
    headers = await bearer(asker)
    thread_id = await make_thread(asker, qa_category)
    statuses = [
        (await client.post(f"{API}/threads/{thread_id}/posts", json={"body": f"n{n}"}, headers=headers)).status_code
        for n in range(11)
    ]
    assert statuses[:10] == [201] * 10 and statuses[10] == 429
    limited = await client.post(f"{API}/threads/{thread_id}/posts", json={"body": "again"}, headers=headers)
    assert int(limited.headers["retry-after"]) > 0 and "detail" in limited.json()


async def test_deleted_posts_hide_their_text(
    client: AsyncTestClient, asker: Actor, helper: Actor, qa_category: int
) -> None:
    thread_id = await make_thread(asker, qa_category)
    post = await reply(helper, thread_id, "A secret I regret")
    await services.delete_post(helper, post["id"])
    posts = (await client.get(f"{API}/threads/{thread_id}")).json()["posts"]
    assert posts[1]["deleted"] and posts[1]["body"] == "" and "regret" not in str(posts)

"""Community pages as people see them: audiences, posting, bad input, pagination, lists."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from server import jobs
from server.forum import queries, services
from server.forum.tables import ForumPost, ForumThread
from server.policy import Actor
from server.search.sync import wait_until_idle
from tests.conftest import csrf_token, post_form
from tests.factories import login, make_user
from tests.forum.factories import make_category, make_thread, reply
from tests.kb.inert import assert_inert

HTMX = {"HX-Request": "true"}


def main(html: str) -> str:
    return html[html.index("<main") : html.index("</main>")]


async def test_audiences_decide_what_each_visitor_sees(client: AsyncTestClient, asker: Actor, helper: Actor) -> None:
    public = await make_category("open-talk")
    members = await make_category("signed-only", audience="signed_in")
    staff = await make_category("staff-room", audience="staff", can_start="staff", can_reply="staff")
    agent = await make_user("agent")
    open_id = await make_thread(asker, public, "Public question about boards")
    signed_id = await make_thread(asker, members, "Signed-in question about seats")
    staff_id = await make_thread(agent, staff, "Staff escalation runbook")

    home = await client.get("/community")
    assert "Public question about boards" in home.text
    assert "Signed-in question" not in home.text and "Staff escalation" not in home.text
    missing = await client.get("/community/t/999999")
    for thread_id in (signed_id, staff_id):
        response = await client.get(f"/community/t/{thread_id}")
        assert response.status_code == 404
        assert main(response.text) == main(missing.text)
    assert (await client.get("/community/c/staff-room")).status_code == 404
    assert (await client.get(f"/community/t/{open_id}", follow_redirects=True)).status_code == 200

    await login(client, helper.email)
    home = await client.get("/community")
    assert "Signed-in question about seats" in home.text and "Staff escalation" not in home.text
    assert (await client.get(f"/community/t/{staff_id}")).status_code == 404


async def test_reply_with_htmx_and_without(
    asker_client: AsyncTestClient, asker: Actor, helper: Actor, qa_category: int
) -> None:
    thread_id = await make_thread(helper, qa_category)
    page_url = f"/community/t/{thread_id}-how-do-i-share-a-board"
    token = await csrf_token(asker_client, page_url)
    response = await asker_client.post(
        f"/community/t/{thread_id}/replies",
        data={"body": "Thanks, **that** worked", "_csrf_token": token, "page_no": "1"},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert f'id="posts-tail-{thread_id}" hx-swap-oob="beforeend"' in response.text
    assert "<strong>that</strong>" in response.text
    response = await post_form(
        asker_client, f"/community/t/{thread_id}/replies", {"body": "Second reply"}, page=page_url
    )
    assert response.status_code == 200 and "Second reply" in response.text
    assert str(response.url).endswith(page_url) or "#p3" in str(response.url) or "Second reply" in response.text
    assert await ForumPost.count().where(ForumPost.thread == thread_id) == 3


async def test_posting_where_not_allowed(asker_client: AsyncTestClient, asker: Actor) -> None:
    closed = await make_category("announcements", can_start="staff", can_reply="staff")
    staff = await make_category("staff-room", audience="staff", can_start="staff", can_reply="staff")
    moderator = await make_user("moderator")
    open_thread = await make_thread(moderator, closed)
    hidden_thread = await make_thread(moderator, staff)
    token = await csrf_token(asker_client, "/community")
    response = await asker_client.post(
        f"/community/t/{open_thread}/replies", data={"body": "Me too", "_csrf_token": token}
    )
    assert response.status_code == 403
    response = await asker_client.post(
        f"/community/t/{hidden_thread}/replies", data={"body": "Me too", "_csrf_token": token}
    )
    assert response.status_code == 404
    response = await asker_client.post(
        "/community/new",
        data={"category": "announcements", "title": "A long enough title", "body": "x", "_csrf_token": token},
    )
    assert response.status_code == 403
    response = await asker_client.post(
        "/community/new",
        data={"category": "staff-room", "title": "A long enough title", "body": "x", "_csrf_token": token},
    )
    assert response.status_code == 422 and "Choose a category from the list." in response.text


async def test_too_large_too_fast_and_conflicting(
    asker_client: AsyncTestClient, asker: Actor, helper: Actor, qa_category: int
) -> None:
    thread_id = await make_thread(asker, qa_category)
    token = await csrf_token(asker_client, "/community")
    big = await asker_client.post(
        f"/community/t/{thread_id}/replies", data={"body": "x" * (65 * 1024), "_csrf_token": token}, headers=HTMX
    )
    assert big.status_code == 413 and "64 KiB" in big.text
    first = await queries.post_by_number(thread_id, 1)
    assert first is not None
    await services.edit_post(asker, first["id"], "Changed elsewhere", version=1)
    stale = await asker_client.post(
        f"/community/posts/{first['id']}/edit",
        data={"body": "My stale edit", "version": "1", "_csrf_token": token},
        headers=HTMX,
    )
    assert stale.status_code == 409
    assert "Changed elsewhere" in stale.text and "My stale edit" in stale.text
    saved = await asker_client.post(
        f"/community/posts/{first['id']}/edit",
        data={"body": "My edit", "version": "2", "_csrf_token": token},
        headers=HTMX,
    )
    assert saved.status_code == 200 and "My edit" in saved.text
    statuses = []
    for n in range(12):
        response = await asker_client.post(
            f"/community/t/{thread_id}/replies", data={"body": f"Flood {n}", "_csrf_token": token}, headers=HTMX
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) > 0
    assert 429 in statuses and statuses.count(200) <= 10


async def test_hostile_markdown_is_inert(asker_client: AsyncTestClient, asker: Actor, qa_category: int) -> None:
    hostile = (
        "<script>alert(1)</script>\n\n[click](javascript:alert(1)) <img src=x onerror=alert(1)>\n\n"
        '![x](https://evil.example/t.png) [x](JaVaScRiPt&#58;alert(1)) <a href="x" onclick="y">z</a>'
    )
    thread_id = await make_thread(asker, qa_category, body=hostile)
    response = await asker_client.get(f"/community/t/{thread_id}", follow_redirects=True)
    body = re.search(r'<div class="forum-body kb-body">(.*?)</div>', response.text, re.DOTALL)
    assert body is not None
    assert_inert(body.group(1))
    assert "<script>alert" not in response.text


async def test_keyset_pages_and_jumps(
    asker_client: AsyncTestClient, asker: Actor, helper: Actor, qa_category: int
) -> None:
    thread_id = await make_thread(helper, qa_category)
    for n in range(2, 46):
        await reply(helper, thread_id, f"Post number {n}")
    base = f"/community/t/{thread_id}-how-do-i-share-a-board"
    page3 = await asker_client.get(f"{base}?page=3")
    assert page3.status_code == 200
    assert re.findall(r'data-number="(\d+)"', page3.text) == [str(n) for n in range(41, 46)]
    assert f'id="posts-tail-{thread_id}"' in page3.text
    page1 = await asker_client.get(base)
    assert f'id="posts-page-{thread_id}"' in page1.text and "Page 1 of 3" in page1.text
    jump = await asker_client.get(f"/community/t/{thread_id}/25", follow_redirects=False)
    assert jump.status_code == 303 and jump.headers["location"] == f"{base}?page=2#p25"
    last = await asker_client.get(f"/community/t/{thread_id}/last", follow_redirects=False)
    assert last.headers["location"] == f"{base}?page=3#p45"
    by_form = await asker_client.get(f"/community/t/{thread_id}/jump?n=21", follow_redirects=False)
    assert by_form.headers["location"] == f"{base}?page=2#p21"
    await services.mark_read(asker, thread_id, 30)
    unread = await asker_client.get(f"/community/t/{thread_id}/unread", follow_redirects=False)
    assert unread.headers["location"] == f"{base}?page=2#p31"
    beyond = await asker_client.get(f"{base}?page=99", follow_redirects=False)
    assert beyond.status_code == 301 and beyond.headers["location"] == f"{base}?page=3"
    token = await csrf_token(asker_client, base)
    read = await asker_client.post(f"/community/t/{thread_id}/read", data={"number": "45", "_csrf_token": token})
    assert read.status_code == 204 and await queries.last_read(asker, thread_id) == 45


async def test_lists_filters_tags_and_unread_markers(
    asker_client: AsyncTestClient, asker: Actor, helper: Actor, qa_category: int
) -> None:
    solved = await make_thread(helper, qa_category, "Solved question about exports", tags=["export"])
    answer = await reply(asker, solved, "Here is how")
    await services.accept_answer(helper, answer["id"])
    lonely = await make_thread(helper, qa_category, "Unanswered question about imports", tags=["import"])

    async def titles(path: str) -> set[str]:
        response = await asker_client.get(path)
        assert response.status_code == 200, path
        return set(re.findall(r'class="forum-thread-title"[^>]*>([^<]+)<', response.text))

    assert await titles("/community?filter=solved") == {"Solved question about exports"}
    assert await titles("/community?filter=unsolved") == {"Unanswered question about imports"}
    assert await titles("/community?filter=unanswered") == {"Unanswered question about imports"}
    assert await titles("/community?filter=top&period=week") == {
        "Solved question about exports",
        "Unanswered question about imports",
    }
    assert await titles("/community/tags/export") == {"Solved question about exports"}
    assert await titles("/community/c/questions?filter=solved") == {"Solved question about exports"}
    assert (await asker_client.get("/community?filter=nonsense")).status_code == 422
    page = await asker_client.get("/community")
    assert "New</span>" in page.text  # never opened, recent
    await reply(helper, solved, "One more")
    page = await asker_client.get("/community")
    assert "1 unread" in page.text  # asker read up to their own reply; one came after
    assert lonely


async def test_more_threads_by_cursor(client: AsyncTestClient, asker: Actor, qa_category: int) -> None:
    for n in range(35):
        await make_thread(asker, qa_category, f"Question number {n:02d}")
    first = await client.get("/community")
    titles = re.findall(r'class="forum-thread-title"[^>]*>([^<]+)<', first.text)
    assert len(titles) == 30 and titles[0] == "Question number 34"
    more = re.search(r'href="(/community\?cursor=[^"]+)"', first.text)
    assert more is not None
    second = await client.get(more.group(1).replace("&amp;", "&"), headers=HTMX)
    rest = re.findall(r'class="forum-thread-title"[^>]*>([^<]+)<', second.text)
    assert rest == [f"Question number {n:02d}" for n in range(4, -1, -1)]


async def test_quote_preview_reactions_bookmark_accept_history(
    asker_client: AsyncTestClient, asker: Actor, helper: Actor, qa_category: int
) -> None:
    thread_id = await make_thread(asker, qa_category)
    answer = await reply(helper, thread_id, "Press **Share**\n\nthen invite")
    quote = await asker_client.get(f"/community/t/{thread_id}/reply-form?quote=2", headers=HTMX)
    assert quote.status_code == 200
    assert "&gt; Press **Share**" in quote.text and 'name="reply_to" value="2"' in quote.text
    token = await csrf_token(asker_client, "/community")
    preview = await asker_client.post("/community/preview", data={"body": "*hi*", "_csrf_token": token}, headers=HTMX)
    assert preview.text.strip() == "<p><em>hi</em></p>"
    react = await asker_client.post(
        f"/community/posts/{answer['id']}/react", data={"kind": "heart", "_csrf_token": token}, headers=HTMX
    )
    assert react.status_code == 200 and 'aria-pressed="true"' in react.text
    assert f'id="rc-{answer["id"]}-heart">1<' in react.text
    unreact = await asker_client.post(
        f"/community/posts/{answer['id']}/react", data={"kind": "heart", "_csrf_token": token}, headers=HTMX
    )
    assert 'aria-pressed="true"' not in unreact.text
    assert (
        await asker_client.post(f"/community/posts/{answer['id']}/react", data={"kind": "angry", "_csrf_token": token})
    ).status_code == 422
    mark = await asker_client.post(f"/community/t/{thread_id}/bookmark", data={"_csrf_token": token}, headers=HTMX)
    assert 'aria-pressed="true"' in mark.text
    assert "How do I share a board?" in (await asker_client.get("/community/bookmarks")).text
    accepted = await asker_client.post(
        f"/community/posts/{answer['id']}/accept", data={"_csrf_token": token}, headers=HTMX
    )
    assert accepted.status_code == 200
    assert f'id="accepted-{thread_id}"' in accepted.text and f'id="accepted-marker-{answer["id"]}"' in accepted.text
    page = await asker_client.get(f"/community/t/{thread_id}", follow_redirects=True)
    assert "Accepted answer" in page.text
    first = await queries.post_by_number(thread_id, 1)
    assert first is not None
    await services.edit_post(asker, first["id"], "Edited text", version=1)
    history = await asker_client.get(f"/community/posts/{first['id']}/history")
    assert "Edited text" in history.text and "I want to share my **board** with a client." in history.text


async def test_controls_are_not_per_user_in_the_html(
    asker_client: AsyncTestClient, asker: Actor, helper: Actor, qa_category: int
) -> None:
    thread_id = await make_thread(helper, qa_category)
    page = await asker_client.get(f"/community/t/{thread_id}", follow_redirects=True)
    assert f'data-viewer-id="{asker.user_id}"' in page.text
    assert f'class="own-only" data-owner-id="{helper.user_id}" hidden' in page.text
    assert f'data-asker-id="{helper.user_id}"' in page.text


async def test_new_thread_with_deflection(
    meili_server: str, asker_client: AsyncTestClient, asker: Actor, helper: Actor, qa_category: int
) -> None:
    await make_thread(helper, qa_category, "Calendar sync stops on Windows")
    await jobs.run_pending("test")  # the thread reaches the real index
    await wait_until_idle()
    form = await asker_client.get("/community/new?title=calendar%20sync")
    assert 'value="calendar sync"' in form.text and 'hx-get="/community/new/similar"' in form.text
    similar = await asker_client.get("/community/new/similar?title=calendar sync", headers=HTMX)
    assert "<mark>Calendar</mark> <mark>sync</mark> stops on Windows" in similar.text  # highlighted hit
    response = await post_form(
        asker_client,
        "/community/new",
        {"category": "questions", "title": "Calendar sync is slow", "body": "Since Monday.", "tags": "sync, windows"},
        page="/community/new",
    )
    assert response.status_code == 200 and "Calendar sync is slow" in response.text
    thread = (
        await ForumThread.select().where(ForumThread.title == "Calendar sync is slow").output(load_json=True).first()
    )
    assert thread is not None and thread["tags"] == ["sync", "windows"]
    bad = await post_form(
        asker_client, "/community/new", {"category": "questions", "title": "x", "body": ""}, page="/community/new"
    )
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text


async def test_mention_autocomplete_only_offers_readers(asker_client: AsyncTestClient, asker: Actor) -> None:
    await make_user(email="kenji.watanabe@example.test", name="Kenji Watanabe")
    agent = await make_user("agent", email="kenji.agent@example.test", name="Kenji Agent")
    staff = await make_category("staff-room", audience="signed_in")
    thread_id = await make_thread(agent, staff)
    response = await asker_client.get(f"/community/mentions?q=kenji&thread={thread_id}", headers=HTMX)
    assert "@kenji.watanabe" in response.text and "Kenji Watanabe" in response.text
    staff_only = await make_category("staff-only", audience="staff", can_start="staff", can_reply="staff")
    hidden = await make_thread(agent, staff_only)
    assert (await asker_client.get(f"/community/mentions?q=kenji&thread={hidden}")).status_code == 404

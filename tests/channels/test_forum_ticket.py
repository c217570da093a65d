"""Forum to ticket: converting a thread or a post, converting again, posting an agent's reply
back, who may do it, and the links both ways (agents only on the thread page)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.exceptions import PermissionDeniedException

from server import jobs
from server.accounts import passwords
from server.channels.forum_ticket import services
from server.channels.forum_ticket.tables import ForumTicketLink, ForumTicketReply
from server.desk import queries as desk_queries
from server.desk import services as desk
from server.desk.tables import Ticket, TicketMessage
from server.errors import Invalid
from server.forum import cache
from server.forum import queries as forum_queries
from server.forum.tables import ForumPost, ForumThread
from server.policy import Actor
from tests.conftest import csrf_token, make_client, post_form
from tests.factories import login, make_user
from tests.forum.factories import make_category, make_thread, reply


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(autouse=True)
def fresh_forum_caches() -> None:
    forum_queries.clear_cache()
    cache.clear()


class Cast:
    asker: Actor
    helper: Actor
    agent: Actor
    moderator: Actor
    category_id: int
    thread_id: int
    reply_id: int


@pytest.fixture
async def cast() -> AsyncIterator[Cast]:
    c = Cast()
    c.asker = await make_user(name="Asha Asker", locale="ja")
    c.helper = await make_user(name="Hiro Helper")
    c.agent = await make_user("agent", name="Ada Agent")
    c.moderator = await make_user("moderator", name="Mona Moderator")
    c.category_id = await make_category("questions", qa=True)
    c.thread_id = await make_thread(c.asker, c.category_id, "Export stops at 50 %", "The CSV export **stops** halfway.")
    c.reply_id = (await reply(c.helper, c.thread_id, "Same here, since Tuesday.\nAny news?"))["id"]
    yield c


async def test_converting_a_thread_opens_a_linked_ticket_for_its_author(cast: Cast) -> None:
    conversion = await services.convert_thread(cast.agent, cast.thread_id)
    assert conversion.created
    ticket = await desk_queries.get_ticket(conversion.ticket_id)
    assert ticket["requester"] == cast.asker.user_id and ticket["subject"] == "Export stops at 50 %"
    assert ticket["channel"] == "forum" and ticket["channel_ref"] == f"thread:{cast.thread_id}"
    messages = await desk_queries.conversation(cast.agent, conversion.ticket_id)
    first, note = messages[0], messages[-1]
    assert first["kind"] == "public" and first["author"] == cast.asker.user_id
    assert first["body_md"].startswith("> The CSV export **stops** halfway.")
    assert "コミュニティへの投稿:" in first["body_md"]  # the requester's language
    assert f"http://testserver.local/community/t/{cast.thread_id}" in first["body_md"]
    assert note["kind"] == "internal" and "Ada Agent" in note["body_md"]
    # The requester sees it in the portal like any ticket; the internal note stays hidden.
    mine = await desk_queries.conversation(cast.asker, conversion.ticket_id)
    assert [m["kind"] for m in mine] == ["public"]

    again = await services.convert_thread(cast.agent, cast.thread_id)
    assert again == services.Conversion(conversion.ticket_id, False)
    first_post = await ForumPost.select(ForumPost.id).where(ForumPost.number == 1).first()
    assert (await services.convert_post(cast.agent, first_post["id"])).ticket_id == conversion.ticket_id
    assert await Ticket.count() == 1 and await ForumTicketLink.count() == 1


async def test_converting_a_single_post_quotes_it_for_its_author(cast: Cast) -> None:
    conversion = await services.convert_post(cast.agent, cast.reply_id)
    ticket = await desk_queries.get_ticket(conversion.ticket_id)
    assert ticket["requester"] == cast.helper.user_id and ticket["channel_ref"] == f"post:{cast.reply_id}"
    first = (await desk_queries.conversation(cast.agent, conversion.ticket_id))[0]
    assert first["body_md"].startswith("> Same here, since Tuesday.\n> Any news?")
    assert f"/community/t/{cast.thread_id}/2)" in first["body_md"] and "Posted in the community:" in first["body_md"]
    by_number = await services.convert_post_number(cast.agent, cast.thread_id, 2)
    assert by_number == services.Conversion(conversion.ticket_id, False)
    thread_ticket = await services.convert_thread(cast.agent, cast.thread_id)
    assert thread_ticket.created and thread_ticket.ticket_id != conversion.ticket_id  # thread and post: one each
    panel = await services.thread_panel(cast.agent, cast.thread_id)
    assert [(link["ticket"], link["post_number"]) for link in panel["links"]] == [
        (conversion.ticket_id, 2),
        (thread_ticket.ticket_id, None),
    ]


async def test_only_agents_convert(cast: Cast) -> None:
    for person in (cast.asker, cast.helper, cast.moderator):
        with pytest.raises(PermissionDeniedException):
            await services.convert_thread(person, cast.thread_id)
        with pytest.raises(PermissionDeniedException):
            await services.convert_post(person, cast.reply_id)
    assert await Ticket.count() == 0
    assert await services.thread_panel(cast.moderator, cast.thread_id) is None
    assert await services.thread_panel(cast.asker, cast.thread_id) is None


async def test_deleted_posts_and_unreadable_threads_are_refused(cast: Cast) -> None:
    from server.forum import services as forum

    await forum.delete_post(cast.helper, cast.reply_id)
    with pytest.raises(Invalid) as caught:
        await services.convert_post(cast.agent, cast.reply_id)
    assert "deleted" in caught.value.errors["post"]
    # The category became staff-only: its author can no longer read the thread.
    await ForumThread.update({ForumThread.category: await make_category("staff-room", "staff")}).where(
        ForumThread.id == cast.thread_id
    )
    forum_queries.clear_cache()
    with pytest.raises(Invalid) as caught:
        await services.convert_thread(cast.agent, cast.thread_id)
    assert "can no longer read" in caught.value.errors["post"]
    assert await Ticket.count() == 0


async def test_posting_the_agents_reply_back_to_the_thread(cast: Cast) -> None:
    ticket_id = (await services.convert_post(cast.agent, cast.reply_id)).ticket_id
    answer_id = await desk.add_reply(cast.agent, ticket_id, "Fixed in 4.2: update and export again.")
    post = await services.post_back(cast.agent, ticket_id, answer_id)
    assert post["author_id"] == cast.agent.user_id and post["number"] == 3 and post["reply_to_number"] == 2
    assert post["body_md"] == "Fixed in 4.2: update and export again."
    with pytest.raises(services.AlreadyPosted) as caught:
        await services.post_back(cast.agent, ticket_id, answer_id)
    assert caught.value.url == f"/community/t/{cast.thread_id}/3"
    panel = await services.ticket_panel(await desk_queries.get_ticket(ticket_id))
    assert panel["posted"] == {answer_id: f"/community/t/{cast.thread_id}/3"}
    assert panel["url"] == f"/community/t/{cast.thread_id}/2" and panel["post_number"] == 2

    note_id = await desk.add_note(cast.agent, ticket_id, "internal only")
    with pytest.raises(Invalid):
        await services.post_back(cast.agent, ticket_id, note_id)
    customer_message = (await TicketMessage.select(TicketMessage.id).where(TicketMessage.ticket == ticket_id).first())[
        "id"
    ]
    with pytest.raises(PermissionDeniedException):  # the requester's own message, not the agent's
        await services.post_back(cast.agent, ticket_id, customer_message)
    other_agent = await make_user("agent", name="Ben Agent")
    with pytest.raises(PermissionDeniedException):
        await services.post_back(other_agent, ticket_id, answer_id)
    with pytest.raises(PermissionDeniedException):
        await services.post_back(cast.moderator, ticket_id, answer_id)
    web_ticket = await desk.open_ticket(cast.asker, "Not from the forum", "Text")
    web_answer = await desk.add_reply(cast.agent, web_ticket, "Answer")
    with pytest.raises(Invalid) as not_forum:
        await services.post_back(cast.agent, web_ticket, web_answer)
    assert "did not come from the community" in not_forum.value.errors["forum"]
    assert await ForumTicketReply.count() == 1


async def test_a_locked_thread_refuses_the_post_back_with_a_clear_error(cast: Cast) -> None:
    ticket_id = (await services.convert_thread(cast.agent, cast.thread_id)).ticket_id
    answer_id = await desk.add_reply(cast.agent, ticket_id, "An answer")
    await ForumThread.update({ForumThread.locked: True}).where(ForumThread.id == cast.thread_id)
    with pytest.raises(PermissionDeniedException) as caught:
        await services.post_back(cast.agent, ticket_id, answer_id)
    assert "may not reply" in str(caught.value.detail)
    assert await ForumTicketReply.count() == 0 and await ForumPost.count() == 2


async def test_pages_link_both_ways_for_agents_only(app: Litestar, cast: Cast) -> None:
    async with make_client(app) as client:
        await login(client, cast.agent.email)
        thread_page = await client.get(f"/community/t/{cast.thread_id}")
        assert "Convert to ticket" in thread_page.text
        converted = await post_form(
            client, f"/community/t/{cast.thread_id}/ticket", {"number": "2"}, page=f"/community/t/{cast.thread_id}"
        )
        assert converted.status_code == 200 and str(converted.url).endswith("/desk/tickets/1")
        assert "Ticket #1 opened from the community." in converted.text
        assert f'href="/community/t/{cast.thread_id}/2"' in converted.text  # the ticket links to the post
        again = await post_form(
            client, f"/community/t/{cast.thread_id}/ticket", {"number": "2"}, page=f"/community/t/{cast.thread_id}"
        )
        assert str(again.url).endswith("/desk/tickets/1") and "already turned into ticket #1" in again.text
        bad = await post_form(
            client, f"/community/t/{cast.thread_id}/ticket", {"number": "99"}, page=f"/community/t/{cast.thread_id}"
        )
        assert bad.status_code == 422 and "Enter the number of a post" in bad.text
        thread_page = await client.get(f"/community/t/{cast.thread_id}")
        assert 'href="/desk/tickets/1"' in thread_page.text and "from post #2" in thread_page.text

        sent = await post_form(
            client, "/desk/tickets/1/messages", {"body": "Update to 4.2.", "internal": "0"}, page="/desk/tickets/1"
        )
        assert sent.status_code == 200 and "Post to the thread" in sent.text
        answer = await TicketMessage.select(TicketMessage.id).where(TicketMessage.body_md == "Update to 4.2.").first()
        posted = await post_form(
            client, "/desk/tickets/1/forum-reply", {"message_id": str(answer["id"])}, page="/desk/tickets/1"
        )
        assert "Posted to the community thread as #3." in posted.text and "Posted to the thread" in posted.text
        assert "Update to 4.2." in (await client.get(f"/community/t/{cast.thread_id}")).text

        await ForumThread.update({ForumThread.locked: True}).where(ForumThread.id == cast.thread_id)
        cache.clear()
        later = await desk.add_reply(cast.agent, 1, "One more thing.")
        locked = await post_form(
            client, "/desk/tickets/1/forum-reply", {"message_id": str(later)}, page="/desk/tickets/1"
        )
        assert locked.status_code == 403 and "You may not reply in this thread." in locked.text

        for person in (cast.helper, cast.moderator):
            await client.post("/logout", data={"_csrf_token": await csrf_token(client, "/")})
            await login(client, person.email)
            page = await client.get(f"/community/t/{cast.thread_id}")
            assert (
                page.status_code == 200 and "/desk/tickets/1" not in page.text and "Convert to ticket" not in page.text
            )
            token = await csrf_token(client, f"/community/t/{cast.thread_id}")
            refused = await client.post(f"/community/t/{cast.thread_id}/ticket", data={"_csrf_token": token})
            assert refused.status_code == 403
            refused = await client.post(f"/community/posts/{cast.reply_id}/ticket", data={"_csrf_token": token})
            assert refused.status_code == 403
            refused = await client.post("/desk/tickets/1/forum-reply", data={"_csrf_token": token, "message_id": "1"})
            assert refused.status_code == 403
    await jobs.run_pending()
    assert await Ticket.count() == 1

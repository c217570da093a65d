"""Forum actions through the real services and database."""

from __future__ import annotations

import pytest
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from server.accounts.tables import User
from server.errors import Invalid, NotFound
from server.forum import queries, services
from server.forum.tables import ForumPost, ForumPostRevision, ForumReaction, ForumThread, ForumThreadTag
from server.markdown import MarkdownTooLarge
from server.policy import ANONYMOUS, Actor
from tests.factories import make_user
from tests.forum.factories import make_category, make_thread, reply


async def test_thread_and_replies_are_numbered_densely(asker: Actor, helper: Actor, qa_category: int) -> None:
    thread_id = await make_thread(asker, qa_category, tags=["Boards", "sharing", "boards"])
    first = await reply(helper, thread_id, "First answer")
    second = await reply(asker, thread_id, "Thanks!", reply_to=first["number"])
    assert (first["number"], second["number"]) == (2, 3)
    assert second["reply_to_number"] == 2 and second["reply_to_id"] == first["id"]
    thread = await queries.get_thread(thread_id)
    assert thread is not None
    assert (thread["post_count"], thread["reply_count"], thread["tags"]) == (3, 2, ["boards", "sharing"])
    assert sorted(r["tag"] for r in await ForumThreadTag.select(ForumThreadTag.tag)) == ["boards", "sharing"]
    numbers = [p["number"] for p in await ForumPost.select(ForumPost.number).order_by(ForumPost.number)]
    assert numbers == [1, 2, 3]


async def test_bad_input_is_refused_with_field_errors(asker: Actor, qa_category: int) -> None:
    with pytest.raises(Invalid) as caught:
        await services.create_thread(asker, services.NewThread(qa_category, "Hi", "  ", ["not a tag!"]))
    assert set(caught.value.errors) == {"title", "body", "tags"}
    with pytest.raises(MarkdownTooLarge):
        await services.create_thread(asker, services.NewThread(qa_category, "A long enough title", "x" * 70_000))
    thread_id = await make_thread(asker, qa_category)
    with pytest.raises(Invalid):
        await reply(asker, thread_id, "answering nothing", reply_to=99)
    assert await ForumThread.count() == 1


async def test_anonymous_cannot_post_and_invisible_categories_look_missing(asker: Actor) -> None:
    staff = await make_category("staff-room", audience="staff", can_start="staff", can_reply="staff")
    with pytest.raises(NotAuthorizedException):
        await services.create_thread(ANONYMOUS, services.NewThread(staff, "A long enough title", "Body"))
    with pytest.raises(NotFound):
        await services.create_thread(asker, services.NewThread(staff, "A long enough title", "Body"))
    agent = await make_user("agent")
    thread_id = await make_thread(agent, staff)
    with pytest.raises(NotFound):
        await reply(asker, thread_id)


async def test_who_may_start_and_reply_follows_the_category(asker: Actor, moderator: Actor) -> None:
    news = await make_category("news", can_start="staff", can_reply="signed_in")
    with pytest.raises(PermissionDeniedException):
        await make_thread(asker, news)
    thread_id = await make_thread(moderator, news)
    await reply(asker, thread_id)
    closed = await make_category("closed", can_start="signed_in", can_reply="staff")
    own = await make_thread(asker, closed)
    with pytest.raises(PermissionDeniedException):
        await reply(asker, own)


async def test_edit_keeps_history_and_refuses_a_stale_version(asker: Actor, moderator: Actor, qa_category: int) -> None:
    thread_id = await make_thread(asker, qa_category, body="Version one")
    post = await queries.post_by_number(thread_id, 1)
    assert post is not None
    edited = await services.edit_post(asker, post["id"], "Version two", version=1)
    assert edited["version"] == 2 and edited["edited_at"] is not None and "Version two" in edited["body_html"]
    with pytest.raises(services.EditConflict) as caught:
        await services.edit_post(moderator, post["id"], "Moderator's stale edit", version=1)
    assert caught.value.current["body_md"] == "Version two" and caught.value.current["version"] == 2
    unchanged = await services.edit_post(moderator, post["id"], "Version two", version=1)  # same text: no conflict
    assert unchanged["version"] == 2
    revisions = await queries.revisions(post["id"])
    assert [(r["version"], r["body_md"]) for r in revisions] == [(2, "Version two"), (1, "Version one")]
    assert await ForumPostRevision.count() == 2


async def test_only_the_author_or_a_moderator_edits_and_deletes(
    asker: Actor, helper: Actor, moderator: Actor, qa_category: int
) -> None:
    thread_id = await make_thread(asker, qa_category)
    answer = await reply(helper, thread_id, "An answer")
    with pytest.raises(PermissionDeniedException):
        await services.edit_post(asker, answer["id"], "Hijacked", version=1)
    with pytest.raises(PermissionDeniedException):
        await services.delete_post(asker, answer["id"])
    await services.delete_post(helper, answer["id"])
    deleted = await queries.get_post(answer["id"])
    assert deleted is not None and deleted["deleted_at"] is not None
    with pytest.raises(PermissionDeniedException):  # a deleted post cannot be edited by its author
        await services.edit_post(helper, answer["id"], "Back again", version=1)
    thread = await queries.get_thread(thread_id)
    assert thread is not None and thread["reply_count"] == 0 and thread["post_count"] == 2
    # The first post stands for the thread: not deletable by its author once others replied.
    await reply(helper, thread_id, "Another answer")
    first = await queries.post_by_number(thread_id, 1)
    assert first is not None
    with pytest.raises(PermissionDeniedException):
        await services.delete_post(asker, first["id"])
    await services.delete_post(moderator, first["id"])
    with pytest.raises(NotFound):
        await queries.access_thread(asker, thread_id)


async def test_accepting_an_answer(asker: Actor, helper: Actor, moderator: Actor, qa_category: int) -> None:
    thread_id = await make_thread(asker, qa_category)
    answer = await reply(helper, thread_id, "Use the share button")
    with pytest.raises(PermissionDeniedException):
        await services.accept_answer(helper, answer["id"])
    first = await queries.post_by_number(thread_id, 1)
    assert first is not None
    with pytest.raises(Invalid):
        await services.accept_answer(asker, first["id"])
    await services.accept_answer(asker, answer["id"])
    thread = await queries.get_thread(thread_id)
    assert thread is not None and thread["solved"] and thread["accepted_post_id"] == answer["id"]
    await services.unaccept_answer(moderator, thread_id)
    thread = await queries.get_thread(thread_id)
    assert thread is not None and not thread["solved"] and thread["accepted_post_id"] is None
    await services.accept_answer(moderator, answer["id"])
    await services.delete_post(helper, answer["id"])  # deleting the answer unsolves the thread
    thread = await queries.get_thread(thread_id)
    assert thread is not None and not thread["solved"]


async def test_answers_only_in_qa_categories(asker: Actor, helper: Actor) -> None:
    chat = await make_category("chat", qa=False)
    thread_id = await make_thread(asker, chat)
    answer = await reply(helper, thread_id)
    with pytest.raises(PermissionDeniedException):
        await services.accept_answer(asker, answer["id"])


async def test_reactions_one_per_user_and_kind(asker: Actor, helper: Actor, qa_category: int) -> None:
    thread_id = await make_thread(asker, qa_category)
    answer = await reply(helper, thread_id)
    assert await services.react(asker, answer["id"], "like") == {"like": 1}
    assert await services.react(asker, answer["id"], "like") == {"like": 1}  # again: no change
    assert await services.react(helper, answer["id"], "like") == {"like": 2}
    assert await services.react(asker, answer["id"], "heart") == {"like": 2, "heart": 1}
    assert await services.react(asker, answer["id"], "like", on=False) == {"like": 1, "heart": 1}
    assert await ForumReaction.count() == 2
    with pytest.raises(Invalid):
        await services.react(asker, answer["id"], "angry")
    stored = await queries.get_post(answer["id"])
    assert stored is not None and stored["reactions"] == {"like": 1, "heart": 1}
    thread = await queries.get_thread(thread_id)
    assert thread is not None and thread["reaction_count"] == 2


async def test_bookmarks_and_reading_position(asker: Actor, helper: Actor, qa_category: int) -> None:
    thread_id = await make_thread(helper, qa_category)
    for n in range(3):
        await reply(helper, thread_id, f"Post {n}")
    await services.bookmark(asker, thread_id)
    await services.bookmark(asker, thread_id)
    assert [t["id"] for t in await queries.bookmarked_threads(asker)] == [thread_id]
    await services.bookmark(asker, thread_id, on=False)
    assert await queries.bookmarked_threads(asker) == []
    assert await services.mark_read(asker, thread_id, 3) == 3
    assert await services.mark_read(asker, thread_id, 2) == 3  # never backwards
    assert await services.mark_read(asker, thread_id, 99) == 4  # never past the end
    assert await queries.last_read(asker, thread_id) == 4


async def test_mentions_mark_known_readers_only(asker: Actor, helper: Actor, qa_category: int) -> None:
    thread_id = await make_thread(asker, qa_category)
    handle = (await User.select(User.username).where(User.id == helper.user_id).first())["username"]
    post = await reply(asker, thread_id, f"Thanks @{handle}! And hello @nobody-here, `@{handle}` in code.")
    assert f'<span class="mention">@{handle}</span>' in post["body_html"]
    assert "@nobody-here" in post["body_html"] and 'mention">@nobody-here' not in post["body_html"]
    assert f"<code>@{handle}</code>" in post["body_html"]


async def test_mentioned_readers_exclude_who_cannot_read(asker: Actor) -> None:
    from server.forum import mentions

    agent = await make_user("agent", email="agent7@example.test")
    staff = await make_category("staff-room", audience="staff", can_start="staff", can_reply="staff")
    thread_id = await make_thread(agent, staff)
    thread, category = await queries.access_thread(agent, thread_id)
    found = await mentions.readers(["asha", "agent7"], category, thread, exclude=None)
    assert found == {"agent7": agent.user_id}


async def test_usernames_come_from_the_email_and_are_unique() -> None:
    first = await make_user(email="sam.lee@example.test")
    second = await make_user(email="Sam.Lee@other.test")
    rows = await User.select(User.id, User.username).where(User.id.is_in([first.user_id, second.user_id]))
    assert {r["id"]: r["username"] for r in rows} == {first.user_id: "sam.lee", second.user_id: "sam.lee2"}

"""Who hears about an activity: watchers, mentions, replies; never the actor, the muted, or
anyone who may not read the content. A retried fan-out job notifies nobody twice."""

from __future__ import annotations

from server import jobs
from server.db import atomic
from server.notifications import set_subscription, subscribe_automatically, subscription_level
from server.notifications.activity import Activity
from server.notifications.fanout import fan_out
from server.notifications.services import list_notifications
from server.notifications.tables import Notification
from server.policy import Actor
from tests.factories import make_user
from tests.notifications.conftest import PARENT_ID, FakeTargets, activity, record, record_and_run


async def told(user: Actor) -> list[dict]:
    return await Notification.select().where(Notification.recipient == user.user_id).order_by(Notification.id)


async def test_watchers_hear_about_new_posts_and_others_do_not(targets: FakeTargets) -> None:
    author, watcher, tracker, bystander = [await make_user(name=n) for n in ("Ann", "Wat", "Tra", "By")]
    targets.add(1)
    await set_subscription(watcher, "test_target", 1, "watching")
    await set_subscription(tracker, "test_target", 1, "tracking")
    await record_and_run(activity(author, 1))
    [row] = await told(watcher)
    assert (row["reason"], row["kind"], row["url"], row["actor"]) == (
        "watching",
        "post.created",
        "/test/1#p1",
        author.user_id,
    )
    assert await told(tracker) == []  # tracking: mentions and replies only
    assert await told(bystander) == []
    assert await told(author) == []


async def test_the_actor_never_hears_about_their_own_post(targets: FakeTargets) -> None:
    author = await make_user()
    targets.add(1)
    await set_subscription(author, "test_target", 1, "watching")
    await record_and_run(activity(author, 1, mentioned_user_ids=[author.user_id], replied_to_user_id=author.user_id))
    assert await told(author) == []


async def test_mentions_and_replies_reach_tracking_and_normal_users(targets: FakeTargets) -> None:
    author, mentioned, replied, tracker = [await make_user() for _ in range(4)]
    targets.add(1)
    await set_subscription(tracker, "test_target", 1, "tracking")
    await record_and_run(
        activity(author, 1, mentioned_user_ids=[mentioned.user_id, tracker.user_id], replied_to_user_id=replied.user_id)
    )
    assert [r["reason"] for r in await told(mentioned)] == ["mention"]
    assert [r["reason"] for r in await told(replied)] == ["reply"]
    assert [r["reason"] for r in await told(tracker)] == ["mention"]


async def test_muting_the_target_or_the_parent_silences_even_mentions(targets: FakeTargets) -> None:
    author, muted_thread, muted_parent = [await make_user() for _ in range(3)]
    targets.add(1)
    await set_subscription(muted_thread, "test_target", 1, "muted")
    await set_subscription(muted_parent, "test_parent", PARENT_ID, "muted")
    both = [muted_thread.user_id, muted_parent.user_id]
    await record_and_run(activity(author, 1, mentioned_user_ids=both, replied_to_user_id=muted_thread.user_id))
    assert await told(muted_thread) == []
    assert await told(muted_parent) == []
    assert await subscription_level(muted_parent.user_id, "test_target", 1) == "muted"  # inherited


async def test_parent_watchers_hear_about_new_threads_and_posts_only(targets: FakeTargets) -> None:
    author, category_watcher = await make_user(), await make_user()
    targets.add(1)
    await set_subscription(category_watcher, "test_parent", PARENT_ID, "watching")
    assert await subscription_level(category_watcher.user_id, "test_target", 1) == "watching"
    await record_and_run(activity(author, 1, kind="thread.created", object_id=None))
    await record_and_run(activity(author, 1, kind="answer.accepted", object_id=5))
    assert [(r["kind"], r["reason"]) for r in await told(category_watcher)] == [("thread.created", "watching")]


async def test_a_choice_on_the_thread_beats_the_parents_level(targets: FakeTargets) -> None:
    author, person = await make_user(), await make_user()
    targets.add(1)
    await set_subscription(person, "test_parent", PARENT_ID, "watching")
    await set_subscription(person, "test_target", 1, "normal")
    await record_and_run(activity(author, 1))
    assert await told(person) == []
    await set_subscription(person, "test_parent", PARENT_ID, "muted")
    await set_subscription(person, "test_target", 1, "watching")
    await record_and_run(activity(author, 1, object_id=2))
    assert len(await told(person)) == 1


async def test_mentioned_users_who_cannot_read_the_content_get_nothing(targets: FakeTargets) -> None:
    agent = await make_user("agent")
    customer, outsider = await make_user(), await make_user()
    targets.add(1, audience=["staff"])
    await record_and_run(
        activity(
            agent, 1, audience=["staff"], mentioned_user_ids=[customer.user_id], replied_to_user_id=outsider.user_id
        )
    )
    assert await told(customer) == []
    assert await told(outsider) == []
    colleague = await make_user("moderator")
    await record_and_run(activity(agent, 1, object_id=2, audience=["staff"], mentioned_user_ids=[colleague.user_id]))
    assert len(await told(colleague)) == 1


async def test_the_targets_own_can_read_is_checked_besides_the_audience(targets: FakeTargets) -> None:
    """The activity claims a public audience, but the target kind says this person may not read."""
    author, reader, shut_out = [await make_user() for _ in range(3)]
    targets.add(1, audience=["public"])
    targets.add(2, audience=["staff"])
    await record_and_run(activity(author, 2, audience=["public"], mentioned_user_ids=[shut_out.user_id]))
    assert await told(shut_out) == []
    await record_and_run(activity(author, 1, mentioned_user_ids=[reader.user_id]))
    assert len(await told(reader)) == 1


async def test_deactivated_and_unknown_users_are_skipped(targets: FakeTargets) -> None:
    from server.accounts.tables import User

    author, gone = await make_user(), await make_user()
    targets.add(1)
    await User.update({User.is_active: False}).where(User.id == gone.user_id)
    await record_and_run(activity(author, 1, mentioned_user_ids=[gone.user_id, 999_999]))
    assert await Notification.count() == 0


async def test_someone_who_turned_off_mention_notifications_is_not_told_of_a_mention(targets: FakeTargets) -> None:
    from server.notifications.services import set_email_mode

    author, person = await make_user(), await make_user()
    targets.add(1)
    await set_email_mode(person, "immediate", mentions=False)
    await record_and_run(activity(author, 1, mentioned_user_ids=[person.user_id]))
    assert await told(person) == []


async def test_a_retried_fan_out_creates_no_duplicates(targets: FakeTargets) -> None:
    author, watcher, mentioned = [await make_user() for _ in range(3)]
    targets.add(1)
    await set_subscription(watcher, "test_target", 1, "watching")
    item = activity(author, 1, mentioned_user_ids=[mentioned.user_id])
    first = await fan_out(item, now=jobs.now())
    assert len(first) == 2
    # The job ran but the worker died before marking it done: the next try finds the rows.
    assert await fan_out(item, now=jobs.now()) == []
    assert await Notification.count() == 2
    # Recording the same activity again (a repeated call) queues nothing new either.
    await record(item)
    await record(item)
    await jobs.run_pending("test-worker")
    assert await Notification.count() == 2


async def test_record_activity_enqueues_in_the_callers_transaction(targets: FakeTargets) -> None:
    author = await make_user()
    targets.add(1)

    class Rollback(Exception):
        pass

    try:
        async with atomic():
            await record(activity(author, 1))
            raise Rollback
    except Rollback:
        pass
    assert await jobs.Job.count().where(jobs.Job.kind == "notifications.fan_out") == 0
    await record(activity(author, 1))
    job = await jobs.Job.select().where(jobs.Job.kind == "notifications.fan_out").output(load_json=True).first()
    assert job is not None
    assert Activity.from_payload(job["payload"]) == activity(author, 1)


async def test_automatic_subscriptions_never_override_a_choice(targets: FakeTargets) -> None:
    person = await make_user()
    targets.add(1)
    targets.add(2)
    await subscribe_automatically(person.user_id, "test_target", 1, "tracking")
    assert await subscription_level(person.user_id, "test_target", 1) == "tracking"
    await subscribe_automatically(person.user_id, "test_target", 1, "watching")
    assert await subscription_level(person.user_id, "test_target", 1) == "watching"
    await subscribe_automatically(person.user_id, "test_target", 1, "tracking")  # never down
    assert await subscription_level(person.user_id, "test_target", 1) == "watching"
    await set_subscription(person, "test_target", 2, "normal")
    await subscribe_automatically(person.user_id, "test_target", 2, "watching")
    assert await subscription_level(person.user_id, "test_target", 2) == "normal"
    assert await subscription_level(None, "test_target", 2) == "normal"


async def test_the_list_shows_a_readable_headline(targets: FakeTargets) -> None:
    author = await make_user(name="Aiko")
    person = await make_user()
    targets.add(1)
    await record_and_run(activity(author, 1, mentioned_user_ids=[person.user_id], title="Sync  fails\non login"))
    [row] = await list_notifications(person)
    assert row["headline"] == "Aiko mentioned you in “Sync fails on login”"


async def test_an_edit_that_adds_a_mention_tells_only_the_new_person(targets: FakeTargets) -> None:
    author, first, second = [await make_user() for _ in range(3)]
    targets.add(1)
    await record_and_run(activity(author, 1, kind="post.mentioned", mentioned_user_ids=[first.user_id]))
    both = [first.user_id, second.user_id]
    await record_and_run(activity(author, 1, kind="post.mentioned", mentioned_user_ids=both))
    await record_and_run(activity(author, 1, kind="post.mentioned", mentioned_user_ids=both))
    assert len(await told(first)) == 1
    assert len(await told(second)) == 1
    assert await jobs.Job.count().where(jobs.Job.kind == "notifications.fan_out") == 2


async def test_an_accepted_answer_tells_its_author_in_their_words(targets: FakeTargets) -> None:
    asker, answerer = await make_user(name="Asker"), await make_user()
    targets.add(1)
    await record_and_run(activity(asker, 1, kind="answer.accepted", replied_to_user_id=answerer.user_id, title="Q"))
    [row] = await list_notifications(answerer)
    assert row["headline"] == "Asker accepted your answer in “Q”"

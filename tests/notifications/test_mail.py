"""Notification email through the real outbox, worker and SMTP sink: right away (with
List-Unsubscribe headers), in the recipient's language, or once a day in a digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server import jobs
from server.accounts.tables import User
from server.notifications import digest, set_subscription
from server.notifications.fanout import fan_out
from server.notifications.services import set_email_mode
from server.notifications.tables import Notification
from tests.factories import LINK_RE, Mailbox, make_user
from tests.notifications.conftest import FakeTargets, activity, record, record_and_run


async def test_an_immediate_mail_has_the_excerpt_a_link_and_an_unsubscribe_link(
    targets: FakeTargets, mailbox: Mailbox
) -> None:
    author = await make_user(name="Aiko")
    watcher = await make_user()
    targets.add(1)
    await set_subscription(watcher, "test_target", 1, "watching")
    await record_and_run(activity(author, 1, title="Sync fails", excerpt="Have you tried turning it off?"))
    [message] = await mailbox.messages(watcher.email)
    assert message.subject == "Aiko posted in “Sync fails”"
    assert "Have you tried turning it off?" in message.body
    assert "http://testserver.local/test/1#p1" in message.body
    assert "because you follow this" in message.body  # a kind other than thread or category
    unsubscribe = message.message["List-Unsubscribe"]
    assert unsubscribe.startswith("<http://testserver.local/notifications/unsubscribe?token=")
    assert unsubscribe[1:-1] in message.body
    assert message.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    row = await Notification.select().where(Notification.recipient == watcher.user_id).first()
    assert row["emailed_at"] is not None and not row["digest_pending"]
    # The worker ran the mail job once; running again sends nothing more.
    await jobs.run_pending("test-worker")
    assert len(await mailbox.messages(watcher.email)) == 1


async def test_mail_is_written_in_the_recipients_language(targets: FakeTargets, mailbox: Mailbox) -> None:
    author = await make_user(name="Aiko")
    reader = await make_user(locale="ja")
    targets.add(1)
    await record_and_run(activity(author, 1, title="同期の問題", mentioned_user_ids=[reader.user_id]))
    [message] = await mailbox.messages(reader.email)
    assert message.subject == "Aikoさんが「同期の問題」であなたをメンションしました"
    assert "通知メールをすべて停止する" in message.body


async def test_people_on_never_or_unverified_get_no_mail(targets: FakeTargets, mailbox: Mailbox) -> None:
    author = await make_user()
    never, unverified = await make_user(), await make_user(verified=False)
    targets.add(1)
    await set_email_mode(never, "off")
    await record_and_run(activity(author, 1, mentioned_user_ids=[never.user_id, unverified.user_id]))
    assert await Notification.count() == 2  # the bell still shows them
    assert await mailbox.messages() == []


def test_the_digest_is_due_at_eight_in_the_morning_local_time() -> None:
    evening = datetime(2026, 3, 5, 22, 30, tzinfo=UTC)  # 07:30 on the 6th in Tokyo
    assert digest.next_digest_at("Asia/Tokyo", evening) == datetime(2026, 3, 5, 23, 0, tzinfo=UTC)
    assert digest.next_digest_at("UTC", evening) == datetime(2026, 3, 6, 8, 0, tzinfo=UTC)
    exactly = datetime(2026, 3, 6, 8, 0, tzinfo=UTC)
    assert digest.next_digest_at("UTC", exactly) == datetime(2026, 3, 7, 8, 0, tzinfo=UTC)  # strictly after
    # New York moves its clocks on 8 March 2026: 08:00 local is 13:00 UTC before, 12:00 after.
    assert digest.next_digest_at("America/New_York", datetime(2026, 3, 7, 14, tzinfo=UTC)) == datetime(
        2026, 3, 8, 12, 0, tzinfo=UTC
    )
    assert digest.next_digest_at("Not/AZone", evening) == datetime(2026, 3, 6, 8, 0, tzinfo=UTC)


async def test_daily_people_get_one_digest_listing_what_they_missed(targets: FakeTargets, mailbox: Mailbox) -> None:
    author = await make_user(name="Aiko")
    daily = await make_user()
    await User.update({User.time_zone: "Asia/Tokyo"}).where(User.id == daily.user_id)
    await set_email_mode(daily, "daily")
    targets.add(1)
    targets.add(2)
    await set_subscription(daily, "test_target", 1, "watching")
    await record_and_run(activity(author, 1, title="First thread", excerpt="One"))
    await record_and_run(activity(author, 1, title="First thread", object_id=2, excerpt="Two"))
    await record_and_run(activity(author, 2, title="Second thread", mentioned_user_ids=[daily.user_id]))
    assert await mailbox.messages(daily.email) == []  # nothing right away

    [job] = await jobs.Job.select().where(jobs.Job.kind == digest.KIND)  # one job for three notifications
    due = digest.next_digest_at("Asia/Tokyo", jobs.now())
    assert abs(job["run_at"] - due) < timedelta(seconds=5)
    assert job["idempotency_key"] == f"{digest.KIND}:{daily.user_id}:{digest.digest_date('Asia/Tokyo', due)}"
    assert await jobs.run_pending("test-worker") == 0  # not due yet

    # The clock reaches 08:00 in Tokyo.
    await jobs.Job.update({jobs.Job.run_at: jobs.now() - timedelta(seconds=1)}).where(jobs.Job.id == job["id"])
    [message] = await mailbox.messages(daily.email)
    assert message.subject == "Your daily summary: 3 new notifications"
    assert message.body.count("* Aiko") == 3
    assert "Aiko mentioned you in “Second thread”" in message.body
    assert "http://testserver.local/test/2#p1" in message.body
    assert message.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    pending = await Notification.count().where(Notification.digest_pending == True)  # noqa: E712
    assert pending == 0
    assert await Notification.count().where(Notification.digested_at.is_null()) == 0

    # An activity just after this digest's hour schedules the next day's digest, a new job.
    await fan_out(activity(author, 1, title="First thread", object_id=3), now=due + timedelta(minutes=1))
    tomorrow = digest.digest_date("Asia/Tokyo", due + timedelta(days=1))
    assert await jobs.Job.exists().where(jobs.Job.idempotency_key == f"{digest.KIND}:{daily.user_id}:{tomorrow}")


async def test_a_digest_leaves_out_what_was_read_meanwhile(targets: FakeTargets, mailbox: Mailbox) -> None:
    author, daily = await make_user(name="Aiko"), await make_user()
    await set_email_mode(daily, "daily")
    targets.add(1)
    await record(activity(author, 1, title="Read already", mentioned_user_ids=[daily.user_id]))
    await jobs.run_pending("test-worker")
    await Notification.update({Notification.read_at: jobs.now()}).where(Notification.recipient == daily.user_id)
    assert await digest.send_digest(daily.user_id, "2026-03-06", now=jobs.now()) == 0
    assert await mailbox.messages(daily.email) == []
    assert await Notification.count().where(Notification.digest_pending == True) == 0  # noqa: E712


async def test_links_in_mail_are_absolute(targets: FakeTargets, mailbox: Mailbox) -> None:
    author, person = await make_user(), await make_user()
    targets.add(1)
    await record_and_run(activity(author, 1, mentioned_user_ids=[person.user_id]))
    [message] = await mailbox.messages(person.email)
    paths = LINK_RE.findall(message.body)
    assert "/test/1#p1" in paths
    assert "/notifications/preferences" in paths

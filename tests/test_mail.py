"""Outbound mail: queued with the caller's transaction, sent by the worker over real SMTP to
the sink, rendered in the recipient's locale, with a Message-ID that survives retries."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from server import i18n, jobs, mail
from server.db import atomic
from server.jobs import Job
from server.mailsink import list_captured, read_captured
from server.settings import get_settings
from tests.factories import Mailbox

VERIFY_SUBJECT = "Confirm your email address for Kizuna"
URL = "http://testserver.local/verify-email?token=abc123"


async def queue_verify(to: str, *, locale: str = "en", key: str = "verify-1") -> None:
    async with atomic():
        await mail.queue_mail(to, "verify_email", {"url": URL}, locale=locale, key=key)


async def job_row(key: str) -> dict:
    row = await Job.select().where(Job.idempotency_key == key).first()
    assert row is not None
    return row


@contextmanager
def smtp_refusing_connections() -> Iterator[None]:
    """Point SMTP_URL at a port that refuses connections (bound, never listening)."""
    with socket.socket() as sock, pytest.MonkeyPatch.context() as patch:
        sock.bind(("127.0.0.1", 0))
        patch.setenv("SMTP_URL", f"smtp://127.0.0.1:{sock.getsockname()[1]}")
        get_settings.cache_clear()  # settings are read once; read them again now and after
        try:
            yield
        finally:
            get_settings.cache_clear()


async def test_queued_mail_is_delivered_over_smtp(mailbox: Mailbox) -> None:
    await queue_verify("casey@example.test")
    assert list_captured(mailbox.directory) == []  # nothing is sent by queueing
    assert await jobs.run_pending() == 1

    [message] = await mailbox.messages("casey@example.test")
    assert message.subject == VERIFY_SUBJECT
    assert message.message["From"] == get_settings().mail_from
    assert message.message["Auto-Submitted"] == "auto-generated"
    assert message.message["Date"]
    assert URL in message.body
    assert not message.body.startswith(VERIFY_SUBJECT)  # the first template line is the subject only
    assert (await job_row("verify-1"))["status"] == jobs.DONE


async def test_message_id_comes_from_the_idempotency_key(mailbox: Mailbox) -> None:
    await queue_verify("casey@example.test", key="signup:casey@example.test:verify")
    [message] = await mailbox.messages()
    message_id = str(message.message["Message-ID"])
    key_id = mail.build_message("x@example.test", "s", "t", "signup:casey@example.test:verify")["Message-ID"]
    other_id = mail.build_message("x@example.test", "s", "t", "signup:sam@example.test:verify")["Message-ID"]
    assert message_id == key_id != other_id
    assert message_id.endswith("@testserver.local>")  # our domain, from BASE_URL
    assert "casey" not in message_id  # the key (which may name the recipient) is not disclosed


async def test_mail_of_a_rolled_back_action_is_never_sent(mailbox: Mailbox) -> None:
    with pytest.raises(RuntimeError):
        async with atomic():
            await mail.queue_mail("casey@example.test", "verify_email", {"url": URL}, locale="en", key="lost")
            raise RuntimeError("the action failed")
    assert await mailbox.messages() == []
    assert await Job.count() == 0


async def test_same_key_queued_twice_sends_one_mail(mailbox: Mailbox) -> None:
    await queue_verify("casey@example.test", key="once")
    await queue_verify("casey@example.test", key="once")
    assert len(await mailbox.messages()) == 1


async def test_mail_is_rendered_in_the_recipients_locale(mailbox: Mailbox) -> None:
    await queue_verify("hana@example.test", locale="ja", key="ja-1")
    await queue_verify("sam@example.test", locale="en", key="en-1")
    assert i18n.get_locale() == "en"  # rendering for a recipient does not change ours

    ja = i18n.translations("ja")
    [japanese] = await mailbox.messages("hana@example.test")
    assert japanese.subject == ja.gettext(VERIFY_SUBJECT)
    assert ja.gettext("Hello,") in japanese.body and URL in japanese.body
    [english] = await mailbox.messages("sam@example.test")
    assert english.subject == VERIFY_SUBJECT
    assert "Hello," in english.body and URL in english.body


async def test_non_ascii_subject_and_body_arrive_intact(mailbox: Mailbox) -> None:
    subject, text = "【Kizuna】お問い合わせを受け付けました", "山田様\n\nお問い合わせありがとうございます。\n"
    await jobs.enqueue(mail.KIND, {"to": "yamada@example.test", "subject": subject, "text": text}, key="utf8")
    [message] = await mailbox.messages()
    assert message.subject == subject
    assert message.body == text


async def test_unreachable_smtp_retries_the_job_instead_of_losing_it(mailbox: Mailbox) -> None:
    await queue_verify("casey@example.test", key="outage")
    before = jobs.now()
    with smtp_refusing_connections():
        assert await jobs.run_pending() == 1
    row = await job_row("outage")
    assert (row["status"], row["attempts"]) == (jobs.QUEUED, 1)
    assert row["last_error"]  # the connection error, for the admin who looks
    assert row["run_at"] > before
    assert list_captured(mailbox.directory) == []


async def test_mail_queued_during_an_outage_arrives_once_smtp_is_back(mailbox: Mailbox) -> None:
    await queue_verify("casey@example.test", key="outage-then-back")
    with smtp_refusing_connections():
        await jobs.run_pending()
    assert list_captured(mailbox.directory) == []
    row = await job_row("outage-then-back")
    await Job.update({Job.run_at: jobs.now()}).where(Job.id == row["id"])  # its backoff has passed

    [message] = await mailbox.messages()
    assert message.message["Message-ID"] == mail.build_message("x", "s", "t", "outage-then-back")["Message-ID"]
    row = await job_row("outage-then-back")
    assert (row["status"], row["attempts"]) == (jobs.DONE, 2)


async def test_a_resend_after_a_worker_crash_carries_the_same_message_id(mailbox: Mailbox) -> None:
    """The worker sent the mail, then died before marking the job done: after the lease the job
    runs again, and the copy has the same Message-ID so receivers can drop it."""
    await queue_verify("casey@example.test", key="crashy")
    [first] = await mailbox.messages()
    await Job.update(
        {Job.status: jobs.RUNNING, Job.finished_at: None, Job.locked_at: jobs.now() - jobs.LEASE * 2}
    ).where(Job.idempotency_key == "crashy")

    messages = await mailbox.messages()
    assert len(messages) == 2
    assert {str(m.message["Message-ID"]) for m in messages} == {str(first.message["Message-ID"])}


# The sink's reader ---------------------------------------------------------------------------


async def test_captured_mail_reader_only_opens_its_own_files(mailbox: Mailbox) -> None:
    await queue_verify("casey@example.test")
    [message] = await mailbox.messages()
    assert read_captured(message.name, mailbox.directory) is not None
    (mailbox.directory / ".half-written.eml.tmp").write_text("partial")
    assert [m.name for m in list_captured(mailbox.directory)] == [message.name]
    for name in ("../secret_key", "/etc/passwd", message.name + "/..", "x.eml"):
        assert read_captured(name, mailbox.directory) is None
    assert list_captured(mailbox.directory / "missing") == []


class _CountingHandler:
    """An SMTP server of the test's own: counts connections (EHLO) and messages, refuses one
    recipient."""

    def __init__(self) -> None:
        self.ehlos = 0
        self.messages: list[str] = []

    async def handle_EHLO(
        self, server: object, session: object, envelope: object, hostname: str, responses: list[str]
    ) -> list[str]:
        self.ehlos += 1
        session.host_name = hostname  # type: ignore[attr-defined] - an EHLO hook sets it itself
        return responses

    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.extend(envelope.rcpt_tos)  # type: ignore[attr-defined]
        return "250 Message accepted"


async def test_consecutive_sends_share_one_connection_and_an_error_drops_it() -> None:
    from aiosmtpd.controller import Controller

    handler = _CountingHandler()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SMTP_URL", f"smtp://127.0.0.1:{port}")
            get_settings.cache_clear()
            for n in range(3):
                await mail.send(mail.build_message(f"p{n}@example.test", "Hello", "Body", f"reuse-{n}"))
            assert handler.messages == ["p0@example.test", "p1@example.test", "p2@example.test"]
            assert handler.ehlos == 1

            with pytest.raises(Exception, match="no such user"):
                await mail.send(mail.build_message("refused@example.test", "Hello", "Body", "reuse-refused"))
            await mail.send(mail.build_message("p3@example.test", "Hello", "Body", "reuse-3"))
            assert handler.messages[-1] == "p3@example.test"
            assert handler.ehlos == 2  # the failed send's connection was not used again
    finally:
        get_settings.cache_clear()
        controller.stop()

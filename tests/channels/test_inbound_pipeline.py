"""The inbound mail pipeline, from stored raw bytes through the worker: new tickets, threading
(references, plus-address, subject tag, subject + requester), dedupe, the safety rules that keep
auto-replies, bulk mail, bounces and our own mail from making tickets or mail, limits and
quarantine, and malformed input that never stops the worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from server import jobs
from server.accounts import passwords
from server.accounts.auth import utcnow
from server.accounts.tables import User, UserRole
from server.channels.email import inbound, processing, tokens
from server.channels.email.inbound_tables import InboundMail, MailBounce
from server.channels.email.tables import MailReference
from server.desk import queries, services
from server.desk.tables import Ticket, TicketAttachment, TicketLink, TicketMessage
from server.desk.web import describe_event
from server.policy import Actor
from tests.channels.inbound_helpers import (
    bounce_mail,
    deliver,
    public_messages,
    raw_mail,
    row,
    support,
    ticket_count,
)
from tests.factories import Mailbox, make_user


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def customer() -> Actor:
    return await make_user(email="casey@example.test", name="Casey Customer")


async def _ticket_of(customer: Actor, subject: str = "Export fails") -> int:
    return await services.open_ticket(customer, subject, "The CSV export stops.", channel="web")


# New tickets --------------------------------------------------------------------------------------


async def test_unknown_sender_opens_a_ticket_and_gets_the_acknowledgement(mailbox: Mailbox) -> None:
    raw = raw_mail(sender="Dana Doe <Dana@Example.test>", subject="Cannot log in", body="Hello,\nit fails.\n")
    done = await deliver(raw)
    assert done["status"] == "done", done["reason"]
    ticket = await queries.get_ticket(done["ticket"])
    assert ticket is not None and ticket["channel"] == "email" and ticket["subject"] == "Cannot log in"
    user = await User.select().where(User.email == "dana@example.test").first()
    assert user is not None and user["password_hash"] == "" and user["email_verified_at"] is None
    assert [r["role"] for r in await UserRole.select(UserRole.role).where(UserRole.user == user["id"])] == ["customer"]
    assert ticket["requester"] == user["id"]
    messages = await public_messages(done["ticket"])
    assert len(messages) == 1 and messages[0]["id"] == done["ticket_message"] and messages[0]["channel"] == "email"
    assert "it fails." in messages[0]["body_html"]
    reference = (
        await MailReference.select()
        .where((MailReference.ticket == done["ticket"]) & (MailReference.direction == "in"))
        .first()
    )
    assert reference["message_id"] == done["message_id"] and reference["ticket_message"] == done["ticket_message"]
    acks = await mailbox.messages(to="dana@example.test")
    assert len(acks) == 1 and f"#{done['ticket']}" in acks[0].subject + acks[0].body


async def test_plain_text_stays_plain_text() -> None:
    body = "# not a heading\n* not a list\n<script>alert(1)</script> [x](javascript:y)\n    not code"
    done = await deliver(raw_mail(body=body))
    html = (await public_messages(done["ticket"]))[0]["body_html"]
    assert "<h1" not in html and "<li" not in html and "<script" not in html and "<code" not in html
    assert "# not a heading" in html and "&lt;script&gt;" in html and "href" not in html


async def test_attachments_are_kept_and_disallowed_types_left_out() -> None:
    raw = raw_mail(
        attachments=[
            ("report.pdf", "application/pdf", b"%PDF-1.4 data"),
            ("tool.exe", "application/octet-stream", b"MZ"),
        ]
    )
    done = await deliver(raw)
    files = await TicketAttachment.select(TicketAttachment.filename).where(TicketAttachment.ticket == done["ticket"])
    assert [f["filename"] for f in files] == ["report.pdf"]
    assert "not attached: tool.exe" in done["reason"]


# Threading ----------------------------------------------------------------------------------------


async def test_reply_to_our_message_id_threads_and_reopens(customer: Actor, mailbox: Mailbox) -> None:
    ticket_id = await _ticket_of(customer)
    await services.mark_solved(customer, ticket_id)
    ours = tokens.message_id(ticket_id, "reply-1")
    raw = raw_mail(subject="Something else entirely", body="Still broken.", headers={"In-Reply-To": ours})
    done = await deliver(raw)
    assert done["status"] == "done" and done["ticket"] == ticket_id, done["reason"]
    assert "references" in done["reason"]
    assert len(await public_messages(ticket_id)) == 2
    assert (await queries.get_ticket(ticket_id))["status"] == "open"
    assert await ticket_count() == 1


async def test_reply_to_a_recorded_message_id_threads(customer: Actor) -> None:
    first = await deliver(raw_mail(subject="Printer", message_id="<first@mail.example.test>"))
    raw = raw_mail(subject="Another subject", headers={"References": "<first@mail.example.test>"})
    done = await deliver(raw)
    assert done["ticket"] == first["ticket"] and "references" in done["reason"]


async def test_plus_address_token_threads(customer: Actor) -> None:
    ticket_id = await _ticket_of(customer)
    done = await deliver(raw_mail(to=tokens.reply_address(ticket_id), subject="Unrelated words"))
    assert done["ticket"] == ticket_id and "plus_address" in done["reason"]


async def test_forged_plus_address_token_does_not_thread(customer: Actor) -> None:
    ticket_id = await _ticket_of(customer)
    local, _sep, domain = support().partition("@")
    done = await deliver(raw_mail(to=f"{local}+t{ticket_id}-0000000000@{domain}", subject="Unrelated words"))
    assert done["ticket"] != ticket_id and "new ticket" in done["reason"]


async def test_subject_tag_threads_only_for_the_requester(customer: Actor) -> None:
    ticket_id = await _ticket_of(customer)
    mine = await deliver(raw_mail(subject=f"Re: anything [#{ticket_id}]"))
    assert mine["ticket"] == ticket_id and "subject_tag" in mine["reason"]
    stranger = await deliver(raw_mail(sender="mallory@example.test", subject=f"Re: anything [#{ticket_id}]"))
    assert stranger["ticket"] != ticket_id
    assert not await TicketLink.exists().where(TicketLink.target == stranger["ticket"])  # the tag proves nothing
    mallory = await User.select(User.id).where(User.email == "mallory@example.test").first()
    assert (await queries.get_ticket(stranger["ticket"]))["requester"] == mallory["id"]


async def test_subject_and_requester_within_the_window(customer: Actor) -> None:
    ticket_id = await _ticket_of(customer, "Export fails")
    done = await deliver(raw_mail(subject="RE: AW: Export   fails"))
    assert done["ticket"] == ticket_id and "subject" in done["reason"]
    japanese = await deliver(raw_mail(subject="返信: Export fails"))
    assert japanese["ticket"] == ticket_id


async def test_subject_match_ends_with_the_window(customer: Actor) -> None:
    old = await _ticket_of(customer, "Old question")
    await Ticket.update({Ticket.created_at: utcnow() - timedelta(days=15)}).where(Ticket.id == old)
    assert (await deliver(raw_mail(subject="Re: Old question")))["ticket"] != old
    solved = await _ticket_of(customer, "Solved question")
    await services.mark_solved(customer, solved)
    await Ticket.update({Ticket.solved_at: utcnow() - timedelta(days=8)}).where(Ticket.id == solved)
    assert (await deliver(raw_mail(subject="Re: Solved question")))["ticket"] != solved
    recent = await _ticket_of(customer, "Recent question")
    await services.mark_solved(customer, recent)
    assert (await deliver(raw_mail(subject="Re: Recent question")))["ticket"] == recent


async def test_someone_else_never_joins_a_ticket_by_its_token(customer: Actor) -> None:
    """A forwarded reply (signed Message-ID and plus-address) from someone who is not on the
    ticket opens a new ticket linked to it: they never see the conversation."""
    ticket_id = await _ticket_of(customer)
    raw = raw_mail(
        sender="stranger@example.test",
        to=tokens.reply_address(ticket_id),
        headers={"In-Reply-To": tokens.message_id(ticket_id, "x")},
    )
    done = await deliver(raw)
    assert done["ticket"] != ticket_id and f"linked to #{ticket_id}" in done["reason"]
    assert len(await public_messages(ticket_id)) == 1
    low, high = sorted((ticket_id, done["ticket"]))
    assert await TicketLink.exists().where((TicketLink.source == low) & (TicketLink.target == high))
    stranger = await User.select(User.id).where(User.email == "stranger@example.test").first()
    assert (await queries.get_ticket(done["ticket"]))["requester"] == stranger["id"]


async def test_a_follower_may_reply_by_mail(customer: Actor) -> None:
    ticket_id = await _ticket_of(customer)
    colleague = await make_user(email="colin@example.test")
    agent = await make_user("agent")
    await services.add_follower(agent, ticket_id, colleague.email)
    done = await deliver(raw_mail(sender=colleague.email, headers={"In-Reply-To": tokens.message_id(ticket_id, "y")}))
    assert done["ticket"] == ticket_id
    assert (await public_messages(ticket_id))[-1]["author"] == colleague.user_id


async def test_a_closed_ticket_gets_a_linked_follow_up(customer: Actor) -> None:
    ticket_id = await _ticket_of(customer)
    await Ticket.update({Ticket.status: "closed"}).where(Ticket.id == ticket_id)
    done = await deliver(raw_mail(headers={"In-Reply-To": tokens.message_id(ticket_id, "z")}))
    assert done["status"] == "done" and done["ticket"] != ticket_id and f"#{ticket_id}" in done["reason"]


async def test_a_merged_ticket_leads_to_its_survivor(customer: Actor) -> None:
    source = await _ticket_of(customer, "First")
    target = await _ticket_of(customer, "Second")
    await services.merge_tickets(await make_user("agent"), source, target)
    done = await deliver(raw_mail(subject="whatever", headers={"In-Reply-To": tokens.message_id(source, "m")}))
    assert done["ticket"] == target


# Senders ------------------------------------------------------------------------------------------


async def test_an_agent_address_writes_as_a_customer(customer: Actor) -> None:
    """Mail carries no authentication: an agent's From is never an agent's reply."""
    agent = await make_user("agent", email="ada@example.test", name="Ada Agent")
    ticket_id = await _ticket_of(customer)
    reply = await deliver(raw_mail(sender=agent.email, headers={"In-Reply-To": tokens.message_id(ticket_id, "a")}))
    assert reply["ticket"] != ticket_id  # not on that ticket: a new, linked ticket
    assert len(await public_messages(ticket_id)) == 1
    ticket = await queries.get_ticket(ticket_id)
    assert ticket["status"] == "new" and ticket["first_replied_at"] is None
    own = await queries.get_ticket(reply["ticket"])
    assert own["requester"] == agent.user_id and own["status"] == "new" and own["first_replied_at"] is None


# Dedupe -------------------------------------------------------------------------------------------


async def test_the_same_message_twice_makes_one_message(customer: Actor, mailbox: Mailbox) -> None:
    raw = raw_mail(subject="Twice", message_id="<twice@mail.example.test>")
    first = await deliver(raw)
    again = await deliver(raw)
    assert first["status"] == "done" and again["status"] == "ignored"
    assert again["reason"] == f"duplicate of inbound message #{first['id']}"
    resent = raw.replace(b"Subject: Twice", b"Received: by relay2\nSubject: Twice")
    third = await deliver(resent)  # other bytes, same Message-ID and sender
    assert third["status"] == "ignored" and "duplicate" in third["reason"]
    assert await ticket_count() == 1 and len(await public_messages(first["ticket"])) == 1
    assert len(await mailbox.messages(to=customer.email)) == 1


async def test_a_message_id_reused_by_another_sender_is_not_a_duplicate() -> None:
    first = await deliver(raw_mail(message_id="<same@mail.example.test>"))
    other = await deliver(raw_mail(sender="other@example.test", message_id="<same@mail.example.test>"))
    assert first["status"] == other["status"] == "done" and first["ticket"] != other["ticket"]


# Safety ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"X-Autoreply": "yes"},
        {"Precedence": "bulk"},
        {"Precedence": "list", "List-Id": "<news.example.test>"},
        {"List-Unsubscribe": "<mailto:leave@example.test>"},
    ],
)
async def test_auto_replies_and_bulk_mail_make_nothing(customer: Actor, mailbox: Mailbox, headers: dict) -> None:
    done = await deliver(raw_mail(subject="Out of office", headers=headers))
    assert done["status"] == "ignored" and done["ticket"] is None
    assert await ticket_count() == 0
    assert await mailbox.messages() == []


async def test_our_own_outbound_mail_coming_back_is_ignored(customer: Actor, mailbox: Mailbox) -> None:
    ticket_id = await _ticket_of(customer)
    await mailbox.messages()  # the acknowledgement
    for existing in await mailbox.messages():
        (mailbox.directory / existing.name).unlink()
    signed = raw_mail(sender=support(), message_id=tokens.message_id(ticket_id, "loop"))
    assert (await deliver(signed))["reason"] == "our own outbound mail"
    await MailReference.insert(
        MailReference(ticket=ticket_id, message_id="<sent.1@kizuna>", direction="out", created_at=utcnow())
    )
    recorded = raw_mail(sender="someone@example.test", message_id="<sent.1@kizuna>")
    assert (await deliver(recorded))["reason"] == "our own outbound mail"
    from_us = raw_mail(sender=f"Support <{support()}>")
    assert (await deliver(from_us))["status"] == "ignored"
    assert len(await public_messages(ticket_id)) == 1 and await ticket_count() == 1
    assert await mailbox.messages() == []


async def test_a_bounce_marks_the_address_and_shows_on_the_ticket(customer: Actor, mailbox: Mailbox) -> None:
    ticket_id = await _ticket_of(customer)
    await mailbox.messages()
    for existing in await mailbox.messages():
        (mailbox.directory / existing.name).unlink()
    done = await deliver(bounce_mail(tokens.message_id(ticket_id, "ack"), customer.email))
    assert done["status"] == "done" and done["ticket"] == ticket_id and "bounce" in done["reason"]
    bounce = await MailBounce.select().where(MailBounce.address == customer.email).first()
    assert bounce is not None and bounce["ticket"] == ticket_id
    event = (
        await TicketMessage.select()
        .where(TicketMessage.ticket == ticket_id)
        .where(TicketMessage.kind == "system")
        .output(load_json=True)
        .first()
    )
    assert f"Mail to {customer.email} bounced" in describe_event(event["event"])[0]
    agent = await make_user("agent")
    assert any(m["kind"] == "system" for m in await queries.conversation(agent, ticket_id))
    assert all(m["kind"] != "system" for m in await queries.conversation(customer, ticket_id))
    assert await ticket_count() == 1 and await mailbox.messages() == []


# Limits and quarantine --------------------------------------------------------------------------------


async def test_two_thousand_recipients_are_quarantined() -> None:
    many = ", ".join(f"r{n}@example.test" for n in range(2000))
    done = await deliver(raw_mail(to=f"{support()}, {many}"))
    assert done["status"] == "quarantined" and "too many recipients: 2001" in done["reason"]
    assert await ticket_count() == 0


async def test_a_ten_thousand_character_subject_is_cut() -> None:
    done = await deliver(raw_mail(subject="Help " + "x" * 10_000))
    assert done["status"] == "done" and "subject cut from 10005" in done["reason"]
    ticket = await queries.get_ticket(done["ticket"])
    assert len(ticket["subject"]) == 200 and len(done["subject"]) == 200


async def test_an_over_long_header_is_quarantined_and_an_admin_retry_lets_it_through() -> None:
    done = await deliver(raw_mail(headers={"X-Trace": "y" * 3000}))
    assert done["status"] == "quarantined" and "header too long: x-trace" in done["reason"]
    admin = await make_user("admin")
    await inbound.retry(admin, done["id"])
    await jobs.run_pending("test-worker")
    again = await row(done["id"])
    assert again["status"] == "done" and again["ticket"] is not None and again["retries"] == 1


async def test_missing_from_is_quarantined_and_missing_message_id_is_fine() -> None:
    no_from = await deliver(raw_mail(sender=None))
    assert no_from["status"] == "quarantined" and no_from["reason"] == "no usable From address"
    bad_from = await deliver(raw_mail(sender="not an address"))
    assert bad_from["status"] == "quarantined"
    no_id = await deliver(raw_mail(message_id=None))
    assert no_id["status"] == "done" and no_id["message_id"] == ""
    assert not await MailReference.exists().where(
        (MailReference.ticket == no_id["ticket"]) & (MailReference.direction == "in")
    )


async def test_forged_x_headers_change_nothing(customer: Actor) -> None:
    ticket_id = await _ticket_of(customer)
    forged = {
        "X-Kizuna-Ticket": tokens.ticket_token(ticket_id),
        "X-Kizuna-Agent": "yes",
        "X-Original-From": "ada@example.test",
        "X-Priority": "1 (Highest)",
    }
    done = await deliver(raw_mail(sender="eve@example.test", subject="Please escalate", headers=forged))
    assert done["status"] == "done" and done["ticket"] != ticket_id and "linked" not in done["reason"]
    assert len(await public_messages(ticket_id)) == 1


# Malformed input never stops the worker ------------------------------------------------------------------


async def test_garbage_and_broken_mime_never_crash_the_worker() -> None:
    garbage = bytes(range(256)) * 40
    broken = (
        b"From: casey@example.test\r\nTo: " + support().encode() + b"\r\nSubject: =?x-unknown?B?????=\r\n"
        b'Content-Type: multipart/mixed; boundary="never"\r\n\r\n--other\r\nContent-Type: text/plain; '
        b"charset=no-such-charset\r\n\r\nbody \xff\xfe\r\n"
    )
    good = raw_mail(subject="Good one")
    ids = [await inbound.store_raw(raw, source="http") for raw in (garbage, broken, good)]
    await jobs.run_pending("test-worker")
    statuses = [(await row(i))["status"] for i in ids]
    assert statuses[0] == "quarantined" and statuses[1] == "done" and statuses[2] == "done"
    assert await jobs.Job.count().where(jobs.Job.status == jobs.DEAD) == 0


async def test_a_message_that_fails_is_kept_and_can_be_retried() -> None:
    inbound_id = await inbound.store_raw(raw_mail(subject="Lost file"), source="http")
    stored = await row(inbound_id)
    path = inbound.path_for(stored["storage_key"])
    data = path.read_bytes()
    path.unlink()
    await jobs.run_pending("test-worker")
    failed = await row(inbound_id)
    assert failed["status"] == "failed" and "unreadable" in failed["reason"]
    path.write_bytes(data)
    await inbound.retry(await make_user("admin"), inbound_id)
    await jobs.run_pending("test-worker")
    assert (await row(inbound_id))["status"] == "done"


async def test_a_pending_message_whose_job_died_is_swept_up() -> None:
    inbound_id = await inbound.store_raw(raw_mail(subject="Orphan"), source="http")
    await jobs.Job.delete().where(jobs.Job.kind == inbound.JOB_KIND)  # as if its worker died holding it
    await InboundMail.update({InboundMail.received_at: utcnow() - timedelta(minutes=5)}).where(
        InboundMail.id == inbound_id
    )
    await jobs.Job.update({jobs.Job.run_at: utcnow()}).where(jobs.Job.kind == inbound.SWEEP_KIND)
    await jobs.run_pending("test-worker")
    assert (await row(inbound_id))["status"] == "done"


async def test_processing_twice_does_nothing_more() -> None:
    done = await deliver(raw_mail())
    assert await processing.process(done["id"]) == "done"
    assert len(await public_messages(done["ticket"])) == 1


async def test_a_message_that_raises_is_rolled_back_alone_and_marked_failed() -> None:
    """Three messages in one batch; the database refuses the middle one's ticket (a trigger,
    SQLite only): it ends `failed` with the error, nothing of it is kept, the others commit."""
    from server.db import engine, is_postgres

    if is_postgres():
        pytest.skip("the refusal is an SQLite trigger")
    await engine().run_ddl(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON ticket WHEN NEW.subject = 'boom' "
        "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
    )
    try:
        ids = [
            await inbound.store_raw(raw_mail(sender=f"s{n}@example.test", subject=subject), source="http")
            for n, subject in enumerate(("before", "boom", "after"))
        ]
        await jobs.run_pending("test-worker")
    finally:
        await engine().run_ddl("DROP TRIGGER refuse_boom")
    before, boom, after = [await row(i) for i in ids]
    assert before["status"] == after["status"] == "done"
    assert boom["status"] == "failed" and "refused by the test trigger" in boom["reason"]
    assert boom["ticket"] is None and boom["from_address"] == "s1@example.test"
    assert await ticket_count() == 2
    assert not await User.exists().where(User.email == "s1@example.test")  # its account was rolled back too

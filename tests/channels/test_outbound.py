"""Outbound ticket mail, sent by the worker over real SMTP: threading headers, signed reply
address, subject tag, text and HTML parts, attachments, escaping, header injection, idempotent
retries, and per-recipient delivery state on the agent's ticket page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage

import httpx
import pytest
from argon2 import PasswordHasher

from server import jobs, policy
from server.accounts import passwords
from server.accounts.auth import utcnow
from server.channels.email import outbound, tokens
from server.channels.email.outbound_tables import MailDelivery
from server.channels.email.tables import MailReference
from server.db import atomic
from server.desk import csat, queries, services
from server.desk.attachments import Upload
from server.desk.tables import TicketAttachment
from server.jobs import Job
from server.policy import Actor
from server.settings import get_settings
from tests.channels.outbound_smtp import recording_smtp_server
from tests.factories import Mailbox, login, make_user

ORIGINAL = "<CAF=first.message+1@mail.customer.example>"
FOLLOW_UP = "<follow-up.2@mail.customer.example>"


@dataclass
class People:
    customer: Actor
    agent: Actor
    follower: Actor


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def people() -> People:
    return People(
        customer=await make_user(name="Casey Customer", email="casey@customer.example"),
        agent=await make_user("agent", name="Ada Agent"),
        follower=await make_user(name="Fiona Follower", email="fiona@customer.example"),
    )


async def email_ticket(customer: Actor, subject: str = "Export fails") -> int:
    """A ticket as the inbound side makes it: channel email, the original's Message-ID in
    channel_ref (and, as the inbound helper records it, a mail_reference `in` row)."""
    ticket_id = await services.open_ticket(
        customer, subject, "The CSV export stops.", channel="email", channel_ref=ORIGINAL
    )
    return ticket_id


async def record_inbound(ticket_id: int, message_id: str) -> None:
    async with atomic():
        await MailReference.insert(
            MailReference(ticket=ticket_id, message_id=message_id, direction="in", created_at=utcnow())
        )


def ids(value: object) -> list[str]:
    return re.findall(r"<[^<>]+>", str(value or ""))


def part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    assert body is not None and body.get_content_subtype() == subtype, f"no text/{subtype} part"
    return body.get_content()


async def deliveries(ticket_id: int) -> list[dict]:
    return await MailDelivery.select().where(MailDelivery.ticket == ticket_id).order_by(MailDelivery.id)


# Headers and threading --------------------------------------------------------------------------


async def test_agent_reply_threads_onto_the_customers_mail(people: People, mailbox: Mailbox) -> None:
    ticket_id = await email_ticket(people.customer)
    await record_inbound(ticket_id, ORIGINAL)  # the inbound side's row for the original
    [ack] = await mailbox.messages(people.customer.email)
    await record_inbound(ticket_id, FOLLOW_UP)  # the customer wrote again
    await services.add_reply(people.agent, ticket_id, "Please try **again**.")

    mails = await mailbox.messages(people.customer.email)
    [reply] = [m for m in mails if m.name != ack.name]
    ack_id, reply_id = str(ack.message["Message-ID"]), str(reply.message["Message-ID"])

    # Our Message-IDs carry the signed ticket token; the inbound side finds the ticket from them.
    assert re.fullmatch(rf"<kz\.t{ticket_id}-[0-9a-f]{{10}}\.[0-9a-f]{{16}}@testserver\.local>", reply_id)
    assert tokens.ticket_from_message_ids(reply_id) == ticket_id
    assert tokens.ticket_from_message_ids(ack_id) == ticket_id and ack_id != reply_id

    # The acknowledgement answers the original; the reply the latest mail, with the whole chain.
    assert ids(ack.message["In-Reply-To"]) == [ORIGINAL]
    assert ids(ack.message["References"]) == [ORIGINAL]
    assert ids(reply.message["In-Reply-To"]) == [FOLLOW_UP]
    assert ids(reply.message["References"]) == [ORIGINAL, ack_id, FOLLOW_UP]

    reply_to = str(reply.message["Reply-To"])
    assert tokens.find_ticket_token(reply_to) == ticket_id
    assert tokens.reply_address(ticket_id) in reply_to
    assert reply.subject == f"Re: Export fails [#{ticket_id}]"
    assert ack.subject == f"Re: Export fails [#{ticket_id}]"  # the ticket came by mail: same thread
    assert tokens.ticket_from_subject(reply.subject) == ticket_id
    assert str(reply.message["X-Kizuna-Ticket"]) == tokens.ticket_token(ticket_id)

    # A person's reply is not automatic; the acknowledgement is.
    assert reply.message["Auto-Submitted"] is None
    assert str(ack.message["Auto-Submitted"]) == "auto-replied"
    assert "Ada Agent" in str(reply.message["From"])
    assert "Casey Customer" in str(reply.message["To"]) and people.customer.email in str(reply.message["To"])

    # Both parts: the text has the Markdown source, the HTML the rendered Markdown.
    assert "Please try **again**." in part(reply.message, "plain")
    assert "<strong>again</strong>" in part(reply.message, "html")

    # Every Message-ID we sent is on the ticket, tied to the reply it carried.
    out = await MailReference.select().where((MailReference.ticket == ticket_id) & (MailReference.direction == "out"))
    assert {r["message_id"] for r in out} == {ack_id, reply_id}
    assert [r["status"] for r in await deliveries(ticket_id)] == ["sent", "sent"]


async def test_references_are_recorded_at_queue_time_before_sending(people: People, mailbox: Mailbox) -> None:
    ticket_id = await email_ticket(people.customer)
    row = await MailReference.select().where(MailReference.direction == "out").first()
    assert row is not None and row["ticket"] == ticket_id  # queued, not yet sent
    [delivery] = await deliveries(ticket_id)
    assert delivery["status"] == "queued" and delivery["message_id"] == row["message_id"]
    [mail] = await mailbox.messages(people.customer.email)
    assert str(mail.message["Message-ID"]) == row["message_id"]


async def test_web_ticket_acknowledgement_and_csat_mail(people: People, mailbox: Mailbox) -> None:
    ticket_id = await services.open_ticket(people.customer, "Billing question", "Why twice?")
    [ack] = await mailbox.messages(people.customer.email)
    assert ack.subject == f"[#{ticket_id}] We received your request: Billing question"
    assert ack.message["In-Reply-To"] is None and ack.message["References"] is None
    assert str(ack.message["Auto-Submitted"]) == "auto-replied"
    assert part(ack.message, "html").count("Billing question") >= 1

    await services.add_reply(people.agent, ticket_id, "Fixed.")
    ticket = await queries.get_ticket(ticket_id)
    assert ticket is not None
    await services.update_ticket(people.agent, ticket_id, ticket["version"], {"status": "solved"})
    asks = [m for m in await mailbox.messages(people.customer.email) if "How did we do?" in m.subject]
    assert len(asks) == 1
    ask = asks[0].message
    assert str(ask["Auto-Submitted"]) == "auto-replied"
    assert tokens.find_ticket_token(str(ask["Reply-To"])) == ticket_id
    assert f"[#{ticket_id}]" in asks[0].subject
    assert len(ids(ask["References"])) == 2  # the acknowledgement and the reply
    html = part(ask, "html")
    assert "/support/csat/" in html and "rating=good" in html


async def test_reply_subject_keeps_one_re(people: People, mailbox: Mailbox) -> None:
    assert outbound.reply_subject("Re: RE:Re: Export fails", 12) == "Re: Export fails [#12]"
    assert outbound.reply_subject("AW: Frage [#12]", 12) == "Re: Frage [#12]"
    assert outbound.reply_subject("Fwd: Invoice", 7) == "Re: Fwd: Invoice [#7]"
    ticket_id = await email_ticket(people.customer, subject="Re: Re: Export fails")
    await services.add_reply(people.agent, ticket_id, "Looking.")
    subjects = {m.subject for m in await mailbox.messages(people.customer.email)}
    assert subjects == {f"Re: Export fails [#{ticket_id}]"}


async def test_references_stay_bounded_on_a_long_thread(people: People, mailbox: Mailbox) -> None:
    ticket_id = await email_ticket(people.customer)
    await record_inbound(ticket_id, ORIGINAL)
    for n in range(30):
        await record_inbound(ticket_id, f"<reply-{n}.{'x' * 60}@mail.customer.example>")
    await services.add_reply(people.agent, ticket_id, "Still here.")
    reply = [m for m in await mailbox.messages(people.customer.email) if m.message["Auto-Submitted"] is None][0]
    refs = ids(reply.message["References"])
    assert refs[0] == ORIGINAL and refs[-1] == f"<reply-29.{'x' * 60}@mail.customer.example>"
    assert len(refs) <= 1 + outbound.MAX_REFERENCES
    assert len(" ".join(refs)) <= outbound.MAX_REFERENCES_CHARS
    assert ids(reply.message["In-Reply-To"]) == [refs[-1]]
    for line in reply.message.as_string().splitlines():
        assert len(line) <= 998


# Parts, attachments, escaping -------------------------------------------------------------------


async def test_reply_attachments_go_along_and_big_ones_are_linked(
    people: People, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbound, "MAX_ATTACHMENT_BYTES", 100)
    ticket_id = await services.open_ticket(people.customer, "Logs", "See logs", notify=False)
    small, big = b"line one\nline two\n" * 4, b"x" * 90
    await services.add_reply(
        people.agent, ticket_id, "Two files.", uploads=[Upload("trace.log", small), Upload("dump.csv", big)]
    )
    [mail] = await mailbox.messages(people.customer.email)
    files = list(mail.message.iter_attachments())
    assert [f.get_filename() for f in files] == ["trace.log"]
    assert files[0].get_content_type() == "text/plain"
    assert files[0].get_payload(decode=True) == small
    rows = await MailDelivery.select(MailDelivery.ticket_message).where(MailDelivery.ticket == ticket_id)
    assert rows[0]["ticket_message"] is not None
    dump = await TicketAttachment.select(TicketAttachment.id).where(TicketAttachment.filename == "dump.csv").first()
    url = f"http://testserver.local/support/attachments/{dump['id']}"
    assert url in part(mail.message, "plain") and f'href="{url}"' in part(mail.message, "html")
    assert "dump.csv" in part(mail.message, "plain")


async def test_html_part_escapes_everything_but_the_rendered_markdown(mailbox: Mailbox) -> None:
    customer = await make_user(name="<img src=x onerror=alert(1)>", email="eve@customer.example")
    agent = await make_user("agent", name="<script>alert('name')</script>Mallory")
    ticket_id = await services.open_ticket(customer, "<b>bold subject</b>", "hi", notify=False)
    await services.add_reply(agent, ticket_id, "Hello <script>alert('body')</script> and **fine**.")
    [mail] = await mailbox.messages(customer.email)
    html = part(mail.message, "html")
    assert "<script" not in html and "<b>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;Mallory" in html
    assert "&lt;b&gt;bold subject&lt;/b&gt;" in html  # the <title>
    assert "<strong>fine</strong>" in html
    assert "<script>alert('body')</script>" in part(mail.message, "plain")  # text is text


# Header injection -------------------------------------------------------------------------------


async def test_crlf_in_names_and_subjects_never_makes_a_header(people: People) -> None:
    evil = "Eve\r\nBcc: x@evil.example\r\nX-Injected: yes"
    customer = await make_user(name=evil, email="eve@customer.example")
    agent = await make_user("agent", name="Ada\nBcc: x@evil.example")
    with recording_smtp_server() as server:
        ticket_id = await services.open_ticket(customer, "Help\x1b\rBcc: x@evil.example", "hi", notify=False)
        await services.add_reply(agent, ticket_id, "Hi")
        await jobs.run_pending()
        # The same through the builder directly, with every value people control poisoned.
        payload = {
            "delivery": 0,
            "ticket": ticket_id,
            "to": "eve@customer.example",
            "to_name": evil,
            "from_name": evil,
            "from": "support@kizuna.localhost",
            "reply_to": tokens.reply_address(ticket_id),
            "subject": "Re: x\r\nBcc: x@evil.example",
            "text": "body",
            "html": "",
            "message_id": tokens.message_id(ticket_id, "direct"),
            "in_reply_to": "<a@b>\r\nBcc: x@evil.example",
            "references": ["<a@b>\r\nBcc: x@evil.example", "<ok@customer.example>"],
            "automatic": True,
        }
        direct = outbound.build(payload)
    [received] = server.messages()
    assert received.rcpt_tos == ["eve@customer.example"]  # nobody else was given the mail
    for raw in (received.raw, direct.as_bytes()):
        headers = raw.split(b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n", 1)[0]
        names = [line.split(b":", 1)[0].lower() for line in headers.splitlines() if line and line[:1] not in b" \t"]
        assert b"bcc" not in names and b"x-injected" not in names, headers
    assert received.message["Bcc"] is None
    assert "Eve Bcc: x@evil.example X-Injected: yes" in str(received.message["To"])
    assert received.message["Subject"] == f"Re: Help Bcc: x@evil.example [#{ticket_id}]"
    assert ids(direct["References"]) == ["<ok@customer.example>"]


def test_a_built_message_reads_back_as_given() -> None:
    """Japanese names and subjects are encoded, References fold between whole ids, attachment
    names survive, the text is 7-bit clean, and the message says MIME-Version once."""
    import email
    import email.policy

    refs = ["<a@customer.example>", *(f"<long-id-{n}-{'x' * 30}@customer.example>" for n in range(4))]
    payload = {
        "ticket": 12,
        "to": "taro@customer.example",
        "to_name": "山田 太郎",
        "from_name": "Ada (Kizuna Support)",
        "from": "support@kizuna.localhost",
        "reply_to": "support+t12@kizuna.localhost",
        "subject": "Re: タイムラインが表示されません、エクスポートも止まります。長い件名 [#12]",
        "text": "こんにちは\n= equals",
        "html": "<p>こんにちは</p>",
        "message_id": "<t12.abc@kizuna.localhost>",
        "in_reply_to": refs[-1],
        "references": refs,
        "automatic": True,
    }
    raw = outbound.build(payload, [("報告書.pdf", "application/pdf", b"%PDF-1.4")]).as_bytes()
    assert raw.isascii() and raw.count(b"MIME-Version") == 1
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == payload["subject"]
    assert str(parsed["To"]) == "山田 太郎 <taro@customer.example>"
    assert parsed["From"].addresses[0].display_name == "Ada (Kizuna Support)"
    assert ids(parsed["References"]) == refs and parsed["In-Reply-To"] == refs[-1]
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == "こんにちは\n= equals"
    assert "こんにちは" in parsed.get_body(("html",)).get_content()
    [attachment] = parsed.iter_attachments()
    assert attachment.get_filename() == "報告書.pdf" and attachment.get_content() == b"%PDF-1.4"


def test_mailbox_refuses_malformed_addresses() -> None:
    for bad in ("a@b.example\r\nBcc: x@evil", "a@b.example, x@evil.example", "<x@evil>", ""):
        with pytest.raises(ValueError):
            outbound.mailbox("Name", bad)


# Idempotency ------------------------------------------------------------------------------------


async def test_a_retried_job_never_sends_twice(people: People, mailbox: Mailbox) -> None:
    ticket_id = await services.open_ticket(people.customer, "Once", "only once", notify=False)
    message_id = await services.add_reply(people.agent, ticket_id, "One reply.")
    assert len(await mailbox.messages(people.customer.email)) == 1
    job = await Job.select().where(Job.kind == outbound.KIND).first()
    assert job["status"] == jobs.DONE

    # The worker died after the delivery was marked sent but before the job was: it runs again.
    await Job.update({Job.status: jobs.QUEUED, Job.run_at: utcnow() - timedelta(seconds=1)}).where(Job.id == job["id"])
    assert await jobs.run_pending() == 1
    # The service queues the same mail again (e.g. a replayed request): nothing new.
    ticket = await queries.get_ticket(ticket_id)
    async with atomic():
        await services._mail_requester(
            ticket, "desk_ticket_reply", f"desk.reply:{message_id}", ticket_message=message_id, author="Ada", body="x"
        )
    assert await jobs.run_pending() == 0
    mails = await mailbox.messages(people.customer.email)
    assert len(mails) == 1
    [delivery] = await deliveries(ticket_id)
    assert delivery["status"] == "sent" and delivery["attempts"] == 1
    assert await MailReference.count().where(MailReference.direction == "out") == 1


async def test_a_retry_after_an_unrecorded_send_reuses_the_message_id(people: People, mailbox: Mailbox) -> None:
    """Sent, then the worker died before marking anything: the retry sends again, with the
    same Message-ID, so the recipient's system sees one message."""
    ticket_id = await services.open_ticket(people.customer, "Twice?", "hm", notify=False)
    await services.add_reply(people.agent, ticket_id, "Reply.")
    await mailbox.deliver()
    await MailDelivery.update({MailDelivery.status: "queued"}).where(MailDelivery.ticket == ticket_id)
    await Job.update({Job.status: jobs.QUEUED, Job.run_at: utcnow()}).where(Job.kind == outbound.KIND)
    mails = await mailbox.messages(people.customer.email)
    assert len(mails) == 2
    assert len({str(m.message["Message-ID"]) for m in mails}) == 1


async def test_a_backlog_goes_out_in_one_run_with_every_delivery_recorded(people: People) -> None:
    """More mails than one record holds (outbound.SENDS_PER_RECORD): each is sent once, in the
    order queued, a refused one is retried on its own, and every delivery and job is recorded."""
    count = outbound.SENDS_PER_RECORD * 2 + 3
    rejected = await make_user(name="Rita Reject", email="reject@customer.example")
    with recording_smtp_server() as server:
        for n in range(count):
            requester = rejected if n == 5 else people.customer
            await services.open_ticket(requester, f"Backlog {n}", "hello")
        await jobs.run_pending()
        subjects = [str(r.message["Subject"]) for r in server.messages(people.customer.email)]
        assert len(subjects) == count - 1 and server.refused == [rejected.email]
        numbers = [int(re.search(r"Backlog (\d+)", subject).group(1)) for subject in subjects]  # type: ignore[union-attr]
        assert numbers == [n for n in range(count) if n != 5]
    statuses = [r["status"] for r in await MailDelivery.select(MailDelivery.status).order_by(MailDelivery.id)]
    assert statuses == ["retrying" if n == 5 else "sent" for n in range(count)]
    jobs_left = await Job.select(Job.status).where(Job.kind == outbound.KIND)
    assert sorted(r["status"] for r in jobs_left) == [jobs.DONE] * (count - 1) + [jobs.QUEUED]


# Recipients -------------------------------------------------------------------------------------


async def test_internal_notes_and_customer_replies_are_not_mailed(people: People, mailbox: Mailbox) -> None:
    ticket_id = await services.open_ticket(people.customer, "Quiet", "hello", notify=False)
    await services.add_note(people.agent, ticket_id, "secret legacy plan")
    await services.add_reply(people.customer, ticket_id, "me again")
    assert await mailbox.messages() == []
    assert await deliveries(ticket_id) == []


async def test_followers_get_their_own_copy_and_thread(people: People, mailbox: Mailbox) -> None:
    outsider = await make_user(name="Oscar Outsider", email="oscar@other.example")
    await services.open_ticket(outsider, "Not yours", "private", notify=False)
    ticket_id = await services.open_ticket(people.customer, "Shared", "hello", notify=False)
    await services.add_follower(people.agent, ticket_id, people.follower.email)
    await services.add_reply(people.agent, ticket_id, "First answer.")
    await services.add_reply(people.agent, ticket_id, "Second answer.")
    to_customer = await mailbox.messages(people.customer.email)
    to_follower = await mailbox.messages(people.follower.email)
    assert len(to_customer) == len(to_follower) == 2
    assert await mailbox.messages(outsider.email) == []
    for mails in (to_customer, to_follower):
        [first] = [m for m in mails if "First answer." in m.body]
        [second] = [m for m in mails if "Second answer." in m.body]
        assert len(first.message.get_all("To")) == 1
        # Each recipient's second mail answers the first mail that recipient got.
        assert ids(second.message["In-Reply-To"]) == [str(first.message["Message-ID"])]
    all_ids = {str(m.message["Message-ID"]) for m in to_customer + to_follower}
    assert len(all_ids) == 4


# Failures, retries and the ticket page ----------------------------------------------------------


async def test_a_refused_recipient_is_retried_and_shown_to_agents_only(
    people: People, client: httpx.AsyncClient
) -> None:
    rejected = await make_user(name="Rita Reject", email="reject@customer.example")
    ticket_id = await services.open_ticket(people.customer, "Two people", "hello", notify=False)
    await services.add_follower(people.agent, ticket_id, rejected.email)
    with recording_smtp_server() as server:
        reply_id = await services.add_reply(people.agent, ticket_id, "For both of you.")
        await jobs.run_pending()
        assert [r.rcpt_tos for r in server.messages()] == [[people.customer.email]]
        assert server.refused == [rejected.email]

        rows = {r["recipient"]: r for r in await deliveries(ticket_id)}
        assert rows[people.customer.email]["status"] == "sent"
        failed = rows[rejected.email]
        assert failed["status"] == "retrying" and failed["attempts"] == 1
        assert failed["last_error"].startswith("550 5.1.1") and "User unknown" in failed["last_error"]
        assert failed["ticket_message"] == reply_id
        job = await Job.select().where(Job.idempotency_key == failed["key"]).first()
        assert job["status"] == jobs.QUEUED and job["run_at"] > utcnow()  # backing off
        assert "550" in job["last_error"]

        await login(client, people.agent.email)
        page = (await client.get(f"/desk/tickets/{ticket_id}")).text
        reply_html = page.split(f'id="m{reply_id}"', 1)[1].split(' id="m', 1)[0]
        assert f"Sent to {people.customer.email}" in reply_html
        assert f"Failed for {rejected.email}: 550 5.1.1" in reply_html and "(retrying)" in reply_html

        for person in (people.customer, rejected):  # the portal shows no delivery details
            await login(client, person.email)
            portal = (await client.get(f"/support/tickets/{ticket_id}")).text
            assert "For both of you." in portal
            assert "550 5.1.1" not in portal and "Sent to" not in portal and "Email delivery" not in portal

        # The address is fixed on the receiving side; the backoff elapses; the retry goes out.
        server.rejecting = False
        await Job.update({Job.run_at: utcnow()}).where(Job.id == job["id"])
        assert await jobs.run_pending() == 1
        assert [r.rcpt_tos for r in server.messages()][-1] == [rejected.email]
        again = {r["recipient"]: r for r in await deliveries(ticket_id)}[rejected.email]
        assert again["status"] == "sent" and again["attempts"] == 2 and again["last_error"] == ""
        ids_sent = {str(r.message["Message-ID"]) for r in server.messages(rejected.email)}
        assert ids_sent == {failed["message_id"]}

        await login(client, people.agent.email)
        page = (await client.get(f"/desk/tickets/{ticket_id}")).text
        assert f"Sent to {rejected.email}" in page and "(retrying)" not in page


async def test_the_last_failed_try_is_shown_as_given_up(people: People, client: httpx.AsyncClient) -> None:
    rejected = await make_user(name="Rita Reject", email="reject@customer.example")
    ticket_id = await services.open_ticket(rejected, "Bounce", "hello")  # the acknowledgement fails
    await Job.update({Job.max_attempts: 1}).where(Job.kind == outbound.KIND)
    with recording_smtp_server():
        await jobs.run_pending()
    [row] = await deliveries(ticket_id)
    assert row["status"] == "failed" and row["template"] == "desk_ticket_created"
    assert (await Job.select().where(Job.kind == outbound.KIND).first())["status"] == jobs.DEAD
    await login(client, people.agent.email)
    page = (await client.get(f"/desk/tickets/{ticket_id}")).text
    assert f"Acknowledgement: Failed for {rejected.email}: 550" in " ".join(page.split())
    assert "gave up after 1 attempts" in page


async def test_delivery_state_renders_in_japanese(people: People, client: httpx.AsyncClient) -> None:
    agent = await make_user("agent", name="山田 太郎", locale="ja")
    ticket_id = await services.open_ticket(people.customer, "Hello", "hello", notify=False)
    await services.add_reply(agent, ticket_id, "こんにちは")
    await jobs.run_pending()
    await login(client, agent.email)
    page = (await client.get(f"/desk/tickets/{ticket_id}")).text
    assert f"{people.customer.email} に送信済み" in page


async def test_japanese_customer_gets_japanese_parts(people: People, mailbox: Mailbox) -> None:
    customer = await make_user(name="鈴木 花子", email="hanako@customer.example", locale="ja")
    ticket_id = await services.open_ticket(customer, "ログインできません", "助けてください", notify=False)
    await services.add_reply(people.agent, ticket_id, "パスワードを再設定してください。")
    [mail] = await mailbox.messages(customer.email)
    assert mail.subject == f"Re: ログインできません [#{ticket_id}]"
    assert "鈴木 花子" in str(mail.message["To"])
    html = part(mail.message, "html")
    assert 'lang="ja"' in html and "このメールに返信" in html and "パスワードを再設定" in html


async def test_non_ticket_mail_still_uses_mail_send(mailbox: Mailbox) -> None:
    from server import mail

    async with atomic():
        await mail.queue_mail("someone@example.test", "verify_email", {"url": "http://x/y"}, locale="en", key="v-1")
    [message] = await mailbox.messages("someone@example.test")
    assert str(message.message["Auto-Submitted"]) == "auto-generated"
    assert await MailDelivery.count() == 0
    assert get_settings().mail_from in str(message.message["From"])


async def test_csat_reminder_is_automatic_and_threaded(people: People, mailbox: Mailbox) -> None:
    ticket_id = await services.open_ticket(people.customer, "Remind", "hello", notify=False)
    await services.add_reply(people.agent, ticket_id, "Done.", status="solved", version=1)
    row = await csat.current(ticket_id)
    assert row is not None
    assert await csat.send_reminder(ticket_id, int(row["solved_at"].timestamp()), now=utcnow() + timedelta(days=4))
    reminders = [m for m in await mailbox.messages(people.customer.email) if "Reminder" in m.subject]
    assert len(reminders) == 1
    message = reminders[0].message
    assert str(message["Auto-Submitted"]) == "auto-replied"
    assert len(ids(message["References"])) == 2  # the reply and the CSAT question


async def test_delivery_state_follows_a_reply_into_the_merged_ticket(people: People, client: httpx.AsyncClient) -> None:
    source = await services.open_ticket(people.customer, "First", "one", notify=False)
    target = await services.open_ticket(people.customer, "Second", "two", notify=False)
    reply_id = await services.add_reply(people.agent, source, "Answer on the first.")
    await jobs.run_pending()
    await services.merge_tickets(people.agent, source, target)
    await login(client, people.agent.email)
    page = (await client.get(f"/desk/tickets/{target}")).text
    reply_html = page.split(f'id="m{reply_id}"', 1)[1].split(' id="m', 1)[0]
    assert f"Sent to {people.customer.email}" in reply_html
    source_page = " ".join((await client.get(f"/desk/tickets/{source}")).text.split())
    assert f"Merge notice: Queued for {people.customer.email}" in source_page  # its automatic mail


async def test_only_agents_get_delivery_state(people: People) -> None:
    ticket_id = await services.open_ticket(people.customer, "Mine", "hello")
    assert policy.can_see_mail_delivery(people.agent)
    assert not policy.can_see_mail_delivery(people.customer)
    assert (await outbound.ticket_deliveries(people.agent, ticket_id))["automatic"]
    assert await outbound.ticket_deliveries(people.customer, ticket_id) == {"by_message": {}, "automatic": []}

"""The SMTP listener, with a real smtplib client: 250 only after the message is stored, no
relaying, 452 past the recipient limit, 552 over the size limit (with the head of a message that
was sent kept in quarantine), and the message then becomes a ticket through the worker."""

from __future__ import annotations

import asyncio
import re
import smtplib
import socket
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from argon2 import PasswordHasher

from server import features, jobs  # noqa: F401 - features registers the job handlers
from server.accounts import passwords
from server.channels.email import inbound, smtp_listener
from server.channels.email.inbound_tables import InboundMail
from server.errors import Invalid
from server.settings import ROOT
from tests.channels.inbound_helpers import raw_mail, row, support
from tests.factories import login, make_user


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def listener() -> AsyncIterator[int]:
    port = _free_port()
    server = await smtp_listener.start_listener("127.0.0.1", port)
    yield port
    server.close()
    await server.wait_closed()


def _send(port: int, sender: str, recipients: list[str], data: bytes) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.sendmail(sender, recipients, data)


async def test_a_message_over_smtp_is_stored_before_250_then_becomes_a_ticket(listener: int) -> None:
    raw = raw_mail(sender="Sam <sam@example.test>", subject="Over SMTP")
    refused = await asyncio.to_thread(_send, listener, "sam@example.test", [support()], raw)
    assert refused == {}
    stored = await InboundMail.select().output(load_json=True).first()  # committed before the client got 250
    assert stored["source"] == "smtp" and stored["envelope_from"] == "sam@example.test"
    assert stored["envelope_to"] == [support()] and stored["status"] == "pending"
    await jobs.run_pending("test-worker")
    done = await row(stored["id"])
    assert done["status"] == "done" and done["ticket"] is not None


async def test_the_listener_is_not_an_open_relay(listener: int) -> None:
    local, _sep, domain = support().partition("@")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(_send, listener, "a@example.test", ["victim@elsewhere.test"], raw_mail())
    assert refused.value.recipients["victim@elsewhere.test"][0] == 550
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await asyncio.to_thread(_send, listener, "a@example.test", [f"postmaster@{domain}"], raw_mail())
    partly = await asyncio.to_thread(
        _send, listener, "a@example.test", [f"{local}+t1-abc@{domain}", "other@elsewhere.test"], raw_mail()
    )
    assert list(partly) == ["other@elsewhere.test"]
    assert await InboundMail.count() == 1


async def test_more_than_a_hundred_recipients_get_452(listener: int) -> None:
    local, _sep, domain = support().partition("@")
    recipients = [f"{local}+r{n}@{domain}" for n in range(2000)]
    refused = await asyncio.to_thread(_send, listener, "a@example.test", recipients, raw_mail())
    assert len(refused) == 2000 - inbound.MAX_SMTP_RECIPIENTS
    assert {code for code, _text in refused.values()} == {452}
    stored = await InboundMail.select().output(load_json=True).first()
    assert len(stored["envelope_to"]) == inbound.MAX_SMTP_RECIPIENTS


async def test_a_declared_size_over_the_limit_gets_552_before_any_data(
    listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """smtplib's sendmail declares SIZE= (the listener announces the extension): refused at MAIL
    FROM, before a byte of the message is sent, so there is nothing to keep."""
    monkeypatch.setattr(inbound, "max_bytes", lambda: 20_000)
    port = _free_port()
    server = await smtp_listener.start_listener("127.0.0.1", port)  # takes the limit when it starts
    try:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            await asyncio.to_thread(_send, port, "a@example.test", [support()], raw_mail(body="y" * 50_000))
        assert refused.value.smtp_code == 552
    finally:
        server.close()
    assert await InboundMail.count() == 0


def _send_undeclared(port: int, sender: str, recipients: list[str], messages: list[bytes]) -> list[tuple[int, bytes]]:
    """MAIL FROM without SIZE= (as many clients send), then DATA; each message in turn on one
    connection. Returns the answer to each DATA."""
    answers = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        for data in messages:
            assert client.mail(sender)[0] == 250
            for recipient in recipients:
                assert client.rcpt(recipient)[0] == 250
            answers.append(client.data(data))
    return answers


async def test_over_the_limit_gets_552_after_data_and_its_head_is_quarantined(
    monkeypatch: pytest.MonkeyPatch, client: httpx.AsyncClient
) -> None:
    monkeypatch.setattr(inbound, "max_bytes", lambda: 20_000)
    port = _free_port()
    server = await smtp_listener.start_listener("127.0.0.1", port)
    # Lines that start with a dot are sent dot-stuffed ("..line"); the kept head has them as written.
    body = "".join(f".line {n:05d} of a message far over the limit\n" for n in range(6000))
    # smtplib sends bytes as they are: the lines end in CRLF, as on the wire.
    huge = re.sub(rb"\r?\n", b"\r\n", raw_mail(sender="Big Sender <big@example.test>", subject="Huge", body=body))
    small = re.sub(rb"\r?\n", b"\r\n", raw_mail(sender="big@example.test", subject="Small again"))
    try:
        (code, text), (next_code, _next_text) = await asyncio.to_thread(
            _send_undeclared, port, "big@example.test", [support()], [huge, small]
        )
    finally:
        server.close()
    assert code == 552 and b"limit is 20000 bytes" in text, text
    assert next_code == 250  # the session goes on: the next message on the connection is taken

    kept, taken = await InboundMail.select().order_by(InboundMail.id).output(load_json=True)
    assert kept["status"] == "quarantined" and kept["truncated"] and kept["source"] == "smtp"
    assert kept["envelope_from"] == "big@example.test" and kept["envelope_to"] == [support()]
    assert "too large" in kept["reason"] and "the limit is 20000" in kept["reason"]
    assert kept["size_bytes"] >= len(huge)
    head = inbound.read_raw(kept["storage_key"])
    assert len(head) == inbound.HEAD_BYTES and head == huge[: inbound.HEAD_BYTES]
    assert b"\r\n.line 00001 of" in head and b"..line" not in head
    assert kept["message_id"] and kept["message_id"] in huge.decode()
    assert taken["status"] == "pending" and taken["size_bytes"] < 20_000

    with pytest.raises(Invalid, match="first part"):  # only its head is kept: it cannot be processed
        await inbound.retry(await make_user("admin"), kept["id"])
    await login(client, (await make_user("admin", email="root@example.test")).email)
    page = (await client.get("/admin/channels/email")).text
    assert f"/admin/channels/email/{kept['id']}" in page and "big@example.test" in page


def _noop(port: int) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        return client.noop()[0]


async def test_the_smtp_command_serves_the_listener() -> None:
    """`python -m server smtp --listen HOST:PORT` (the Procfile's process) answers SMTP."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "smtp", "--listen", f"127.0.0.1:{port}", cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                assert await asyncio.to_thread(_noop, port) == 250
                break
            except OSError:
                await asyncio.sleep(0.2)
        else:
            pytest.fail("the smtp command did not listen")
        refused = await asyncio.to_thread(_send, port, "cli@example.test", [support()], raw_mail(subject="Via CLI"))
        assert refused == {}
        assert await InboundMail.count().where(InboundMail.source == "smtp") == 1
    finally:
        process.terminate()
        await process.wait()

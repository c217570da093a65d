"""The SMTP listener, with a real smtplib client: 250 only after the message is stored, no
relaying, 452 past the recipient limit, 552 over the size limit, and the message then becomes a
ticket through the worker."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import sys
import time
from collections.abc import AsyncIterator

import pytest

from server import features, jobs  # noqa: F401 - features registers the job handlers
from server.channels.email import inbound, smtp_listener
from server.channels.email.inbound_tables import InboundMail
from server.settings import ROOT
from tests.channels.inbound_helpers import raw_mail, row, support


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


async def test_over_the_size_limit_gets_552(listener: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbound, "max_bytes", lambda: 20_000)
    port = _free_port()
    server = await smtp_listener.start_listener("127.0.0.1", port)  # takes the limit when it starts
    try:
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
            await asyncio.to_thread(_send, port, "a@example.test", [support()], raw_mail(body="y" * 50_000))
        assert refused.value.smtp_code == 552
    finally:
        server.close()
    assert await InboundMail.count() == 0


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

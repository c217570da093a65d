"""A small real SMTP server for the outbound mail tests (aiosmtpd, in a thread of its own).

Unlike the app's sink it keeps the SMTP envelope, refuses RCPT TO for addresses whose local
part starts with `reject` (550, as a mail server refuses an unknown user) while `rejecting` is
on, and can hold its "250 accepted" answer for `hold_seconds` after it has stored a message
(a slow or stuck receiving server), so a test can kill the sender in that window.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from server.settings import get_settings
from tests.conftest import _free_port


@dataclass
class Received:
    envelope_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class RecordingSmtpServer:
    port: int
    rejecting: bool = True
    hold_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rejecting and address.lower().startswith("reject"):
            with self.lock:
                self.refused.append(address)
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        with self.lock:
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(envelope.original_content or b""))
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.hold_seconds
        # Polled: the test releases it from its own thread by setting hold_seconds to 0.
        while self.hold_seconds and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return "250 Message accepted for delivery"

    def messages(self, to: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if to is None or to in r.rcpt_tos]


@contextmanager
def recording_smtp_server() -> Iterator[RecordingSmtpServer]:
    """Start the server on a free port; SMTP_URL points at it (in this process) until exit."""
    server = RecordingSmtpServer(_free_port())
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SMTP_URL", f"smtp://127.0.0.1:{server.port}")
            get_settings.cache_clear()  # settings are read once per process: read them again
            try:
                yield server
            finally:
                get_settings.cache_clear()
    finally:
        controller.stop()

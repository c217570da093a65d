"""The inbound SMTP listener (`python -m server smtp`, Procfile `smtp`), on SMTP_LISTEN.

It is a final destination, not a relay: RCPT TO names our support address (or one of its
plus-addresses) or gets 550; more than MAX_SMTP_RECIPIENTS recipients get 452; a message over
INBOUND_MAX_BYTES gets 552 (announced with the SIZE extension), and when its data reached us its
first 64 KiB are kept in quarantine, as the HTTP endpoint does (see `InboundSMTP`). DATA is
answered 250 only once the raw message and its processing job are committed
(`inbound.store_raw`); when that fails the answer is 451, so the sending server keeps the
message and tries again later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from server.channels.email import inbound

log = logging.getLogger("kizuna.email.smtp")


class InboundHandler:
    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= inbound.MAX_SMTP_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        if not inbound.is_our_recipient(address):
            log.info("smtp: refused recipient %r from %r (not ours)", address[:200], session.peer)
            return "550 5.7.1 Relaying denied: this server only accepts mail for its support address"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # only with decode_data=True, which we do not use
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            inbound_id = await inbound.store_raw(
                raw,
                source="smtp",
                envelope_from=str(envelope.mail_from or ""),
                envelope_to=[str(address) for address in envelope.rcpt_tos],
            )
        except Exception:
            log.exception("smtp: could not store a message from %r; answered 451", session.peer)
            return "451 4.3.0 Temporary failure, try again later"
        log.info("smtp: stored message %s (%s bytes) from %r", inbound_id, len(raw), session.peer)
        return f"250 2.0.0 Accepted as {inbound_id}"


class _HeadTap:
    """Stands in for the session's stream reader during DATA: every read passes through, and
    the first HEAD_BYTES of the message are kept (dot-stuffing undone, the final dot left out)
    while all its bytes are counted, as aiosmtpd counts them against the limit."""

    def __init__(self, reader: Any) -> None:  # noqa: ANN401 - asyncio.StreamReader
        self._reader = reader
        self.head = bytearray()
        self.size = 0
        self._line_start = True
        self._ended = False

    def _see(self, data: bytes) -> None:
        if self._ended or not data:
            return
        if self._line_start and data == b".\r\n":
            self._ended = True
            return
        self.size += len(data)
        if len(self.head) < inbound.HEAD_BYTES:
            kept = data[1:] if self._line_start and data.startswith(b".") else data
            self.head += kept[: inbound.HEAD_BYTES - len(self.head)]
        self._line_start = data.endswith(b"\r\n")

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        data = await self._reader.readuntil(separator)
        self._see(data)
        return data

    async def read(self, n: int = -1) -> bytes:
        data = await self._reader.read(n)
        self._see(data)
        return data

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401
        return getattr(self._reader, name)


class InboundSMTP(SMTP):
    """aiosmtpd's SMTP session, keeping the head of an over-size message.

    How aiosmtpd (1.4) enforces `data_size_limit`: a MAIL FROM that declares a SIZE over it is
    answered 552 at once; during DATA, once the bytes pass the limit it throws away what it has
    buffered, reads and discards the rest up to the final dot, answers "552 Error: Too much mail
    data" itself and never calls `handle_DATA`. A handler alone can therefore keep nothing.

    Decision: keep aiosmtpd's limit (so memory stays bounded and SIZE is announced) and, for the
    length of DATA only, read through `_HeadTap`, which keeps the first 64 KiB. When aiosmtpd
    then answers 552, `push` stores that head with a quarantine row first (`store_oversize`, as
    the HTTP endpoint does) and sends our own 552. The alternatives were worse: raising or
    removing the limit would buffer whole messages in memory (or make us parse the data
    ourselves), and copying aiosmtpd's `smtp_DATA` would fork ~100 lines of its protocol code.
    This leans on two private names (`_reader`, and the 552 being the only one DATA pushes);
    tests/channels/test_inbound_smtp.py fails if an aiosmtpd upgrade changes either.

    A sender that declares SIZE over the limit keeps its 552 at MAIL FROM and sends nothing, so
    nothing is recorded: we would know neither its recipients (RCPT comes later, so relay probes
    would fill the list) nor a byte of its content, and taking the data anyway just to keep its
    head would make every honest sender transmit the whole message first. Senders that check
    our announced SIZE never connect that far either; both are told by their own server.
    """

    _tap: _HeadTap | None = None

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command method
        reader = self._reader
        self._tap = _HeadTap(reader)
        self._reader = self._tap
        try:
            await super().smtp_DATA(arg)
        finally:
            self._reader = reader
            self._tap = None

    async def push(self, status: Any) -> None:  # noqa: ANN401 - str or bytes, as aiosmtpd's
        tap = self._tap
        if tap is not None and isinstance(status, str) and status.startswith("552"):
            self._tap = None
            status = await self._quarantine(tap)
        await super().push(status)

    async def _quarantine(self, tap: _HeadTap) -> str:
        """Keep the over-size message's head; the answer stays 552 whatever happens (the
        message is refused for good, so the sender must not try again)."""
        limit = self.data_size_limit or inbound.max_bytes()
        envelope = self.envelope
        try:
            inbound_id = await inbound.store_oversize(
                bytes(tap.head),
                tap.size,
                source="smtp",
                envelope_from=str(envelope.mail_from or "") if envelope else "",
                envelope_to=[str(address) for address in envelope.rcpt_tos] if envelope else [],
            )
        except Exception:
            log.exception("smtp: could not quarantine an over-size message from %r", self.session.peer)
            return f"552 5.3.4 Message too big: the limit is {limit} bytes"
        log.info("smtp: over-size message from %r quarantined as %s", self.session.peer, inbound_id)
        return f"552 5.3.4 Message too big: the limit is {limit} bytes (kept in quarantine as {inbound_id})"


def _factory(hostname: str) -> Any:
    def make() -> SMTP:
        return InboundSMTP(
            InboundHandler(),
            data_size_limit=inbound.max_bytes(),
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident="Kizuna inbound mail",
            timeout=120,
        )

    return make


async def start_listener(host: str, port: int) -> asyncio.Server:
    from server.channels.email import tokens

    loop = asyncio.get_running_loop()
    return await loop.create_server(_factory(tokens.mail_domain()), host, port)

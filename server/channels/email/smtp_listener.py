"""The inbound SMTP listener (`python -m server smtp`, Procfile `smtp`), on SMTP_LISTEN.

It is a final destination, not a relay: RCPT TO names our support address (or one of its
plus-addresses) or gets 550; more than MAX_SMTP_RECIPIENTS recipients get 452; a message over
INBOUND_MAX_BYTES gets 552 (announced with the SIZE extension). DATA is answered 250 only once
the raw message and its processing job are committed (`inbound.store_raw`); when that fails the
answer is 451, so the sending server keeps the message and tries again later.
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


def _factory(hostname: str) -> Any:
    def make() -> SMTP:
        return SMTP(
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

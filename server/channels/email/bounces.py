"""Which addresses bounce: a delivery failure report named them (`mail_bounce` rows, written by
server/channels/email/processing.py), and they have not written to us since.

Outbound ticket mail is not sent to a bouncing address (server/channels/email/outbound.py) and
inbound mail does not copy one on a ticket. The mark goes away when a normal message (not a
bounce, auto-reply or bulk mail) arrives from the address: someone is reading that mailbox
again. Mail is not authenticated, so a forged From can lift the mark too; the worst that does
is one more mail to the address, whose bounce marks it again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from server.channels.email.inbound_tables import MailBounce

log = logging.getLogger("kizuna.email.bounces")


async def bouncing(addresses: Iterable[str]) -> set[str]:
    """Those of `addresses` (compared lower-cased) that bounce, lower-cased."""
    wanted = sorted({address.strip().lower() for address in addresses if address and address.strip()})
    if not wanted:
        return set()
    rows = await MailBounce.select(MailBounce.address).where(MailBounce.address.is_in(wanted))
    return {row["address"] for row in rows}


async def clear(address: str) -> bool:
    """The address wrote to us: it no longer counts as bouncing. Returns whether it did. The
    history stays on the tickets (their "mail bounced" events) and in `inbound_mail`."""
    address = address.strip().lower()
    removed = await MailBounce.delete().where(MailBounce.address == address).returning(MailBounce.id)
    if removed:
        log.info("%s wrote to us again: no longer marked as bouncing", address)
    return bool(removed)

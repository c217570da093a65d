"""The ticket token carried by our outgoing mail, and how inbound mail finds it again.

One signed token per ticket, `t<id>-<10 hex>`, appears in three places of every mail we send
about a ticket: the Message-ID (`<kz.t12-…​.m34.<hash>@domain>`), the Reply-To plus-address
(`support+t12-…@domain`) and, unsigned, the subject tag `[#12]`. The signature is what lets a
reply thread onto a ticket: a guessed Message-ID or plus-address for someone else's ticket
does not verify. The bare subject tag proves nothing and must be paired with a sender check.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from email.utils import parseaddr
from urllib.parse import urlparse

from server.settings import get_settings

_TOKEN = re.compile(r"\bt(\d{1,12})-([0-9a-f]{10})\b", re.IGNORECASE)
_SUBJECT_TAG = re.compile(r"\[#(\d{1,12})\]")


def _signature(ticket_id: int) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"kizuna.ticket-mail:{ticket_id}".encode(), hashlib.sha256).hexdigest()[:10]


def ticket_token(ticket_id: int) -> str:
    return f"t{ticket_id}-{_signature(ticket_id)}"


def find_ticket_token(text: str) -> int | None:
    """The ticket id of the first correctly signed token in `text` (an address, a header)."""
    for match in _TOKEN.finditer(text or ""):
        ticket_id = int(match.group(1))
        if hmac.compare_digest(match.group(2).lower(), _signature(ticket_id)):
            return ticket_id
    return None


def mail_domain() -> str:
    return urlparse(get_settings().base_url).hostname or "kizuna.localhost"


def mail_from() -> tuple[str, str]:
    """MAIL_FROM as (display name, address)."""
    return _parsed_address(get_settings().mail_from)


@functools.lru_cache(maxsize=8)
def _parsed_address(value: str) -> tuple[str, str]:  # parsed once: parseaddr is slow and every mail reads it
    return parseaddr(value)


def support_address() -> str:
    """The bare address customers write to (from MAIL_FROM)."""
    return mail_from()[1] or f"support@{mail_domain()}"


def reply_address(ticket_id: int) -> str:
    """`support+t12-…@domain`: replies to it thread onto ticket 12."""
    local, _, domain = support_address().partition("@")
    return f"{local}+{ticket_token(ticket_id)}@{domain}"


def message_id(ticket_id: int, unique: str) -> str:
    """Our Message-ID for one outgoing mail about a ticket; `unique` is stable per mail
    (for example the outbound idempotency key) so a retried send carries the same id."""
    digest = hashlib.sha256(unique.encode()).hexdigest()[:16]
    return f"<kz.{ticket_token(ticket_id)}.{digest}@{mail_domain()}>"


def ticket_from_message_ids(header_value: str) -> int | None:
    """The ticket named by any of our Message-IDs in an In-Reply-To or References value."""
    for reference in re.findall(r"<([^<>]+)>", header_value or ""):
        if reference.startswith("kz.") and reference.endswith("@" + mail_domain()):
            found = find_ticket_token(reference)
            if found is not None:
                return found
    return None


def subject_tag(ticket_id: int) -> str:
    return f"[#{ticket_id}]"


def ticket_from_subject(subject: str) -> int | None:
    """The ticket id in a `[#12]` subject tag: unsigned, so pair it with a sender check."""
    match = _SUBJECT_TAG.search(subject or "")
    return int(match.group(1)) if match else None

"""Inbound mail, first step: keep the raw message, durably, before anything reads it.

Both ways in (the SMTP listener and `POST /api/v1/inbound/email`) call `store_raw`: the bytes go
to a file under DATA_DIR/mail-in named by their SHA-256 (written, fsynced, renamed, directory
fsynced), then one transaction adds the `inbound_mail` row and its `email.inbound` job. Only
after that commit does the SMTP listener answer 250 or the endpoint 202, so an accepted message
is never lost: the worker (server/channels/email/processing.py) parses and threads it later.

A message over the size limit keeps its first bytes and a quarantine row, so admins can see
what was refused and from whom.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import re
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from server import jobs, policy
from server.accounts.auth import utcnow
from server.channels.email import tokens
from server.channels.email.inbound_tables import InboundMail
from server.db import atomic
from server.errors import Invalid, NotFound
from server.i18n import _
from server.policy import Actor, ensure
from server.settings import get_settings

log = logging.getLogger("kizuna.email.inbound")

JOB_KIND = "email.inbound"
SWEEP_KIND = "email.inbound_sweep"
HEAD_BYTES = 64 * 1024  # what an over-size message keeps
MAX_SMTP_RECIPIENTS = 100  # the SMTP listener answers 452 after this many RCPT TO
SWEEP_AFTER = timedelta(seconds=30)  # a row still pending this long after arrival is picked up again

_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\r\n]{1,990}>)", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def max_bytes() -> int:
    return get_settings().inbound_max_bytes


def root() -> Path:
    return get_settings().data_dir / "mail-in"


def path_for(storage_key: str) -> Path:
    name = storage_key.removesuffix(".head")
    if len(name) != 64 or not all(c in "0123456789abcdef" for c in name):
        raise ValueError("bad storage key")
    return root() / name[:2] / f"{storage_key}.eml"


def _write_durably(path: Path, data: bytes) -> None:
    """Write, fsync, rename into place, fsync the directory: after this returns the file
    survives a crash. An existing file has the same content (its name is the content's hash)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_raw(storage_key: str) -> bytes:
    return path_for(storage_key).read_bytes()


def header_message_id(raw: bytes) -> str:
    """The Message-ID header, read cheaply from the header block (the parser reads it properly)."""
    end = _HEADER_END.search(raw, 0, 256 * 1024)
    match = _MESSAGE_ID.search(raw, 0, end.start() if end else min(len(raw), 256 * 1024))
    return match.group(1).decode("ascii", "replace") if match else ""


def is_our_recipient(address: str) -> bool:
    """Only our support address and its plus-addresses: the listener is not a relay."""
    address = parseaddr(address)[1].strip().lower() if "<" in address else address.strip().lower()
    local, _sep, domain = address.rpartition("@")
    support_local, _sep, support_domain = tokens.support_address().lower().partition("@")
    return (
        bool(local) and domain == support_domain and (local == support_local or local.startswith(support_local + "+"))
    )


def secret_matches(offered: str) -> bool:
    expected = get_settings().inbound_secret
    return bool(offered) and bool(expected) and hmac.compare_digest(offered.encode(), expected.encode())


def _job_key(inbound_id: int, retries: int) -> str:
    return f"{JOB_KIND}:{inbound_id}:{retries}"


async def enqueue_sweep() -> None:
    """One sweep per minute while mail arrives: it picks up rows whose job died with its worker."""
    bucket = int(jobs.now().timestamp() // 60)
    await jobs.enqueue(SWEEP_KIND, {}, key=f"{SWEEP_KIND}:{bucket}", delay=SWEEP_AFTER * 2)


async def _insert(
    *,
    storage_key: str,
    sha256: str,
    size: int,
    source: str,
    envelope_from: str,
    envelope_to: list[str],
    message_id: str,
    status: str = "pending",
    reason: str = "",
    truncated: bool = False,
) -> int:
    async with atomic():
        rows = await InboundMail.insert(
            InboundMail(
                storage_key=storage_key,
                sha256=sha256,
                size_bytes=size,
                truncated=truncated,
                received_at=utcnow(),
                source=source,
                envelope_from=envelope_from[:998],
                envelope_to=[address[:320] for address in envelope_to[:MAX_SMTP_RECIPIENTS]],
                message_id=message_id[:998],
                status=status,
                reason=reason,
            )
        ).returning(InboundMail.id)
        inbound_id = rows[0]["id"]
        if status == "pending":
            await jobs.enqueue(JOB_KIND, {"id": inbound_id}, key=_job_key(inbound_id, 0))
            await enqueue_sweep()
    return inbound_id


async def store_raw(raw: bytes, *, source: str, envelope_from: str = "", envelope_to: list[str] | None = None) -> int:
    """Keep the message and queue its processing; returns the `inbound_mail` id once committed."""
    digest = hashlib.sha256(raw).hexdigest()
    await asyncio.to_thread(_write_durably, path_for(digest), raw)
    return await _insert(
        storage_key=digest,
        sha256=digest,
        size=len(raw),
        source=source,
        envelope_from=envelope_from,
        envelope_to=envelope_to or [],
        message_id=header_message_id(raw),
    )


async def store_oversize(
    head: bytes, size: int, *, source: str, envelope_from: str = "", envelope_to: list[str] | None = None
) -> int:
    """A refused, too-large message: keep its first bytes in quarantine, with the reason."""
    head = head[:HEAD_BYTES]
    digest = hashlib.sha256(head).hexdigest()
    key = f"{digest}.head"
    await asyncio.to_thread(_write_durably, path_for(key), head)
    log.warning("inbound mail refused: %s bytes over the %s-byte limit (%s)", size, max_bytes(), source)
    return await _insert(
        storage_key=key,
        sha256=digest,
        size=size,
        source=source,
        envelope_from=envelope_from,
        envelope_to=envelope_to or [],
        message_id=header_message_id(head),
        status="quarantined",
        reason=f"too large: at least {size} bytes, the limit is {max_bytes()}; only the first {len(head)} are kept",
        truncated=True,
    )


# Admin actions (the quarantine page) --------------------------------------------------------------


async def _load(actor: Actor, inbound_id: int) -> dict[str, Any]:
    ensure(policy.can_administer_email_channel(actor))
    row = await InboundMail.select().where(InboundMail.id == inbound_id).output(load_json=True).first()
    if row is None:
        raise NotFound
    return row


async def retry(actor: Actor, inbound_id: int) -> None:
    """Process a quarantined, failed or ignored message again. A retry is the admin's decision to
    let it through: size, recipient and header limits no longer apply to it (the safety checks
    against auto-replies, bulk mail and our own mail still do)."""
    async with atomic():
        row = await _load(actor, inbound_id)
        if row["status"] in ("pending", "done"):
            raise Invalid({"status": _("This message is already processed or waiting to be.")})
        if row["truncated"]:
            raise Invalid({"status": _("Only the first part of this message was kept, so it cannot be processed.")})
        retries = row["retries"] + 1
        await InboundMail.update(
            {
                InboundMail.status: "pending",
                InboundMail.retries: retries,
                InboundMail.reason: f"retried by {actor.email or 'an admin'}; was {row['status']}: {row['reason']}"[
                    :4000
                ],
            }
        ).where(InboundMail.id == inbound_id)
        await jobs.enqueue(JOB_KIND, {"id": inbound_id}, key=_job_key(inbound_id, retries))
    log.info("inbound mail %s retried by user %s", inbound_id, actor.user_id)


async def delete(actor: Actor, inbound_id: int) -> None:
    """Remove a message that made no ticket message, and its raw file when no other row shares it."""
    async with atomic():
        row = await _load(actor, inbound_id)
        if row["status"] in ("pending", "done"):
            raise Invalid({"status": _("Only quarantined, failed or ignored messages can be deleted.")})
        await InboundMail.delete().where(InboundMail.id == inbound_id)
        shared = await InboundMail.exists().where(InboundMail.storage_key == row["storage_key"])
    if not shared:
        with contextlib.suppress(FileNotFoundError, ValueError):
            path_for(row["storage_key"]).unlink()
    log.info("inbound mail %s deleted by user %s", inbound_id, actor.user_id)

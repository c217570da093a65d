"""The local SMTP sink: when SMTP_URL is unset, `make run` starts it and it keeps every
message under DATA_DIR/mail, where the admin "Captured mail" page and the tests read them."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope

from server.settings import get_settings

_NAME_OK = re.compile(r"^[0-9]{13}-[0-9a-f]{32}\.eml$")


class _SaveToDirectory:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex}.eml"
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(envelope.original_content or b"")
        temporary.rename(self.directory / name)  # readers never see a half-written file
        return "250 Message accepted for delivery"


async def start_sink(host: str, port: int, directory: Path) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    handler = _SaveToDirectory(directory)
    return await loop.create_server(lambda: SMTP(handler, hostname="kizuna-sink"), host, port)


@dataclass(frozen=True)
class CapturedMail:
    name: str
    received_at: datetime
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def to(self) -> str:
        return str(self.message.get("To", ""))

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain", "html"))
        # SMTP carries CRLF line ends; readers want the text as it was written.
        return part.get_content().replace("\r\n", "\n") if part is not None else ""


def _read(path: Path) -> CapturedMail:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    millis = int(path.name.split("-", 1)[0])
    return CapturedMail(path.name, datetime.fromtimestamp(millis / 1000, UTC), message)  # type: ignore[arg-type]


def list_captured(directory: Path | None = None, limit: int = 200) -> list[CapturedMail]:
    directory = directory or get_settings().mail_dir
    if not directory.exists():
        return []
    names = sorted((p for p in directory.iterdir() if _NAME_OK.match(p.name)), reverse=True)
    return [_read(path) for path in names[:limit]]


def read_captured(name: str, directory: Path | None = None) -> CapturedMail | None:
    directory = directory or get_settings().mail_dir
    if not _NAME_OK.match(name) or not (directory / name).exists():
        return None
    return _read(directory / name)

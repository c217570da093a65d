"""Ticket attachments on disk under DATA_DIR/attachments, with size and type limits.

The stored name is random; the content type comes from our own allow-list by extension (never
from the browser), and downloads always carry `Content-Disposition: attachment` and `nosniff`,
so an uploaded file can never run as a page of this site.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from server.errors import Invalid
from server.i18n import _
from server.settings import get_settings

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILES = 5
MAX_REQUEST_BYTES = MAX_FILES * MAX_FILE_BYTES + 1024 * 1024  # the route's body limit
MAX_FILENAME_CHARS = 120

# Extension → the content type we serve it with. No HTML, SVG, XML or scripts.
ALLOWED_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "pdf": "application/pdf",
    "txt": "text/plain; charset=utf-8",
    "log": "text/plain; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "zip": "application/zip",
    "gz": "application/gzip",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "mp4": "video/mp4",
}


# Write errors that mean "no room": a full disk, a full quota, or a file-size limit.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class StorageFull(Invalid):
    """The attachments could not be written for lack of space. Nothing of them was kept; the
    routes answer 507 Insufficient Storage with the form and this message on its `attachments`
    field (an Invalid subclass, so every form that shows field errors shows it)."""

    status_code = 507

    def __init__(self) -> None:
        super().__init__(
            {
                "attachments": _(
                    "The attachments could not be saved because the server's storage is full. "
                    "Nothing was sent. Try again later, or send your message without attachments."
                )
            }
        )


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


@dataclass(frozen=True)
class Stored:
    filename: str
    content_type: str
    size_bytes: int
    storage_key: str
    sha256: str


def root() -> Path:
    return get_settings().data_dir / "attachments"


def clean_filename(name: str) -> str:
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>:|?*;').strip(" .")
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_FILENAME_CHARS - len(ext) - 1] + dot + ext) if dot else name[:MAX_FILENAME_CHARS]
    return name or "file"


def extension(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def check(uploads: list[Upload]) -> None:
    """Raise Invalid (field `attachments`) unless every upload is allowed."""
    if len(uploads) > MAX_FILES:
        raise Invalid({"attachments": _("Attach at most %(n)s files.", n=MAX_FILES)})
    for upload in uploads:
        if extension(clean_filename(upload.filename)) not in ALLOWED_TYPES:
            raise Invalid(
                {
                    "attachments": _(
                        "%(name)s: this type of file cannot be attached. Allowed: %(types)s.",
                        name=clean_filename(upload.filename),
                        types=", ".join(sorted(ALLOWED_TYPES)),
                    )
                }
            )
        if len(upload.data) > MAX_FILE_BYTES:
            raise Invalid(
                {
                    "attachments": _(
                        "%(name)s is larger than %(n)s MB.",
                        name=clean_filename(upload.filename),
                        n=MAX_FILE_BYTES // (1024 * 1024),
                    )
                }
            )
        if not upload.data:
            raise Invalid({"attachments": _("%(name)s is empty.", name=clean_filename(upload.filename))})


def path_for(storage_key: str) -> Path:
    if not storage_key.isalnum():
        raise ValueError("bad storage key")
    return root() / storage_key[:2] / storage_key


def store(upload: Upload) -> Stored:
    """Write the file (before the database row: an orphan file is harmless, a row without one is
    not): to a temporary name, synced, then renamed, so a file under its key is always whole.
    On any failure the temporary file is removed; lack of space raises StorageFull."""
    key = secrets.token_hex(20)
    path = path_for(key)
    tmp = path.with_suffix(".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as handle:
            handle.write(upload.data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno in NO_ROOM:
            raise StorageFull from exc
        raise
    name = clean_filename(upload.filename)
    return Stored(
        filename=name,
        content_type=ALLOWED_TYPES[extension(name)],
        size_bytes=len(upload.data),
        storage_key=key,
        sha256=hashlib.sha256(upload.data).hexdigest(),
    )


def remove(storage_key: str) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        path_for(storage_key).unlink()

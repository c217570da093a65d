"""Fault: the disk fills up during an attachment upload. The app runs as its own process with
DATA_DIR/attachments on a real 1 MiB filesystem (a tmpfs mounted for the test, so writes fail
with a genuine ENOSPC). Every upload path answers 507 Insufficient Storage with the form, the
typed text kept and a clear message on the attachments field; nothing is half-written: no
ticket, message or attachment row, no file or temporary file, and the space is free again.

Mounting needs root (CI runs as root); elsewhere the test is skipped with the reason."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from server.desk.tables import Ticket, TicketAttachment, TicketMessage
from server.i18n import load_catalog
from server.policy import Actor
from tests.conftest import CSRF_RE
from tests.desk.factories import make_ticket
from tests.e2e.conftest import LiveServer, running_app
from tests.factories import PASSWORD, make_user

DISK_BYTES = 1024 * 1024
KIB = 1024
FULL_MESSAGE = (
    "The attachments could not be saved because the server's storage is full. "
    "Nothing was sent. Try again later, or send your message without attachments."
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """DATA_DIR whose attachments folder is a 1 MiB tmpfs."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the attachments needs root (CI runs as root)")
    data_dir = tmp_path / "data"
    attachments = data_dir / "attachments"
    attachments.mkdir(parents=True)
    mounted = subprocess.run(  # noqa: S603 - fixed arguments
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0755", "tmpfs", str(attachments)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield data_dir
    finally:
        subprocess.run(["umount", "--lazy", str(attachments)], check=False)  # noqa: S603, S607


@pytest.fixture
def small_disk_app(small_disk: Path) -> Iterator[LiveServer]:
    with running_app(small_disk, commands=("web",)) as server:
        yield server


async def _signed_in(base_url: str, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, follow_redirects=True, timeout=20)
    page = await client.get("/login")
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    response = await client.post("/login", data={"email": email, "password": PASSWORD, "_csrf_token": token})
    assert response.status_code == 200 and "/login" not in str(response.url), response.text[:500]
    return client


async def _token(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    return CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]


def _files(*sizes_kib: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    # Random bytes: nothing on the way can compress them into fitting.
    return [("attachments", (f"log-{n}.txt", os.urandom(kib * KIB), "text/plain")) for n, kib in enumerate(sizes_kib)]


def _attachment_files(disk: Path) -> list[Path]:
    return [path for path in (disk / "attachments").rglob("*") if path.is_file()]


def _assert_nothing_written(disk: Path) -> None:
    assert _attachment_files(disk) == []  # no stored file, no .part left behind
    assert shutil.disk_usage(disk / "attachments").used < 64 * KIB  # the space is free again


def _field_error(html: str) -> str:
    match = re.search(r'<p class="error">([^<]*)</p>', html)
    return match.group(1).replace("&#39;", "'") if match else ""


@pytest.fixture
async def people() -> AsyncIterator[tuple[Actor, Actor]]:
    customer = await make_user(name="Dana Disk", email="dana.disk@example.test", locale="ja")
    agent = await make_user("agent", name="Avery Agent", email="avery.disk@example.test")
    yield customer, agent


async def test_a_full_disk_during_upload_is_a_clear_507_and_leaves_nothing_half_written(
    people: tuple[Actor, Actor], small_disk: Path, small_disk_app: LiveServer
) -> None:
    customer, agent = people
    portal = await _signed_in(small_disk_app.base_url, customer.email)
    desk = await _signed_in(small_disk_app.base_url, agent.email)
    try:
        # 1. A new request with two files: the first fits, the second fills the disk mid-write.
        token = await _token(portal, "/support/new")
        response = await portal.post(
            "/support/new",
            data={"subject": "Crash log attached", "body": "The app crashes on start.", "_csrf_token": token},
            files=_files(600, 600),
        )
        assert response.status_code == 507
        assert _field_error(response.text) == load_catalog("ja").get(FULL_MESSAGE).string  # she reads Japanese
        assert 'value="Crash log attached"' in response.text  # the form comes back as typed
        assert "The app crashes on start." in response.text
        assert await Ticket.count() == 0
        assert await TicketMessage.count() == 0
        assert await TicketAttachment.count() == 0
        _assert_nothing_written(small_disk)

        # 2. A reply on the portal with one file larger than the whole disk.
        ticket_id = await make_ticket(customer, "Export fails", "The CSV export stops.")
        messages_before = await TicketMessage.count()
        token = await _token(portal, f"/support/tickets/{ticket_id}")
        response = await portal.post(
            f"/support/tickets/{ticket_id}/reply",
            data={"body": "Here is the full log.", "_csrf_token": token},
            files=_files(1500),
        )
        assert response.status_code == 507
        assert _field_error(response.text) == load_catalog("ja").get(FULL_MESSAGE).string
        assert await TicketMessage.count() == messages_before
        _assert_nothing_written(small_disk)

        # 3. The agent's reply from the desk (in English), with two files again.
        token = await _token(desk, f"/desk/tickets/{ticket_id}")
        response = await desk.post(
            f"/desk/tickets/{ticket_id}/messages",
            data={"body": "Thanks, looking at it.", "internal": "0", "_csrf_token": token},
            files=_files(300, 900),
        )
        assert response.status_code == 507
        assert _field_error(response.text) == FULL_MESSAGE
        assert "Thanks, looking at it." in response.text
        assert await TicketMessage.count() == messages_before
        assert await TicketAttachment.count() == 0
        _assert_nothing_written(small_disk)

        # 4. Nothing of the failures took space: a 700 KiB file (more than the disk's free room had
        #    the 600 KiB one been left behind) goes through and is stored whole.
        token = await _token(portal, f"/support/tickets/{ticket_id}")
        upload = _files(700)
        response = await portal.post(
            f"/support/tickets/{ticket_id}/reply",
            data={"body": "Trying once more.", "_csrf_token": token},
            files=upload,
        )
        assert response.status_code == 200 and f"/support/tickets/{ticket_id}" in str(response.url)
        assert await TicketAttachment.count() == 1
        stored = _attachment_files(small_disk)
        assert len(stored) == 1 and stored[0].read_bytes() == upload[0][1][1]
    finally:
        await portal.aclose()
        await desk.aclose()

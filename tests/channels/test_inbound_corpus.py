"""The pipeline corpus (tests/channels/pipeline_corpus): hand-made messages, each with its
expected outcome in expected.toml, run through storage and the worker one by one on a database
holding one ticket. No acknowledgement or any other mail goes out for what is not a new ticket."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from server.accounts import passwords
from server.channels.email import tokens
from server.desk import queries, services
from server.desk.tables import TicketAttachment, TicketLink
from tests.channels.inbound_helpers import deliver, public_messages, ticket_count
from tests.factories import Mailbox, make_user

CORPUS = Path(__file__).parent / "pipeline_corpus"
CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "expected.toml").read_text())["case"]


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def test_every_file_has_an_expectation() -> None:
    files = {path.name for path in CORPUS.glob("*.eml")}
    assert files == {case["file"] for case in CASES} and len(files) >= 10


@pytest.mark.parametrize("case", CASES, ids=[case["file"] for case in CASES])
async def test_pipeline_case(case: dict[str, Any], mailbox: Mailbox) -> None:
    casey = await make_user(email="casey@example.test", name="Casey Customer")
    ticket_id = await services.open_ticket(casey, "Export fails", "The CSV export stops.")
    await mailbox.messages()
    for sent in await mailbox.messages():
        (mailbox.directory / sent.name).unlink()
    raw = (CORPUS / case["file"]).read_bytes()
    for name, value in {
        "SUPPORT": tokens.support_address(),
        "REPLY_ADDRESS": tokens.reply_address(ticket_id),
        "OUR_MESSAGE_ID": tokens.message_id(ticket_id, "corpus"),
        "TICKET": str(ticket_id),
    }.items():
        raw = raw.replace(b"{{" + name.encode() + b"}}", value.encode())
    before = len(await public_messages(ticket_id))
    done = await deliver(raw)
    assert done["status"] == case["status"], done["reason"]
    assert case.get("reason", "") in done["reason"]
    outcome = case["outcome"]
    if outcome == "threaded":
        assert done["ticket"] == ticket_id and len(await public_messages(ticket_id)) == before + 1
    elif outcome == "new":
        assert done["ticket"] not in (None, ticket_id) and await ticket_count() == 2
    elif outcome == "bounce":
        assert done["ticket"] == ticket_id and done["ticket_message"] is None
    else:
        assert done["ticket"] is None and await ticket_count() == 1
    if outcome != "threaded":
        assert len(await public_messages(ticket_id)) == before
    if outcome in ("new", "threaded"):
        message = next(m for m in await public_messages(done["ticket"]) if m["id"] == done["ticket_message"])
        if "body" in case:
            assert case["body"] in message["body_html"], message["body_html"]
        if "absent" in case:
            assert case["absent"] not in message["body_html"]
    if "subject" in case:
        assert (await queries.get_ticket(done["ticket"]))["subject"] == case["subject"]
    if "attachments" in case:
        files = await TicketAttachment.select(TicketAttachment.filename).where(
            TicketAttachment.ticket == done["ticket"]
        )
        assert [f["filename"] for f in files] == case["attachments"]
    if "related" in case:
        low, high = sorted((ticket_id, done["ticket"]))
        linked = await TicketLink.exists().where((TicketLink.source == low) & (TicketLink.target == high))
        assert linked == case["related"]
    sent = await mailbox.messages()
    if outcome == "new":
        requester = (await queries.get_ticket(done["ticket"]))["requester_email"]
        assert len(sent) == 1 and f"<{requester}>" in sent[0].to  # the acknowledgement
    else:
        assert sent == []  # no acknowledgement, no loop

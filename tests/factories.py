"""Factories for users and organisations, and the captured-mail reader. One place for all."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from server import jobs
from server.accounts import services
from server.accounts.auth import load_actor
from server.mailsink import CapturedMail, list_captured
from server.policy import Actor

PASSWORD = "correct horse battery"
_counter = 0


def unique_email(prefix: str = "user") -> str:
    global _counter
    _counter += 1
    return f"{prefix}{_counter}@example.test"


async def make_user(
    *roles: str,
    email: str | None = None,
    org: str | None = None,
    org_admin: bool = False,
    locale: str = "en",
    verified: bool = True,
    name: str = "Test User",
) -> Actor:
    user_id = await services.create_user(
        email or unique_email(roles[0] if roles else "customer"),
        PASSWORD,
        name,
        list(roles),
        org_slug=org,
        org_admin=org_admin,
        locale=locale,
        verified=verified,
    )
    actor = await load_actor(user_id)
    assert actor is not None
    return actor


async def make_org(slug: str = "acme-corp", name: str = "Acme Corp") -> int:
    admin = Actor(user_id=None, roles=frozenset({"admin"}))
    return await services.save_organisation(
        admin, None, name=name, slug=slug, size="11-50", industry="Software", plan="business"
    )


async def login(client, email: str, password: str = PASSWORD):  # noqa: ANN001, ANN201
    from tests.conftest import post_form

    return await post_form(client, "/login", {"email": email, "password": password})


LINK_RE = re.compile(r"http://testserver\.local(/[^\s]+)")


@dataclass
class Mailbox:
    """Reads what the app sent through real SMTP into the sink's directory."""

    directory: Path

    async def deliver(self) -> None:
        """Run due jobs the way the worker does (outbound mail goes through the outbox)."""
        await jobs.run_pending("test-worker")

    async def messages(self, to: str | None = None) -> list[CapturedMail]:
        await self.deliver()
        found = list_captured(self.directory)
        return [m for m in found if to is None or to in m.to]

    async def last_link(self, to: str) -> str:
        messages = await self.messages(to)
        assert messages, f"no mail to {to}"
        match = LINK_RE.search(messages[0].body)
        assert match, messages[0].body
        return match.group(1)

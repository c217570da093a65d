"""Webhook fixtures: an admin, a running independent receiver, and an endpoint pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from server import features  # noqa: F401 - registers every job handler, as the worker does
from server.accounts import passwords
from server.policy import Actor
from server.webhooks import services
from server.webhooks.tables import WebhookEndpoint
from tests.factories import make_user
from tests.webhooks.receiver import Receiver, running_receiver


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
async def admin() -> Actor:
    return await make_user("admin", name="Ann Admin")


async def add_endpoint(admin: Actor, receiver: Receiver, events: list[str] | None = None) -> int:
    endpoint_id, secret = await services.save_endpoint(admin, None, receiver.url, events or list(services.EVENTS), True)
    assert secret is not None and secret.startswith("whsec_")
    receiver.secret = secret
    return endpoint_id


async def endpoint_secret(endpoint_id: int) -> str:
    row = await WebhookEndpoint.select(WebhookEndpoint.secret).where(WebhookEndpoint.id == endpoint_id).first()
    assert row is not None
    return row["secret"]


from tests.desk.conftest import People, people  # noqa: E402, F401 - the desk's cast of customers and staff

"""Chat fixtures: customers, agents and a visitor's details."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher

from server.accounts import passwords
from server.policy import Actor
from tests.factories import make_org, make_user


@dataclass
class Cast:
    customer: Actor
    outsider: Actor
    agent: Actor
    agent2: Actor


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def cast() -> Cast:
    await make_org("acme-corp", "Acme Corp")
    return Cast(
        customer=await make_user(org="acme-corp", name="Casey Customer"),
        outsider=await make_user(name="Oscar Outsider"),
        agent=await make_user("agent", name="Ada Agent"),
        agent2=await make_user("agent", name="Ben Agent"),
    )

"""Desk fixtures: two organisations, their customers and admins, and agents."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher

from server.accounts import passwords
from server.policy import Actor
from tests.factories import make_org, make_user


@dataclass
class People:
    customer: Actor  # in acme
    colleague: Actor  # another acme customer
    org_admin: Actor  # admin of acme
    outsider: Actor  # a customer in globex
    outsider_admin: Actor  # admin of globex
    agent: Actor
    agent2: Actor
    moderator: Actor
    admin: Actor


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, with the cheapest parameters: these tests make many accounts."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def people() -> People:
    await make_org("acme-corp", "Acme Corp")
    await make_org("globex", "Globex")
    return People(
        customer=await make_user(org="acme-corp", name="Casey Customer"),
        colleague=await make_user(org="acme-corp", name="Colin Colleague"),
        org_admin=await make_user(org="acme-corp", org_admin=True, name="Olga Orgadmin"),
        outsider=await make_user(org="globex", name="Oscar Outsider"),
        outsider_admin=await make_user(org="globex", org_admin=True, name="Gina Globex"),
        agent=await make_user("agent", name="Ada Agent"),
        agent2=await make_user("agent", name="Ben Agent"),
        moderator=await make_user("moderator", name="Mo Moderator"),
        admin=await make_user("admin", name="Ann Admin"),
    )

"""Login brute force across accounts (password spraying) from one address stops at the rate
limit too: the per-address counter blocks the next try even for a real account with the right
password. (The per-account case is tests/accounts/test_rate_limits.py.)"""

from __future__ import annotations

import httpx

from server import ratelimit
from server.accounts.tables import Session
from tests.accounts.test_rate_limits import assert_retry_after, away_from_window_edge, cheap_to_check
from tests.conftest import csrf_token
from tests.factories import PASSWORD, make_user


async def test_spraying_many_accounts_from_one_address_is_429_after_the_limit(client: httpx.AsyncClient) -> None:
    victim = await make_user(name="Vic Victim", email="vic.victim@example.test")
    await cheap_to_check(victim)
    await away_from_window_edge(ratelimit.LOGIN)
    token = await csrf_token(client)
    for n in range(ratelimit.LOGIN.attempts):
        guess = {"email": f"someone{n}@example.test", "password": "Summer2026!", "_csrf_token": token}
        assert (await client.post("/login", data=guess)).status_code == 422

    blocked = await client.post("/login", data={"email": victim.email, "password": PASSWORD, "_csrf_token": token})

    assert_retry_after(blocked, ratelimit.LOGIN)
    assert await Session.count() == 0

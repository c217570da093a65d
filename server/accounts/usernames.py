"""@handles for mentions: the email's local part, made unique with a number suffix.

`username` is a nullable, indexed column on User; uniqueness is kept here, inside the caller's
transaction (SQLite serialises writers; on PostgreSQL two simultaneous sign-ups with the same
local part could in theory collide, and mentions then pick the older account).
"""

from __future__ import annotations

import re
from typing import Any

from server.accounts.tables import User
from server.db import atomic
from server.prepared import prepared

MAX_CHARS = 30
_NOT_ALLOWED = re.compile(r"[^a-z0-9._-]+")


def base_handle(email: str) -> str:
    local = email.split("@", 1)[0].lower()
    handle = _NOT_ALLOWED.sub("", local).strip("._-")[:MAX_CHARS].strip("._-")
    return handle or "user"


@prepared
def _handles_like(pattern: Any) -> Any:
    return User.select(User.username).where(User.username.like(pattern))


async def unique_handle(email: str) -> str:
    base = base_handle(email)
    taken = {row["username"] for row in await _handles_like(f"{base}%")}
    if base not in taken:
        return base
    n = 2
    while f"{base}{n}" in taken:
        n += 1
    return f"{base}{n}"


async def assign_username(user_id: int, email: str) -> str:
    async with atomic():
        handle = await unique_handle(email)
        await User.update({User.username: handle}).where(User.id == user_id)
    return handle


async def backfill_usernames() -> int:
    """Give every user without a handle one (oldest accounts first); returns how many."""
    rows = await User.select(User.id, User.email).where(User.username.is_null()).order_by(User.id)
    for row in rows:
        await assign_username(row["id"], row["email"])
    return len(rows)

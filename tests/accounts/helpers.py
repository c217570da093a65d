"""Small readers for what a browser or the database holds, shared by the account tests."""

from __future__ import annotations

import hashlib
from http.cookies import SimpleCookie
from typing import Any

import httpx

from server.accounts.tables import Session, User, UserRole
from server.jobs import Job

SESSION_COOKIE = "kz_session"
FORM_ERROR = "The email or password is not right."
CSRF_MESSAGE = "Your form expired or came from another site. Reload the page and try again."


def set_cookie(response: httpx.Response, name: str) -> tuple[str, dict[str, Any]] | None:
    """The value and attributes of cookie `name` set by this response (None when not set)."""
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        if name in parsed:
            morsel = parsed[name]
            attributes = {key: morsel[key] for key in morsel.keys() if morsel[key]}  # noqa: SIM118
            return morsel.value, attributes
    return None


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def user_by_email(email: str) -> dict[str, Any] | None:
    return await User.select().where(User.email == email).output(load_json=True).first()


async def roles_of(user_id: int) -> set[str]:
    return {row["role"] for row in await UserRole.select(UserRole.role).where(UserRole.user == user_id)}


async def session_count(user_id: int) -> int:
    return await Session.count().where(Session.user == user_id)


async def user_count() -> int:
    return await User.count()


async def job_count() -> int:
    return await Job.count()

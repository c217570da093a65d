"""Resolve the actor of each request: a session cookie for HTML, a Bearer token for the API.

The API accepts only Bearer tokens (never the cookie), so it needs no CSRF token and a page
cannot be tricked into calling it with the visitor's session.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from litestar.types import ASGIApp, Receive, Scope, Send

from server import i18n
from server.accounts.tables import ApiToken, Membership, Session, User, UserRole
from server.db import engine
from server.policy import ANONYMOUS, Actor
from server.settings import get_settings
from server.shortcache import ShortCache

SESSION_COOKIE = "kz_session"
LOCALE_COOKIE = "kz_locale"
TOUCH_EVERY = timedelta(minutes=5)
API_PREFIX = "/api/"
STATIC_PREFIX = "/static/"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def utcnow() -> datetime:
    return datetime.now(UTC)


async def load_actor(user_id: int) -> Actor | None:
    return (await load_actors([user_id])).get(user_id)


async def load_actors(user_ids: list[int]) -> dict[int, Actor]:
    """The active users among `user_ids` as actors, in three queries however many there are."""
    if not user_ids:
        return {}
    users = await User.select(
        User.id,
        User.email,
        User.display_name,
        User.locale,
        User.time_zone,
        User.email_verified_at,
    ).where(User.id.is_in(list(user_ids)) & User.is_active.eq(True))
    if not users:
        return {}
    ids = [user["id"] for user in users]
    roles: dict[int, set[str]] = {}
    for row in await UserRole.select(UserRole.user, UserRole.role).where(UserRole.user.is_in(ids)):
        roles.setdefault(row["user"], set()).add(row["role"])
    orgs: dict[int, list[tuple[int, bool]]] = {}
    for row in await Membership.select(Membership.user, Membership.organisation, Membership.is_org_admin).where(
        Membership.user.is_in(ids)
    ):
        orgs.setdefault(row["user"], []).append((row["organisation"], row["is_org_admin"]))
    return {
        user["id"]: Actor(
            user_id=user["id"],
            email=user["email"],
            display_name=user["display_name"],
            locale=user["locale"],
            time_zone=user["time_zone"],
            roles=frozenset(roles.get(user["id"], ())),
            org_ids=frozenset(org for org, _ in orgs.get(user["id"], ())),
            admin_org_ids=frozenset(org for org, is_admin in orgs.get(user["id"], ()) if is_admin),
            email_verified=user["email_verified_at"] is not None,
        )
        for user in users
    }


# A session's or API token's actor, per process, for up to two seconds: every signed-in request
# needs it, and rebuilding it costs a transaction and four queries. Keyed by the token's hash.
# Whatever changes an actor (sign-out, token revocation, roles, activation, memberships, profile,
# verification) calls `forget_actors()` in the services once it commits, so this process sees it
# at once; another web process may still use a revoked session or token, or old roles, for up to
# `ttl_seconds`.
SESSION_ACTORS = ShortCache(ttl_seconds=2.0, max_entries=4096)


def forget_actors() -> None:
    SESSION_ACTORS.clear()


async def _row_and_actor(query: Any) -> tuple[dict[str, Any] | None, Actor | None]:
    """A session's or token's row (`query`, with its `user`) and that user's actor, on one
    connection (on SQLite each query outside a transaction opens its own)."""
    async with engine().transaction():
        row = await query.first()
        actor = await load_actor(row["user"]) if row is not None else None
    return row, actor


async def actor_from_session(token: str) -> Actor | None:
    token_hash = hash_token(token)
    row, actor = await SESSION_ACTORS.cached(
        token_hash,
        lambda: _row_and_actor(
            Session.select(Session.id, Session.user, Session.last_seen_at, Session.expires_at).where(
                Session.token_hash == token_hash
            )
        ),
    )
    moment = utcnow()
    if row is None or row["expires_at"] <= moment:
        return None
    if moment - row["last_seen_at"] > TOUCH_EVERY:
        lifetime = timedelta(days=get_settings().session_days)
        row["last_seen_at"] = moment  # the cached row too: one touch, not one per cached hit
        await Session.update({Session.last_seen_at: moment, Session.expires_at: moment + lifetime}).where(
            Session.id == row["id"]
        )
    return actor


async def actor_from_bearer(token: str) -> Actor | None:
    token_hash = hash_token(token)
    row, actor = await SESSION_ACTORS.cached(
        ("bearer", token_hash),
        lambda: _row_and_actor(
            ApiToken.select(ApiToken.id, ApiToken.user, ApiToken.last_used_at).where(
                (ApiToken.token_hash == token_hash) & ApiToken.revoked_at.is_null()
            )
        ),
    )
    if row is None:
        return None
    moment = utcnow()
    if row["last_used_at"] is None or moment - row["last_used_at"] > timedelta(minutes=1):
        row["last_used_at"] = moment  # the cached row too: one touch, not one per cached hit
        await ApiToken.update({ApiToken.last_used_at: moment}).where(ApiToken.id == row["id"])
    return actor


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _sep, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return value.decode("latin-1")
    return None


class ActorMiddleware:
    """Puts `scope["state"]["actor"]` and the request's locale in place before any handler."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(STATIC_PREFIX):
            await self.app(scope, receive, send)
            return
        actor: Actor | None = None
        is_api = scope["path"].startswith(API_PREFIX)
        cookies = {} if is_api else Request(scope).cookies  # the API never reads cookies
        if is_api:
            if token := _bearer(scope):
                actor = await actor_from_bearer(token)
        elif token := cookies.get(SESSION_COOKIE):
            actor = await actor_from_session(token)
        actor = actor or ANONYMOUS
        scope.setdefault("state", {})["actor"] = actor
        locale = actor.locale if actor.is_authenticated else None
        if locale is None and not is_api:
            locale = cookies.get(LOCALE_COOKIE)
        if locale not in i18n.LOCALES:
            locale = i18n.negotiate(_header(scope, b"accept-language"))
        token_ = i18n.set_locale(locale)
        try:
            await self.app(scope, receive, send)
        finally:
            i18n._current_locale.reset(token_)


def current_actor(request: Request[Any, Any, Any]) -> Actor:
    """Litestar dependency `actor`."""
    return request.scope.get("state", {}).get("actor", ANONYMOUS)  # type: ignore[return-value]


CurrentActor = NamedDependency[Actor]
"""Type of the `actor` parameter of route handlers."""

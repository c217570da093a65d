"""Account actions: every write of accounts, one transaction each, side effects queued."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from zoneinfo import available_timezones

from server import mail, policy
from server.accounts import links
from server.accounts.auth import forget_actors, hash_token, new_token, utcnow
from server.accounts.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    hash_password,
    needs_rehash,
    verify_password,
)
from server.accounts.tables import (
    EMAIL_NOTIFY_MODES,
    LOCALES,
    ORG_PLANS,
    ORG_SIZES,
    ROLES,
    ApiToken,
    Membership,
    OneTimeToken,
    Organisation,
    Session,
    User,
    UserRole,
)
from server.accounts.usernames import unique_handle
from server.db import atomic
from server.errors import Invalid, NotFound
from server.i18n import _
from server.policy import Actor, ensure
from server.settings import get_settings

EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>.]+$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,78}[a-z0-9]$")
DEFAULT_PREFS = {"email": "immediate", "mentions": True, "ticket_updates": True}
API_TOKEN_PREFIX = "kz_"  # noqa: S105 - a visible prefix, not a secret


def normalise_email(email: str) -> str:
    return email.strip().lower()


# Validation ---------------------------------------------------------------------------------


def _check_email(email: str, errors: dict[str, str]) -> None:
    if not email:
        errors["email"] = _("Enter your email address.")
    elif len(email) > 254 or not EMAIL_RE.match(email):
        errors["email"] = _("Enter a valid email address.")


def _check_password(password: str, errors: dict[str, str], field: str = "password") -> None:
    if len(password) < MIN_LENGTH:
        errors[field] = _("Use at least %(n)s characters.", n=MIN_LENGTH)
    elif len(password) > MAX_LENGTH:
        errors[field] = _("Use at most %(n)s characters.", n=MAX_LENGTH)


def _check_display_name(name: str, errors: dict[str, str]) -> None:
    if not name:
        errors["display_name"] = _("Enter a display name.")
    elif len(name) > 80:
        errors["display_name"] = _("Use at most %(n)s characters.", n=80)


# Sign-up, verification, password reset --------------------------------------------------


async def sign_up(email: str, password: str, display_name: str, locale: str) -> int:
    email, display_name = normalise_email(email), display_name.strip()
    errors: dict[str, str] = {}
    _check_email(email, errors)
    _check_password(password, errors)
    _check_display_name(display_name, errors)
    if errors:
        raise Invalid(errors)
    async with atomic():
        if await User.exists().where(User.email == email):
            raise Invalid({"email": _("An account with this email already exists. Sign in or reset your password.")})
        user_id = await _insert_user(email, password, display_name, locale if locale in LOCALES else "en")
        await UserRole.insert(UserRole(user=user_id, role="customer"))
        await _send_link(user_id, email, "verify", "verify_email", locale)
    return user_id


async def _insert_user(email: str, password: str, display_name: str, locale: str, verified: bool = False) -> int:
    moment = utcnow()
    rows = await User.insert(
        User(
            email=email,
            password_hash=hash_password(password),
            display_name=display_name,
            username=await unique_handle(email),
            locale=locale,
            notification_prefs=DEFAULT_PREFS,
            email_verified_at=moment if verified else None,
            created_at=moment,
        )
    ).returning(User.id)
    return rows[0]["id"]


async def _send_link(user_id: int, email: str, purpose: str, template: str, locale: str) -> None:
    jti = secrets.token_urlsafe(16)
    moment = utcnow()
    await OneTimeToken.insert(
        OneTimeToken(
            jti=jti,
            purpose=purpose,
            user=user_id,
            created_at=moment,
            expires_at=moment + timedelta(seconds=links.MAX_AGE_SECONDS[purpose]),
        )
    )
    token = links.sign(purpose, {"u": user_id, "j": jti})
    path = {"verify": "/verify-email", "reset": "/reset-password"}[purpose]
    url = f"{get_settings().base_url}{path}?token={token}"
    await mail.queue_mail(email, template, {"url": url}, locale=locale, key=f"{purpose}:{jti}")


async def resend_verification(actor: Actor) -> None:
    policy.ensure_signed_in(actor)
    if actor.email_verified:
        return
    async with atomic():
        await _send_link(actor.user_id, actor.email, "verify", "verify_email", actor.locale)  # type: ignore[arg-type]


async def _consume(purpose: str, token: str) -> int:
    """Check a link's signature, expiry and single use; mark it used. Returns the user id."""
    claims = links.read_claims(purpose, token)
    row = (
        await OneTimeToken.select().where((OneTimeToken.jti == claims.jti) & (OneTimeToken.purpose == purpose)).first()
    )
    if row is None or row["user"] != claims.user_id:
        raise links.LinkError("invalid")
    if row["used_at"] is not None:
        raise links.LinkError("used")
    if row["expires_at"] <= utcnow():
        raise links.LinkError("expired")
    updated = (
        await OneTimeToken.update({OneTimeToken.used_at: utcnow()})
        .where((OneTimeToken.id == row["id"]) & OneTimeToken.used_at.is_null())
        .returning(OneTimeToken.id)
    )
    if not updated:  # a concurrent request used it first
        raise links.LinkError("used")
    return claims.user_id


async def verify_email(token: str) -> int:
    async with atomic():
        user_id = await _consume("verify", token)
        await User.update({User.email_verified_at: utcnow()}).where(
            (User.id == user_id) & User.email_verified_at.is_null()
        )
    forget_actors()  # this process's cached actors (server/accounts/auth.py); others within 2 s
    return user_id


async def request_password_reset(email: str) -> None:
    """Always answers the same way, so the form does not reveal who has an account."""
    email = normalise_email(email)
    errors: dict[str, str] = {}
    _check_email(email, errors)
    if errors:
        raise Invalid(errors)
    async with atomic():
        user = await User.select(User.id, User.locale, User.is_active).where(User.email == email).first()
        if user and user["is_active"]:
            await _send_link(user["id"], email, "reset", "reset_password", user["locale"])


async def check_reset_link(token: str) -> None:
    """Raise LinkError for a link that cannot be used, without using it."""
    claims = links.read_claims("reset", token)
    row = await OneTimeToken.select(OneTimeToken.used_at).where(OneTimeToken.jti == claims.jti).first()
    if row is None:
        raise links.LinkError("invalid")
    if row["used_at"] is not None:
        raise links.LinkError("used")


async def reset_password(token: str, password: str) -> int:
    errors: dict[str, str] = {}
    _check_password(password, errors)
    if errors:
        raise Invalid(errors)
    async with atomic():
        user_id = await _consume("reset", token)
        # The link came by email, so the address is proven too.
        await User.update({User.password_hash: hash_password(password)}).where(User.id == user_id)
        await User.update({User.email_verified_at: utcnow()}).where(
            (User.id == user_id) & User.email_verified_at.is_null()
        )
        await Session.delete().where(Session.user == user_id)  # sign out everywhere
        await ApiToken.update({ApiToken.revoked_at: utcnow()}).where(
            (ApiToken.user == user_id) & ApiToken.revoked_at.is_null()
        )  # tokens minted with the old password stop working too
    forget_actors()  # this process's cached actors (server/accounts/auth.py); others within 2 s
    return user_id


# Login and sessions ---------------------------------------------------------------------


async def authenticate(email: str, password: str) -> int | None:
    """The user id when the password matches an active account; upgrades old hashes."""
    user = (
        await User.select(User.id, User.password_hash, User.is_active)
        .where(User.email == normalise_email(email))
        .first()
    )
    if not verify_password(user["password_hash"] if user else None, password):
        return None
    if not user or not user["is_active"]:
        return None
    if needs_rehash(user["password_hash"]):
        async with atomic():
            await User.update({User.password_hash: hash_password(password)}).where(User.id == user["id"])
    return user["id"]


async def start_session(user_id: int, *, ip: str, user_agent: str, replaces: str | None) -> str:
    """Create a fresh session (rotation: the pre-login session token is discarded)."""
    token = new_token()
    moment = utcnow()
    async with atomic():
        if replaces:
            await Session.delete().where(Session.token_hash == hash_token(replaces))
        await Session.insert(
            Session(
                token_hash=hash_token(token),
                user=user_id,
                created_at=moment,
                last_seen_at=moment,
                expires_at=moment + timedelta(days=get_settings().session_days),
                ip=ip[:64],
                user_agent=user_agent[:255],
            )
        )
    return token


async def end_session(token: str) -> None:
    async with atomic():
        await Session.delete().where(Session.token_hash == hash_token(token))
    forget_actors()  # this process's cached actors (server/accounts/auth.py); others within 2 s


# Profile and API tokens -------------------------------------------------------------------


async def update_profile(
    actor: Actor,
    *,
    display_name: str,
    locale: str,
    time_zone: str,
    email_mode: str,
    mentions: bool,
    ticket_updates: bool,
) -> None:
    policy.ensure_signed_in(actor)
    display_name = display_name.strip()
    errors: dict[str, str] = {}
    _check_display_name(display_name, errors)
    if locale not in LOCALES:
        errors["locale"] = _("Choose a language from the list.")
    if time_zone not in available_timezones():
        errors["time_zone"] = _("Choose a time zone from the list.")
    if email_mode not in EMAIL_NOTIFY_MODES:
        errors["email_mode"] = _("Choose an option from the list.")
    if errors:
        raise Invalid(errors)
    prefs = {"email": email_mode, "mentions": mentions, "ticket_updates": ticket_updates}
    async with atomic():
        await User.update(
            {
                User.display_name: display_name,
                User.locale: locale,
                User.time_zone: time_zone,
                User.notification_prefs: prefs,
            }
        ).where(User.id == actor.user_id)
    forget_actors()  # this process's cached actors (server/accounts/auth.py); others within 2 s


async def set_locale(actor: Actor, locale: str) -> None:
    if actor.is_authenticated and locale in LOCALES:
        async with atomic():
            await User.update({User.locale: locale}).where(User.id == actor.user_id)
        forget_actors()  # this process's cached actors (server/accounts/auth.py); others within 2 s


async def create_api_token(actor: Actor, name: str) -> str:
    """Returns the token once; only its hash is stored."""
    policy.ensure_signed_in(actor)
    name = name.strip()
    if not name or len(name) > 80:
        raise Invalid({"name": _("Give the token a name of at most 80 characters.")})
    token = new_token(API_TOKEN_PREFIX)
    async with atomic():
        await ApiToken.insert(
            ApiToken(
                user=actor.user_id,
                name=name,
                token_hash=hash_token(token),
                prefix=token[:8],
                created_at=utcnow(),
            )
        )
    return token


async def revoke_api_token(actor: Actor, token_id: int) -> None:
    async with atomic():
        row = await ApiToken.select(ApiToken.user).where(ApiToken.id == token_id).first()
        if row is None or not policy.can_manage_tokens(actor, row["user"]):
            raise NotFound
        await ApiToken.update({ApiToken.revoked_at: utcnow()}).where(
            (ApiToken.id == token_id) & ApiToken.revoked_at.is_null()
        )
    forget_actors()  # this process's cached actors (server/accounts/auth.py); others within 2 s


async def issue_api_token_for_login(email: str, password: str, name: str) -> str | None:
    """`POST /api/v1/auth/token`: a new personal token when the credentials match."""
    user_id = await authenticate(email, password)
    if user_id is None:
        return None
    token = new_token(API_TOKEN_PREFIX)
    async with atomic():
        await ApiToken.insert(
            ApiToken(
                user=user_id,
                name=name[:80] or "API",
                token_hash=hash_token(token),
                prefix=token[:8],
                created_at=utcnow(),
            )
        )
    return token


# Administration -------------------------------------------------------------------------


async def create_user(
    email: str,
    password: str,
    display_name: str,
    roles: list[str],
    *,
    org_slug: str | None = None,
    org_admin: bool = False,
    locale: str = "en",
    verified: bool = True,
) -> int:
    """CLI and seed: a ready account with roles and optional organisation."""
    email = normalise_email(email)
    errors: dict[str, str] = {}
    _check_email(email, errors)
    _check_password(password, errors)
    _check_display_name(display_name, errors)
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        errors["roles"] = f"unknown role(s): {', '.join(unknown)}"
    if errors:
        raise Invalid(errors)
    async with atomic():
        if await User.exists().where(User.email == email):
            raise Invalid({"email": "an account with this email already exists"})
        user_id = await _insert_user(email, password, display_name, locale, verified=verified)
        for role in sorted({"customer", *roles}):
            await UserRole.insert(UserRole(user=user_id, role=role))
        if org_slug:
            org = await Organisation.select(Organisation.id).where(Organisation.slug == org_slug).first()
            if org is None:
                raise Invalid({"org": f"no organisation with slug {org_slug!r}"})
            await Membership.insert(Membership(user=user_id, organisation=org["id"], is_org_admin=org_admin))
    return user_id


async def admin_set_roles(actor: Actor, user_id: int, roles: list[str]) -> None:
    ensure(policy.can_administer(actor))
    wanted = {r for r in roles if r in ROLES} | {"customer"}
    if actor.user_id == user_id and "admin" not in wanted:
        raise Invalid({"roles": _("You cannot remove your own admin role.")})
    async with atomic():
        if not await User.exists().where(User.id == user_id):
            raise NotFound
        await UserRole.delete().where(UserRole.user == user_id)
        for role in sorted(wanted):
            await UserRole.insert(UserRole(user=user_id, role=role))
    forget_actors()  # this process's cached actors (server/accounts/auth.py); others within 2 s


async def admin_set_active(actor: Actor, user_id: int, active: bool) -> None:
    ensure(policy.can_administer(actor))
    if actor.user_id == user_id and not active:
        raise Invalid({"is_active": _("You cannot deactivate your own account.")})
    async with atomic():
        if not await User.exists().where(User.id == user_id):
            raise NotFound
        await User.update({User.is_active: active}).where(User.id == user_id)
        if not active:
            await Session.delete().where(Session.user == user_id)
            await ApiToken.update({ApiToken.revoked_at: utcnow()}).where(
                (ApiToken.user == user_id) & ApiToken.revoked_at.is_null()
            )
    forget_actors()  # this process's cached actors (server/accounts/auth.py); others within 2 s


def _check_org(name: str, slug: str, size: str, plan: str, industry: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not name or len(name) > 120:
        errors["name"] = _("Enter a name of at most %(n)s characters.", n=120)
    if not SLUG_RE.match(slug):
        errors["slug"] = _("Use 3–80 lower-case letters, digits and hyphens.")
    if size not in ORG_SIZES:
        errors["size"] = _("Choose an option from the list.")
    if plan not in ORG_PLANS:
        errors["plan"] = _("Choose an option from the list.")
    if len(industry) > 60:
        errors["industry"] = _("Use at most %(n)s characters.", n=60)
    return errors


async def save_organisation(
    actor: Actor, org_id: int | None, *, name: str, slug: str, size: str, industry: str, plan: str
) -> int:
    """Create (org_id None) or update an organisation."""
    ensure(policy.can_administer(actor))
    name, slug, industry = name.strip(), slug.strip().lower(), industry.strip()
    if errors := _check_org(name, slug, size, plan, industry):
        raise Invalid(errors)
    values = {"name": name, "slug": slug, "size": size, "industry": industry, "plan": plan}
    async with atomic():
        clash = Organisation.exists().where(Organisation.slug == slug)
        if org_id is not None:
            clash = clash.where(Organisation.id != org_id)
        if await clash:
            raise Invalid({"slug": _("Another organisation already uses this slug.")})
        if org_id is None:
            rows = await Organisation.insert(Organisation(**values, created_at=utcnow())).returning(Organisation.id)
            return rows[0]["id"]
        if not await Organisation.exists().where(Organisation.id == org_id):
            raise NotFound
        await Organisation.update({getattr(Organisation, k): v for k, v in values.items()}).where(
            Organisation.id == org_id
        )
        return org_id


async def add_member(actor: Actor, org_id: int, email: str, is_org_admin: bool) -> None:
    ensure(policy.can_manage_organisation_members(actor, org_id))
    async with atomic():
        if not await Organisation.exists().where(Organisation.id == org_id):
            raise NotFound
        user = await User.select(User.id).where(User.email == normalise_email(email)).first()
        if user is None:
            raise Invalid({"email": _("No account uses this email address.")})
        existing = (
            await Membership.select(Membership.id)
            .where((Membership.user == user["id"]) & (Membership.organisation == org_id))
            .first()
        )
        if existing:
            await Membership.update({Membership.is_org_admin: is_org_admin}).where(Membership.id == existing["id"])
        else:
            await Membership.insert(Membership(user=user["id"], organisation=org_id, is_org_admin=is_org_admin))
    forget_actors()  # this process's cached actors (server/accounts/auth.py); others within 2 s


async def remove_member(actor: Actor, org_id: int, user_id: int) -> None:
    ensure(policy.can_manage_organisation_members(actor, org_id))
    async with atomic():
        await Membership.delete().where((Membership.user == user_id) & (Membership.organisation == org_id))
    forget_actors()  # this process's cached actors (server/accounts/auth.py); others within 2 s

"""Accounts: users, their roles, organisations, sessions, API tokens, one-time links."""

from piccolo.columns import (
    JSON,
    Boolean,
    ForeignKey,
    OnDelete,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

ROLES = ("customer", "agent", "moderator", "admin")
LOCALES = ("en", "ja")
ORG_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1000+")
ORG_PLANS = ("free", "starter", "business", "enterprise")
EMAIL_NOTIFY_MODES = ("immediate", "daily", "off")


class User(Table, tablename="app_user"):
    email = Varchar(length=254, unique=True, index=True)  # stored lower-cased
    password_hash = Varchar(length=255)
    display_name = Varchar(length=80)
    # The @handle for mentions; services keep it unique (SQLite cannot add a UNIQUE column to an
    # existing table). Assigned at sign-up from the email's local part (accounts/usernames.py).
    username = Varchar(length=40, null=True, default=None, index=True)
    locale = Varchar(length=5, default="en")
    time_zone = Varchar(length=64, default="UTC")
    email_verified_at = Timestamptz(null=True, default=None)
    is_active = Boolean(default=True)
    # {"email": "immediate"|"daily"|"off", "mentions": bool, "ticket_updates": bool}
    notification_prefs = JSON(default={})
    created_at = Timestamptz()


class UserRole(Table):
    """One row per role held; services keep (user, role) unique (SQLite cannot add the constraint)."""

    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    role = Varchar(length=16)


class Organisation(Table):
    name = Varchar(length=120)
    slug = Varchar(length=80, unique=True)
    size = Varchar(length=16, default="1-10")
    industry = Varchar(length=60, default="")
    plan = Varchar(length=16, default="free")
    created_at = Timestamptz()


class Membership(Table):
    """A user in an organisation; services keep (user, organisation) unique."""

    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    organisation = ForeignKey(Organisation, on_delete=OnDelete.cascade, index=True)
    is_org_admin = Boolean(default=False)


class Session(Table, tablename="user_session"):
    token_hash = Varchar(length=64, unique=True, index=True)
    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    created_at = Timestamptz()
    last_seen_at = Timestamptz()
    expires_at = Timestamptz()
    ip = Varchar(length=64, default="")
    user_agent = Varchar(length=255, default="")


class ApiToken(Table):
    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=80)
    token_hash = Varchar(length=64, unique=True, index=True)
    prefix = Varchar(length=16)  # shown in the UI so people can tell tokens apart
    created_at = Timestamptz()
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class OneTimeToken(Table):
    """The single-use half of an emailed link; the signature and expiry live in the link."""

    jti = Varchar(length=64, unique=True, index=True)
    purpose = Varchar(length=16)  # "verify" | "reset"
    user = ForeignKey(User, on_delete=OnDelete.cascade)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)

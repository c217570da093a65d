"""Who may do what. The only place permissions live.

Pure `can_*` predicates over an `Actor` answer every "may X do Y to Z?"; `ensure` turns a
`False` into a 403 for routes and services; `search_audience` and `channel_audience` give the
same rules to Meilisearch filters, SQL and websocket subscriptions as feature issues arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from server.i18n import _

STAFF_ROLES = frozenset({"agent", "moderator", "admin"})


@dataclass(frozen=True)
class Actor:
    """The person behind a request, resolved once from the session or bearer token."""

    user_id: int | None = None
    email: str = ""
    display_name: str = ""
    locale: str = "en"
    time_zone: str = "UTC"
    roles: frozenset[str] = field(default_factory=frozenset)
    org_ids: frozenset[int] = field(default_factory=frozenset)
    admin_org_ids: frozenset[int] = field(default_factory=frozenset)
    email_verified: bool = False

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def is_agent(self) -> bool:
        return "agent" in self.roles or self.is_admin

    @property
    def is_moderator(self) -> bool:
        return "moderator" in self.roles or self.is_admin

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)


ANONYMOUS = Actor()


def ensure(allowed: bool, message: str | None = None) -> None:
    if not allowed:
        # Translated when raised, not at import, so the message is in the request's language.
        raise PermissionDeniedException(detail=message or _("You are not allowed to do that."))


def ensure_signed_in(actor: Actor) -> None:
    if not actor.is_authenticated:
        raise NotAuthorizedException(detail=_("Please sign in to continue."))


# Accounts -----------------------------------------------------------------------------------


def can_edit_profile(actor: Actor, user_id: int) -> bool:
    return actor.user_id == user_id


def can_manage_tokens(actor: Actor, owner_id: int) -> bool:
    return actor.user_id == owner_id


def can_view_organisation(actor: Actor, org_id: int) -> bool:
    return actor.is_staff or org_id in actor.org_ids


def can_manage_organisation_members(actor: Actor, org_id: int) -> bool:
    return actor.is_admin or org_id in actor.admin_org_ids


# Areas --------------------------------------------------------------------------------------


def can_use_desk(actor: Actor) -> bool:
    return actor.is_agent


def can_moderate(actor: Actor) -> bool:
    return actor.is_moderator


def can_administer(actor: Actor) -> bool:
    return actor.is_admin


def can_view_captured_mail(actor: Actor) -> bool:
    return actor.is_admin


# Audiences ----------------------------------------------------------------------------------


def search_audience(actor: Actor) -> list[str]:
    """The audience labels whose documents this actor may see (search, SQL, channels)."""
    audience = ["public"]
    if actor.is_authenticated:
        audience.append("signed_in")
        audience.extend(f"org:{org_id}" for org_id in sorted(actor.org_ids))
        audience.append(f"user:{actor.user_id}")
    if actor.is_staff:
        audience.append("staff")
    return audience


def audience_for_visibility(visibility: str, tiers: list[str] | None = None) -> list[str]:
    """The audience labels a piece of content carries for its visibility level."""
    if visibility == "public":
        return ["public"]
    if visibility == "signed_in":
        return ["signed_in"]
    if visibility == "members":
        return [f"tier:{tier}" for tier in tiers] if tiers else ["members"]
    return ["staff"]  # internal, and anything unknown: staff only (fail closed)


def content_audience(actor: Actor) -> list[str] | None:
    """The labels whose content the actor may read; None means everything (staff)."""
    if actor.is_staff:
        return None
    return search_audience(actor)


def can_read_audience(actor: Actor, audience: list[str]) -> bool:
    allowed = content_audience(actor)
    return allowed is None or bool(set(audience) & set(allowed))


def meili_audience_filter(actor: Actor) -> str | None:
    """The Meilisearch filter expression for what the actor may read (None: no filter)."""
    allowed = content_audience(actor)
    if allowed is None:
        return None
    quoted = ", ".join('"' + label.replace('"', "") + '"' for label in allowed)
    return f"audience IN [{quoted}]"


def can_edit_kb(actor: Actor) -> bool:
    """Agents and admins write help-center articles."""
    return actor.is_agent


def can_see_article_feedback(actor: Actor) -> bool:
    return actor.is_agent


def can_administer_search(actor: Actor) -> bool:
    return actor.is_admin


# Knowledge base -----------------------------------------------------------------------------


def can_read_kb(actor: Actor, visibility: str, tiers: list[str] | None = None) -> bool:
    """May the actor read help-center content of this (effective) visibility?"""
    return can_read_audience(actor, audience_for_visibility(visibility, tiers))


def can_see_kb_drafts(actor: Actor) -> bool:
    """Unpublished translations are shown to those who write them."""
    return can_edit_kb(actor)


@dataclass(frozen=True)
class VisibilityScope:
    """The visibility levels an audience may read, in a form SQL can test.

    `levels`: readable when the content names no tiers; `tiers`: `members` content limited to
    tiers is readable when it names one of these. Equivalent to `audience_for_visibility` +
    `can_read_audience` (tests check the two agree).
    """

    levels: frozenset[str]
    tiers: frozenset[str]


def visibility_scope(audience: list[str] | None) -> VisibilityScope | None:
    """None: no restriction (staff)."""
    if audience is None:
        return None
    labels = set(audience)
    level_labels = {"public": "public", "signed_in": "signed_in", "members": "members", "internal": "staff"}
    levels = frozenset(level for level, label in level_labels.items() if label in labels)
    tiers = frozenset(label.removeprefix("tier:") for label in labels if label.startswith("tier:"))
    return VisibilityScope(levels=levels, tiers=tiers)

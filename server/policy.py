"""Who may do what. The only place permissions live.

Pure `can_*` predicates over an `Actor` answer every "may X do Y to Z?"; `ensure` turns a
`False` into a 403 for routes and services; `search_audience` and `channel_audience` give the
same rules to Meilisearch filters, SQL and websocket subscriptions as feature issues arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


# Forum --------------------------------------------------------------------------------------
# Categories carry an audience (public / signed_in / members (+tiers) / staff) and say who may
# start threads and reply (signed_in / staff). Moderators may do everything to posts; authors
# edit and delete their own while the thread is open. Lists filter by the ids of the categories
# the actor may read (`readable_forum_category_ids`): categories are few, threads are many.


def forum_audience(audience: str, tiers: list[str] | None = None) -> list[str]:
    """The audience labels a forum category's content carries (search, channels)."""
    return audience_for_visibility("internal" if audience == "staff" else audience, tiers)


def can_read_forum_category(actor: Actor, category: dict[str, Any]) -> bool:
    return can_read_audience(actor, forum_audience(category["audience"], category.get("tiers") or []))


def _forum_may(actor: Actor, rule: str) -> bool:
    if not actor.is_authenticated:
        return False
    return actor.is_staff if rule == "staff" else True


def can_start_forum_thread(actor: Actor, category: dict[str, Any]) -> bool:
    return can_read_forum_category(actor, category) and _forum_may(actor, category["can_start"])


def can_read_forum_thread(actor: Actor, category: dict[str, Any], thread: dict[str, Any]) -> bool:
    if thread.get("deleted_at") is not None:
        return False
    if thread.get("hidden") and not actor.is_moderator:
        return False
    return can_read_forum_category(actor, category)


def can_reply_forum(actor: Actor, category: dict[str, Any], thread: dict[str, Any]) -> bool:
    if not can_read_forum_thread(actor, category, thread) or not _forum_may(actor, category["can_reply"]):
        return False
    return not thread.get("locked") or actor.is_moderator


def can_edit_forum_post(actor: Actor, thread: dict[str, Any], post: dict[str, Any]) -> bool:
    """The author while the post stands and the thread is open; moderators always."""
    if actor.is_moderator:
        return True
    return (
        actor.is_authenticated
        and post.get("author_id") == actor.user_id
        and post.get("deleted_at") is None
        and not thread.get("locked")
    )


def can_delete_forum_post(actor: Actor, thread: dict[str, Any], post: dict[str, Any]) -> bool:
    return can_edit_forum_post(actor, thread, post)


def can_accept_forum_answer(actor: Actor, category: dict[str, Any], thread: dict[str, Any]) -> bool:
    """In Q&A categories: the asker, or a moderator."""
    if not category.get("qa"):
        return False
    return actor.is_moderator or (actor.is_authenticated and thread.get("author_id") == actor.user_id)


def can_react_forum(actor: Actor, category: dict[str, Any], thread: dict[str, Any]) -> bool:
    return actor.is_authenticated and can_read_forum_thread(actor, category, thread)


def can_moderate_forum(actor: Actor) -> bool:
    return actor.is_moderator


def can_administer_forum(actor: Actor) -> bool:
    """Categories (audience, who may post, Q&A, order) are for administrators."""
    return actor.is_admin


def forum_channel_group(actor: Actor, category: dict[str, Any], thread: dict[str, Any]) -> str | None:
    """The realtime audience group for a thread's channel: "staff", "reader", or None (refused)."""
    if not can_read_forum_thread(actor, category, thread):
        return None
    return "staff" if actor.is_moderator or actor.is_staff else "reader"


def readable_forum_category_ids(actor: Actor, categories: list[dict[str, Any]]) -> list[int]:
    """The SQL scope of forum lists: `thread.category IN (these)`."""
    return [c["id"] for c in categories if can_read_forum_category(actor, c)]


# Desk ---------------------------------------------------------------------------------------
# Tickets: requesters see their own, organisation admins their organisation's, agents all.
# Internal notes (and their attachments) are for agents only, everywhere: pages, API, search, mail.


def can_see_ticket(
    actor: Actor, requester_id: int | None, organisation_id: int | None, follower_ids: frozenset[int] = frozenset()
) -> bool:
    """Agents: every ticket. Customers: their own, those they are copied on, and as admins of an
    organisation, its tickets."""
    if actor.is_agent:
        return True
    if actor.user_id is None:
        return False
    return (
        requester_id == actor.user_id
        or actor.user_id in follower_ids
        or (organisation_id is not None and organisation_id in actor.admin_org_ids)
    )


def can_see_internal_notes(actor: Actor) -> bool:
    return actor.is_agent


def can_open_ticket(actor: Actor) -> bool:
    return actor.is_authenticated


def can_work_tickets(actor: Actor) -> bool:
    """Change fields, add notes, apply macros, merge and link: agents."""
    return actor.is_agent


def can_reply_to_ticket(actor: Actor, visible: bool, status: str) -> bool:
    """`visible`: `can_see_ticket` for this ticket. Closed tickets take no more replies."""
    return visible and status != "closed"


def can_solve_own_ticket(actor: Actor, requester_id: int | None, organisation_id: int | None) -> bool:
    """The requester, or an admin of the ticket's organisation, may mark it solved."""
    return actor.is_authenticated and can_see_ticket(actor, requester_id, organisation_id)


def can_administer_desk(actor: Actor) -> bool:
    return actor.is_admin


# Desk: SLA and CSAT --------------------------------------------------------------------------
# SLA policies and calendars are desk settings (admins). A ticket's satisfaction rating is given
# by its requester only (the mailed link stands in for the sign-in); agents read the ratings.


def can_rate_ticket(actor: Actor, requester_id: int | None) -> bool:
    return actor.is_authenticated and actor.user_id == requester_id


def can_see_csat_reports(actor: Actor) -> bool:
    return actor.is_agent


# Desk: live updates and the agents' workspace ---------------------------------------------------
# The `ticket:{id}` channel: agents hear everything (as group "agent"), a customer who may see the
# ticket hears its public side only (group "customer"). The `desk:0` channel (the queue) is agents'.
# Saved views: their owner edits them; a view shared with a group is read by that group's members.


def ticket_channel_group(
    actor: Actor, requester_id: int | None, organisation_id: int | None, follower_ids: frozenset[int] = frozenset()
) -> str | None:
    if not actor.is_authenticated:
        return None
    if can_see_internal_notes(actor):
        return "agent"
    return "customer" if can_see_ticket(actor, requester_id, organisation_id, follower_ids) else None


def desk_queue_channel_group(actor: Actor) -> str | None:
    return "agent" if actor.is_authenticated and can_use_desk(actor) else None


def can_read_saved_view(actor: Actor, owner_id: int, team_id: int | None, my_team_ids: frozenset[int]) -> bool:
    return can_use_desk(actor) and (owner_id == actor.user_id or (team_id is not None and team_id in my_team_ids))


def can_edit_saved_view(actor: Actor, owner_id: int) -> bool:
    return can_use_desk(actor) and owner_id == actor.user_id


# Notifications ------------------------------------------------------------------------------


def can_manage_notifications(actor: Actor, owner_id: int) -> bool:
    """Notifications, email preferences and subscriptions are read and changed by their owner only."""
    return actor.is_authenticated and actor.user_id == owner_id


def can_subscribe(actor: Actor, can_read_target: bool) -> bool:
    """Following a thread or category needs the right to read it (the target kind's `can_read`)."""
    return actor.is_authenticated and can_read_target


def user_channel_group(actor: Actor, user_id: int) -> str | None:
    """The `user:{id}` realtime channel (the bell) is for that same user alone."""
    return "self" if actor.is_authenticated and actor.user_id == user_id else None


# Channels: webhooks and forum-to-ticket ------------------------------------------------------
# Webhook endpoints (their URLs, secrets and delivery logs) are admin settings. Agents turn a
# forum thread or post into a ticket and post their public replies back to the thread (where the
# forum's own rules, locked threads and category permissions, still apply). Only staff learn that
# a thread became a ticket: the public thread shows nothing of it.


def can_manage_webhooks(actor: Actor) -> bool:
    return actor.is_admin


def can_convert_forum_to_ticket(actor: Actor) -> bool:
    return actor.is_agent


def can_see_forum_ticket_links(actor: Actor) -> bool:
    return actor.is_agent


def can_post_ticket_reply_to_forum(actor: Actor, message_author_id: int | None) -> bool:
    """An agent posts their own public reply, under their own name."""
    return actor.is_agent and message_author_id is not None and message_author_id == actor.user_id


# Email channel: outbound mail -----------------------------------------------------------------


def can_see_mail_delivery(actor: Actor) -> bool:
    """Per-recipient delivery state of ticket mail (addresses, SMTP errors): agents only, so a
    customer never learns who else is copied on a ticket or why their mail bounced."""
    return can_work_tickets(actor)


# Channels: inbound email -----------------------------------------------------------------------
# The email channel's settings and its quarantine are admins'. The original of an emailed ticket
# message (headers, quoted history) is shown to agents, and to its own author when they may see
# the ticket; never to other customers on the ticket (the headers name other recipients).


def can_administer_email_channel(actor: Actor) -> bool:
    return actor.is_admin


def can_view_original_mail(actor: Actor, ticket_visible: bool, author_id: int | None) -> bool:
    if actor.is_agent:
        return True
    return actor.is_authenticated and ticket_visible and author_id is not None and author_id == actor.user_id


# Channels: live chat --------------------------------------------------------------------------
# A chat session is seen by agents, by its requester when signed in, and by the anonymous visitor
# whose signed chat cookie names it (`visitor_session_id`). Customers write on the customer side;
# only the agent who took the chat writes on the agent side. The `chat:{id}` channel carries the
# customer-visible conversation to both groups (internal notes live on the ticket, never here).


def can_see_chat(actor: Actor, requester_id: int, session_id: int, visitor_session_id: int | None) -> bool:
    if actor.is_agent:
        return True
    if actor.is_authenticated and actor.user_id == requester_id:
        return True
    return visitor_session_id is not None and visitor_session_id == session_id


def can_start_chat(actor: Actor) -> bool:
    """Customers, signed in or not; staff answer chats instead of starting them."""
    return not actor.is_agent


def can_write_chat_as_customer(
    actor: Actor, requester_id: int, session_id: int, visitor_session_id: int | None
) -> bool:
    return not actor.is_agent and can_see_chat(actor, requester_id, session_id, visitor_session_id)


def can_answer_chats(actor: Actor) -> bool:
    """Availability, the queue, taking a chat."""
    return actor.is_agent


def can_write_chat_as_agent(actor: Actor, assigned_agent_id: int | None) -> bool:
    return actor.is_agent and assigned_agent_id is not None and assigned_agent_id == actor.user_id


def chat_channel_group(actor: Actor, requester_id: int, session_id: int, visitor_session_id: int | None) -> str | None:
    if actor.is_agent:
        return "agent"
    return "customer" if can_see_chat(actor, requester_id, session_id, visitor_session_id) else None


def chat_queue_channel_group(actor: Actor) -> str | None:
    return "agent" if can_answer_chats(actor) else None

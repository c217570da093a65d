"""Who reaches what: every registered route of the app, for seven roles, against one table.

`test_every_route_is_classified` fails when the app has a route the table does not list (or the
table lists one that is gone), so a new route cannot ship without an expected outcome for every
role. `test_route_matrix[role]` then sends each route a real request as that role and compares.

Outcomes:
  ok      2xx, a 3xx that is not a sign-in redirect, or 400/409/413/422: the request was let in
          and its input judged (the point here is authorisation, not valid forms)
  login   a GET page redirects (303) to /login?next=...; an API call or a form post answers 401
  deny    403
  hidden  404: the object exists, but this role must not learn that
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute, WebSocketRoute
from litestar.testing import AsyncTestClient

from server import jobs, mail
from server.accounts import services
from server.accounts.auth import SESSION_COOKIE
from server.accounts.tables import ApiToken
from server.policy import Actor
from tests.conftest import csrf_token, make_client
from tests.factories import PASSWORD, Mailbox, login, make_org, make_user
from tests.kb.factories import make_article, make_category, make_section

ROLES = ("anonymous", "customer", "another_customer", "org_admin", "agent", "moderator", "admin")
OUTCOMES = frozenset({"ok", "login", "deny", "hidden"})

# Columns:    anonymous customer another_customer org_admin agent moderator admin
EVERYONE = "ok ok ok ok ok ok ok"
SIGNED_IN = "login ok ok ok ok ok ok"
AGENTS = "login deny deny deny ok deny ok"  # admins hold every staff power
MODERATORS = "login deny deny deny deny ok ok"
ADMINS = "login deny deny deny deny deny ok"
ORG_MEMBERS_AND_STAFF = "login ok hidden ok ok ok ok"  # another organisation's page looks missing
ORG_MANAGERS = "login deny hidden ok deny deny ok"  # staff see the organisation but not its roster
TOKEN_OWNER = "login ok hidden hidden hidden hidden hidden"  # someone else's token looks missing
KB_EDITORS = AGENTS
STAFF_CONTENT = "hidden hidden hidden hidden ok ok ok"  # internal help-center content looks missing
FORUM_STAFF_WRITERS = "login hidden hidden hidden ok ok ok"  # a staff-only forum category: others see nothing
FORUM_POST_EDITORS = "login hidden hidden hidden deny ok ok"  # another's post: its author (no role here) and moderators
TICKET_READERS = "login ok hidden ok ok hidden ok"  # requester, admins of its organisation, agents
TICKET_WORKERS = "login deny hidden deny ok hidden ok"  # agents; customers who see it may not do this

# Path parameters are real objects made by `_build_world`:
#   {org_id}   the organisation of `customer` and `org_admin` ("acme"); `another_customer` is in "globex"
#   {user_id}  a bystander member of that organisation
#   {token_id} an API token of `customer`
#   {job_id}   a dead job
#   {name}     a captured mail file
#   help center: an `internal` (staff-only) category with one section and articles inheriting
#   that visibility: {category_id} {category_slug} {section_id} {section_slug}, {article_id} and
#   {ref} (its "id-slug"), revision {number} 1; each delete gets an article of its own
MATRIX: dict[tuple[str, str], str] = {
    # UI shell and areas
    ("GET", "/"): EVERYONE,
    ("GET", "/community"): EVERYONE,
    # Community forum: {forum_slug} is a staff-only Q&A category, {thread_id}/{thread_ref} its
    # thread (title holds SECRET, tag {tag}) by another agent, {post_id} that agent's reply
    ("GET", "/community/c/{forum_slug:str}"): STAFF_CONTENT,
    ("GET", "/community/tags/{tag:str}"): EVERYONE,
    ("GET", "/community/t/{thread_ref:str}"): STAFF_CONTENT,
    ("GET", "/community/t/{thread_id:int}/{target:str}"): STAFF_CONTENT,
    ("GET", "/community/t/{thread_id:int}/reply-form"): FORUM_STAFF_WRITERS,
    ("POST", "/community/t/{thread_id:int}/replies"): FORUM_STAFF_WRITERS,
    ("POST", "/community/t/{thread_id:int}/bookmark"): FORUM_STAFF_WRITERS,
    ("POST", "/community/t/{thread_id:int}/read"): FORUM_STAFF_WRITERS,
    ("POST", "/community/t/{thread_id:int}/unaccept"): FORUM_POST_EDITORS,
    ("GET", "/community/posts/{post_id:int}/edit"): FORUM_POST_EDITORS,
    ("POST", "/community/posts/{post_id:int}/edit"): FORUM_POST_EDITORS,
    ("POST", "/community/posts/{post_id:int}/delete"): FORUM_POST_EDITORS,
    ("GET", "/community/posts/{post_id:int}/history"): STAFF_CONTENT,
    ("POST", "/community/posts/{post_id:int}/accept"): FORUM_POST_EDITORS,
    ("POST", "/community/posts/{post_id:int}/react"): FORUM_STAFF_WRITERS,
    ("POST", "/community/preview"): SIGNED_IN,
    ("GET", "/community/bookmarks"): SIGNED_IN,
    ("GET", "/community/new"): SIGNED_IN,
    ("POST", "/community/new"): SIGNED_IN,  # empty form: 422
    ("GET", "/community/new/similar"): EVERYONE,
    ("GET", "/community/mentions"): SIGNED_IN,
    ("GET", "/api/v1/forum/threads"): EVERYONE,
    ("GET", "/api/v1/forum/threads/{thread_id:int}"): STAFF_CONTENT,
    ("POST", "/api/v1/forum/threads"): FORUM_STAFF_WRITERS,
    ("POST", "/api/v1/forum/threads/{thread_id:int}/posts"): FORUM_STAFF_WRITERS,
    ("PATCH", "/api/v1/forum/posts/{post_id:int}"): FORUM_POST_EDITORS,
    ("POST", "/api/v1/forum/posts/{post_id:int}/accept"): FORUM_POST_EDITORS,
    ("POST", "/api/v1/forum/posts/{post_id:int}/reactions/{kind:str}"): FORUM_STAFF_WRITERS,
    ("DELETE", "/api/v1/forum/posts/{post_id:int}/reactions/{kind:str}"): FORUM_STAFF_WRITERS,
    # Community forum: admin; {forum_category_id} is the staff-only category (it holds threads),
    # deleting gets an empty one of its own
    ("GET", "/admin/community/categories"): ADMINS,
    ("GET", "/admin/community/categories/new"): ADMINS,
    ("POST", "/admin/community/categories/new"): ADMINS,  # empty form: 422
    ("GET", "/admin/community/categories/{forum_category_id:int}"): ADMINS,
    ("POST", "/admin/community/categories/{forum_category_id:int}"): ADMINS,  # empty form: 422
    ("POST", "/admin/community/categories/{forum_category_id:int}/move"): ADMINS,
    ("POST", "/admin/community/categories/{forum_category_id:int}/delete"): ADMINS,
    ("GET", "/guides"): EVERYONE,
    ("GET", "/perks"): EVERYONE,
    ("GET", "/support/tickets"): SIGNED_IN,
    ("GET", "/desk"): AGENTS,
    ("GET", "/moderation"): MODERATORS,
    ("GET", "/healthz"): EVERYONE,
    # Accounts: public forms (signed-in visitors of /signup and /login are sent home: ok)
    ("GET", "/signup"): EVERYONE,
    ("POST", "/signup"): EVERYONE,
    ("GET", "/verify-email"): EVERYONE,
    ("POST", "/verify-email"): EVERYONE,  # a bad token: 400
    ("POST", "/verify-email/resend"): SIGNED_IN,
    ("GET", "/login"): EVERYONE,
    ("POST", "/login"): EVERYONE,  # wrong password: 422
    ("POST", "/logout"): EVERYONE,
    ("GET", "/forgot-password"): EVERYONE,
    ("POST", "/forgot-password"): EVERYONE,
    ("GET", "/reset-password"): EVERYONE,  # no token: 400
    ("POST", "/reset-password"): EVERYONE,  # a bad token: 400
    ("POST", "/locale"): EVERYONE,
    # Accounts: one's own profile and tokens
    ("GET", "/profile"): SIGNED_IN,
    ("POST", "/profile"): SIGNED_IN,
    ("POST", "/profile/tokens"): SIGNED_IN,
    ("POST", "/profile/tokens/{token_id:int}/revoke"): TOKEN_OWNER,
    # JSON API (Bearer tokens only)
    ("POST", "/api/v1/auth/token"): EVERYONE,
    ("GET", "/api/v1/me"): SIGNED_IN,
    # Organisations
    ("GET", "/organisations/{org_id:int}"): ORG_MEMBERS_AND_STAFF,
    ("POST", "/organisations/{org_id:int}/members"): ORG_MANAGERS,
    ("POST", "/organisations/{org_id:int}/members/{user_id:int}/remove"): ORG_MANAGERS,
    # Help Center: reading, feedback, and the JSON API
    ("GET", "/help"): EVERYONE,
    ("GET", "/help/categories/{category_slug:str}"): STAFF_CONTENT,
    ("GET", "/help/sections/{section_slug:str}"): STAFF_CONTENT,
    ("GET", "/help/articles/{ref:str}"): STAFF_CONTENT,
    ("POST", "/help/articles/{article_id:int}/feedback"): STAFF_CONTENT,
    ("GET", "/api/v1/kb/articles"): EVERYONE,
    ("GET", "/api/v1/kb/articles/{article_id:int}"): STAFF_CONTENT,
    ("POST", "/api/v1/kb/articles"): KB_EDITORS,
    ("PATCH", "/api/v1/kb/articles/{article_id:int}"): KB_EDITORS,
    ("DELETE", "/api/v1/kb/articles/{article_id:int}"): KB_EDITORS,
    # Help Center: management
    ("GET", "/help/manage"): KB_EDITORS,
    ("GET", "/help/manage/articles/new"): KB_EDITORS,
    ("POST", "/help/manage/articles/new"): KB_EDITORS,
    ("GET", "/help/manage/articles/{article_id:int}"): KB_EDITORS,
    ("POST", "/help/manage/articles/{article_id:int}"): KB_EDITORS,
    ("POST", "/help/manage/articles/{article_id:int}/status"): KB_EDITORS,
    ("POST", "/help/manage/articles/{article_id:int}/delete"): KB_EDITORS,
    ("GET", "/help/manage/articles/{article_id:int}/revisions"): KB_EDITORS,
    ("GET", "/help/manage/articles/{article_id:int}/diff"): KB_EDITORS,
    ("POST", "/help/manage/articles/{article_id:int}/revisions/{number:int}/restore"): KB_EDITORS,
    ("POST", "/help/manage/preview"): KB_EDITORS,
    ("GET", "/help/manage/categories/new"): KB_EDITORS,
    ("POST", "/help/manage/categories/new"): KB_EDITORS,
    ("GET", "/help/manage/categories/{category_id:int}"): KB_EDITORS,
    ("POST", "/help/manage/categories/{category_id:int}"): KB_EDITORS,
    ("GET", "/help/manage/sections/new"): KB_EDITORS,
    ("POST", "/help/manage/sections/new"): KB_EDITORS,
    ("GET", "/help/manage/sections/{section_id:int}"): KB_EDITORS,
    ("POST", "/help/manage/sections/{section_id:int}"): KB_EDITORS,
    # Search
    ("GET", "/search"): EVERYONE,
    ("GET", "/search/suggest"): EVERYONE,
    ("POST", "/search/events"): EVERYONE,
    ("GET", "/api/v1/search"): EVERYONE,
    ("GET", "/admin/search"): ADMINS,
    ("POST", "/admin/search/settings"): ADMINS,
    # Admin
    ("GET", "/admin"): ADMINS,
    ("GET", "/admin/users"): ADMINS,
    ("GET", "/admin/users/{user_id:int}"): ADMINS,
    ("POST", "/admin/users/{user_id:int}/roles"): ADMINS,
    ("POST", "/admin/users/{user_id:int}/active"): ADMINS,
    ("GET", "/admin/organisations"): ADMINS,
    ("GET", "/admin/organisations/new"): ADMINS,
    ("POST", "/admin/organisations/new"): ADMINS,
    ("GET", "/admin/organisations/{org_id:int}"): ADMINS,
    ("POST", "/admin/organisations/{org_id:int}"): ADMINS,
    ("GET", "/admin/mail"): ADMINS,
    ("GET", "/admin/mail/{name:str}"): ADMINS,
    ("GET", "/admin/jobs"): ADMINS,
    ("POST", "/admin/jobs/{job_id:int}/retry"): ADMINS,
    # Desk: the web form and the customer portal (GET /support/tickets is listed above);
    # {ticket_id} is `customer`'s ticket (acme),
    # {attachment_id} on its public reply (tests/desk covers an internal note's attachments)
    ("GET", "/support/new"): SIGNED_IN,
    ("POST", "/support/new"): SIGNED_IN,  # empty form: 422
    ("GET", "/support/suggest"): SIGNED_IN,
    ("POST", "/support/deflection"): SIGNED_IN,  # a bad token: 422
    ("GET", "/support/tickets/{ticket_id:int}"): TICKET_READERS,
    ("POST", "/support/tickets/{ticket_id:int}/reply"): TICKET_READERS,  # empty reply: 422
    ("POST", "/support/tickets/{ticket_id:int}/solve"): TICKET_READERS,
    ("GET", "/support/attachments/{attachment_id:int}"): TICKET_READERS,
    # Desk: agents (GET /desk is listed above)
    ("GET", "/desk/search"): AGENTS,
    ("GET", "/desk/tickets/{ticket_id:int}"): AGENTS,
    ("POST", "/desk/tickets/{ticket_id:int}/messages"): AGENTS,
    ("POST", "/desk/tickets/{ticket_id:int}/fields"): AGENTS,
    ("POST", "/desk/tickets/{ticket_id:int}/macro"): AGENTS,
    ("POST", "/desk/tickets/{ticket_id:int}/merge"): AGENTS,
    ("POST", "/desk/tickets/{ticket_id:int}/links"): AGENTS,
    ("POST", "/desk/tickets/{ticket_id:int}/links/{other_id:int}/remove"): AGENTS,
    ("POST", "/desk/tickets/{ticket_id:int}/parent"): AGENTS,
    ("POST", "/desk/tickets/{ticket_id:int}/followers"): AGENTS,
    ("POST", "/desk/tickets/{ticket_id:int}/followers/{user_id:int}/remove"): AGENTS,
    ("POST", "/desk/preview"): AGENTS,
    # Desk: agents' workspace. {view_id} is another agent's private view: it looks missing.
    ("GET", "/desk/list"): AGENTS,
    ("GET", "/desk/nav"): AGENTS,
    ("POST", "/desk/views"): AGENTS,  # empty form: 422
    ("GET", "/desk/views/{view_id:int}"): "login deny deny deny hidden deny hidden",
    ("POST", "/desk/views/{view_id:int}"): "login deny deny deny hidden deny hidden",
    ("POST", "/desk/views/{view_id:int}/delete"): "login deny deny deny hidden deny hidden",
    ("POST", "/desk/bulk"): AGENTS,  # nothing selected: 422
    ("POST", "/desk/tickets/{ticket_id:int}/presence"): AGENTS,
    ("POST", "/desk/tickets/{ticket_id:int}/presence/leave"): AGENTS,
    # Desk: the JSON API
    ("POST", "/api/v1/tickets"): SIGNED_IN,
    ("GET", "/api/v1/tickets"): SIGNED_IN,
    ("GET", "/api/v1/tickets/{ticket_id:int}"): TICKET_READERS,
    ("PATCH", "/api/v1/tickets/{ticket_id:int}"): TICKET_WORKERS,
    ("GET", "/api/v1/tickets/{ticket_id:int}/messages"): TICKET_READERS,
    ("POST", "/api/v1/tickets/{ticket_id:int}/messages"): TICKET_READERS,
    # Desk: admin
    ("GET", "/admin/desk"): ADMINS,
    ("GET", "/admin/desk/groups/new"): ADMINS,
    ("POST", "/admin/desk/groups/new"): ADMINS,
    ("GET", "/admin/desk/groups/{group_id:int}"): ADMINS,
    ("POST", "/admin/desk/groups/{group_id:int}"): ADMINS,
    ("POST", "/admin/desk/groups/{group_id:int}/delete"): ADMINS,
    ("GET", "/admin/desk/fields/new"): ADMINS,
    ("POST", "/admin/desk/fields/new"): ADMINS,
    ("GET", "/admin/desk/fields/{field_id:int}"): ADMINS,
    ("POST", "/admin/desk/fields/{field_id:int}"): ADMINS,
    ("GET", "/admin/desk/macros/new"): ADMINS,
    ("POST", "/admin/desk/macros/new"): ADMINS,
    ("GET", "/admin/desk/macros/{macro_id:int}"): ADMINS,
    ("POST", "/admin/desk/macros/{macro_id:int}"): ADMINS,
    ("POST", "/admin/desk/macros/{macro_id:int}/delete"): ADMINS,
    # Desk: SLA admin ({calendar_id}, {policy_id}; deletes get their own) and CSAT. The mailed
    # rating link needs no sign-in (no token: 400); the portal's form is the requester's only.
    ("GET", "/admin/desk/sla"): ADMINS,
    ("GET", "/admin/desk/sla/calendars/new"): ADMINS,
    ("POST", "/admin/desk/sla/calendars/new"): ADMINS,  # empty form: 422
    ("GET", "/admin/desk/sla/calendars/{calendar_id:int}"): ADMINS,
    ("POST", "/admin/desk/sla/calendars/{calendar_id:int}"): ADMINS,
    ("POST", "/admin/desk/sla/calendars/{calendar_id:int}/delete"): ADMINS,
    ("GET", "/admin/desk/sla/policies/new"): ADMINS,
    ("POST", "/admin/desk/sla/policies/new"): ADMINS,
    ("GET", "/admin/desk/sla/policies/{policy_id:int}"): ADMINS,
    ("POST", "/admin/desk/sla/policies/{policy_id:int}"): ADMINS,
    ("POST", "/admin/desk/sla/policies/{policy_id:int}/delete"): ADMINS,
    ("GET", "/support/csat/{ticket_id:int}"): EVERYONE,
    ("POST", "/support/csat/{ticket_id:int}"): EVERYONE,
    ("POST", "/support/tickets/{ticket_id:int}/csat"): "login ok hidden deny deny hidden deny",  # empty: 422
    ("GET", "/desk/reports/csat"): AGENTS,
    # Webhooks (admins): {endpoint_id} an endpoint with one logged delivery {delivery_id}; delete gets its own
    ("GET", "/admin/webhooks"): ADMINS,
    ("GET", "/admin/webhooks/new"): ADMINS,
    ("POST", "/admin/webhooks/new"): ADMINS,  # empty form: 422
    ("GET", "/admin/webhooks/{endpoint_id:int}"): ADMINS,
    ("POST", "/admin/webhooks/{endpoint_id:int}"): ADMINS,  # empty form: 422
    ("POST", "/admin/webhooks/{endpoint_id:int}/secret"): ADMINS,
    ("POST", "/admin/webhooks/{endpoint_id:int}/test"): ADMINS,
    ("POST", "/admin/webhooks/{endpoint_id:int}/deliveries/{delivery_id:int}/redeliver"): ADMINS,
    ("POST", "/admin/webhooks/{endpoint_id:int}/delete"): ADMINS,
    # Forum to ticket (agents; moderators are not agents): the staff-only thread and its reply;
    # posting back needs a forum ticket ({ticket_id} came from the web form: 422)
    ("POST", "/community/t/{thread_id:int}/ticket"): AGENTS,
    ("POST", "/community/posts/{post_id:int}/ticket"): AGENTS,
    ("POST", "/desk/tickets/{ticket_id:int}/forum-reply"): AGENTS,
    # Inbound email: the endpoint takes the channel secret, never a user's token (401 for all);
    # {message_id} is `customer`'s emailed reply on {ticket_id}: its original is the author's and
    # agents' ({inbound_id} a quarantined message; delete gets its own)
    ("POST", "/api/v1/inbound/email"): "login login login login login login login",
    ("GET", "/desk/tickets/{ticket_id:int}/messages/{message_id:int}/mail"): AGENTS,
    ("GET", "/support/tickets/{ticket_id:int}/messages/{message_id:int}/mail"): "login ok hidden deny ok hidden ok",
    ("GET", "/admin/channels/email"): ADMINS,
    ("GET", "/admin/channels/email/{inbound_id:int}"): ADMINS,
    ("POST", "/admin/channels/email/{inbound_id:int}/retry"): ADMINS,
    ("POST", "/admin/channels/email/{inbound_id:int}/delete"): ADMINS,
    # Notifications: one's own list, settings and subscriptions; {notification_id} is `customer`'s
    ("GET", "/notifications"): SIGNED_IN,
    ("POST", "/notifications/{notification_id:int}/read"): TOKEN_OWNER,
    ("POST", "/notifications/{notification_id:int}/open"): TOKEN_OWNER,
    ("POST", "/notifications/read-all"): SIGNED_IN,
    ("GET", "/notifications/preferences"): SIGNED_IN,
    ("POST", "/notifications/preferences"): SIGNED_IN,  # no mode chosen: 422
    ("POST", "/notifications/subscriptions"): SIGNED_IN,  # nothing to follow: 422
    ("GET", "/notifications/unsubscribe"): EVERYONE,  # signed links, no sign-in; no token: 400
    ("POST", "/notifications/unsubscribe"): EVERYONE,
    # Live chat: {chat_id} is `customer`'s chat (signed in). The hosted page and its forms are
    # everyone's (agents answer from the desk instead of starting chats); a chat is its requester's
    # (or its anonymous visitor's, by cookie: tests/channels/chat) and agents'. The agent takes it
    # (listed first) before answering and ending it.
    ("GET", "/chat"): EVERYONE,
    ("GET", "/chat/suggest"): EVERYONE,
    ("POST", "/chat/start"): "ok ok ok ok deny ok deny",  # empty form: 422
    ("POST", "/chat/offline"): "ok ok ok ok deny ok deny",  # empty form: 422
    ("GET", "/desk/chats"): AGENTS,
    ("POST", "/desk/chats/availability"): AGENTS,  # empty form: 422
    ("POST", "/desk/chats/heartbeat"): AGENTS,
    ("GET", "/desk/chats/{chat_id:int}"): AGENTS,
    ("POST", "/desk/chats/{chat_id:int}/take"): AGENTS,
    ("POST", "/desk/chats/{chat_id:int}/messages"): AGENTS,  # empty: 422
    ("POST", "/desk/chats/{chat_id:int}/typing"): AGENTS,
    ("POST", "/desk/chats/{chat_id:int}/seen"): AGENTS,  # no message named: 422
    ("POST", "/desk/chats/{chat_id:int}/end"): AGENTS,
    ("GET", "/chat/s/{chat_id:int}"): "hidden ok hidden hidden ok hidden ok",  # agents: to the console
    ("POST", "/chat/s/{chat_id:int}/messages"): "hidden ok hidden hidden deny hidden deny",  # empty: 422
    ("POST", "/chat/s/{chat_id:int}/typing"): "hidden ok hidden hidden ok hidden ok",
    ("POST", "/chat/s/{chat_id:int}/end"): "hidden ok hidden hidden ok hidden ok",
    # Realtime: the one websocket; every channel is authorised (probed with `customer`'s own channel)
    ("WEBSOCKET", "/live"): "deny ok deny deny deny deny deny",
}

# Realtime channels of /live, each probed on its own: {ticket_id} is `customer`'s ticket.
CHANNELS: dict[str, str] = {
    "ticket:{ticket_id}": "deny ok deny ok ok deny ok",  # as TICKET_READERS; agents hear internal notes
    "desk:0": "deny deny deny deny ok deny ok",  # the queue: agents
    "chat:{chat_id}": "deny ok deny deny ok deny ok",  # the requester (or its visitor's cookie) and agents
    "chatq:0": "deny deny deny deny ok deny ok",  # the chat queue: agents
}

# Framework-served routes, classified by prefix; one real request stands for each prefix.
BULK: dict[str, tuple[str, str]] = {
    "/static/": ("/static/css/app.css", EVERYONE),
    "/schema": ("/schema/openapi.json", EVERYONE),
}

# Bodies for unsafe methods (form fields, or JSON under /api/). Missing means an empty form.
BODIES: dict[tuple[str, str], Callable[[World], dict[str, Any]]] = {
    ("POST", "/login"): lambda w: {"email": w.customer_email, "password": "not the password"},
    ("POST", "/verify-email"): lambda w: {"token": "not-a-token"},
    ("POST", "/forgot-password"): lambda w: {"email": w.bystander_email},
    ("POST", "/reset-password"): lambda w: {"token": "not-a-token", "password": "a long new password"},
    ("POST", "/locale"): lambda w: {"locale": "en", "next": "/"},
    ("POST", "/profile/tokens"): lambda w: {"name": "matrix"},
    ("POST", "/api/v1/auth/token"): lambda w: {"email": w.customer_email, "password": PASSWORD, "name": "matrix"},
    ("POST", "/organisations/{org_id:int}/members"): lambda w: {"email": w.bystander_email},
    ("POST", "/admin/users/{user_id:int}/roles"): lambda w: {"roles": ["customer"]},
    ("POST", "/help/articles/{article_id:int}/feedback"): lambda w: {"helpful": "yes", "lang": "en"},
    ("POST", "/help/manage/articles/{article_id:int}/status"): lambda w: {"status": "published", "lang": "en"},
    ("POST", "/help/manage/articles/{article_id:int}/revisions/{number:int}/restore"): lambda w: {
        "lang": "en",
        "version": "1",
    },
    ("POST", "/help/manage/preview"): lambda w: {"body": "**preview**"},
    ("POST", "/community/t/{thread_id:int}/replies"): lambda w: {"body": "A reply from the matrix"},
    ("POST", "/community/t/{thread_id:int}/read"): lambda w: {"number": "1"},
    ("POST", "/community/posts/{post_id:int}/edit"): lambda w: {"body": "Edited by the matrix", "version": "1"},
    ("POST", "/community/preview"): lambda w: {"body": "**preview**"},
    ("POST", "/community/posts/{post_id:int}/react"): lambda w: {"kind": "like"},
    ("POST", "/admin/community/categories/{forum_category_id:int}/move"): lambda w: {"direction": "down"},
    ("POST", "/api/v1/forum/threads"): lambda w: {
        "category": w.params["forum_slug"],
        "title": "From the matrix",
        "body": "Text.",
    },
    ("POST", "/api/v1/forum/threads/{thread_id:int}/posts"): lambda w: {"body": "An API reply"},
    ("PATCH", "/api/v1/forum/posts/{post_id:int}"): lambda w: {"body": "An API edit", "version": 1},
    ("POST", "/search/events"): lambda w: {"kind": "results", "token": "not-a-token"},
    ("POST", "/admin/search/settings"): lambda w: {"synonyms": "", "stop_words": ""},
    ("POST", "/support/deflection"): lambda w: {"kind": "left", "token": "not-a-token"},
    ("POST", "/api/v1/tickets"): lambda w: {"subject": "From the matrix", "body": "Text."},
    ("PATCH", "/api/v1/tickets/{ticket_id:int}"): lambda w: {"version": 1, "priority": "high"},
    ("POST", "/api/v1/tickets/{ticket_id:int}/messages"): lambda w: {"body": "A reply from the matrix"},
    # JSON bodies must be valid: Litestar checks them before the handler (and so the policy) runs.
    ("POST", "/api/v1/kb/articles"): lambda w: {
        "title": "Written through the API",
        "body": "Text.",
        "section": w.params["section_slug"],
    },
    ("PATCH", "/api/v1/kb/articles/{article_id:int}"): lambda w: {"version": 1, "locale": "en", "title": "Renamed"},
}

# Routes that destroy their object get one of their own: {param: key in World.params}.
PARAM_OVERRIDES: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/help/manage/articles/{article_id:int}/delete"): {"article_id": "doomed_article_id"},
    ("DELETE", "/api/v1/kb/articles/{article_id:int}"): {"article_id": "api_doomed_article_id"},
    ("POST", "/community/posts/{post_id:int}/delete"): {"post_id": "doomed_post_id"},
    ("POST", "/admin/community/categories/{forum_category_id:int}/delete"): {
        "forum_category_id": "doomed_forum_category_id"
    },
    ("POST", "/admin/desk/groups/{group_id:int}/delete"): {"group_id": "doomed_group_id"},
    ("POST", "/admin/desk/macros/{macro_id:int}/delete"): {"macro_id": "doomed_macro_id"},
    ("POST", "/admin/desk/sla/calendars/{calendar_id:int}/delete"): {"calendar_id": "doomed_calendar_id"},
    ("POST", "/admin/desk/sla/policies/{policy_id:int}/delete"): {"policy_id": "doomed_policy_id"},
    ("POST", "/admin/channels/email/{inbound_id:int}/delete"): {"inbound_id": "doomed_inbound_id"},
    ("POST", "/admin/webhooks/{endpoint_id:int}/delete"): {"endpoint_id": "doomed_endpoint_id"},
}

# Query strings for GETs: the search routes look for the staff-only articles.
QUERIES: dict[tuple[str, str], str] = {
    ("GET", "/search"): "?q=zanshin",
    ("GET", "/search/suggest"): "?q=zanshin",
    ("GET", "/api/v1/search"): "?q=zanshin",
    ("GET", "/community/new/similar"): "?title=zanshin",
    ("GET", "/community/mentions"): "?q=a",
    ("WEBSOCKET", "/live"): "?channels=user:{customer_id}",
}
# Every staff-only article's title holds it; who may not read them must not meet it anywhere.
SECRET = "Zanshin"

# Run after everything else: they end the role's session.
SESSION_ENDING = frozenset({("POST", "/logout")})

PARAM_RE = re.compile(r"\{(\w+)(?::\w+)?\}")
SAFE_METHODS = frozenset({"GET", "HEAD"})


def _columns(row: str) -> dict[str, str]:
    outcomes = row.split()
    return dict(zip(ROLES, outcomes, strict=True))


def _bulk_prefix(path: str) -> str | None:
    for prefix in BULK:
        if path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/"):
            return prefix
    return None


def _is_automatic_options(handler: HTTPRouteHandler) -> bool:
    """Litestar adds an OPTIONS handler to every path; it answers 204 with `Allow` and runs no code of ours."""
    return handler.fn.__qualname__.startswith("HTTPRoute.create_options_handler.")


def registered_routes(app: Litestar) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                if not _is_automatic_options(handler):
                    found.update((method, route.path) for method in handler.http_methods)
        elif isinstance(route, WebSocketRoute):
            found.add(("WEBSOCKET", route.path))
        else:
            found.add((type(route).__name__, route.path))
    return found


def test_table_rows_are_well_formed() -> None:
    rows = [*MATRIX.values(), *CHANNELS.values(), *(row for _probe, row in BULK.values())]
    for row in rows:
        outcomes = _columns(row).values()
        assert set(outcomes) <= OUTCOMES, row
    for key in [*BODIES, *PARAM_OVERRIDES, *QUERIES]:
        assert key in MATRIX, f"body or parameters for unlisted route {key}"


def test_every_route_is_classified(app: Litestar) -> None:
    registered = registered_routes(app)
    bulk = {key for key in registered if _bulk_prefix(key[1])}
    unlisted = sorted(registered - bulk - MATRIX.keys())
    stale = sorted(MATRIX.keys() - registered)
    unused_prefixes = sorted(set(BULK) - {_bulk_prefix(path) for _method, path in bulk})
    problems = [f"  {method} {path}: not in MATRIX; add its expected outcome per role" for method, path in unlisted]
    problems += [f"  {method} {path}: in MATRIX but the app has no such route" for method, path in stale]
    assert not problems, "the authorisation matrix is out of date:\n" + "\n".join(problems)
    assert not unused_prefixes, f"BULK prefixes that match no route: {unused_prefixes}"


@dataclass
class World:
    params: dict[str, str]
    customer_email: str
    bystander_email: str
    role_user: Actor | None
    bearer: str | None  # the role's API token


async def _build_world(role: str, mailbox: Mailbox) -> World:
    org_id = await make_org("acme-corp", "Acme Corp")
    await make_org("globex", "Globex")
    customer = await make_user(org="acme-corp", name="Customer")
    bystander = await make_user(org="acme-corp", name="Bystander")
    await services.create_api_token(customer, "revocable")
    token = await ApiToken.select(ApiToken.id).where(ApiToken.user == customer.user_id).first()
    role_user: Actor | None = None
    if role == "customer":
        role_user = customer
    elif role == "another_customer":
        role_user = await make_user(org="globex")
    elif role == "org_admin":
        role_user = await make_user(org="acme-corp", org_admin=True)
    elif role != "anonymous":
        role_user = await make_user(role)

    await jobs.enqueue(mail.KIND, {"to": bystander.email, "subject": "Hello", "text": "Captured."})
    await jobs.enqueue("matrix.no-such-kind", {}, max_attempts=1)
    captured = await mailbox.messages(to=bystander.email)  # runs due jobs: one mail sent, one job dead
    dead = await jobs.Job.select(jobs.Job.id).where(jobs.Job.status == jobs.DEAD).first()
    assert captured and dead
    return World(
        params={
            "org_id": str(org_id),
            "customer_id": str(customer.user_id),
            "user_id": str(bystander.user_id),
            "token_id": str(token["id"]),
            "job_id": str(dead["id"]),
            "notification_id": str(await _notification_for(customer)),
            "name": captured[0].name,
            **await _staff_only_help_center(),
            **await _staff_only_forum(),
            **await _desk_world(customer),
            **await _chat_world(customer),
            **await _sla_world(),
            **await _inbound_mail_world(customer),
            **await _webhook_world(),
        },
        customer_email=customer.email,
        bystander_email=bystander.email,
        role_user=role_user,
        bearer=await services.create_api_token(role_user, "matrix bearer") if role_user else None,
    )


async def _notification_for(owner: Actor) -> int:
    from server.notifications.tables import Notification

    row = Notification(
        recipient=owner.user_id,
        kind="post.created",
        reason="mention",
        target_kind="thread",
        target_id=1,
        url="/community",
        title="A thread",
        dedupe_key="matrix",
        created_at=jobs.now(),
    )
    return (await Notification.insert(row).returning(Notification.id))[0]["id"]


async def _staff_only_help_center() -> dict[str, str]:
    editor = Actor(roles=frozenset({"agent"}))
    category_id = await make_category(editor, "staff-notes", visibility="internal")
    section_id = await make_section(editor, category_id, "escalations")
    article_id = await make_article(editor, section_id, f"{SECRET} escalation runbook", slug="escalation-runbook")
    return {
        "category_id": str(category_id),
        "category_slug": "staff-notes",
        "section_id": str(section_id),
        "section_slug": "escalations",
        "article_id": str(article_id),
        "ref": f"{article_id}-escalation-runbook",
        "number": "1",
        "doomed_article_id": str(await make_article(editor, section_id, f"{SECRET} old runbook", slug="old")),
        "api_doomed_article_id": str(await make_article(editor, section_id, f"{SECRET} older runbook", slug="older")),
    }


async def _desk_world(customer: Actor) -> dict[str, str]:
    """A ticket of `customer` with a public attachment and an internal note (holding SECRET)
    with one of its own; a second ticket; a group, a field and macros for the admin pages."""
    from server.desk import saved_views
    from server.desk import services as desk
    from server.desk.attachments import Upload
    from server.desk.tables import TicketAttachment

    agent = await make_user("agent", name="Matrix Agent")
    ticket_id = await desk.open_ticket(customer, "Printer on fire", "Smoke everywhere.")
    other_id = await desk.open_ticket(customer, "Second issue", "Something else.")
    await desk.add_reply(customer, ticket_id, "Photo attached.", uploads=[Upload("photo.png", b"\x89PNG fake")])
    await desk.add_note(agent, ticket_id, f"{SECRET}: VIP, handle with care", uploads=[Upload("notes.txt", b"x")])
    rows = await TicketAttachment.select(TicketAttachment.id, TicketAttachment.filename).order_by(TicketAttachment.id)
    by_name = {r["filename"]: r["id"] for r in rows}
    await desk.link_related(agent, ticket_id, other_id)
    admin = Actor(roles=frozenset({"admin"}))
    return {
        "ticket_id": str(ticket_id),
        "other_id": str(other_id),
        "attachment_id": str(by_name["photo.png"]),
        "group_id": str(await desk.save_group(admin, None, "Matrix group", "", None, [])),
        "doomed_group_id": str(await desk.save_group(admin, None, "Doomed group", "", None, [])),
        "field_id": str(await desk.save_field(admin, None, {"key": "matrix", "label_en": "Matrix"})),
        "macro_id": str(await desk.save_macro(admin, None, {"name": "Matrix", "body_md": "Hi"})),
        "doomed_macro_id": str(await desk.save_macro(admin, None, {"name": "Doomed", "body_md": "Bye"})),
        "view_id": str(await saved_views.save_view(agent, None, "Matrix view", None, saved_views.ViewSpec())),
    }


async def _chat_world(customer: Actor) -> dict[str, str]:
    """A chat `customer` started (waiting for an agent)."""
    from server.channels.chat import services as chat

    return {"chat_id": str(await chat.start_chat(customer, "A chat from the matrix"))}


async def _sla_world() -> dict[str, str]:
    """Business-hours calendars and SLA policies for the SLA admin pages."""
    from server.desk import sla

    admin = Actor(roles=frozenset({"admin"}))
    hours = {"time_zone": "Asia/Tokyo", "mon": "09:00-18:00"}
    calendar_id = await sla.save_calendar(admin, None, {"name": "Matrix hours", **hours})
    doomed_calendar_id = await sla.save_calendar(admin, None, {"name": "Doomed hours", **hours})
    targets = {"first_reply_minutes": "60", "calendar": str(calendar_id)}
    return {
        "calendar_id": str(calendar_id),
        "doomed_calendar_id": str(doomed_calendar_id),
        "policy_id": str(await sla.save_policy(admin, None, {"name": "Matrix", "priority": "low", **targets})),
        "doomed_policy_id": str(await sla.save_policy(admin, None, {"name": "Doomed", "priority": "high", **targets})),
    }


async def _webhook_world() -> dict[str, str]:
    """An endpoint (unreachable: nothing is delivered here) with one logged delivery, and another to delete."""
    from server.webhooks import services as webhooks
    from server.webhooks.tables import WebhookDelivery, WebhookEvent

    admin = Actor(roles=frozenset({"admin"}))
    address, events = "http://127.0.0.1:9/matrix", ["ticket.created"]
    endpoint_id, _secret = await webhooks.save_endpoint(admin, None, address, events, True)
    doomed_id, _secret = await webhooks.save_endpoint(admin, None, address, events, True)
    uid = await webhooks.send_test(admin, endpoint_id)
    event = await WebhookEvent.select(WebhookEvent.id).where(WebhookEvent.uid == uid).first()
    row = WebhookDelivery(endpoint=endpoint_id, event=event["id"], outcome="failed", created_at=jobs.now())
    delivery = (await WebhookDelivery.insert(row).returning(WebhookDelivery.id))[0]["id"]
    return {"endpoint_id": str(endpoint_id), "doomed_endpoint_id": str(doomed_id), "delivery_id": str(delivery)}


async def _inbound_mail_world(customer: Actor) -> dict[str, str]:
    """`customer` answers their ticket by mail (threaded by our Message-ID), and two messages
    without a From wait in quarantine."""
    from server.channels.email import inbound, processing, tokens
    from server.desk.tables import Ticket

    ticket = await Ticket.select(Ticket.id).where(Ticket.subject == "Printer on fire").first()
    reply = (
        f"From: {customer.email}\r\nTo: {tokens.support_address()}\r\nSubject: Re: Printer\r\n"
        f"In-Reply-To: {tokens.message_id(ticket['id'], 'matrix')}\r\n\r\nStill smoking.\r\n"
    ).encode()
    replied = await inbound.store_raw(reply, source="http")
    quarantined = await inbound.store_raw(b"Subject: no sender\r\n\r\nText.\r\n", source="http")
    doomed = await inbound.store_raw(b"Subject: no sender either\r\n\r\nText.\r\n", source="http")
    await processing.process_many([replied, quarantined, doomed])
    row = await inbound.InboundMail.select().where(inbound.InboundMail.id == replied).first()
    assert row["ticket"] == ticket["id"] and row["ticket_message"], row["reason"]
    return {
        "message_id": str(row["ticket_message"]),
        "inbound_id": str(quarantined),
        "doomed_inbound_id": str(doomed),
    }


async def _staff_only_forum() -> dict[str, str]:
    from server.forum import services as forum

    admin = Actor(roles=frozenset({"admin"}))
    category = forum.CategoryInput(
        slug="staff-lounge", name_en="Staff lounge", name_ja="スタッフ", audience="staff", can_start="staff",
        can_reply="staff", qa=True,
    )  # fmt: skip
    category_id = await forum.save_category(admin, None, category)
    author = await make_user("agent", name="Forum Author")
    title = f"{SECRET} forum escalation"
    thread_id = await forum.create_thread(
        author, forum.NewThread(category_id, title, "Who is on call?", ["escalation"])
    )
    reply = await forum.create_reply(author, thread_id, "Me, this week.")
    doomed = await forum.create_reply(author, thread_id, "Never mind.")
    empty = forum.CategoryInput(slug="doomed-category", name_en="Doomed", name_ja="削除予定")
    doomed_category_id = await forum.save_category(admin, None, empty)
    return {
        "forum_slug": "staff-lounge",
        "tag": "escalation",
        "thread_id": str(thread_id),
        "thread_ref": f"{thread_id}-zanshin-forum-escalation",
        "target": "last",
        "post_id": str(reply["id"]),
        "doomed_post_id": str(doomed["id"]),
        "forum_category_id": str(category_id),
        "doomed_forum_category_id": str(doomed_category_id),
        "kind": "like",
    }


def _fill(key: tuple[str, str], params: dict[str, str]) -> str:
    chosen = {**params, **{name: params[ref] for name, ref in PARAM_OVERRIDES.get(key, {}).items()}}
    return PARAM_RE.sub(lambda m: chosen[m.group(1)], key[1]) + QUERIES.get(key, "")


def _outcome(method: str, path: str, response: httpx.Response) -> str:
    status = response.status_code
    location = response.headers.get("location", "")
    is_page_get = method in SAFE_METHODS and not path.startswith("/api/")
    if status == 303 and location.startswith("/login?next="):  # a plain /login is where some forms lead
        return "login" if is_page_get else "redirect to sign in (expected 401)"
    if status == 401:
        return "login" if not is_page_get else "401 (expected a redirect to /login)"
    if status == 403:
        return "deny"
    if status == 404:
        return "hidden"
    if 200 <= status < 400 or status in (400, 409, 413, 422):
        return "ok"
    return f"status {status}"


async def _send(
    client: AsyncTestClient, method: str, template: str, world: World, csrf: str
) -> tuple[str, httpx.Response]:
    path = _fill((method, template), world.params)
    body = BODIES.get((method, template), lambda _w: {})(world)
    bearer = world.bearer if path.startswith("/api/") else None
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    if method in SAFE_METHODS:
        response = await client.request(method, path, headers=headers, follow_redirects=False)
    elif path.startswith("/api/"):
        json_body = body or None
        response = await client.request(method, path, json=json_body, headers=headers, follow_redirects=False)
    else:
        form = {**body, "_csrf_token": csrf}
        response = await client.request(method, path, data=form, headers=headers, follow_redirects=False)
    return path, response


async def _probe_websocket(app: Litestar, path: str, cookies: dict[str, str]) -> str:
    """One websocket handshake through the app (its channels plugin running): `ok` when it is
    accepted and serves, `deny` when refused (closed before accept, or with 1008 after)."""
    from server.realtime.bus import LivePlugin

    route, _sep, query = path.partition("?")
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": route,
        "raw_path": route.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver.local"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver.local", 80),
        "subprotocols": [],
        "state": {},
        "extensions": {},
    }
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    incoming.put_nowait({"type": "websocket.connect"})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] in ("websocket.send", "websocket.close"):
            incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})

    async with app.plugins.get(LivePlugin):
        await asyncio.wait_for(app(scope, incoming.get, send), timeout=10)  # type: ignore[arg-type]
    kinds = [message["type"] for message in sent]
    if kinds[:2] == ["websocket.accept", "websocket.send"]:
        return "ok"
    if kinds[:1] == ["websocket.close"] or sent[1:2] and sent[1].get("code") == 1008:
        return "deny"
    return f"websocket {sent}"


@pytest.mark.parametrize("role", ROLES)
async def test_route_matrix(role: str, app: Litestar, mailbox: Mailbox) -> None:
    # Everything that touches the database directly happens before the client starts: on
    # PostgreSQL the app's lifespan opens a pool on the client's own event loop.
    world = await _build_world(role, mailbox)
    failures: list[str] = []
    async with make_client(app) as client:
        if world.role_user is not None:
            await login(client, world.role_user.email)
            assert client.cookies.get(SESSION_COOKIE), f"{role} could not sign in"
        csrf = await csrf_token(client, "/")

        reads_staff_content = _columns(STAFF_CONTENT)[role] == "ok"
        for channel, row in CHANNELS.items():
            path = "/live?channels=" + PARAM_RE.sub(lambda m: world.params[m.group(1)], channel)
            expected, got = _columns(row)[role], await _probe_websocket(app, path, dict(client.cookies))
            if got != expected:
                failures.append(f"WEBSOCKET {path} as {role}: expected {expected}, got {got}")
        cases = sorted(MATRIX, key=lambda key: (key in SESSION_ENDING, key[0] not in SAFE_METHODS))
        for method, template in cases:
            if method == "WEBSOCKET":
                expected = _columns(MATRIX[method, template])[role]
                path = PARAM_RE.sub(lambda m: world.params[m.group(1)], _fill((method, template), world.params))
                got = await _probe_websocket(app, path, dict(client.cookies))
                if got != expected:
                    failures.append(f"{method} {template} as {role}: expected {expected}, got {got}")
                continue
            if method not in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}:
                failures.append(f"{method} {template}: no probe for this kind of route yet; write one here")
                continue
            expected = _columns(MATRIX[method, template])[role]
            path, response = await _send(client, method, template, world, csrf)
            got = _outcome(method, path, response)
            if got != expected:
                failures.append(f"{method} {template} ({path}) as {role}: expected {expected}, got {got}")
            if not reads_staff_content and SECRET in response.text:
                failures.append(f"{method} {template} ({path}) as {role}: shows staff-only help-center content")
        for probe, row in BULK.values():
            response = await client.get(probe, follow_redirects=False)
            expected, got = _columns(row)[role], _outcome("GET", probe, response)
            if got != expected:
                failures.append(f"GET {probe} as {role}: expected {expected}, got {got}")
    assert not failures, "\n".join(failures)

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
    ("POST", "/search/events"): lambda w: {"kind": "results", "token": "not-a-token"},
    ("POST", "/admin/search/settings"): lambda w: {"synonyms": "", "stop_words": ""},
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
}

# Query strings for GETs: the search routes look for the staff-only articles.
QUERIES: dict[tuple[str, str], str] = {
    ("GET", "/search"): "?q=zanshin",
    ("GET", "/search/suggest"): "?q=zanshin",
    ("GET", "/api/v1/search"): "?q=zanshin",
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
    rows = [*MATRIX.values(), *(row for _probe, row in BULK.values())]
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
            "user_id": str(bystander.user_id),
            "token_id": str(token["id"]),
            "job_id": str(dead["id"]),
            "name": captured[0].name,
            **await _staff_only_help_center(),
        },
        customer_email=customer.email,
        bystander_email=bystander.email,
        role_user=role_user,
        bearer=await services.create_api_token(role_user, "matrix bearer") if role_user else None,
    )


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
        cases = sorted(MATRIX, key=lambda key: (key in SESSION_ENDING, key[0] not in SAFE_METHODS))
        for method, template in cases:
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

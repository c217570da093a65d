"""Security headers on every page type the app registers, for a visitor and for an admin, and
the session cookie's flags (Secure only behind TLS, so not here)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar

from tests import factories
from tests.factories import login

# Pages whose GET needs query arguments to be more than a 400, or that stream files.
SKIP = {"/healthz", "/live"}
# The hosted chat is framed by the widget on CHAT_ALLOWED_ORIGINS (tests/channels/chat/test_routes.py).
FRAMABLE = {"/chat"}


def _page_paths(app: Litestar) -> list[str]:
    """Every GET route without path parameters outside the API, static files and the schema."""
    paths = set()
    for route in app.routes:
        if "GET" not in (getattr(route, "methods", None) or set()):
            continue
        path = route.path
        if "{" in path or path.startswith(("/api/", "/static", "/schema")) or path in SKIP:
            continue
        paths.add(path)
    return sorted(paths)


def _check(path: str, response: httpx.Response) -> list[str]:
    problems = []
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    if "script-src 'self'" not in csp or "unsafe-inline" in csp.split("style-src")[0]:
        problems.append(f"script-src: {csp!r}")
    if path in FRAMABLE:
        if "frame-ancestors 'self' " not in csp or "x-frame-options" in headers:
            problems.append("frame-ancestors of a framable page")
    elif "frame-ancestors 'none'" not in csp:
        problems.append("frame-ancestors")
    if headers.get("x-content-type-options") != "nosniff":
        problems.append("nosniff")
    if headers.get("referrer-policy") != "same-origin":
        problems.append("referrer-policy")
    if "strict-transport-security" in headers:
        problems.append("HSTS over plain http")
    return [f"{path} ({response.status_code}): {p}" for p in problems]


@pytest.mark.parametrize("role", [None, "admin"])
async def test_every_page_type_carries_the_security_headers(
    client: httpx.AsyncClient, app: Any, role: str | None
) -> None:
    if role:
        user = await factories.make_user(role)
        await login(client, user.email)
    paths = _page_paths(app)
    assert len(paths) >= 30, paths  # the route table was read
    problems = []
    for path in paths:
        problems += _check(path, await client.get(path))
    assert not problems, "\n".join(problems)


async def test_session_cookie_is_http_only_and_same_site(client: httpx.AsyncClient) -> None:
    user = await factories.make_user()
    response = await login(client, user.email)
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"] or [
        v for r in response.history for k, v in r.headers.multi_items() if k == "set-cookie"
    ]
    session = next((c for c in cookies if c.lower().startswith("kz_session=")), None)
    assert session is not None, cookies
    flags = session.lower()
    assert "httponly" in flags and "samesite=lax" in flags
    assert "secure" not in flags  # plain http in tests; BASE_URL https:// turns Secure on

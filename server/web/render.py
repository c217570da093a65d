"""Render a page or an htmx partial with what every template needs."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Redirect, Template

from server.accounts.auth import current_actor
from server.web.flash import pop_flashes


def page(
    request: Request[Any, Any, Any],
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Template:
    """`name` is a page (extends base.html) or a partial; both get the same context."""
    is_htmx = bool(getattr(request, "htmx", False))
    full = {
        "actor": current_actor(request),
        "flashes": [] if is_htmx else pop_flashes(request),
        "errors": {},
        "values": {},
        **(context or {}),
    }
    return Template(template_name=name, context=full, status_code=status_code)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site relative paths may be redirect targets."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def redirect(path: str) -> Redirect:
    return Redirect(path=path, status_code=303)

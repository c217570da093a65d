"""Every failure becomes a clear page or JSON body with the right status, never a trace."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from server import i18n
from server.accounts.auth import API_PREFIX, LOCALE_COOKIE
from server.errors import Invalid, NotFound
from server.i18n import _
from server.web.render import page

log = structlog.get_logger("kizuna.errors")


def _titles() -> dict[int, str]:
    return {
        400: _("Bad request"),
        401: _("Please sign in"),
        403: _("Not allowed"),
        404: _("Page not found"),
        405: _("Method not allowed"),
        409: _("Conflict"),
        413: _("Too large"),
        422: _("Check the form"),
        429: _("Slow down"),
        500: _("Something went wrong"),
        503: _("Temporarily unavailable"),
    }


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    if request.url.path.startswith(API_PREFIX) or request.url.path == "/healthz":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _respond(
    request: Request[Any, Any, Any], status: int, detail: str, extra: Any = None, headers: dict[str, str] | None = None
) -> Response[Any]:
    if _wants_json(request):
        body: dict[str, Any] = {"status_code": status, "detail": detail}
        if extra:
            body["errors"] = extra
        return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)
    title = _titles().get(status, _("Error"))
    response = page(
        request, "errors/error.html", {"status": status, "title": title, "detail": detail}, status_code=status
    )
    response.headers.update(headers or {})  # e.g. Retry-After on 429 pages
    return response  # type: ignore[return-value]


def http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status == 401 and not _wants_json(request) and request.method == "GET":
        return Redirect(path=f"/login?next={quote(request.url.path)}", status_code=303)  # type: ignore[return-value]
    detail = exc.detail
    if status == 403 and detail == "CSRF token verification failed":
        detail = _("Your form expired or came from another site. Reload the page and try again.")
    elif status == 413:
        detail = _("The request is too large.")
    elif status in (404, 405) and detail in ("Not Found", "Method Not Allowed", ""):
        detail = _titles()[status]
    elif status == 400 and isinstance(exc, ValidationException) and not _wants_json(request):
        # Litestar's own text ("Validation failed for GET ...") is English and meant for developers.
        detail = _("Part of the address or form could not be read. Check it and try again.")
    extra = exc.extra if isinstance(exc, ValidationException) else None
    return _respond(request, status, str(detail), extra, headers=exc.headers)


def not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[Any]:
    return _respond(request, 404, _("Page not found"))


def invalid(request: Request[Any, Any, Any], exc: Invalid) -> Response[Any]:
    return _respond(request, 422, _("Check the highlighted fields."), extra=exc.errors)


def _out_of_range(exc: Exception) -> bool:
    """A number too large for the database column (an id like 99999999999999999999)."""
    if isinstance(exc, OverflowError):
        return True
    try:
        from asyncpg.exceptions import DataError
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    return isinstance(exc, DataError) and "out of" in str(exc) and "range" in str(exc)


def _unreachable(exc: Exception) -> bool:
    """A backing service (database, Meilisearch, SMTP) that cannot be reached right now."""
    if isinstance(exc, OSError | ConnectionError):
        return True
    from asyncpg.exceptions import (
        InterfaceError,
        ObjectNotInPrerequisiteStateError,
        OperatorInterventionError,
        PostgresConnectionError,
    )

    if isinstance(exc, PostgresConnectionError | OperatorInterventionError):
        return True  # the server went away, is shutting down or refuses connections
    if isinstance(exc, ObjectNotInPrerequisiteStateError) and "accepting connections" in str(exc):
        return True  # the database is closed to connections (maintenance)
    if isinstance(exc, InterfaceError) and "closed" in str(exc):
        return True  # a pooled connection whose server went away
    return isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc)


def server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if _out_of_range(exc):
        return _respond(request, 400, _("A number in the request is out of range."))
    if _unreachable(exc):
        log.error("backing service unreachable", error=repr(exc))
        return _respond(request, 503, _("A service Kizuna depends on is unreachable. Try again in a moment."))
    log.exception("unhandled error", path=request.url.path)
    return _respond(
        request, HTTP_500_INTERNAL_SERVER_ERROR, _("We could not complete this request. It has been logged.")
    )


# Errors raised before routing (an unknown path, a wrong method) never pass ActorMiddleware, so
# nothing chose the visitor's language: choose it here from the cookie or Accept-Language.

Handler = Callable[[Request[Any, Any, Any], Any], Response[Any]]


class _TemplateInLocale(Template):
    def __init__(self, locale: str, template: Template) -> None:
        super().__init__(
            template_name=template.template_name,
            context=template.context,
            status_code=template.status_code,
            headers=template.headers,
            cookies=template.cookies,
        )
        self.locale = locale

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        token = i18n.set_locale(self.locale)
        try:
            return super().to_asgi_response(*args, **kwargs)
        finally:
            i18n._current_locale.reset(token)


def _in_visitor_locale(handler: Handler) -> Handler:
    @wraps(handler)
    def wrapper(request: Request[Any, Any, Any], exc: Any) -> Response[Any]:
        if "actor" in request.scope.get("state", {}):
            return handler(request, exc)
        locale = request.cookies.get(LOCALE_COOKIE) or ""
        if locale not in i18n.LOCALES:
            locale = i18n.negotiate(request.headers.get("accept-language"))
        token = i18n.set_locale(locale)
        try:
            response = handler(request, exc)
        finally:
            i18n._current_locale.reset(token)
        return _TemplateInLocale(locale, response) if isinstance(response, Template) else response

    return wrapper


EXCEPTION_HANDLERS = {
    HTTPException: _in_visitor_locale(http_exception),
    NotFound: _in_visitor_locale(not_found),
    Invalid: _in_visitor_locale(invalid),
    Exception: _in_visitor_locale(server_error),
}

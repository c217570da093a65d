"""Every failure becomes a clear page or JSON body with the right status, never a trace."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from server.accounts.auth import API_PREFIX
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
    extra = exc.extra if isinstance(exc, ValidationException) else None
    return _respond(request, status, str(detail), extra, headers=exc.headers)


def not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[Any]:
    return _respond(request, 404, _("Page not found"))


def invalid(request: Request[Any, Any, Any], exc: Invalid) -> Response[Any]:
    return _respond(request, 422, _("Check the highlighted fields."), extra=exc.errors)


def server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, OSError | ConnectionError):
        log.error("backing service unreachable", error=repr(exc))
        return _respond(request, 503, _("A service Kizuna depends on is unreachable. Try again in a moment."))
    log.exception("unhandled error", path=request.url.path)
    return _respond(
        request, HTTP_500_INTERNAL_SERVER_ERROR, _("We could not complete this request. It has been logged.")
    )


EXCEPTION_HANDLERS = {
    HTTPException: http_exception,
    NotFound: not_found,
    Invalid: invalid,
    Exception: server_error,
}

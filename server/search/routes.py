"""The search page, the search-as-you-type partial, analytics beacons, the API, admin settings."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Router, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from server import policy
from server.accounts.auth import CurrentActor
from server.errors import Invalid
from server.i18n import LOCALES, _
from server.policy import ensure, ensure_signed_in
from server.search import registry, reports, services
from server.search.engine import search_settings
from server.search.query import MAX_LIMIT, SearchResult, search
from server.search.schemas import SearchHitOut, SearchOut
from server.search.tables import SearchSetting
from server.web.flash import flash
from server.web.forms import form_data
from server.web.render import page, redirect

PAGE_SIZE = 10
SUGGEST_SIZE = 6


def _check_filters(types: list[str], locale: str | None) -> None:
    errors = {}
    if unknown := [t for t in types if t not in registry.names()]:
        errors["type"] = _("Unknown content type: %(types)s", types=", ".join(unknown))
    if locale and locale not in LOCALES:
        errors["locale"] = _("Unknown language: %(locale)s", locale=locale)
    if errors:
        raise Invalid(errors)


def _url_maker(params: dict[str, str]) -> Any:
    """`url(name=value, ...)`: this search's address with some parameters changed; a facet
    that is already chosen is toggled off."""

    def url(toggle: tuple[str, str] | None = None, **changes: Any) -> str:
        merged = {**params, **{k: str(v) for k, v in changes.items()}}
        if toggle:
            name, value = toggle
            merged[name] = "" if params.get(name) == value else value
            merged.pop("page_no", None)
        return "/search?" + urlencode({k: v for k, v in merged.items() if v})

    return url


def _token(result: SearchResult, actor: Any, locale: str | None) -> str:
    return services.results_token(result.query, locale or "", result.total, result.degraded, actor.is_authenticated)


@get("/search")
async def search_page(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    q: FromQuery[str] = "",
    type: FromQuery[str] = "",
    category: FromQuery[str] = "",
    locale: FromQuery[str] = "",
    page_no: FromQuery[int] = 1,
) -> Template:
    _check_filters([type] if type else [], locale or None)
    facets = {k: v for k, v in (("type", type), ("category", category)) if v}
    page_no = max(1, min(page_no, 100))
    result = await search(
        actor,
        q,
        locale=locale or None,
        facets=facets,
        limit=PAGE_SIZE,
        offset=(page_no - 1) * PAGE_SIZE,
        with_facets=True,
    )
    context = {
        "result": result,
        "q": result.query,
        "type": type,
        "category": category,
        "locale": locale,
        "page_no": page_no,
        "page_size": PAGE_SIZE,
        "log_token": _token(result, actor, locale),
        "type_names": registry.searchable_names(actor),
        "url": _url_maker({"q": result.query, "type": type, "category": category, "locale": locale}),
    }
    partial = getattr(request, "htmx", False) and request.headers.get("hx-target") == "search-results"
    return page(request, "search/_results.html" if partial else "search/page.html", context)


@get("/search/suggest")
async def suggest(request: Request[Any, Any, Any], actor: CurrentActor, q: FromQuery[str] = "") -> Template:
    result = await search(actor, q, limit=SUGGEST_SIZE)
    return page(
        request, "search/_suggest.html", {"result": result, "q": result.query, "log_token": _token(result, actor, None)}
    )


@post("/search/events", status_code=204)
async def search_event(request: Request[Any, Any, Any]) -> None:
    """Analytics beacon from the browser: a results page was seen, or a hit was clicked."""
    values = await form_data(request)
    token = values.get("token", "")
    if values.get("kind") == "click":
        try:
            position = int(values.get("position", "0"))
        except ValueError as exc:
            raise Invalid({"position": "not a number"}) from exc
        await services.record_click(token, values.get("type", ""), values.get("id", ""), position)
    else:
        await services.record_results(token)


@get("/api/v1/search", tags=["search"])
async def api_search(
    actor: CurrentActor,
    q: FromQuery[str] = "",
    types: FromQuery[str] = "",
    locale: FromQuery[str] = "",
    limit: FromQuery[int] = 10,
    offset: FromQuery[int] = 0,
) -> SearchOut:
    """Search every content type the caller may read (anonymous: public content only)."""
    wanted = [t for t in types.split(",") if t] if types else []
    _check_filters(wanted, locale or None)  # unknown type or locale: 422
    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= 1000:
        raise Invalid({"limit": f"limit must be 1–{MAX_LIMIT} and offset 0–1000"})
    result = await search(actor, q, types=wanted or None, locale=locale or None, limit=limit, offset=offset)
    return SearchOut(
        hits=[
            SearchHitOut(type=h.type, id=h.pk, title=h.plain_title, url=h.url, snippet=str(h.snippet), locale=h.locale)
            for h in result.hits
        ],
        total=result.total,
        degraded=result.degraded,
    )


# Admin ------------------------------------------------------------------------------------


def _parse_day(value: str, default: date) -> date:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError as exc:
        raise Invalid({"date": _("Use dates like 2026-12-31.")}) from exc


async def _admin_context(start_text: str, end_text: str) -> dict[str, Any]:
    from datetime import UTC, datetime

    today = datetime.now(UTC).date()
    start_day = _parse_day(start_text, today - timedelta(days=30))
    end_day = _parse_day(end_text, today)
    start, end = services.report_range(
        datetime.combine(start_day, datetime.min.time(), UTC), datetime.combine(end_day, datetime.min.time(), UTC)
    )
    synonyms_text = (
        await SearchSetting.select(SearchSetting.value)
        .where(SearchSetting.key == "synonyms_text")
        .output(load_json=True)
        .first()
    )
    _synonyms, stop_words = await search_settings()
    return {
        "start": start_day.isoformat(),
        "end": end_day.isoformat(),
        "top": await reports.top_queries(start, end),
        "zero": await reports.zero_result_queries(start, end),
        "unclicked": await reports.queries_without_click(start, end),
        "values": {
            "synonyms": synonyms_text["value"].get("text", "") if synonyms_text else "",
            "stop_words": ", ".join(stop_words),
        },
    }


@get("/admin/search")
async def admin_search(
    request: Request[Any, Any, Any], actor: CurrentActor, start: FromQuery[str] = "", end: FromQuery[str] = ""
) -> Template:
    ensure_signed_in(actor)
    ensure(policy.can_administer_search(actor))
    try:
        context = await _admin_context(start, end)
    except Invalid as exc:
        context = await _admin_context("", "")
        context["errors"] = exc.errors
        return page(request, "search/admin.html", context, status_code=422)
    return page(request, "search/admin.html", context)


@post("/admin/search/settings")
async def admin_search_settings(request: Request[Any, Any, Any], actor: CurrentActor) -> Template | Redirect:
    ensure_signed_in(actor)
    ensure(policy.can_administer_search(actor))
    values = await form_data(request)
    try:
        await services.save_search_settings(actor, values.get("synonyms", ""), values.get("stop_words", ""))
    except Invalid as exc:
        context = await _admin_context("", "")
        context.update(errors=exc.errors, values=values)
        return page(request, "search/admin.html", context, status_code=422)
    flash(request, _("Search settings saved. Every index picks them up within seconds."), "success")
    return redirect("/admin/search")


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        search_page,
        suggest,
        search_event,
        admin_search,
        admin_search_settings,
    ],
)
api_router = Router(path="/", route_handlers=[api_search])

"""JSON API for help-center articles (Bearer tokens). Everyone reads what they may read; writing
needs `policy.can_edit_kb`. A PATCH names the version it started from and gets 409 when the
stored text is newer."""

from __future__ import annotations

from typing import Any

from litestar import Response, Router, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import UNSET

from server import policy
from server.accounts.auth import CurrentActor
from server.errors import Invalid, NotFound
from server.i18n import LOCALES, _
from server.kb import queries, services
from server.kb.schemas import ArticleCreate, ArticleList, ArticleOut, ArticleSummary, ArticleUpdate, ConflictOut
from server.kb.search import article_url
from server.kb.tables import KbArticle, KbSection
from server.markdown import MAX_SOURCE_BYTES, MarkdownTooLarge
from server.policy import Actor, ensure, ensure_signed_in

MAX_LIMIT = 100


def _writer(actor: Actor) -> None:
    ensure_signed_in(actor)
    ensure(policy.can_edit_kb(actor))


def _check_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise Invalid({"locale": _("Choose a language from the list.")})
    return locale


async def _section_id(slug: str) -> int:
    row = await KbSection.select(KbSection.id).where(KbSection.slug == slug).first()
    if row is None:
        raise Invalid({"section": _("Choose a section from the list.")})
    return row["id"]


def _too_large() -> Response[Any]:
    detail = _("The text is longer than %(n)s KiB. Split it into several articles.", n=MAX_SOURCE_BYTES // 1024)
    return Response({"status_code": 413, "detail": detail}, status_code=413)


async def _article_out(actor: Actor, article_id: int, locale: str) -> ArticleOut:
    article, shown = await queries.access_article(actor, article_id)
    picked = queries.pick_locale(list(shown), locale) or locale
    t = shown[picked]
    staff_view = policy.can_see_article_feedback(actor)  # readers see the text, not the scores
    return ArticleOut(
        id=article["id"],
        slug=article["slug"],
        url=article_url(article["id"], article["slug"], picked),
        category=article["category_slug"],
        section=article["section_slug"],
        locale=picked,
        fallback=picked != locale,
        locales=[loc for loc in LOCALES if loc in shown],
        title=t["title"],
        body=t["body_md"],
        body_html=t["body_html"],
        status=t["status"],
        version=t["version"],
        visibility=article["visibility"] or "inherit",
        effective_visibility=article["effective_visibility"],
        tiers=list(article["tiers"]),
        tags=list(article["tags"]),
        updated_at=t["updated_at"],
        views=article["view_count"] if staff_view else 0,
        helpful_yes=article["helpful_yes"] if staff_view else 0,
        helpful_no=article["helpful_no"] if staff_view else 0,
    )


@get("/api/v1/kb/articles", tags=["kb"])
async def list_articles(
    actor: CurrentActor,
    locale: FromQuery[str] = "en",
    section: FromQuery[str] = "",
    category: FromQuery[str] = "",
    limit: FromQuery[int] = 20,
    offset: FromQuery[int] = 0,
) -> ArticleList:
    """Articles the caller may read, in Help Center order; titles in `locale` when written."""
    _check_locale(locale)
    limit, offset = max(1, min(limit, MAX_LIMIT)), max(0, min(offset, 1_000_000))
    drafts = policy.can_see_kb_drafts(actor)
    clauses = [queries.readable(policy.content_audience(actor)), None if drafts else queries.has_published()]
    if section:
        clauses.append(KbArticle.section.slug == section)
    if category:
        clauses.append(KbArticle.section.category.slug == category)
    present = [c for c in clauses if c is not None]
    total = await KbArticle.count().where(*present)
    rows = (
        await KbArticle.select(
            KbArticle.id,
            KbArticle.slug,
            KbArticle.section.slug.as_alias("section"),
            KbArticle.section.category.slug.as_alias("category"),
        )
        .where(*present)
        .order_by(
            KbArticle.section.category.position,
            KbArticle.section.category.id,
            KbArticle.section.position,
            KbArticle.section.id,
            KbArticle.position,
            KbArticle.id,
        )
        .limit(limit)
        .offset(offset)
    )
    found = await queries.titles([r["id"] for r in rows], locale, drafts=drafts)
    items = [
        ArticleSummary(
            id=r["id"],
            slug=r["slug"],
            url=article_url(r["id"], r["slug"], found[r["id"]]["locale"]),
            category=r["category"],
            section=r["section"],
            locale=found[r["id"]]["locale"],
            title=found[r["id"]]["title"],
            status=found[r["id"]]["status"],
            updated_at=found[r["id"]]["updated_at"],
        )
        for r in rows
        if r["id"] in found
    ]
    return ArticleList(items=items, total=total, limit=limit, offset=offset)


@get("/api/v1/kb/articles/{article_id:int}", tags=["kb"])
async def get_article(actor: CurrentActor, article_id: FromPath[int], locale: FromQuery[str] = "en") -> ArticleOut:
    """One article in `locale`, or in the other language when it has no text in `locale`."""
    return await _article_out(actor, article_id, _check_locale(locale))


@post("/api/v1/kb/articles", tags=["kb"], status_code=201)
async def create_article(actor: CurrentActor, data: JSONBody[ArticleCreate]) -> ArticleOut | Response[Any]:
    _writer(actor)
    settings = services.ArticleSettings(
        section_id=await _section_id(data.section),
        slug=data.slug,
        visibility=None if data.visibility == "inherit" else data.visibility,
        tiers=data.tiers,
        tags=data.tags,
        position=data.position,
    )
    text = services.TextInput(title=data.title, body_md=data.body)
    try:
        article_id = await services.create_article(actor, settings, data.locale, text, status=data.status)
    except MarkdownTooLarge:
        return _too_large()
    return await _article_out(actor, article_id, data.locale)


@patch("/api/v1/kb/articles/{article_id:int}", tags=["kb"])
async def update_article(
    actor: CurrentActor, article_id: FromPath[int], data: JSONBody[ArticleUpdate]
) -> ArticleOut | Response[Any]:
    """Change any of the fields; `version` is the translation's version you read (409 if stale)."""
    _writer(actor)
    article = await queries.get_article(article_id)
    if article is None:
        raise NotFound
    locale = _check_locale(data.locale)
    current = (await queries.translations(article_id)).get(locale)
    settings = None
    if any(v is not UNSET for v in (data.section, data.visibility, data.tiers, data.tags, data.slug, data.position)):
        visibility = article["visibility"] if data.visibility is UNSET else data.visibility
        settings = services.ArticleSettings(
            section_id=article["section_id"] if data.section is UNSET else await _section_id(data.section),
            slug=article["slug"] if data.slug is UNSET else data.slug,
            visibility=None if visibility in (None, "inherit") else visibility,
            tiers=article["tiers"] if data.tiers is UNSET else data.tiers,
            tags=article["tags"] if data.tags is UNSET else data.tags,
            position=article["position"] if data.position is UNSET else data.position,
        )
    text = None
    if data.title is not UNSET or data.body is not UNSET:
        if current is None and (data.title is UNSET or data.body is UNSET):
            raise Invalid({"body": _("A new translation needs a title and a body.")})
        text = services.TextInput(
            title=current["title"] if data.title is UNSET else data.title,  # type: ignore[index]
            body_md=current["body_md"] if data.body is UNSET else data.body,  # type: ignore[index]
            version=data.version,
        )
    try:
        await services.update_article(
            actor,
            article_id,
            locale,
            settings=settings,
            text=text,
            status=None if data.status is UNSET else data.status,
        )
    except services.EditConflict as exc:
        conflict = ConflictOut(
            status_code=409,
            detail=_("Someone else changed this article since you read it."),
            current_version=exc.current["version"],
            current_title=exc.current["title"],
            current_body=exc.current["body_md"],
        )
        return Response(conflict, status_code=409)
    except MarkdownTooLarge:
        return _too_large()
    return await _article_out(actor, article_id, locale)


@delete("/api/v1/kb/articles/{article_id:int}", tags=["kb"], status_code=204)
async def delete_article(actor: CurrentActor, article_id: FromPath[int]) -> None:
    _writer(actor)
    await services.delete_article(actor, article_id)


api_router = Router(
    path="/", route_handlers=[list_articles, get_article, create_article, update_article, delete_article]
)

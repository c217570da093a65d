"""Help Center pages: the category tree, category and section pages, articles and feedback."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Router, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from server import policy, ratelimit
from server.accounts.auth import CurrentActor
from server.errors import Invalid, NotFound
from server.i18n import LOCALES, _, get_locale
from server.kb import cache, queries, services, views
from server.kb.fields import localized
from server.kb.search import article_url
from server.kb.tables import KbCategory, KbFeedback, KbSection
from server.kb.toc import toc_for
from server.policy import Actor
from server.settings import get_settings
from server.web.flash import flash
from server.web.forms import form_data
from server.web.render import page, redirect

VOTER_COOKIE = "kz_voter"
FEEDBACK_LIMIT = ratelimit.Limit("kb_feedback", attempts=30, window_seconds=3600)
INDEX_ARTICLES_PER_SECTION = 6
REF_RE = re.compile(r"^(?P<id>\d+)(?:-(?P<slug>.*))?$")
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")


def _tags_for(tags: list[str], locale: str) -> list[str]:
    """Tags are shared by both translations; show a page the ones written in its language."""
    shown = [tag for tag in tags if bool(JAPANESE.search(tag)) == (locale == "ja")]
    return shown or tags


def _locale(lang: str) -> str:
    return lang if lang in LOCALES else get_locale()


def _scope(actor: Actor) -> tuple[Any, bool]:
    """What decides which articles a reader sees: the part of a cache key that keeps audiences apart."""
    return policy.visibility_scope(policy.content_audience(actor)), policy.can_see_kb_drafts(actor)


async def _tree(
    actor: Actor, locale: str, category_id: int | None = None, section_id: int | None = None, per_section: int = 0
) -> list[dict[str, Any]]:
    key = ("tree", locale, category_id, section_id, per_section, _scope(actor))
    return await cache.cached(key, lambda: _load_tree(actor, locale, category_id, section_id, per_section))


async def _load_tree(
    actor: Actor, locale: str, category_id: int | None, section_id: int | None, per_section: int
) -> list[dict[str, Any]]:
    """Categories → sections → the articles the actor may read; empty branches are left out
    (except for editors, who need to see where new articles go)."""
    drafts = policy.can_see_kb_drafts(actor)
    categories = {c["id"]: c for c in await queries.categories() if category_id in (None, c["id"])}
    sections = [s for s in await queries.sections(category_id) if section_id in (None, s["id"])]
    articles = await queries.visible_articles(actor, section_ids=[s["id"] for s in sections])
    by_section: dict[int, list[dict[str, Any]]] = {}
    for article in articles:
        by_section.setdefault(article["section_id"], []).append(article)
    shown = [a for s in sections for a in by_section.get(s["id"], [])[: per_section or None]]
    titles = await queries.titles([a["id"] for a in shown], locale, drafts=drafts)
    tree: dict[int, dict[str, Any]] = {}
    for section in sections:
        listed = [
            {**a, **titles[a["id"]], "url": article_url(a["id"], a["slug"])}
            for a in by_section.get(section["id"], [])[: per_section or None]
            if a["id"] in titles
        ]
        if not listed and not drafts:
            continue
        category = categories.get(section["category"])
        if category is None:
            continue
        node = tree.setdefault(
            category["id"], {**category, "name": localized(category, "name", locale), "sections": []}
        )
        node["description"] = localized(category, "description", locale)
        node["sections"].append(
            {
                **section,
                "name": localized(section, "name", locale),
                "description": localized(section, "description", locale),
                "articles": listed,
                "total": len(by_section.get(section["id"], [])),
            }
        )
    if drafts:
        for category in categories.values():
            tree.setdefault(category["id"], {**category, "name": localized(category, "name", locale), "sections": []})
    return sorted(tree.values(), key=lambda c: (c["position"], c["id"]))


@get("/help", name="help")
async def help_home(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    locale = get_locale()
    tree = await _tree(actor, locale, per_section=INDEX_ARTICLES_PER_SECTION)
    return page(request, "kb/help.html", {"tree": tree, "can_edit": policy.can_edit_kb(actor)})


@get("/help/categories/{category_slug:str}")
async def category_page(request: Request[Any, Any, Any], actor: CurrentActor, category_slug: FromPath[str]) -> Template:
    row = await KbCategory.select(KbCategory.id).where(KbCategory.slug == category_slug).first()
    tree = await _tree(actor, get_locale(), category_id=row["id"]) if row else []
    if not tree:
        raise NotFound
    return page(request, "kb/category.html", {"category": tree[0], "can_edit": policy.can_edit_kb(actor)})


@get("/help/sections/{section_slug:str}")
async def section_page(request: Request[Any, Any, Any], actor: CurrentActor, section_slug: FromPath[str]) -> Template:
    row = await KbSection.select(KbSection.id, KbSection.category).where(KbSection.slug == section_slug).first()
    tree = await _tree(actor, get_locale(), category_id=row["category"], section_id=row["id"]) if row else []
    if not tree or not tree[0]["sections"]:
        raise NotFound
    category = tree[0]
    context = {"category": category, "section": category["sections"][0], "can_edit": policy.can_edit_kb(actor)}
    return page(request, "kb/section.html", context)


async def _resolve(ref: str) -> tuple[int, str | None]:
    """`42-some-slug`, `42`, or a bare slug (links written by hand) -> (id, slug in the ref)."""
    match = REF_RE.match(ref)
    if match:
        return int(match["id"]), match["slug"]
    article_id = await queries.article_id_for_slug(ref)
    if article_id is None:
        raise NotFound
    return article_id, None


def _voter_key(request: Request[Any, Any, Any], actor: Actor) -> str | None:
    if actor.is_authenticated:
        return f"user:{actor.user_id}"
    cookie = request.cookies.get(VOTER_COOKIE, "")
    return f"browser:{cookie}" if re.fullmatch(r"[A-Za-z0-9_-]{16,64}", cookie) else None


async def _feedback_context(actor: Actor, article: dict[str, Any], key: str | None) -> dict[str, Any]:
    """The voter's own vote, and for agents the score and the latest comments."""
    mine = None
    if key:
        mine = (
            await KbFeedback.select(KbFeedback.helpful, KbFeedback.comment)
            .where((KbFeedback.article == article["id"]) & (KbFeedback.voter_key == key))
            .first()
        )
    context: dict[str, Any] = {"my_vote": mine}
    if policy.can_see_article_feedback(actor):
        yes, no = article["helpful_yes"], article["helpful_no"]
        context["score"] = {"yes": yes, "no": no, "percent": round(100 * yes / (yes + no)) if yes + no else None}
        context["comments"] = (
            await KbFeedback.select(
                KbFeedback.helpful,
                KbFeedback.comment,
                KbFeedback.locale,
                KbFeedback.updated_at,
                KbFeedback.user.display_name.as_alias("user_name"),
            )
            .where((KbFeedback.article == article["id"]) & (KbFeedback.comment != ""))
            .order_by(KbFeedback.updated_at, ascending=False)
            .limit(20)
        )
    return context


@get("/help/articles/{ref:str}")
async def article_page(
    request: Request[Any, Any, Any], actor: CurrentActor, ref: FromPath[str], lang: FromQuery[str] = ""
) -> Template | Redirect:
    scope = _scope(actor)

    async def readable(article_id: int) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        return await cache.cached(("article", article_id, scope), lambda: queries.access_article(actor, article_id))

    article_id, slug = await _resolve(ref)
    try:
        article, shown = await readable(article_id)
    except NotFound:
        article = None
    if article is None or slug not in (None, article["slug"]):
        # The whole ref may be a slug that starts with digits ("2fa-setup"), not id 2.
        by_slug = await queries.article_id_for_slug(ref)
        if by_slug is not None:
            article_id, slug = by_slug, None
            article, shown = await readable(article_id)
        elif article is None:
            raise NotFound
    if slug != article["slug"]:
        query = f"?{urlencode({'lang': lang})}" if lang in LOCALES else ""
        return Redirect(path=article_url(article_id, article["slug"]) + query, status_code=301)
    wanted = _locale(lang)
    locale = queries.pick_locale(list(shown), wanted) or wanted
    translation = shown[locale]
    if not getattr(request, "htmx", False):
        views.record(article_id)
    context = {
        "article": article,
        "t": translation,
        "locale": locale,
        "wanted": wanted,
        "fallback": locale != wanted,
        "locales": [loc for loc in LOCALES if loc in shown],
        "tags": _tags_for(article["tags"], locale),
        "toc": [h for h in toc_for(translation) if h.level <= 3],
        "category_name": localized(article, "category_name", get_locale()),
        "section_name": localized(article, "section_name", get_locale()),
        "related": await cache.cached(
            ("related", article_id, locale, scope), lambda: queries.related_articles(actor, article, locale)
        ),
        "views": article["view_count"] + views.pending(article_id),
        "can_edit": policy.can_edit_kb(actor),
        **await _feedback_context(actor, article, _voter_key(request, actor)),
    }
    return page(request, "kb/article.html", context)


@post("/help/articles/{article_id:int}/feedback")
async def feedback(request: Request[Any, Any, Any], actor: CurrentActor, article_id: FromPath[int]) -> Any:
    values = await form_data(request)
    client = request.client.host if request.client else "unknown"
    await ratelimit.hit(FEEDBACK_LIMIT, f"user:{actor.user_id}" if actor.is_authenticated else f"ip:{client}")
    new_cookie = None
    key = _voter_key(request, actor)
    if key is None:
        new_cookie = secrets.token_urlsafe(24)
        key = f"browser:{new_cookie}"
    locale = _locale(values.get("lang", ""))
    if values.get("helpful") not in ("yes", "no"):
        raise Invalid({"helpful": _("Choose yes or no.")})
    errors: dict[str, str] = {}
    try:
        await services.record_feedback(
            actor, key, article_id, locale, values["helpful"] == "yes", values.get("comment", "")
        )
    except Invalid as exc:
        errors = exc.errors
    article, _shown = await queries.access_article(actor, article_id)
    if getattr(request, "htmx", False):
        context = {
            "article": article,
            "locale": locale,
            "errors": errors,
            "values": values,
            "thanks": not errors,
            **await _feedback_context(actor, article, key),
        }
        response: Any = page(request, "kb/_feedback.html", context, status_code=422 if errors else 200)
    else:
        if errors:
            raise Invalid(errors)
        flash(request, _("Thank you for your feedback."), "success")
        response = redirect(article_url(article_id, article["slug"], locale) + "#feedback")
    if new_cookie:
        response.cookies.append(
            Cookie(
                key=VOTER_COOKIE,
                value=new_cookie,
                path="/help",
                httponly=True,
                samesite="lax",
                secure=get_settings().secure_cookies,
                max_age=5 * 365 * 86400,
            )
        )
    return response


async def _write_views(request: Request[Any, Any, Any]) -> None:
    await views.flush_if_due()


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[help_home, category_page, section_page, article_page, feedback],
    after_response=_write_views,
)

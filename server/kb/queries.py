"""Reads that the help-center pages, the editor, the API and search share.

Every list goes through `readable()`, the SQL form of `policy`'s audience rule, so an article
the actor may not read never reaches a page, a count, a related list or the API.
"""

from __future__ import annotations

import json
from typing import Any

from piccolo.columns.combination import And, Or, Where, WhereRaw

from server import policy
from server.errors import NotFound
from server.i18n import LOCALES
from server.kb.tables import KbArticle, KbCategory, KbSection, KbTranslation
from server.policy import Actor

PUBLISHED = "published"
RELATED_CANDIDATES = 200


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def json_array_has(column: str, label: str) -> Any:
    """Raw SQL: the JSON array in `column` (of the query's only table) holds the string `label`.

    Matches the text of the array, written with or without ASCII escapes of non-ASCII letters
    (the JSON encoder in use decides), so it works the same on SQLite and PostgreSQL.
    """
    forms = {json.dumps(label), json.dumps(label, ensure_ascii=False)}
    rules = [WhereRaw(f"CAST({column} AS TEXT) LIKE {{}} ESCAPE '\\'", f"%{like_escape(form)}%") for form in forms]
    return rules[0] if len(rules) == 1 else Or(rules[0], rules[1])


def readable(audience: list[str] | None, article_id: Any = KbArticle.id, visibility: Any = None) -> Any:
    """A where-clause keeping articles this audience may read (None: no restriction).

    `article_id`/`visibility` are the columns to test, so the clause also works through a join
    (e.g. `KbTranslation.article` and `KbTranslation.article.effective_visibility`).
    """
    scope = policy.visibility_scope(audience)
    if scope is None:
        return None
    visibility = visibility if visibility is not None else KbArticle.effective_visibility
    plain = sorted(scope.levels - {"members"})
    clauses: list[Any] = [visibility.is_in(plain)] if plain else []
    member_rules = []
    if "members" in scope.levels:
        member_rules.append(WhereRaw("CAST(effective_tiers AS TEXT) NOT LIKE '%\"%'"))
    member_rules.extend(json_array_has("effective_tiers", tier) for tier in sorted(scope.tiers))
    if member_rules:
        # Tier lists are JSON: test them in a sub-select on kb_article alone, where the raw
        # column name is unambiguous whatever joins the outer query has.
        any_rule = member_rules[0]
        for rule in member_rules[1:]:
            any_rule = Or(any_rule, rule)
        members = KbArticle.select(KbArticle.id).where(KbArticle.effective_visibility == "members", any_rule)
        clauses.append(article_id.is_in(members))
    if not clauses:
        return article_id.is_null()  # nothing is readable: matches no row
    combined = clauses[0]
    for clause in clauses[1:]:
        combined = Or(combined, clause)
    return combined


def _and(*clauses: Any) -> Any:
    present = [c for c in clauses if c is not None]
    combined = present[0]
    for clause in present[1:]:
        combined = And(combined, clause)
    return combined


def has_published(article_id: Any = KbArticle.id) -> Where:
    return article_id.is_in(KbTranslation.select(KbTranslation.article).where(KbTranslation.status == PUBLISHED))


def pick_locale(available: list[str], wanted: str) -> str | None:
    """The wanted locale when available, else the first other one (the fallback)."""
    if wanted in available:
        return wanted
    return next((loc for loc in LOCALES if loc in available), None)


# One article ---------------------------------------------------------------------------------

ARTICLE_COLUMNS = (
    KbArticle.id,
    KbArticle.slug,
    KbArticle.visibility,
    KbArticle.tiers,
    KbArticle.effective_visibility,
    KbArticle.effective_tiers,
    KbArticle.tags,
    KbArticle.position,
    KbArticle.view_count,
    KbArticle.helpful_yes,
    KbArticle.helpful_no,
    KbArticle.created_at,
    KbArticle.section.as_alias("section_id"),
    KbArticle.section.slug.as_alias("section_slug"),
    KbArticle.section.name_en.as_alias("section_name_en"),
    KbArticle.section.name_ja.as_alias("section_name_ja"),
    KbArticle.section.category.as_alias("category_id"),
    KbArticle.section.category.slug.as_alias("category_slug"),
    KbArticle.section.category.name_en.as_alias("category_name_en"),
    KbArticle.section.category.name_ja.as_alias("category_name_ja"),
    KbArticle.author.as_alias("author_id"),
    KbArticle.author.display_name.as_alias("author_name"),
)

TRANSLATION_COLUMNS = (
    KbTranslation.id,
    KbTranslation.locale,
    KbTranslation.title,
    KbTranslation.body_md,
    KbTranslation.body_html,
    KbTranslation.status,
    KbTranslation.published_at,
    KbTranslation.updated_at,
    KbTranslation.version,
    KbTranslation.updated_by.display_name.as_alias("updated_by_name"),
)


async def get_article(article_id: int) -> dict[str, Any] | None:
    return await KbArticle.select(*ARTICLE_COLUMNS).where(KbArticle.id == article_id).output(load_json=True).first()


async def translations(article_id: int) -> dict[str, dict[str, Any]]:
    rows = await KbTranslation.select(*TRANSLATION_COLUMNS).where(KbTranslation.article == article_id)
    return {row["locale"]: row for row in rows}


def visible_translations(actor: Actor, found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    if policy.can_see_kb_drafts(actor):
        return found
    return {loc: row for loc, row in found.items() if row["status"] == PUBLISHED}


async def access_article(actor: Actor, article_id: int) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The article and the translations the actor may read; NotFound when there are none (an
    invisible article looks exactly like a missing one)."""
    article = await get_article(article_id)
    if article is None or not policy.can_read_kb(actor, article["effective_visibility"], article["effective_tiers"]):
        raise NotFound
    shown = visible_translations(actor, await translations(article_id))
    if not shown:
        raise NotFound
    return article, shown


async def article_id_for_slug(slug: str) -> int | None:
    row = await KbArticle.select(KbArticle.id).where(KbArticle.slug == slug).first()
    return row["id"] if row else None


# Lists -----------------------------------------------------------------------------------------


async def titles(article_ids: list[int], locale: str, *, drafts: bool = False) -> dict[int, dict[str, Any]]:
    """For each article: the title in `locale`, or in the other language (`locale` says which)."""
    if not article_ids:
        return {}
    query = KbTranslation.select(
        KbTranslation.article, KbTranslation.locale, KbTranslation.title, KbTranslation.status, KbTranslation.updated_at
    ).where(KbTranslation.article.is_in(article_ids))
    if not drafts:
        query = query.where(KbTranslation.status == PUBLISHED)
    by_article: dict[int, dict[str, dict[str, Any]]] = {}
    for row in await query:
        by_article.setdefault(row["article"], {})[row["locale"]] = row
    picked = {}
    for article_id, rows in by_article.items():
        chosen = pick_locale(list(rows), locale)
        if chosen is not None:
            row = rows[chosen]
            picked[article_id] = {
                "title": row["title"],
                "locale": chosen,
                "status": row["status"],
                "updated_at": row["updated_at"],
            }
    return picked


async def visible_articles(actor: Actor, *, section_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Articles the actor may read (published, unless they write articles), in author order."""
    query = KbArticle.select(
        KbArticle.id, KbArticle.slug, KbArticle.section.as_alias("section_id"), KbArticle.position, KbArticle.tags
    ).output(load_json=True)
    clauses = [readable(policy.content_audience(actor))]
    if not policy.can_see_kb_drafts(actor):
        clauses.append(has_published())
    if section_ids is not None:
        if not section_ids:
            return []
        clauses.append(KbArticle.section.is_in(section_ids))
    present = [c for c in clauses if c is not None]
    if present:
        query = query.where(_and(*present))
    return await query.order_by(KbArticle.position).order_by(KbArticle.id)


async def categories() -> list[dict[str, Any]]:
    return await KbCategory.select().order_by(KbCategory.position).order_by(KbCategory.id).output(load_json=True)


async def sections(category_id: int | None = None) -> list[dict[str, Any]]:
    query = KbSection.select(*KbSection.all_columns(), KbSection.category.slug.as_alias("category_slug"))
    if category_id is not None:
        query = query.where(KbSection.category == category_id)
    return await query.order_by(KbSection.position).order_by(KbSection.id)


async def related_articles(actor: Actor, article: dict[str, Any], locale: str, limit: int = 5) -> list[dict[str, Any]]:
    """Readable published articles of the same category, ranked by same section and shared tags."""
    section_ids = [
        s["id"] for s in await KbSection.select(KbSection.id).where(KbSection.category == article["category_id"])
    ]
    query = (
        KbArticle.select(KbArticle.id, KbArticle.slug, KbArticle.section, KbArticle.tags)
        .where(
            _and(
                readable(policy.content_audience(actor)),
                has_published(),
                KbArticle.section.is_in(section_ids),
                KbArticle.id != article["id"],
            )
        )
        .order_by(KbArticle.position)
        .limit(RELATED_CANDIDATES)
        .output(load_json=True)
    )
    tags = set(article["tags"])
    scored = []
    for row in await query:
        score = 2 * (row["section"] == article["section_id"]) + len(tags & set(row["tags"]))
        if score:
            scored.append((-score, row["id"], row))
    top = [row for _score, _id, row in sorted(scored, key=lambda item: item[:2])[:limit]]
    found = await titles([row["id"] for row in top], locale)
    return [{**row, **found[row["id"]]} for row in top if row["id"] in found]

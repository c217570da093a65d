"""Help-center articles as search documents: one per published translation.

Registered at import, so any process that imports the knowledge base (web, worker, reindex)
knows the "kb" type.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

from piccolo.columns.combination import And, Or

from server.kb import queries
from server.kb.tables import KbArticle, KbTranslation
from server.policy import audience_for_visibility
from server.search import fallback, registry
from server.search.registry import SearchDoc

_BLOCK_END = re.compile(r"</(?:p|li|h[1-6]|pre|blockquote|tr|th|td|table)>|<br\s*/?>|<hr\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_BLANK_LINES = re.compile(r"[ \t]*\n\s*")

DOC_COLUMNS = (
    KbTranslation.article.as_alias("article_id"),
    KbTranslation.locale,
    KbTranslation.title,
    KbTranslation.body_html,
    KbTranslation.updated_at,
    KbTranslation.article.slug.as_alias("slug"),
    KbTranslation.article.effective_visibility.as_alias("visibility"),
    KbTranslation.article.effective_tiers.as_alias("tiers"),
    KbTranslation.article.tags.as_alias("tags"),
    KbTranslation.article.helpful_yes.as_alias("yes"),
    KbTranslation.article.helpful_no.as_alias("no"),
    KbTranslation.article.section.name_en.as_alias("section_en"),
    KbTranslation.article.section.name_ja.as_alias("section_ja"),
    KbTranslation.article.section.category.name_en.as_alias("category_en"),
    KbTranslation.article.section.category.name_ja.as_alias("category_ja"),
)


def html_text(body_html: str) -> str:
    """Plain text of the stored, sanitised HTML: one line per block.

    The same words `markdown.render_inline_text` finds in the source, without a second Markdown
    parse per document (a full reindex of many articles would spend most of its time there).
    """
    text = _TAG.sub("", _BLOCK_END.sub("\n", body_html))
    return _BLANK_LINES.sub("\n", html.unescape(text)).strip()


def helpfulness(yes: int, no: int) -> float:
    """Votes smoothed towards 1/2, so one vote does not outrank a long record."""
    return (yes + 1) / (yes + no + 2)


def article_url(article_id: int, slug: str, locale: str | None = None) -> str:
    return f"/help/articles/{article_id}-{slug}" + (f"?lang={locale}" if locale else "")


def _doc(row: dict[str, Any]) -> SearchDoc:
    locale = row["locale"]
    return SearchDoc(
        type="kb",
        pk=row["article_id"],
        locale=locale,
        title=row["title"],
        text=html_text(row["body_html"]),
        url=article_url(row["article_id"], row["slug"], locale),
        audience=audience_for_visibility(row["visibility"], row["tiers"]),
        facets={
            "category": row[f"category_{locale}"] or row["category_en"],
            "section": row[f"section_{locale}"] or row["section_en"],
            "tags": list(row["tags"]),
        },
        rank=helpfulness(row["yes"], row["no"]),
        updated_at=int(row["updated_at"].timestamp()),
    )


def _published() -> Any:
    return KbTranslation.status == queries.PUBLISHED


class KbDocuments:
    name = "kb"
    facet_fields = ("category", "section", "tags")

    async def build(self, pks: list[int]) -> dict[int, list[SearchDoc]]:
        docs: dict[int, list[SearchDoc]] = {pk: [] for pk in pks}
        if not pks:
            return docs
        rows = (
            await KbTranslation.select(*DOC_COLUMNS)
            .where(KbTranslation.article.is_in(list(pks)), _published())
            .order_by(KbTranslation.locale)
            .output(load_json=True)
        )
        for row in rows:
            docs[row["article_id"]].append(_doc(row))
        return docs

    def all_pks(self) -> AsyncIterator[list[int]]:
        return fallback.id_batches(KbArticle)

    async def db_search(
        self, query: str, audience: list[str] | None, locale: str | None, facets: dict[str, str], limit: int
    ) -> tuple[list[SearchDoc], int]:
        """Substring search on title and Markdown source, every word required."""
        facets = dict(facets)
        locale = facets.pop("locale", None) or locale
        if set(facets) - set(self.facet_fields):
            return [], 0  # a facet this type does not have matches nothing
        clauses: list[Any] = [_published()]
        visible = queries.readable(
            audience, article_id=KbTranslation.article, visibility=KbTranslation.article.effective_visibility
        )
        if visible is not None:
            clauses.append(visible)
        if locale:
            clauses.append(KbTranslation.locale == locale)
        clauses.extend(_facet_clause(name, value) for name, value in facets.items())
        clauses.extend(fallback.every_term(query, ["kb_translation.title", "kb_translation.body_md"]))
        total = await KbTranslation.count().where(*clauses)
        rows = (
            await KbTranslation.select(*DOC_COLUMNS)
            .where(*clauses)
            .order_by(KbTranslation.article.helpful_yes, ascending=False)
            .order_by(KbTranslation.id)
            .limit(max(1, limit))
            .output(load_json=True)
        )
        return [_doc(row) for row in rows], total


def _facet_clause(name: str, value: str) -> Any:
    if name == "tags":
        return KbTranslation.article.is_in(
            KbArticle.select(KbArticle.id).where(queries.json_array_has("tags", value.lower()))
        )
    parent = KbTranslation.article.section if name == "section" else KbTranslation.article.section.category
    return Or(
        And(KbTranslation.locale == "en", parent.name_en == value),
        And(KbTranslation.locale == "ja", parent.name_ja == value),
    )


documents = registry.register(KbDocuments())

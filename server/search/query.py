"""One permission-aware search over every registered type.

Meilisearch answers a federated multi-search (one query per type's index, merged and ranked
together) filtered by the actor's audience from `policy`, so hits, snippets, facet counts and
totals only ever reflect what the actor may read. When Meilisearch is unreachable, each type's
SQL fallback answers with the same audience rule and the result says `degraded`.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from dataclasses import dataclass, field

import httpx
from markupsafe import Markup
from meilisearch_python_sdk.errors import MeilisearchApiError, MeilisearchError
from meilisearch_python_sdk.models.search import Federation, FederationMerged, MergeFacets, SearchParams

from server import policy
from server.i18n import LOCALES
from server.policy import Actor
from server.search import registry
from server.search.engine import search_client
from server.search.registry import SearchDoc
from server.search.sync import ensure_indexes

log = logging.getLogger("kizuna.search")

MAX_QUERY_CHARS = 200
MAX_LIMIT = 50
PRE, POST = "\x02", "\x03"  # highlight markers that cannot occur in text; replaced after escaping
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
FACETS = ("type", "category", "locale")


@dataclass(frozen=True)
class Hit:
    type: str
    pk: int
    locale: str
    title: Markup
    snippet: Markup
    url: str
    plain_title: str


@dataclass
class SearchResult:
    query: str
    hits: list[Hit] = field(default_factory=list)
    total: int = 0
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    degraded: bool = False


def normalise(query: str) -> str:
    """The form analytics groups by: NFKC, lower-case, single spaces, bounded length."""
    folded = unicodedata.normalize("NFKC", query).lower()
    return " ".join(folded.split())[:MAX_QUERY_CHARS]


def _marked(text: str) -> Markup:
    # Japanese words arrive as adjacent highlighted tokens (タイム|ライン): join them into one mark.
    text = text.replace(POST + PRE, "")
    return Markup(html.escape(text).replace(PRE, "<mark>").replace(POST, "</mark>"))  # noqa: S704


def _filters(actor: Actor, locale: str | None, facets: dict[str, str]) -> list[str]:
    expressions = []
    if audience := policy.meili_audience_filter(actor):
        expressions.append(audience)
    if locale:
        expressions.append(f'locale = "{locale}"')
    for name, value in facets.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        expressions.append(f'{name} = "{escaped}"')
    return expressions


async def search(
    actor: Actor,
    query: str,
    *,
    types: list[str] | None = None,
    locale: str | None = None,
    facets: dict[str, str] | None = None,
    limit: int = 10,
    offset: int = 0,
    with_facets: bool = False,
) -> SearchResult:
    """Validated input only: unknown types or locales are the route's 422, not ours.
    Facet counts cost Meilisearch time: only the search page asks for them."""
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    facets = dict(facets or {})
    names = [n for n in (types or registry.names()) if n in registry.names()]
    if locale is not None and locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}")
    limit, offset = max(1, min(limit, MAX_LIMIT)), max(0, offset)
    if not query or not names:
        return SearchResult(query=query)
    try:
        try:
            return await _meili_search(actor, query, names, locale, facets, limit, offset, with_facets)
        except MeilisearchApiError as exc:
            if exc.code != "index_not_found":
                raise
            await ensure_indexes()  # a type registered since the last start: create its index once
            return await _meili_search(actor, query, names, locale, facets, limit, offset, with_facets)
    except (MeilisearchError, httpx.HTTPError, OSError) as exc:
        log.warning("search degraded, answering from the database: %s", exc)
        return await _db_search(actor, query, names, locale, facets, limit, offset)


async def _meili_search(
    actor: Actor,
    query: str,
    names: list[str],
    locale: str | None,
    facets: dict[str, str],
    limit: int,
    offset: int,
    with_facets: bool,
) -> SearchResult:
    query_locales = ["jpn"] if JAPANESE.search(query) else None
    facets = dict(facets)
    type_facet = facets.pop("type", None)
    queries = []
    for name in names:
        if type_facet and type_facet != name:
            continue
        doc_type = registry.get(name)
        own_facets = {k: v for k, v in facets.items() if k in doc_type.facet_fields or k == "locale"}
        if len(own_facets) < len(facets):
            continue  # this type cannot match a facet it does not have
        queries.append(
            SearchParams(
                index_uid=name,
                query=query,
                filter=_filters(actor, locale, own_facets),
                attributes_to_retrieve=["type", "pk", "locale", "url", "title_en", "title_ja"],
                attributes_to_crop=["text_en", "text_ja"],
                crop_length=28,
                attributes_to_highlight=["title_en", "title_ja", "text_en", "text_ja"],
                highlight_pre_tag=PRE,
                highlight_post_tag=POST,
                crop_marker="…",
                locales=query_locales,
            )
        )
    if not queries:
        return SearchResult(query=query)
    federation: Federation = Federation(limit=limit, offset=offset)
    if with_facets:
        facet_names = {
            q.index_uid: [f for f in FACETS if f in ("type", "locale") or f in registry.get(q.index_uid).facet_fields]
            for q in queries
        }
        federation = FederationMerged(
            limit=limit, offset=offset, facets_by_index=facet_names, merge_facets=MergeFacets(max_values_per_facet=50)
        )
    response = await (await search_client()).multi_search(queries, federation=federation)
    hits = []
    for raw in response.hits:  # type: ignore[union-attr]
        formatted = raw.get("_formatted", {})
        loc = raw.get("locale", "en")
        title = formatted.get(f"title_{loc}") or raw.get(f"title_{loc}", "")
        snippet = formatted.get(f"text_{loc}", "")
        hits.append(
            Hit(
                type=raw["type"],
                pk=int(raw["pk"]),
                locale=loc,
                title=_marked(title),
                snippet=_marked(snippet),
                url=raw["url"],
                plain_title=title.replace(PRE, "").replace(POST, ""),
            )
        )
    distribution = response.facet_distribution or {}  # type: ignore[union-attr]
    return SearchResult(
        query=query,
        hits=hits,
        total=response.estimated_total_hits or len(hits),  # type: ignore[union-attr]
        facets={k: dict(v) for k, v in distribution.items()},
    )


def _db_snippet(doc: SearchDoc, query: str) -> Markup:
    text = doc.text
    terms = [t for t in query.lower().split() if t]
    position = min((p for t in terms if (p := text.lower().find(t)) >= 0), default=0)
    start = max(0, position - 60)
    excerpt = ("…" if start else "") + text[start : start + 180] + ("…" if start + 180 < len(text) else "")
    escaped = html.escape(excerpt)
    for term in terms:
        escaped = re.sub(
            re.escape(html.escape(term)), lambda m: f"<mark>{m.group(0)}</mark>", escaped, flags=re.IGNORECASE
        )
    return Markup(escaped)  # noqa: S704 - built from escaped text


async def _db_search(
    actor: Actor, query: str, names: list[str], locale: str | None, facets: dict[str, str], limit: int, offset: int
) -> SearchResult:
    audience = policy.content_audience(actor)
    facets = dict(facets)
    type_facet = facets.pop("type", None)
    docs: list[SearchDoc] = []
    total = 0
    counts: dict[str, dict[str, int]] = {"type": {}}  # per-type totals are exact; nothing else is counted
    for name in names:
        if type_facet and type_facet != name:
            continue
        found, count = await registry.get(name).db_search(query, audience, locale, facets, offset + limit)
        docs.extend(found)
        total += count
        if count:
            counts["type"][name] = count
    docs.sort(key=lambda d: (query.lower() not in d.title.lower(), -d.rank))
    hits = [
        Hit(
            type=d.type,
            pk=d.pk,
            locale=d.locale,
            title=Markup(html.escape(d.title)),  # noqa: S704
            snippet=_db_snippet(d, query),
            url=d.url,
            plain_title=d.title,
        )
        for d in docs[offset : offset + limit]
    ]
    return SearchResult(query=query, hits=hits, total=total, facets=counts, degraded=True)

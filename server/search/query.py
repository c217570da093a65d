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
from typing import Any

import httpx
import msgspec
from markupsafe import Markup
from meilisearch_python_sdk.errors import MeilisearchApiError, MeilisearchError

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
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


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
    with_facets: bool | tuple[str, ...] = False,
) -> SearchResult:
    """Validated input only: unknown types or locales are the route's 422, not ours.
    Facet counts cost Meilisearch time: only the search pages ask for them (`True`: FACETS; or
    the names to count, such as the desk's ("status",))."""
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    facets = dict(facets or {})
    allowed = registry.searchable_names(actor)
    names = [n for n in (types or allowed) if n in allowed]
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


def multi_search_body(
    actor: Actor,
    query: str,
    names: list[str],
    locale: str | None,
    facets: dict[str, str],
    limit: int,
    offset: int,
    with_facets: bool | tuple[str, ...],
) -> dict[str, Any] | None:
    """The federated multi-search Meilisearch receives (None: no type can match). The benchmark
    sends the very same body to raw Meilisearch."""
    query_locales = ["jpn"] if JAPANESE.search(query) else None
    facets = dict(facets)
    type_facet = facets.pop("type", None)
    queries: list[dict[str, Any]] = []
    for name in names:
        if type_facet and type_facet != name:
            continue
        doc_type = registry.get(name)
        own_facets = {k: v for k, v in facets.items() if k in doc_type.facet_fields or k == "locale"}
        if len(own_facets) < len(facets):
            continue  # this type cannot match a facet it does not have
        queries.append(
            {
                "indexUid": name,
                "q": query,
                "filter": _filters(actor, locale, own_facets),
                "attributesToRetrieve": ["type", "pk", "locale", "url", "title_en", "title_ja"],
                "attributesToCrop": ["text_en", "text_ja"],
                "cropLength": 28,
                "attributesToHighlight": ["title_en", "title_ja", "text_en", "text_ja"],
                "highlightPreTag": PRE,
                "highlightPostTag": POST,
                "cropMarker": "…",
                **({"locales": query_locales} if query_locales else {}),
            }
        )
    if not queries:
        return None
    federation: dict[str, Any] = {"limit": limit, "offset": offset}
    if with_facets:
        wanted = FACETS if with_facets is True else with_facets
        federation["facetsByIndex"] = {
            q["indexUid"]: [
                f for f in wanted if f in ("type", "locale") or f in registry.get(q["indexUid"]).facet_fields
            ]
            for q in queries
        }
        federation["mergeFacets"] = {"maxValuesPerFacet": 50}
    return {"federation": federation, "queries": queries}


async def _meili_search(
    actor: Actor,
    query: str,
    names: list[str],
    locale: str | None,
    facets: dict[str, str],
    limit: int,
    offset: int,
    with_facets: bool | tuple[str, ...],
) -> SearchResult:
    body = multi_search_body(actor, query, names, locale, facets, limit, offset, with_facets)
    if body is None:
        return SearchResult(query=query)
    response = await _multi_search(body)
    hits = []
    for raw in response.get("hits", []):
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
    distribution = response.get("facetDistribution") or {}
    return SearchResult(
        query=query,
        hits=hits,
        total=response.get("estimatedTotalHits") or len(hits),
        facets={k: dict(v) for k, v in distribution.items()},
    )


async def _multi_search(body: dict[str, Any]) -> dict[str, Any]:
    """POST /multi-search with the search-only client's connection. The body is built and the
    reply read as plain JSON: the SDK's model layer cost ~0.6 ms a query (docs/BENCHMARKS.md)."""
    meili = await search_client()
    response = await meili.http_client.post(
        "multi-search", content=_encode(body), headers={"Content-Type": "application/json"}
    )
    if response.status_code >= 400:
        raise MeilisearchApiError(f"multi-search answered {response.status_code}", response)
    return _decode(response.content)


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

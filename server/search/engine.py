"""Meilisearch through meilisearch-python-sdk's AsyncClient: one client per process,
index settings set in code, and the admin-editable synonyms and stop words."""

from __future__ import annotations

import asyncio

from meilisearch_python_sdk import AsyncClient
from meilisearch_python_sdk.errors import MeilisearchApiError
from meilisearch_python_sdk.models.client import KeyCreate
from meilisearch_python_sdk.models.settings import LocalizedAttributes, MeilisearchSettings

from server.search.registry import DocumentType
from server.search.tables import SearchSetting
from server.settings import get_settings

TIMEOUT_SECONDS = 5
# (event loop, client): a client belongs to the loop that made it (see server/search/client.py).
_client: tuple[asyncio.AbstractEventLoop, AsyncClient] | None = None

LOCALIZED = [
    LocalizedAttributes(locales=["jpn"], attribute_patterns=["*_ja"]),
    LocalizedAttributes(locales=["eng"], attribute_patterns=["*_en"]),
]


def client() -> AsyncClient:
    global _client
    loop = asyncio.get_running_loop()
    if _client is None or _client[0] is not loop:
        settings = get_settings()
        # identity: a compressed chunked reply waits on a delayed ACK (~40 ms per search)
        meili = AsyncClient(
            settings.meili_url,
            settings.meili_master_key,
            timeout=TIMEOUT_SECONDS,
            custom_headers={"Accept-Encoding": "identity"},
        )
        _client = (loop, meili)
    return _client[1]


_search_client: tuple[asyncio.AbstractEventLoop, AsyncClient] | None = None


async def search_client() -> AsyncClient:
    """A client holding a search-only key, for queries: the master key is for indexing and
    settings only. Meilisearch creates a default search key when a master key is set."""
    global _search_client
    loop = asyncio.get_running_loop()
    if _search_client is None or _search_client[0] is not loop:
        keys = await client().get_keys(limit=100)
        key = next((k.key for k in keys.results if k.actions == ["search"] and k.indexes == ["*"]), None)
        if key is None:
            created = await client().create_key(
                KeyCreate(name="Kizuna search", description="search-only key", actions=["search"], indexes=["*"])
            )
            key = created.key
        base_url = str(client().http_client.base_url).rstrip("/")  # the same server as the master client
        meili = AsyncClient(base_url, key, timeout=TIMEOUT_SECONDS, custom_headers={"Accept-Encoding": "identity"})
        _search_client = (loop, meili)
    return _search_client[1]


async def close_client() -> None:
    global _client, _search_client
    loop = asyncio.get_running_loop()
    if _client is not None and _client[0] is loop:
        await _client[1].aclose()
        _client = None
    if _search_client is not None and _search_client[0] is loop:
        await _search_client[1].aclose()
        _search_client = None


async def search_settings() -> tuple[dict[str, list[str]], list[str]]:
    selected = await SearchSetting.select(SearchSetting.key, SearchSetting.value).output(load_json=True)
    rows = {r["key"]: r["value"] for r in selected}
    synonyms = rows.get("synonyms") or {}
    stop_words = rows.get("stop_words") or []
    return dict(synonyms), list(stop_words)


def index_settings(
    doc_type: DocumentType, synonyms: dict[str, list[str]], stop_words: list[str]
) -> MeilisearchSettings:
    return MeilisearchSettings(
        searchable_attributes=["title_en", "title_ja", "text_en", "text_ja", *doc_type.facet_fields],
        filterable_attributes=["type", "locale", "audience", "pk", *doc_type.facet_fields],
        sortable_attributes=["updated_at", "rank"],
        # Title hits first (attribute order above), then the type's own quality signal.
        ranking_rules=["words", "typo", "proximity", "attribute", "sort", "exactness", "rank:desc"],
        localized_attributes=LOCALIZED,
        synonyms=synonyms,
        stop_words=stop_words,
        displayed_attributes=["*"],
    )


async def ensure_index(doc_type: DocumentType, uid: str | None = None, *, wait: bool = True) -> None:
    """Create the index if missing and apply its settings (idempotent)."""
    uid = uid or doc_type.name
    meili = client()
    synonyms, stop_words = await search_settings()
    wanted = index_settings(doc_type, synonyms, stop_words)
    try:
        await meili.get_index(uid)
    except MeilisearchApiError:
        await meili.create_index(uid, primary_key="id", settings=wanted, wait=wait, timeout_in_ms=60_000)
        return
    task = await meili.index(uid).update_settings(wanted)
    if wait:
        await meili.wait_for_task(task.task_uid, timeout_in_ms=60_000, raise_for_status=True)

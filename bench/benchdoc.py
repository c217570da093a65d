"""A bench-only searchable type backed by a generated list instead of the database, so a
100,000-document reindex needs no 50,000 article rows; the search core cannot tell the difference.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from bench.generate import TYPE_NAME
from server.search import registry
from server.search.registry import SearchDoc

# The knowledge base's own reindex batch (server/kb/search.py BATCH), so `reindex` sends the
# same-sized additions it would for articles: 500 objects, 1,000 documents.
PK_BATCH = 500


class BenchDocs:
    name = TYPE_NAME
    facet_fields: tuple[str, ...] = ("category",)

    def __init__(self, docs: list[SearchDoc], pk_batch: int = PK_BATCH) -> None:
        self.by_pk: dict[int, list[SearchDoc]] = {}
        for doc in docs:
            self.by_pk.setdefault(doc.pk, []).append(doc)
        self.pk_batch = pk_batch

    async def build(self, pks: list[int]) -> dict[int, list[SearchDoc]]:
        return {pk: list(self.by_pk.get(pk, [])) for pk in pks}

    async def all_pks(self) -> AsyncIterator[list[int]]:
        pks = sorted(self.by_pk)
        for start in range(0, len(pks), self.pk_batch):
            yield pks[start : start + self.pk_batch]

    async def db_search(
        self, query: str, audience: list[str] | None, locale: str | None, facets: dict[str, str], limit: int
    ) -> tuple[list[SearchDoc], int]:
        terms = query.lower().split()
        found = [
            doc
            for docs in self.by_pk.values()
            for doc in docs
            if (audience is None or set(doc.audience) & set(audience))
            and (locale is None or doc.locale == locale)
            and all(doc.facets.get(k) == v for k, v in facets.items())
            and all(t in doc.title.lower() or t in doc.text.lower() for t in terms)
        ]
        return found[:limit], len(found)


def register(docs: list[SearchDoc], pk_batch: int = PK_BATCH) -> BenchDocs:
    doc_type = BenchDocs(docs, pk_batch)
    registry.register(doc_type)
    return doc_type

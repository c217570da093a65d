"""A test document type ("note") so the search core is tested against a real Meilisearch
without depending on any feature; features test their own types end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from server import jobs
from server.search import registry
from server.search.registry import SearchDoc
from tests.conftest import fresh_indexes


class NoteType:
    name = "note"
    facet_fields = ("category",)

    def __init__(self) -> None:
        self.docs: dict[int, list[SearchDoc]] = {}

    def put(
        self,
        pk: int,
        title: str,
        text: str,
        *,
        audience: list[str] | None = None,
        locale: str = "en",
        category: str = "general",
    ) -> None:
        self.docs[pk] = [
            SearchDoc(
                type="note",
                pk=pk,
                locale=locale,
                title=title,
                text=text,
                url=f"/notes/{pk}",
                audience=audience or ["public"],
                facets={"category": category},
            )
        ]

    async def build(self, pks: list[int]) -> dict[int, list[SearchDoc]]:
        return {pk: list(self.docs.get(pk, [])) for pk in pks}

    async def all_pks(self) -> AsyncIterator[list[int]]:
        pks = sorted(self.docs)
        for start in range(0, len(pks), 500):
            yield pks[start : start + 500]

    async def db_search(
        self, query: str, audience: list[str] | None, locale: str | None, facets: dict[str, str], limit: int
    ) -> tuple[list[SearchDoc], int]:
        found = [
            d
            for docs in self.docs.values()
            for d in docs
            if query.lower() in (d.title + " " + d.text).lower()
            and (audience is None or set(d.audience) & set(audience))
            and (locale is None or d.locale == locale)
        ]
        return found[:limit], len(found)


@pytest.fixture
def notes() -> Iterator[NoteType]:
    note_type = NoteType()
    registry.register(note_type)
    yield note_type
    registry._types.pop("note", None)


@pytest.fixture
async def note_index(meili_server: str, notes: NoteType) -> AsyncIterator[NoteType]:
    """A fresh, empty `note` index with the settings from code, and every other registered index
    empty too (Meilisearch outlives each test's database), so searches across types see only notes."""
    await fresh_indexes()
    yield notes


async def index_notes(notes: NoteType) -> None:
    """What services do (enqueue in their transaction) and the worker does (run the job)."""
    from server.db import atomic
    from server.search.sync import enqueue_sync, wait_until_idle

    async with atomic():
        for pk in notes.docs:
            await enqueue_sync("note", pk)
    await jobs.run_pending("test")
    await wait_until_idle()

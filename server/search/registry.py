"""The registry of searchable types. A feature plugs into search by registering one
`DocumentType`; the search core (sync, query, fallback, reindex) never names a feature.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from server.policy import Actor


@dataclass(frozen=True)
class SearchDoc:
    """One searchable document in one locale."""

    type: str  # the DocumentType's name, e.g. "kb"
    pk: int  # the owning object's primary key (all locales of an article share it)
    locale: str  # "en" | "ja"
    title: str
    text: str  # plain text, no markup
    url: str
    audience: list[str]  # labels from policy: "public", "signed_in", "tier:gold", "staff", ...
    facets: dict[str, str | list[str]] = field(default_factory=dict)  # e.g. {"category": "billing"}
    rank: float = 0.0  # type-specific quality signal, higher is better (e.g. helpfulness)
    updated_at: int = 0  # unix seconds

    @property
    def id(self) -> str:
        return f"{self.type}-{self.pk}-{self.locale}"

    def to_meili(self) -> dict[str, object]:
        """The document as Meilisearch stores it: text fields carry their locale in the name,
        so `localizedAttributes` tokenises Japanese and English each the right way."""
        return {
            "id": self.id,
            "type": self.type,
            "pk": self.pk,
            "locale": self.locale,
            f"title_{self.locale}": self.title,
            f"text_{self.locale}": self.text,
            "url": self.url,
            "audience": self.audience,
            "rank": self.rank,
            "updated_at": self.updated_at,
            **self.facets,
        }


class DocumentType(Protocol):
    name: str  # also the Meilisearch index uid
    facet_fields: tuple[str, ...]  # extra filterable/facet fields the documents carry

    async def build(self, pks: list[int]) -> dict[int, list[SearchDoc]]:
        """Current documents for these objects; an empty list means "remove from search"
        (deleted, unpublished, or otherwise not searchable)."""
        ...

    def all_pks(self) -> AsyncIterator[list[int]]:
        """Every object's pk, in batches, for a full reindex."""
        ...

    async def db_search(
        self, query: str, audience: list[str] | None, locale: str | None, facets: dict[str, str], limit: int
    ) -> tuple[list[SearchDoc], int]:
        """The fallback when Meilisearch is down: the same audience rule as SQL
        (`audience` None means no restriction: staff). Returns (docs, total)."""
        ...


_types: dict[str, DocumentType] = {}


def searchable_names(actor: Actor) -> list[str]:
    """The types this actor may search at all. A type narrows it with an optional
    `may_search(actor) -> bool` (tickets: agents only, so moderators, who are staff, never see
    ticket hits); the audience filter still applies inside every type."""
    return [name for name, doc_type in _types.items() if getattr(doc_type, "may_search", _anyone)(actor)]


def _anyone(actor: Actor) -> bool:
    return True


def register(doc_type: DocumentType) -> DocumentType:
    _types[doc_type.name] = doc_type
    return doc_type


def get(name: str) -> DocumentType:
    return _types[name]


def names() -> list[str]:
    return sorted(_types)


def all_types() -> list[DocumentType]:
    return [_types[name] for name in names()]

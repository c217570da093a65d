"""Tickets as search documents, for staff only (audience `staff`).

A document holds the subject and the public conversation, never internal notes: what search
shows about a ticket is what its requester could read anyway. Merged tickets leave the index.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from piccolo.columns.combination import Or

from server import policy
from server.desk.tables import Ticket, TicketMessage
from server.kb.search import html_text
from server.policy import Actor
from server.search import fallback, registry
from server.search.registry import SearchDoc

MAX_TEXT_CHARS = 20_000
AUDIENCE = ["staff"]
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")

DOC_COLUMNS = (
    Ticket.id,
    Ticket.subject,
    Ticket.status,
    Ticket.priority,
    Ticket.tags,
    Ticket.locale,
    Ticket.updated_at,
    Ticket.merged_into,
)


def ticket_locale(subject: str, fallback: str) -> str:
    return "ja" if JAPANESE.search(subject) else (fallback if fallback in ("en", "ja") else "en")


def _doc(row: dict[str, Any], text: str) -> SearchDoc:
    return SearchDoc(
        type="ticket",
        pk=row["id"],
        locale=ticket_locale(row["subject"], row["locale"]),
        title=f"#{row['id']} {row['subject']}",
        text=text[:MAX_TEXT_CHARS],
        url=f"/desk/tickets/{row['id']}",
        audience=list(AUDIENCE),
        facets={"status": row["status"], "priority": row["priority"], "tags": list(row["tags"])},
        updated_at=int(row["updated_at"].timestamp()),
    )


async def _public_text(ticket_ids: list[int]) -> dict[int, str]:
    rows = (
        await TicketMessage.select(TicketMessage.ticket, TicketMessage.body_html)
        .where(TicketMessage.ticket.is_in(ticket_ids) & (TicketMessage.kind == "public"))
        .order_by(TicketMessage.id)
    )
    texts: dict[int, list[str]] = {}
    for row in rows:
        texts.setdefault(row["ticket"], []).append(html_text(row["body_html"]))
    return {ticket_id: "\n".join(parts) for ticket_id, parts in texts.items()}


class TicketDocuments:
    name = "ticket"
    facet_fields = ("status", "priority", "tags")

    @staticmethod
    def may_search(actor: Actor) -> bool:
        """Tickets are for the desk: agents and admins, not moderators (who are staff too)."""
        return policy.can_use_desk(actor)

    async def build(self, pks: list[int]) -> dict[int, list[SearchDoc]]:
        docs: dict[int, list[SearchDoc]] = {pk: [] for pk in pks}
        if not pks:
            return docs
        rows = (
            await Ticket.select(*DOC_COLUMNS)
            .where(Ticket.id.is_in(list(pks)), Ticket.merged_into.is_null())
            .output(load_json=True)
        )
        texts = await _public_text([r["id"] for r in rows]) if rows else {}
        for row in rows:
            docs[row["id"]].append(_doc(row, texts.get(row["id"], "")))
        return docs

    def all_pks(self) -> AsyncIterator[list[int]]:
        return fallback.id_batches(Ticket)

    async def db_search(
        self, query: str, audience: list[str] | None, locale: str | None, facets: dict[str, str], limit: int
    ) -> tuple[list[SearchDoc], int]:
        """Substring search on the subject (and `#123` for an id); staff only."""
        if audience is not None and "staff" not in audience:
            return [], 0
        facets = dict(facets)
        facets.pop("locale", None)
        if set(facets) - {"status", "priority"}:
            return [], 0
        clauses: list[Any] = [Ticket.merged_into.is_null()]
        if "status" in facets:
            clauses.append(Ticket.status == facets["status"])
        if "priority" in facets:
            clauses.append(Ticket.priority == facets["priority"])
        for term in fallback.query_terms(query):
            in_subject = fallback.contains_term(term, ["ticket.subject"])
            if term.lstrip("#").isdigit() and len(term) < 12:
                in_subject = Or(Ticket.id == int(term.lstrip("#")), in_subject)
            clauses.append(in_subject)
        total = await Ticket.count().where(*clauses)
        rows = (
            await Ticket.select(*DOC_COLUMNS)
            .where(*clauses)
            .order_by(Ticket.updated_at, ascending=False)
            .limit(max(1, limit))
            .output(load_json=True)
        )
        texts = await _public_text([r["id"] for r in rows]) if rows else {}
        docs = [_doc(row, texts.get(row["id"], "")) for row in rows]
        if locale:
            docs = [d for d in docs if d.locale == locale]
        return docs, total


documents = registry.register(TicketDocuments())

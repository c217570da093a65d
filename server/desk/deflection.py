"""Deflection on the web form: which answers we suggested, what the customer opened, and
whether they left without submitting — so Insight can report how many tickets self-service
saved.

The form page carries a signed *visit* token; each suggestion list carries a signed token that
names the visit, the query and the documents shown. The browser posts them back (beacons), so
GET requests stay read-only and nobody can record suggestions we never showed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from server import retention
from server.accounts.auth import utcnow
from server.db import atomic
from server.desk.tables import DeflectionEvent
from server.errors import Invalid
from server.policy import Actor
from server.settings import get_settings

MAX_AGE_SECONDS = 24 * 3600
KINDS = ("shown", "click", "left", "submitted")

# Retention. The deflection-rate report (Insight, not built yet) has nothing else to read: there is
# no daily rollup, and the rate needs whole visits (shown → click → left or submitted) counted
# over whatever period the report asks for. So the raw rows are the report's data and are kept
# 400 days: a year of reporting (this month against the same month last year) plus a margin.
# Older rows are deleted hourly. A visit lasts at most MAX_AGE_SECONDS, so the cut splits at most
# a day's visits, 400 days back, outside any yearly report. When Insight stores daily totals,
# the raw rows need keeping only until they are counted.
KEEP_EVENTS = timedelta(days=400)
PRUNE_KIND = "desk.deflection_prune"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt="kizuna.desk.deflection")


def new_visit(actor: Actor) -> str:
    return _serializer().dumps({"v": secrets.token_hex(8), "u": actor.user_id})


def shown_token(visit_token: str, query: str, docs: list[str]) -> str:
    visit = read(visit_token)
    return _serializer().dumps({"v": visit.visit, "u": visit.user_id, "q": query[:200], "d": docs[:20]})


@dataclass(frozen=True)
class Visit:
    visit: str
    user_id: int | None
    query: str = ""
    docs: tuple[str, ...] = ()


def read(token: str) -> Visit:
    try:
        data: dict[str, Any] = _serializer().loads(token, max_age=MAX_AGE_SECONDS)
        return Visit(
            visit=str(data["v"]),
            user_id=data.get("u"),
            query=str(data.get("q", "")),
            docs=tuple(str(d) for d in data.get("d", [])),
        )
    except (BadSignature, KeyError, TypeError, ValueError) as exc:
        raise Invalid({"token": "invalid deflection token"}) from exc


def _mine(actor: Actor, visit: Visit) -> Visit:
    if visit.user_id != actor.user_id:
        raise Invalid({"token": "invalid deflection token"})
    return visit


async def record(actor: Actor, kind: str, token: str, doc: str = "", ticket_id: int | None = None) -> None:
    """`shown` and `click` take a suggestions token; `left` and `submitted` the visit token.
    A visit is `left` and `submitted` once each; a click must name a document that was shown."""
    if kind not in KINDS:
        raise Invalid({"kind": "unknown event"})
    visit = _mine(actor, read(token))
    docs: list[str] = []
    if kind in ("shown", "click"):
        if not visit.docs:
            raise Invalid({"token": "nothing was shown"})
        docs = list(visit.docs)
        if kind == "click":
            if doc not in visit.docs:
                raise Invalid({"doc": "not a suggestion of this visit"})
            docs = [doc]
    async with atomic():
        if kind in ("left", "submitted"):
            # Submitting counts even after a `left` (they came back); leaving after submitting does not.
            final = ["submitted"] if kind == "submitted" else ["left", "submitted"]
            done = DeflectionEvent.exists().where(
                (DeflectionEvent.visit == visit.visit) & DeflectionEvent.kind.is_in(final)
            )
            if await done:
                return
        await DeflectionEvent.insert(
            DeflectionEvent(
                visit=visit.visit,
                kind=kind,
                user=actor.user_id,
                query=visit.query,
                docs=docs,
                ticket=ticket_id,
                created_at=utcnow(),
            )
        )


@retention.prunes(PRUNE_KIND)
async def prune_events() -> int:
    """Delete the events older than KEEP_EVENTS; returns how many went."""
    return await retention.delete_in_batches(DeflectionEvent, "created_at < {}", utcnow() - KEEP_EVENTS)

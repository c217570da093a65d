"""Search actions: analytics records and the admin's synonyms and stop words.

Result pages carry a signed token naming the query, its result count and whether search was
degraded; the browser posts it back (with clicks) so GET requests stay read-only and nobody
can forge counts.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from server import policy
from server.db import atomic
from server.errors import Invalid
from server.i18n import _
from server.jobs import now
from server.policy import Actor, ensure
from server.search.query import normalise
from server.search.sync import enqueue_settings_update
from server.search.tables import SearchClick, SearchQueryLog, SearchSetting
from server.settings import get_settings

TOKEN_MAX_AGE = 24 * 3600
MAX_SYNONYM_GROUPS = 500
MAX_STOP_WORDS = 500


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt="kizuna.search.log")


def results_token(query: str, locale: str, count: int, degraded: bool, signed_in: bool) -> str:
    return _serializer().dumps(
        {
            "i": secrets.token_hex(8),
            "q": normalise(query),
            "l": locale,
            "n": count,
            "d": degraded,
            "s": signed_in,
        }
    )


@dataclass(frozen=True)
class _Logged:
    token_id: str
    query: str
    locale: str
    count: int
    degraded: bool
    signed_in: bool


def _read_token(token: str) -> _Logged:
    try:
        data: dict[str, Any] = _serializer().loads(token, max_age=TOKEN_MAX_AGE)
        return _Logged(str(data["i"]), str(data["q"]), str(data["l"]), int(data["n"]), bool(data["d"]), bool(data["s"]))
    except (BadSignature, KeyError, TypeError, ValueError) as exc:
        raise Invalid({"token": "invalid search token"}) from exc


async def _log_row(logged: _Logged) -> int:
    await SearchQueryLog.insert(
        SearchQueryLog(
            token_id=logged.token_id,
            query=logged.query,
            locale=logged.locale,
            result_count=logged.count,
            degraded=logged.degraded,
            signed_in=logged.signed_in,
            created_at=now(),
        )
    ).on_conflict(target=SearchQueryLog.token_id, action="DO NOTHING")
    row = await SearchQueryLog.select(SearchQueryLog.id).where(SearchQueryLog.token_id == logged.token_id).first()
    return row["id"]


async def record_results(token: str) -> None:
    """A results page was shown. Repeating the same token records it once."""
    logged = _read_token(token)
    if not logged.query:
        return
    async with atomic():
        await _log_row(logged)


async def record_click(token: str, doc_type: str, doc_id: str, position: int) -> None:
    logged = _read_token(token)
    if not logged.query or not re.fullmatch(r"[a-z_]{1,20}", doc_type) or len(doc_id) > 60:
        raise Invalid({"hit": "invalid hit"})
    async with atomic():
        log_id = await _log_row(logged)
        await SearchClick.insert(
            SearchClick(
                query_log=log_id,
                doc_type=doc_type,
                doc_id=doc_id,
                position=max(0, min(position, 1000)),
                created_at=now(),
            )
        )


# Admin: synonyms and stop words -----------------------------------------------------------


def parse_synonyms(text: str) -> dict[str, list[str]]:
    """One group per line, words separated by commas: every word is a synonym of the others."""
    synonyms: dict[str, list[str]] = {}
    groups = [line for line in text.splitlines() if line.strip()]
    if len(groups) > MAX_SYNONYM_GROUPS:
        raise Invalid({"synonyms": _("Use at most %(n)s lines.", n=MAX_SYNONYM_GROUPS)})
    for line in groups:
        words = list(dict.fromkeys(w.strip().lower() for w in line.split(",") if w.strip()))
        if len(words) < 2:
            raise Invalid({"synonyms": _("Each line needs at least two words separated by commas.")})
        for word in words:
            synonyms[word] = sorted(set(synonyms.get(word, [])) | {w for w in words if w != word})
    return synonyms


def parse_stop_words(text: str) -> list[str]:
    words = list(dict.fromkeys(w.strip().lower() for w in re.split(r"[,\s]+", text) if w.strip()))
    if len(words) > MAX_STOP_WORDS:
        raise Invalid({"stop_words": _("Use at most %(n)s words.", n=MAX_STOP_WORDS)})
    return words


async def save_search_settings(actor: Actor, synonyms_text: str, stop_words_text: str) -> None:
    ensure(policy.can_administer_search(actor))
    synonyms, stop_words = parse_synonyms(synonyms_text), parse_stop_words(stop_words_text)
    async with atomic():
        for key, value in (
            ("synonyms", synonyms),
            ("stop_words", stop_words),
            ("synonyms_text", {"text": synonyms_text.strip()}),
        ):
            await SearchSetting.insert(SearchSetting(key=key, value=value, updated_at=now())).on_conflict(
                target=SearchSetting.key, action="DO UPDATE", values=[SearchSetting.value, SearchSetting.updated_at]
            )
        await enqueue_settings_update()


def report_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    if end < start:
        raise Invalid({"end": _("The end date is before the start date.")})
    return start, end + timedelta(days=1)

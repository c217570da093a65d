"""Unsubscribe links that work without signing in: signed (itsdangerous), expiring, and
naming either one followed target or "all notification email"."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from server.accounts import links
from server.accounts.links import LinkError
from server.settings import get_settings

PURPOSE = "unsubscribe"
MAX_AGE_SECONDS = 180 * 24 * 3600  # links in old mail keep working for half a year
PATH = "/notifications/unsubscribe"


@dataclass(frozen=True)
class UnsubscribeClaims:
    user_id: int
    target_kind: str | None = None  # None: the link stops all notification email
    target_id: int | None = None


def make_token(user_id: int, target_kind: str | None = None, target_id: int | None = None) -> str:
    payload: dict[str, object] = {"u": user_id}
    if target_kind is not None and target_id is not None:
        payload.update(k=target_kind, t=target_id)
    return links.sign(PURPOSE, payload)


def read_token(token: str) -> UnsubscribeClaims:
    """Raises LinkError("invalid" | "expired")."""
    if not token or len(token) > 1000:
        raise LinkError("invalid")
    data = links.unsign(PURPOSE, token, max_age=MAX_AGE_SECONDS)
    try:
        user_id = int(data["u"])
        kind = data.get("k")
        target_id = data.get("t")
        if kind is None:
            return UnsubscribeClaims(user_id)
        return UnsubscribeClaims(user_id, str(kind), int(target_id))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise LinkError("invalid") from exc


def unsubscribe_url(token: str) -> str:
    return f"{get_settings().base_url}{PATH}?{urlencode({'token': token})}"


def mail_headers(token: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058: mail clients show an unsubscribe button that POSTs to the link."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(token)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }

"""Emailed links (verify email, reset password, later unsubscribe): signed and expiring.

The signature and expiry live in the link (itsdangerous); for single-use purposes a
`OneTimeToken` row records the link's id so a used link cannot be used again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from server.settings import get_settings

MAX_AGE_SECONDS = {"verify": 3 * 24 * 3600, "reset": 3600}


class LinkError(Exception):
    """The link is forged, expired or already used; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkClaims:
    user_id: int
    jti: str


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt=f"kizuna.link.{purpose}")


def sign(purpose: str, payload: dict[str, Any]) -> str:
    return _serializer(purpose).dumps(payload)


def unsign(purpose: str, token: str, max_age: int | None = None) -> dict[str, Any]:
    try:
        data = _serializer(purpose).loads(token, max_age=max_age or MAX_AGE_SECONDS[purpose])
    except SignatureExpired as exc:
        raise LinkError("expired") from exc
    except BadSignature as exc:
        raise LinkError("invalid") from exc
    if not isinstance(data, dict):
        raise LinkError("invalid")
    return data


def read_claims(purpose: str, token: str) -> LinkClaims:
    data = unsign(purpose, token)
    try:
        return LinkClaims(user_id=int(data["u"]), jti=str(data["j"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise LinkError("invalid") from exc

"""The signature scheme (docs/WEBHOOKS.md): `v1=` + hex HMAC-SHA256 of `<timestamp>.<body>`
keyed with the endpoint's secret. The timestamp is unix seconds, sent in its own header, so a
receiver can refuse old (replayed) requests."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - a label, not a secret
ID_HEADER = "Kizuna-Webhook-Id"
TIMESTAMP_HEADER = "Kizuna-Webhook-Timestamp"
SIGNATURE_HEADER = "Kizuna-Webhook-Signature"
EVENT_HEADER = "Kizuna-Webhook-Event"
VERSION = "v1"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def headers(secret: str, event_uid: str, event: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "Kizuna-Webhooks/1",
        ID_HEADER: event_uid,
        EVENT_HEADER: event,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def masked(secret: str) -> str:
    """What the admin pages show after the secret was revealed once."""
    return f"{SECRET_PREFIX}…{secret[-4:]}" if len(secret) > 10 else "…"

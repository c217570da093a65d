"""Checks and conversions for knowledge-base input, shared by the services, pages and API."""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Any

from server.i18n import LOCALES, _
from server.kb.tables import STATUSES, VISIBILITIES

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,118}[a-z0-9])?$")
TAG_RE = re.compile(r"^[\w][\w .+#-]{0,39}$")
MAX_TITLE_CHARS = 200
MAX_NAME_CHARS = 120
MAX_DESCRIPTION_CHARS = 1000
MAX_TAGS = 20
MAX_COMMENT_CHARS = 2000
MAX_NOTE_CHARS = 200


def check_slug(slug: str, errors: dict[str, str], max_chars: int = 120) -> None:
    if not SLUG_RE.match(slug) or len(slug) > max_chars:
        errors["slug"] = _("Use lower-case letters, digits and hyphens (at most %(n)s).", n=max_chars)


def check_visibility(visibility: str | None, errors: dict[str, str], *, inherit_ok: bool) -> None:
    if visibility is None and inherit_ok:
        return
    if visibility not in VISIBILITIES:
        errors["visibility"] = _("Choose a visibility from the list.")


def check_locale(locale: str, errors: dict[str, str]) -> None:
    if locale not in LOCALES:
        errors["locale"] = _("Choose a language from the list.")


def check_status(status: str | None, errors: dict[str, str]) -> None:
    if status is not None and status not in STATUSES:
        errors["status"] = _("Choose draft or published.")


def check_title(title: str, errors: dict[str, str]) -> None:
    if not title:
        errors["title"] = _("Give the article a title.")
    elif len(title) > MAX_TITLE_CHARS:
        errors["title"] = _("Keep the title under %(n)s characters.", n=MAX_TITLE_CHARS)


def check_name(key: str, value: str, errors: dict[str, str]) -> None:
    if not value:
        errors[key] = _("This field is required.")
    elif len(value) > MAX_NAME_CHARS:
        errors[key] = _("Keep this under %(n)s characters.", n=MAX_NAME_CHARS)


def check_description(key: str, value: str, errors: dict[str, str]) -> None:
    if len(value) > MAX_DESCRIPTION_CHARS:
        errors[key] = _("Keep this under %(n)s characters.", n=MAX_DESCRIPTION_CHARS)


def clean_labels(values: list[str], key: str, errors: dict[str, str]) -> list[str]:
    """Tags or tiers: trimmed, lower-cased, de-duplicated, each a short word."""
    cleaned: list[str] = []
    for raw in values:
        value = " ".join(unicodedata.normalize("NFKC", raw).split()).lower()
        if value and value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_TAGS or any(not TAG_RE.match(v) for v in cleaned):
        errors[key] = _("Use at most %(n)s short labels of letters, digits and hyphens.", n=MAX_TAGS)
    return cleaned


def split_labels(text: str) -> list[str]:
    """A comma-separated form field (Japanese commas too) as a list."""
    return [part for part in re.split(r"[,、，]", text) if part.strip()]


def slugify(title: str) -> str:
    """An ASCII slug from a title; a random one when the title has no Latin letters."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:80].strip("-")
    return slug or f"article-{secrets.token_hex(3)}"


def effective_visibility(
    own: str | None, own_tiers: list[str], category: str, category_tiers: list[str]
) -> tuple[str, list[str]]:
    """The visibility in force: the article's own, else its category's; tiers only for members."""
    visibility, tiers = (own, own_tiers) if own is not None else (category, category_tiers)
    return visibility, (list(tiers) if visibility == "members" else [])


def localized(row: dict[str, Any], key: str, locale: str) -> str:
    """`row[key_<locale>]`, falling back to the other language when empty."""
    value = row.get(f"{key}_{locale}") or ""
    if value:
        return value
    return next((row.get(f"{key}_{other}") or "" for other in LOCALES if other != locale), "")


def int_or(value: str | None, default: int) -> int:
    try:
        return int(value or "")
    except ValueError:
        return default

"""UI strings through Babel: the catalog of the current request's locale.

Catalogs live in `server/locales/<locale>/LC_MESSAGES/`: `messages.po` (kept by `make i18n`)
plus optional per-feature files (`forum.po`, `desk.po`, ...) that are merged into it, so work on
two features never edits one file. They are compiled in memory at start-up, so there is no build
step and no stale `.mo` file. English is the source language.
"""

from __future__ import annotations

import contextvars
import io
from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("en", "ja")
DEFAULT_LOCALE = "en"
LOCALE_NAMES = {"en": "English", "ja": "日本語"}
CATALOG_DIR = Path(__file__).parent / "locales"

_current_locale: contextvars.ContextVar[str] = contextvars.ContextVar("kizuna_locale", default=DEFAULT_LOCALE)


def load_catalog(locale: str) -> Catalog:
    """`messages.po` merged with every other `.po` file of the locale; a translated entry wins
    over an empty or fuzzy one."""
    folder = CATALOG_DIR / locale / "LC_MESSAGES"
    main = folder / "messages.po"
    paths = ([main] if main.exists() else []) + sorted(p for p in folder.glob("*.po") if p != main)
    merged = Catalog(locale=locale)
    for path in paths:
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        for message in catalog:
            if not message.id:
                continue
            existing = merged.get(message.id, context=message.context)
            if existing is None or (message.string and (not existing.string or existing.fuzzy)) and not message.fuzzy:
                merged[message.id] = message
    return merged


@cache
def translations(locale: str) -> NullTranslations:
    if locale == DEFAULT_LOCALE or not (CATALOG_DIR / locale / "LC_MESSAGES").exists():
        return NullTranslations()
    catalog = load_catalog(locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def set_locale(locale: str) -> contextvars.Token[str]:
    return _current_locale.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def get_locale() -> str:
    return _current_locale.get()


def gettext(message: str, **params: object) -> str:
    text = translations(get_locale()).gettext(message)
    return text % params if params else text


def pgettext(context: str, message: str, **params: object) -> str:
    """`gettext` for a word whose translation depends on where it stands (msgctxt `context`):
    "Email" is メールアドレス on a form and メール as a ticket's channel."""
    text = translations(get_locale()).pgettext(context, message)
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, **params: object) -> str:
    text = translations(get_locale()).ngettext(singular, plural, n)
    params.setdefault("num", n)
    return text % params


_ = gettext


def negotiate(accept_language: str | None) -> str:
    """Best supported locale for an Accept-Language header."""
    if not accept_language:
        return DEFAULT_LOCALE
    preferred = []
    for part in accept_language.split(","):
        tag, _sep, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        preferred.append((weight, tag.strip().replace("-", "_")))
    preferred.sort(key=lambda item: -item[0])
    match = Locale.negotiate([tag for _w, tag in preferred], list(LOCALES))
    return str(match.language) if match else DEFAULT_LOCALE

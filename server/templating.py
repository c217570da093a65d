"""The one Jinja2 environment: HTML pages through Litestar, and mail bodies.

Strings go through Babel's gettext of the current locale (`server.i18n`), so a template
renders in whatever locale the request or the mail's recipient has.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from litestar.plugins.jinja import JinjaTemplateEngine as Engine
from markupsafe import Markup

from server import i18n
from server.settings import ROOT

TEMPLATE_DIR = ROOT / "templates"
STATIC_VERSION = "1"


def _format_datetime(value: datetime | None, time_zone: str = "UTC") -> str:
    if value is None:
        return ""
    try:
        zone = ZoneInfo(time_zone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


# Translated template strings per (locale, message, autoescape): a page asks for the same few
# dozen strings on every request and row (a conversation's "Internal note", a list's headers).
# Messages are literals of the templates, so this stays small; the cap is a guard.
_TRANSLATED: dict[tuple[str, str, bool], tuple[str, str | None]] = {}
_TRANSLATED_MAX = 20_000


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str, **variables: Any) -> str:
    """Jinja's new-style `_()`/`gettext()` (the same output: the translation, as Markup when the
    template escapes, always %-formatted with `variables`), without translating and formatting
    the same string again and again."""
    key = (i18n.get_locale(), message, bool(context.eval_ctx.autoescape))
    found = _TRANSLATED.get(key)
    if found is None:
        text: str = i18n.translations(key[0]).gettext(message)
        if key[2]:
            text = Markup(text)  # noqa: S704 - template text, as Jinja's own gettext does
        try:
            plain: str | None = text % {}
        except (KeyError, TypeError, ValueError):  # it needs its variables
            plain = None
        found = (text, plain)
        if len(_TRANSLATED) < _TRANSLATED_MAX:
            _TRANSLATED[key] = found
    text, plain = found
    if not variables and plain is not None:
        return plain
    return text % variables  # type: ignore[no-any-return]


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Environment(jinja2.Environment):
    """`row.name` on a plain dict (every database row) looks the key up first. Jinja tries the
    attribute first and catches the AttributeError, which costs as much again on each of the
    hundreds of lookups of a page; a dict has no attributes but those of its class, so the
    result is the same."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


@cache
def environment() -> jinja2.Environment:
    env = _Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates are read once per process, like the code: no stat() of every included file
        # on every render. A changed template needs a restart, as a changed module does.
        auto_reload=False,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda message: i18n.translations(i18n.get_locale()).gettext(message),
        ngettext=lambda s, p, n: i18n.translations(i18n.get_locale()).ngettext(s, p, n),
        pgettext=lambda c, m: i18n.translations(i18n.get_locale()).pgettext(c, m),
        newstyle=True,
    )
    env.globals.update(
        gettext=_gettext,
        _=_gettext,
        LOCALES=i18n.LOCALES,
        LOCALE_NAMES=i18n.LOCALE_NAMES,
        current_locale=i18n.get_locale,
        static_version=STATIC_VERSION,
    )
    env.filters["datetime"] = _format_datetime
    return env


def template_engine() -> Engine:
    return Engine.from_environment(environment())


def render_in_locale(name: str, context: dict[str, Any], locale: str) -> str:
    """A whole template rendered in `locale` outside a request (fragments for websocket
    audiences, mail parts): `.html` templates escape every value."""
    token = i18n.set_locale(locale)
    try:
        return environment().get_template(name).render(**context)
    finally:
        i18n._current_locale.reset(token)


def render_text(name: str, context: dict[str, Any], *, locale: str) -> tuple[str, str]:
    """Render a mail template in `locale`: its first line is the subject, the rest the body."""
    text = render_in_locale(name, context, locale)
    subject, _sep, body = text.strip().partition("\n")
    return subject.strip(), body.strip() + "\n"

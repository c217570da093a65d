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


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda message: i18n.translations(i18n.get_locale()).gettext(message),
        ngettext=lambda s, p, n: i18n.translations(i18n.get_locale()).ngettext(s, p, n),
        newstyle=True,
    )
    env.globals.update(
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

"""One ticket row of the desk's lists (`desk/_list_row.html`), rendered once per distinct content.

A view page is 25 rows, and rendering them was half of its cost; the same rows are rendered over
and over: every agent opening or refreshing a view, every live refetch after a queue change. A
row's HTML is a pure function of what it shows (the row's values, the columns, the reader's
locale and time zone, the SLA badge as of now), so it is memoised on exactly those inputs: an
entry can never be stale, it can only stop being asked for. The memo is per process and bounded.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from markupsafe import Markup

from server.desk import fields, sla
from server.i18n import get_locale
from server.templating import environment

MAX_ROWS = 20_000  # about 1.5 KB each: ~30 MB at most; cleared whole when full
_ROWS: dict[Hashable, Markup] = {}


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def desk_row(ticket: dict[str, Any], columns: Sequence[str], zone: str) -> Markup:
    badge = sla.badge(ticket)
    locale = get_locale()
    key = (
        locale,
        zone,
        tuple(columns),
        (badge["state"], badge["due_at"]) if badge else None,
        tuple((name, _frozen(value)) for name, value in ticket.items()),
    )
    try:
        found = _ROWS.get(key)
    except TypeError:  # a value that cannot be a key (none of today's columns): render each time
        return _render(ticket, columns, zone, badge)
    if found is None:
        found = _render(ticket, columns, zone, badge)
        if len(_ROWS) >= MAX_ROWS:
            _ROWS.clear()
        _ROWS[key] = found
    return found


def _render(ticket: dict[str, Any], columns: Sequence[str], zone: str, badge: dict[str, Any] | None) -> Markup:
    html = (
        environment()
        .get_template("desk/_list_row.html")
        .render(
            t=ticket,
            cols=columns,
            zone=zone,
            sla_b=badge,
            statuses=fields.status_labels(),
            priorities=fields.priority_labels(),
            channels=fields.channel_labels(),
        )
    )
    return Markup(html)  # noqa: S704 - the template escaped every value


def _install_template_helpers() -> None:
    environment().globals["desk_row"] = desk_row


_install_template_helpers()

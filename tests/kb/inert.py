"""Checks that HTML from user Markdown cannot run anything: no active elements, no event
handlers or inline styles, no script-bearing link schemes."""

from __future__ import annotations

from html.parser import HTMLParser

ACTIVE_TAGS = frozenset({"script", "img", "iframe", "svg", "math", "div", "style", "object", "embed", "form", "input"})


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.found


def assert_inert(html: str) -> None:
    for tag, attrs in elements(html):
        assert tag not in ACTIVE_TAGS, tag
        assert not any(name.startswith("on") or name == "style" for name in attrs), (tag, attrs)
        href = (attrs.get("href") or "").strip().lower()
        assert not href.startswith(("javascript", "data", "vbscript")), href

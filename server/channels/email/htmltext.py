"""HTML mail bodies: a plain-text rendering (for the ticket text and quote detection) and a
sanitised copy restricted to a safe subset (for showing the original formatting)."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

import nh3

# Elements that start a new line; the first group also leaves a blank line around them.
_PARAGRAPHS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl", "figure"}
_LINES = _PARAGRAPHS | {
    "div",
    "address",
    "article",
    "aside",
    "center",
    "dd",
    "dt",
    "fieldset",
    "figcaption",
    "footer",
    "form",
    "header",
    "li",
    "main",
    "nav",
    "section",
    "tr",
    "tbody",
    "thead",
    "tfoot",
    "caption",
}
_SKIPPED = {"script", "style", "head", "title", "template", "noscript", "svg", "object", "iframe", "select"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base", "embed", "param", "source"}
_SPACES = re.compile(r"[ \t\r\n\f\u00a0]+")
MAX_QUOTE_PREFIX = 10  # "> " marks written at most per line, however deep the nesting
# What Outlook puts above the header block of the message it quotes.
OUTLOOK_RULE = "_" * 32


class _TextRenderer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.pieces: list[str] = []
        self.quote_depth = 0
        self.pre_depth = 0
        self.skip_depth = 0
        self.links: list[tuple[str, int]] = []  # (href, index of the first piece of its text)

    def _flush(self, blank: bool = False) -> None:
        text = "".join(self.pieces)
        self.pieces = []
        if not self.pre_depth:
            text = re.sub(r" {2,}", " ", text).strip()
        prefix = "> " * min(self.quote_depth, MAX_QUOTE_PREFIX)
        if text:
            for line in text.split("\n"):
                self.lines.append((prefix + line).rstrip())
        if blank and self.lines and self.lines[-1].strip() not in ("", prefix.strip()):
            self.lines.append(prefix.rstrip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            if tag not in _VOID:
                self.skip_depth += 1
            return
        if self.skip_depth:
            return
        if tag == "br":
            if "".join(self.pieces).strip():
                self._flush()
            else:  # a <br> on its own is an empty line (how clients write blank lines)
                self.pieces = []
                self.lines.append(("> " * min(self.quote_depth, MAX_QUOTE_PREFIX)).rstrip())
            return
        if tag == "hr":
            self._flush()
            self.lines.append(("> " * min(self.quote_depth, MAX_QUOTE_PREFIX)) + OUTLOOK_RULE)
            return
        if tag in ("td", "th"):
            self.pieces.append(" ")
            return
        if tag == "a":
            href = dict(attrs).get("href") or ""
            self.links.append((href, len(self.pieces)))
            return
        if tag in _LINES:
            self._flush(blank=tag in _PARAGRAPHS)
            if tag == "blockquote":
                self.quote_depth += 1
            elif tag == "pre":
                self.pre_depth += 1
            elif tag == "li":
                self.pieces.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            if tag not in _VOID and self.skip_depth:
                self.skip_depth -= 1
            return
        if self.skip_depth:
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.pieces[start:]).strip()
            if re.match(r"https?://", href, re.IGNORECASE) and href.rstrip("/") != label.rstrip("/") and label:
                self.pieces.append(f" <{href}>")
            return
        if tag == "blockquote":
            self._flush()
            self.quote_depth = max(0, self.quote_depth - 1)
            self._flush(blank=True)
            return
        if tag in _LINES:
            self._flush(blank=tag in _PARAGRAPHS)
            if tag == "pre" and self.pre_depth:
                self.pre_depth -= 1

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self.pieces.append(data.replace("\u00a0", " "))
        else:
            self.pieces.append(_SPACES.sub(" ", data))

    def text(self) -> str:
        self._flush()
        lines = self.lines
        # A blank line inside a quote (">", "> >") only stays when quoted text follows it.
        kept = [
            line
            for index, line in enumerate(lines)
            if not (line and not line.strip(" >") and (index + 1 == len(lines) or not lines[index + 1].strip(" >")))
        ]
        joined = "\n".join(kept)
        return re.sub(r"\n{3,}", "\n\n", joined).strip("\n")


_ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
}
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign"},
    "table": {"border", "cellpadding", "cellspacing"},
    "ol": {"start"},
    "p": {"align"},
    "div": {"align"},
    "font": {"color"},
    "*": {"dir", "lang", "title"},
}
_IMAGE_SOURCE = re.compile(r"^(cid:|https?://)", re.IGNORECASE)
_LINK_TARGET = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        return value if _IMAGE_SOURCE.match(value.strip()) else None
    if tag == "a" and attribute == "href":
        return value if _LINK_TARGET.match(value.strip()) else None
    if attribute in ("width", "height", "colspan", "rowspan", "start", "border", "cellpadding", "cellspacing"):
        return value if value.strip().isdigit() and len(value) < 6 else None
    return value


_cleaner = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    clean_content_tags={"script", "style", "title", "head", "iframe", "object", "noscript", "template", "svg"},
    attributes=_ALLOWED_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    url_schemes={"http", "https", "mailto", "cid"},
    url_relative="deny",
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def _clean(html: str) -> str:
    try:
        return _cleaner.clean(html).strip()
    except Exception:  # noqa: BLE001 - nh3 should not fail; if it does, show nothing
        return ""


def _render(clean_html: str) -> str:
    renderer = _TextRenderer()
    try:
        renderer.feed(clean_html)
        renderer.close()
    except Exception:  # noqa: BLE001 - HTMLParser is lenient; keep whatever was read
        renderer.pieces.append(" ")
    return renderer.text()


# --- degenerate input ----------------------------------------------------------------------
# html5ever (inside nh3) slows down quadratically on thousands of nested elements or of
# character references, the stdlib HTMLParser on unterminated tags, and it spends ~10 µs a tag;
# real mail bodies are far from these limits. Beyond them the body is reduced to text by a
# linear scan instead, without formatting.
MAX_HTML_CHARS = 2_000_000
MAX_HTML_NESTING = 200
MAX_HTML_TAGS = 50_000
MAX_HTML_REFERENCES = 50_000
# Elements that do not nest (void) or whose end tag is optional: not counted as nesting.
_NOT_NESTING = _VOID | {"p", "li", "td", "th", "tr", "dt", "dd", "option", "tbody", "thead", "tfoot", "colgroup"}
_TAG_START = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]{0,30})")
_ROUGH_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]{0,30})[^<>]{0,4000}>")


def _degenerate(html: str) -> bool:
    if len(html) > MAX_HTML_CHARS or html.count("&") > MAX_HTML_REFERENCES:
        return True
    depth = 0
    for count, found in enumerate(_TAG_START.finditer(html)):
        if count >= MAX_HTML_TAGS:
            return True
        name = found.group(2).lower()
        if name in _NOT_NESTING:
            continue
        if found.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            if depth > MAX_HTML_NESTING:
                return True
    return False


def _rough_text(html: str) -> str:
    """Text from HTML by one linear scan: tags dropped (block ones as line breaks), script and
    style content dropped, character references decoded."""
    out: list[str] = []
    position = 0
    skipping = ""
    for found in _ROUGH_TAG.finditer(html):
        if not skipping:
            out.append(html[position : found.start()])
        position = found.end()
        name = (found.group(2) or "").lower()
        if skipping:
            if found.group(1) and name == skipping:
                skipping = ""
            continue
        if name in _SKIPPED and not found.group(1):
            skipping = name
        elif name in _LINES or name in ("br", "hr"):
            out.append("\n")
    if not skipping:
        out.append(html[position:])
    text = unescape("".join(out)).replace("\u00a0", " ")
    lines = [re.sub(r"[ \t\r\f]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


# --- public ----------------------------------------------------------------------------------


def render_html(html: str) -> tuple[str, str, str | None]:
    """(text, sanitised HTML, defect note or None) for an HTML body, parsed once."""
    if _degenerate(html):
        return _rough_text(html), "", "HTML body too large or too deeply nested to keep its formatting: text only"
    clean = _clean(html)
    return _render(clean), clean, None


def html_to_text(html: str) -> str:
    """Readable text from an HTML body: block elements become line breaks, script, style and
    head go, blockquotes become `> ` quoted lines (so quote detection works on them too),
    links keep their URL. The text is read from the sanitised HTML, which is well-formed."""
    return render_html(html)[0]


def sanitize_html(html: str) -> str:
    """The safe subset of an HTML body: formatting, tables, links to http(s)/mailto and images
    from cid: or http(s) only; no script, style, iframes, forms, event handlers or
    javascript:/data: URLs. "" for degenerate input."""
    return render_html(html)[1]

"""The one Markdown renderer: user Markdown in, sanitised HTML, a table of contents and plain text out.

markdown-it-py (CommonMark, tables, strikethrough) parses with raw HTML off; nh3 then applies a strict
allow-list, so even a bug in the Markdown step cannot let markup through that the list does not name.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, NamedTuple
from urllib.parse import unquote

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

# Bump when the output for the same source changes, so stored HTML can be re-rendered.
RENDERER_VERSION = 1

MAX_SOURCE_BYTES = 64 * 1024
# Parsing is linear but slow in pure Python (64 KiB of "![" takes over a second), so the parse
# itself carries a deadline: input that cannot be parsed in time is refused, not rendered.
PARSE_TIME_BUDGET_S = 1.0
# Deep enough for real nesting (a list eight levels down inside a quote), shallow enough that
# thousands of ">" or "- " stop costing anything past it.
MAX_NESTING = 20

HEADING_ID_PREFIX = "h-"
LOCAL_IMAGE_PREFIXES = ("/uploads/", "/static/")
LINK_REL = "nofollow ugc noopener"
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})

_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_ALLOWED_TAGS = _HEADING_TAGS | {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "code": {"class"},
    **{tag: {"id"} for tag in _HEADING_TAGS},
}
_ALIGNMENTS = {"left", "center", "right"}
# An `align` attribute rather than markdown-it's inline style: the CSP forbids inline styles.
_ALLOWED_ATTRIBUTE_VALUES = {"th": {"align": _ALIGNMENTS}, "td": {"align": _ALIGNMENTS}}

_LANGUAGE_RE = re.compile(r"[A-Za-z0-9_+#.-]{1,40}")
_CODE_CLASS_RE = re.compile(r"language-[A-Za-z0-9_+#.-]{1,40}")
_SCHEME_RE = re.compile(r"([^/?#:]*):")
# Browsers drop ASCII tab/newline anywhere in a URL and C0 controls/space at its ends.
_URL_IGNORED_RE = re.compile(r"[\x00-\x20\x7f-\x9f\s]+")
_SLUG_SEPARATOR_RE = re.compile(r"[^\w]+")
_MAX_SLUG_CHARS = 80
_DEADLINE = "kizuna_deadline"
_TOC = "kizuna_toc"


class MarkdownTooLarge(ValueError):
    """The source is more than MAX_SOURCE_BYTES; routes answer 413."""


class MarkdownTooComplex(MarkdownTooLarge):
    """The source could not be parsed within PARSE_TIME_BUDGET_S.

    A subclass of MarkdownTooLarge so that one `except` (and one 413) covers both refusals.
    """


class Heading(NamedTuple):
    level: int
    text: str
    anchor: str


@dataclass(frozen=True, slots=True)
class Rendered:
    html: str
    toc: list[Heading] = field(default_factory=list)
    text: str = ""


def render(source: str) -> str:
    """Sanitised HTML for user Markdown. Raises MarkdownTooLarge (or MarkdownTooComplex)."""
    return render_document(source).html


def table_of_contents(source: str) -> list[Heading]:
    """(level, text, anchor) for every heading, anchors matching the ids `render` gives them."""
    tokens, env = _parse(source)
    return list(env[_TOC])


def render_inline_text(source: str) -> str:
    """The text without markup, one line per block, for search documents and snippets.

    Not HTML: escape it when putting it in a page (Jinja does).
    """
    tokens, _env = _parse(source)
    return _plain_text(tokens)


def render_document(source: str) -> Rendered:
    """HTML, table of contents and plain text from a single parse."""
    tokens, env = _parse(source)
    html = _md.renderer.render(tokens, _md.options, env)
    return Rendered(html=sanitize_html(html), toc=list(env[_TOC]), text=_plain_text(tokens))


def sanitize_html(html: str) -> str:
    """The allow-list on its own: what `render` applies to markdown-it's output."""
    return _cleaner.clean(html)


def is_safe_url(url: str) -> bool:
    """True for relative URLs and http(s)/mailto ones, whatever entity/percent/control-char disguise."""
    cleaned = _URL_IGNORED_RE.sub("", unquote(url)).lower()
    match = _SCHEME_RE.match(cleaned)
    return match is None or match.group(1) in ALLOWED_SCHEMES


def is_local_image(src: str) -> bool:
    """Images the reader's browser may load: our own uploads and static files, nothing else."""
    if not src.startswith(LOCAL_IMAGE_PREFIXES):
        return False
    # Browsers read "\\" as "/" and "%2e" as ".", so neither may smuggle in a ".." segment.
    path = unquote(src)
    return "\\" not in path and ".." not in path.split("/")


def _parse(source: str) -> tuple[list[Token], dict[str, Any]]:
    # A str never has more characters than UTF-8 bytes, so the cheap check first.
    if len(source) > MAX_SOURCE_BYTES or len(source.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise MarkdownTooLarge(f"Markdown source is larger than {MAX_SOURCE_BYTES // 1024} KiB")
    env: dict[str, Any] = {_DEADLINE: time.monotonic() + PARSE_TIME_BUDGET_S, _TOC: []}
    return _md.parse(source, env), env


def _check_deadline(env: EnvType) -> None:
    deadline = env.get(_DEADLINE)
    if deadline is not None and time.monotonic() > deadline:
        raise MarkdownTooComplex("Markdown source is too complex to format")


def _block_deadline(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    _check_deadline(state.env)
    return False


def _inline_deadline(state: StateInline, silent: bool) -> bool:
    _check_deadline(state.env)
    return False


def _slugify(text: str) -> str:
    """Lower-case words joined by '-', any script kept readable (Japanese stays Japanese)."""
    slug = _SLUG_SEPARATOR_RE.sub("-", unicodedata.normalize("NFKC", text).lower())
    return slug[:_MAX_SLUG_CHARS].strip("-_")


def _inline_text(children: Sequence[Token] | None) -> str:
    parts: list[str] = []
    for child in children or ():
        if child.type in ("text", "text_special", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(_inline_text(child.children))
    return "".join(parts)


def _plain_text(tokens: Sequence[Token]) -> str:
    lines: list[str] = []
    for token in tokens:
        if token.type == "inline":
            lines.append(" ".join(_inline_text(token.children).split()))
        elif token.type in ("fence", "code_block"):
            lines.append(token.content.rstrip("\n"))
    return "\n".join(line for line in lines if line)


def _finish_tokens(state: StateCore) -> None:
    """Heading ids and the TOC, safe code languages, table alignment as an attribute."""
    toc: list[Heading] = state.env[_TOC]
    used: set[str] = set()
    headings = 0
    tokens = state.tokens
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            headings += 1
            text = " ".join(_inline_text(tokens[index + 1].children).split())
            base = HEADING_ID_PREFIX + (_slugify(text) or str(headings))
            anchor, n = base, 1
            while anchor in used:
                n += 1
                anchor = f"{base}-{n}"
            used.add(anchor)
            token.attrSet("id", anchor)
            if text:
                toc.append(Heading(level=int(token.tag[1]), text=text, anchor=anchor))
        elif token.type == "inline":
            _mark_images_inside_links(token.children or [])
        elif token.type == "fence":
            language = token.info.split(maxsplit=1)[0] if token.info.strip() else ""
            token.info = language if _LANGUAGE_RE.fullmatch(language) else ""
        elif token.type in ("th_open", "td_open"):
            style = token.attrs.pop("style", None)
            alignment = str(style).removeprefix("text-align:") if style else ""
            if alignment in _ALIGNMENTS:
                token.attrSet("align", alignment)


def _mark_images_inside_links(children: list[Token]) -> None:
    inside_link = False
    for child in children:
        if child.type in ("link_open", "link_close"):
            inside_link = child.type == "link_open"
        elif child.type == "image" and inside_link:
            child.meta["inside_link"] = True


def _render_image(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    """Own images render; anything else becomes a link so the page contacts no third party."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    if src and is_local_image(src):
        return self.image(tokens, idx, options, env)
    alt = self.renderInlineAsText(token.children, options, env)
    if not src or token.meta.get("inside_link"):
        return escape(alt or src)
    title = token.attrGet("title")
    title_attr = f' title="{escape(str(title))}"' if title else ""
    return f'<a href="{escape(src)}"{title_attr}>{escape(alt or src)}</a>'


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "class":
        return value if tag == "code" and _CODE_CLASS_RE.fullmatch(value) else None
    if attribute == "id":
        return value if tag in _HEADING_TAGS else None
    if attribute == "src":
        return value if is_local_image(value) else None
    if attribute == "href":
        return value if is_safe_url(value) else None
    return value


def _build_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "maxNesting": MAX_NESTING, "linkify": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = is_safe_url  # type: ignore[method-assign]
    md.block.ruler.before("table", "kizuna_deadline", _block_deadline)
    md.inline.ruler.before("text", "kizuna_deadline", _inline_deadline)
    md.core.ruler.push("kizuna_finish", _finish_tokens)
    md.add_render_rule("image", _render_image)
    return md


_md = _build_parser()
_cleaner = nh3.Cleaner(
    tags=set(_ALLOWED_TAGS),
    clean_content_tags={"script", "style"},
    attributes={tag: set(names) for tag, names in _ALLOWED_ATTRIBUTES.items()},
    attribute_filter=_filter_attribute,
    tag_attribute_values=_ALLOWED_ATTRIBUTE_VALUES,
    url_schemes=set(ALLOWED_SCHEMES),
    link_rel=LINK_REL,
    id_prefix=HEADING_ID_PREFIX,
    strip_comments=True,
)

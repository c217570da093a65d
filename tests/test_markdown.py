"""The Markdown renderer: hostile input comes out inert, ordinary Markdown comes out as expected,
headings get stable anchors, and size or pathological nesting cannot stall a worker."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest

from server import markdown
from server.markdown import (
    MAX_SOURCE_BYTES,
    Heading,
    MarkdownTooComplex,
    MarkdownTooLarge,
    render,
    render_document,
    render_inline_text,
    sanitize_html,
    table_of_contents,
)

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "rel"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "code": {"class"},
    "th": {"align"},
    "td": {"align"},
    **{f"h{n}": {"id"} for n in range(1, 7)},
}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Parsed(HTMLParser):
    """The rendered HTML as a browser's tokenizer sees it: elements with attributes, and text."""

    elements: list[Element] = field(default_factory=list)
    text: str = ""
    _open: list[Element] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        if tag not in ("br", "hr", "img"):
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1].tag == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text += data
        for element in self._open:
            element.text += data

    def find(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]


def parse(html: str) -> Parsed:
    parsed = Parsed()
    parsed.feed(html)
    parsed.close()
    return parsed


def scheme_of(url: str) -> str:
    """The scheme a browser would see: it drops tabs/newlines and leading controls and spaces."""
    cleaned = re.sub(r"[\x00-\x20\x7f]+", "", unquote(url)).lower()
    match = re.match(r"([a-z][a-z0-9+.-]*):", cleaned)
    return match.group(1) if match else ""


def assert_inert(html: str) -> Parsed:
    parsed = parse(html)
    for element in parsed.elements:
        assert element.tag in ALLOWED_TAGS, element
        assert set(element.attrs) <= ALLOWED_ATTRIBUTES.get(element.tag, set()), element
        for name in ("href", "src"):
            if name in element.attrs:
                assert scheme_of(element.attrs[name]) in {"", "http", "https", "mailto"}, element
        if element.tag == "a":
            assert element.attrs["rel"] == "nofollow ugc noopener", element
        if element.tag == "img":
            assert element.attrs.get("src", "/uploads/").startswith(("/uploads/", "/static/")), element
        if "id" in element.attrs:
            assert element.attrs["id"].startswith("h-"), element
        if "class" in element.attrs:
            assert re.fullmatch(r"language-[A-Za-z0-9_+#.-]+", element.attrs["class"]), element
    return parsed


HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    "<iframe src=https://evil.example/></iframe>",
    "<style>body { display: none }</style>",
    '<p style="position:fixed">x</p>',
    "<a href=javascript:alert(1)>x</a>",
    "<div onclick='alert(1)'>x</div>",
    "<!-- comment --><object data=x></object>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;&#x61;&#x76;&#x61;script:alert(1))",
    "[x](%6Aavascript:alert(1))",
    "[x](<\tjavascript:alert(1)>)",
    "[x](<java\nscript:alert(1)>)",
    "[x](\x01javascript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](VBScript&colon;msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](file:///etc/passwd)",
    "<javascript:alert(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    "[x]\n\n[x]: javascript:alert(1)",
    "![x](javascript:alert(1))",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    "![x](data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=)",
    "![x](https://evil.example/track.png)",
    "![x](//evil.example/track.png)",
    '[x](https://ok.example "\\" onmouseover=\\"alert(1)")',
    "[x](https://ok.example 'a\" onmouseover=\"alert(1)')",
    '```"><script>alert(1)</script>\ncode\n```',
    "``` onmouseover=alert(1)\ncode\n```",
    "# <img src=x onerror=alert(1)>",
    "| <script>x</script> |\n|---|\n| [x](javascript:alert(1)) |",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "\x00<script>alert(1)</script>",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_input_renders_inert(source: str) -> None:
    assert_inert(render(source))


@pytest.mark.parametrize(
    "html",
    [
        '<a href="javascript:alert(1)" onclick="x()" rel="opener" id="main">x</a>',
        '<a href="JaVaScRiPt:alert(1)">x</a><img src="data:image/png;base64,AA" onerror="x()">',
        '<a href="vbscript:x">x</a><iframe src="https://evil.example"></iframe>',
        '<code class="language-py evil">x</code><p class="x" style="color:red" id="y">p</p>',
        '<h2 id="main">x</h2><svg><script>alert(1)</script></svg><style>p{}</style>',
        '<th align="javascript">x</th><td style="text-align:left">y</td>',
        '<img src="https://evil.example/t.png"><img src="/uploads/../x">',
    ],
)
def test_sanitiser_alone_strips_what_the_parser_should_never_emit(html: str) -> None:
    parsed = assert_inert(sanitize_html(html))
    assert "alert" not in parsed.text
    assert all(e.attrs.get("id", "h-").startswith("h-") for e in parsed.elements)


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](java&#x09;script:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](%6Aavascript:alert(1))",
        "[x](<\tjavascript:alert(1)>)",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](vbscript:msgbox(1))",
        "<javascript:alert(1)>",
        "[x]\n\n[x]: javascript:alert(1)",
    ],
)
def test_dangerous_link_is_not_a_link(source: str) -> None:
    parsed = assert_inert(render(source))
    assert parsed.find("a") == []


def test_raw_html_is_shown_as_text_not_markup() -> None:
    parsed = assert_inert(render("<script>alert(1)</script> and <b>bold</b>"))
    assert [e.tag for e in parsed.elements] == ["p"]
    assert parsed.text.strip() == "<script>alert(1)</script> and <b>bold</b>"


def test_link_title_with_quotes_stays_inside_the_attribute() -> None:
    parsed = assert_inert(render('[x](https://ok.example "say \\"hi\\" \'there\'")'))
    (link,) = parsed.find("a")
    assert link.attrs == {
        "href": "https://ok.example",
        "title": "say \"hi\" 'there'",
        "rel": "nofollow ugc noopener",
    }


def test_remote_image_becomes_a_link_to_it() -> None:
    parsed = assert_inert(render('![a tracker](https://evil.example/track.png "t")'))
    assert parsed.find("img") == []
    (link,) = parsed.find("a")
    assert link.attrs["href"] == "https://evil.example/track.png"
    assert link.attrs["title"] == "t"
    assert link.text == "a tracker"


def test_remote_image_without_alt_shows_its_url() -> None:
    (link,) = parse(render("![](https://evil.example/t.png)")).find("a")
    assert link.text == "https://evil.example/t.png"


@pytest.mark.parametrize(
    "source",
    [
        "![x](//evil.example/a.png)",
        "![x](a.png)",
        "![x](/uploads/../api/v1/me)",
        "![x](/uploads/%2e%2E/api/v1/me)",
        "![x](/uploads/..\\api)",
        "![x](/uploadsx/a.png)",
        "![x](HTTPS://evil.example/a.png)",
    ],
)
def test_image_outside_uploads_and_static_does_not_load(source: str) -> None:
    parsed = assert_inert(render(source))
    assert parsed.find("img") == []
    assert [link.text for link in parsed.find("a")] == ["x"]


def test_remote_image_inside_a_link_becomes_its_text() -> None:
    parsed = assert_inert(render("[![badge](https://evil.example/b.svg)](https://ok.example)"))
    assert parsed.find("img") == []
    (link,) = parsed.find("a")
    assert (link.attrs["href"], link.text) == ("https://ok.example", "badge")


def test_own_image_inside_a_link_still_renders() -> None:
    parsed = assert_inert(render("[![logo](/static/logo.png)](/help)"))
    (link,) = parsed.find("a")
    assert link.attrs["href"] == "/help"
    assert [img.attrs["src"] for img in parsed.find("img")] == ["/static/logo.png"]


def test_data_image_renders_only_its_alt_text() -> None:
    parsed = assert_inert(render("![pixel](data:image/png;base64,iVBORw0KGgo=)"))
    assert parsed.find("img") == []
    assert parsed.find("a") == []
    assert "pixel" in parsed.text


@pytest.mark.parametrize("src", ["/uploads/a.png", "/static/img/logo.svg", "/uploads/2024/日本 語.png"])
def test_own_images_render_as_img(src: str) -> None:
    (img,) = assert_inert(render(f'![the *alt*](<{src}> "tip")')).find("img")
    assert unquote(img.attrs["src"]) == src
    assert img.attrs["alt"] == "the alt"
    assert img.attrs["title"] == "tip"


def test_links_of_allowed_kinds_all_get_rel() -> None:
    source = (
        "[web](https://example.com/a?b=1&c=2) [plain](http://example.com) [mail](mailto:a@example.com) "
        "[page](/help/articles/1) [here](#h-intro) [up](../x) <https://auto.example/p> <someone@example.com>"
    )
    links = assert_inert(render(source)).find("a")
    assert [(link.text, link.attrs["href"]) for link in links] == [
        ("web", "https://example.com/a?b=1&c=2"),
        ("plain", "http://example.com"),
        ("mail", "mailto:a@example.com"),
        ("page", "/help/articles/1"),
        ("here", "#h-intro"),
        ("up", "../x"),
        ("https://auto.example/p", "https://auto.example/p"),
        ("someone@example.com", "mailto:someone@example.com"),
    ]


def test_prose_markdown_renders_as_expected() -> None:
    source = (
        "# Title\n\nSome *em*, **strong**, ~~gone~~ and `code`.\nline two\n\n"
        "> quoted\n\n---\n\n- one\n- two\n  1. nested\n\n3. three\n4. four\n"
    )
    parsed = assert_inert(render(source))
    assert [e.tag for e in parsed.elements] == [
        "h1", "p", "em", "strong", "s", "code", "blockquote", "p", "hr",
        "ul", "li", "li", "ol", "li", "ol", "li", "li",
    ]  # fmt: skip
    assert parsed.find("ol")[1].attrs == {"start": "3"}
    assert parsed.find("code")[0].text == "code"
    assert parsed.find("s")[0].text == "gone"


def test_entities_are_decoded_once_and_escaped_on_output() -> None:
    html = render("&copy; &amp; &lt;b&gt; AT&T 5 < 6")
    assert html == "<p>© &amp; &lt;b&gt; AT&amp;T 5 &lt; 6</p>\n"


def test_code_block_keeps_language_class_and_escapes_content() -> None:
    html = render('```python title="x"\nprint("<b>")\n```\n\n    indented <i>\n')
    parsed = assert_inert(html)
    first, second = parsed.find("code")
    assert first.attrs == {"class": "language-python"}
    assert first.text == 'print("<b>")\n'
    assert second.attrs == {}
    assert second.text == "indented <i>\n"


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ("c++ {linenos}", {"class": "language-c++"}),
        ('"><b>', {}),
        ("x" * 41, {}),
        ("language-x\" onclick='1'", {}),
        ("py&#x22;onclick", {}),
    ],
)
def test_code_block_language_class_only_when_it_is_a_plain_name(info: str, expected: dict[str, str]) -> None:
    (code,) = assert_inert(render(f"```{info}\nx\n```")).find("code")
    assert code.attrs == expected


def test_table_renders_with_alignment_attributes() -> None:
    parsed = assert_inert(render("| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |\n"))
    assert [e.tag for e in parsed.elements] == [
        "table", "thead", "tr", "th", "th", "th", "tbody", "tr", "td", "td", "td",
    ]  # fmt: skip
    assert [c.attrs.get("align") for c in parsed.find("td")] == ["left", "center", "right"]


def test_japanese_text_and_heading_anchor_stay_readable() -> None:
    rendered = render_document("## はじめに、設定。\n\nこんにちは、**世界**。")
    parsed = assert_inert(rendered.html)
    (heading,) = parsed.find("h2")
    assert heading.attrs == {"id": "h-はじめに-設定"}
    assert heading.text == "はじめに、設定。"
    assert parsed.find("strong")[0].text == "世界"
    assert rendered.toc == [Heading(2, "はじめに、設定。", "h-はじめに-設定")]


def test_headings_get_unique_prefixed_ids_matching_the_toc() -> None:
    source = (
        "# Getting *started*\n\n## Install\n\n## Install\n\n## Install 2\n\n### `api` & <CLI>\n\n"
        "#### !!!\n\nSetext\n------\n\n######   \n\n## main\n"
    )
    rendered = render_document(source)
    parsed = assert_inert(rendered.html)
    ids = [e.attrs["id"] for e in parsed.elements if e.tag[0] == "h" and e.tag[1:].isdigit()]
    assert ids == [
        "h-getting-started", "h-install", "h-install-2", "h-install-2-2", "h-api-cli", "h-6",
        "h-setext", "h-8", "h-main",
    ]  # fmt: skip
    assert len(set(ids)) == len(ids)
    assert rendered.toc == [
        Heading(1, "Getting started", "h-getting-started"),
        Heading(2, "Install", "h-install"),
        Heading(2, "Install", "h-install-2"),
        Heading(2, "Install 2", "h-install-2-2"),
        Heading(3, "api & <CLI>", "h-api-cli"),
        Heading(4, "!!!", "h-6"),
        Heading(2, "Setext", "h-setext"),
        Heading(2, "main", "h-main"),
    ]
    assert table_of_contents(source) == rendered.toc
    # "main" must not clobber an element id the app uses: every id carries the prefix.
    assert all(anchor.startswith("h-") for _, _, anchor in rendered.toc)


def test_anchors_are_stable_across_renders() -> None:
    source = "# A\n\n## B\n\n## A"
    assert render(source) == render(source)
    assert table_of_contents(source) == table_of_contents(source)


def test_plain_text_has_no_markup() -> None:
    source = (
        "# Title *here*\n\nA [link](https://example.com) and ![pic](/uploads/p.png), `x<y>`\n"
        "next &amp; line\n\n- item\n\n```\ncode block\n```\n\n<b>raw</b>"
    )
    assert render_inline_text(source) == ("Title here\nA link and pic, x<y> next & line\nitem\ncode block\n<b>raw</b>")
    assert render_document(source).text == render_inline_text(source)


def test_source_at_the_cap_renders() -> None:
    assert render("a" * MAX_SOURCE_BYTES).startswith("<p>aaa")


@pytest.mark.parametrize(
    "source",
    ["a" * (MAX_SOURCE_BYTES + 1), "あ" * (MAX_SOURCE_BYTES // 3 + 1)],
    ids=["ascii", "multibyte"],
)
def test_source_over_the_cap_is_refused(source: str) -> None:
    for function in (render, render_document, render_inline_text, table_of_contents):
        with pytest.raises(MarkdownTooLarge, match="64 KiB"):
            function(source)
    assert issubclass(MarkdownTooLarge, ValueError)


PATHOLOGICAL = {
    "quotes": "> " * 10000,
    "quote_lines": ">\n" * 30000,
    "brackets": "[" * 50000,
    "stars": "*" * 50000,
    "underscores": "_" * 50000,
    "image_openers": "![" * 32000,
    "unclosed_links": "[a](" * 16000,
    "nested_labels": "[" * 20000 + "a" + "]" * 20000 + "(/u)",
    "alternating_emphasis": "*_" * 32000,
    "word_stars": "a*" * 32000,
    "backticks": "`a" * 32000,
    "entities": "&#" * 32000,
    "dashes_one_line": "- " * 5000,
    "ordered_one_line": "1. " * 10000,
    "quoted_lists": "> - " * 8000,
    "nested_list_lines": "".join("  " * depth + "- x\n" for depth in range(250)),
    "wide_table": "|a" * 5000 + "\n" + "|-" * 5000 + "\n" + "|x" * 5000 + "\n",
    "long_table": "|a|b|\n|-|-|\n" + "|x|y|\n" * 10000,
}


@pytest.mark.parametrize("source", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_input_finishes_or_is_refused_quickly(source: str) -> None:
    assert len(source.encode()) <= MAX_SOURCE_BYTES
    started = time.monotonic()
    try:
        html = render(source)
    except MarkdownTooComplex:
        html = ""
    # Generous: a guard against hangs on a loaded machine, not a benchmark.
    assert time.monotonic() - started < 2.0
    assert_inert(html)


def test_deep_nesting_is_cut_off_not_recursed() -> None:
    parsed = assert_inert(render("> " * 10000 + "deep"))
    assert 1 <= len(parsed.find("blockquote")) <= markdown.MAX_NESTING


def test_parse_over_the_time_budget_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(markdown, "PARSE_TIME_BUDGET_S", -1.0)
    with pytest.raises(MarkdownTooComplex) as refused:
        render("# hello")
    assert isinstance(refused.value, MarkdownTooLarge)


def test_the_deadline_cuts_a_slow_inline_parse_short(monkeypatch: pytest.MonkeyPatch) -> None:
    # A single line: only the inline parser's deadline check can stop it.
    monkeypatch.setattr(markdown, "PARSE_TIME_BUDGET_S", 0.05)
    with pytest.raises(MarkdownTooComplex):
        render("![" * 32000)


def test_a_long_ordinary_document_is_not_refused() -> None:
    section = (
        "## Section\n\nSome *text* with a [link](https://example.com/x), `code` and **bold**.\n\n"
        "- item one\n- item two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```sh\nmake run\n```\n\n"
    )
    source = section * (MAX_SOURCE_BYTES // len(section))
    rendered = render_document(source)
    assert len(rendered.toc) == MAX_SOURCE_BYTES // len(section)
    assert_inert(rendered.html)

"""Inbound mail parsing: the hand-made corpus against expected.toml, focused cases for each
decoding and detection rule, and fuzzing that `parse_mail` returns a result for any bytes."""

from __future__ import annotations

import base64
import random
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.channels.email.charsets import decode_bytes, decode_iso2022jp, decode_words
from server.channels.email.htmltext import html_to_text, render_html, sanitize_html
from server.channels.email.parsing import ParsedMail, classify, parse_mail, safe_filename
from server.channels.email.quoting import extract_new_text

# Pure functions: no database rows are read or written, so the per-test table wipe is skipped.
pytestmark = pytest.mark.shared_data

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads((CORPUS / "expected.toml").read_text("utf-8"))
MY_FILES = sorted(name for name in EXPECTED if (CORPUS / name).exists())


def _parse(name: str) -> ParsedMail:
    return parse_mail((CORPUS / name).read_bytes())


def _no_internal_error(parsed: ParsedMail) -> None:
    assert not [d for d in parsed.defects if d.startswith("internal error")], parsed.defects


def _well_formed(parsed: ParsedMail) -> None:
    """Every field has its type, every string is valid Unicode (no lone surrogates) and no
    one-line field carries a line break."""
    assert isinstance(parsed, ParsedMail)
    one_line = [parsed.message_id, parsed.from_name, parsed.from_address, parsed.reply_to, parsed.subject]
    one_line += parsed.in_reply_to + parsed.references + parsed.to + parsed.cc + parsed.bounce_recipients
    one_line += list(parsed.headers) + list(parsed.headers.values())
    one_line += [a.filename for a in parsed.attachments] + [a.content_id or "" for a in parsed.attachments]
    for value in one_line:
        assert isinstance(value, str)
        assert "\r" not in value and "\n" not in value, value
        value.encode("utf-8")
    for value in (parsed.text, parsed.html, parsed.new_text, *parsed.defects):
        assert isinstance(value, str)
        value.encode("utf-8")
    for attachment in parsed.attachments:
        assert isinstance(attachment.data, bytes)
        assert attachment.filename and len(attachment.filename) <= 200
        assert "/" not in attachment.filename and "\\" not in attachment.filename
    assert parsed.kind in ("normal", "auto_reply", "bulk", "bounce")
    assert parsed.date is None or parsed.date.tzinfo is not None
    assert all(len(value) <= 2000 for value in parsed.headers.values())


# --- the corpus --------------------------------------------------------------------------------


def test_corpus_has_the_cases_the_issue_asks_for() -> None:
    assert len(MY_FILES) >= 32
    assert sorted(name for name in EXPECTED if not (CORPUS / name).exists()) == []


@pytest.mark.parametrize("name", MY_FILES)
def test_corpus_message(name: str) -> None:
    expected = EXPECTED[name]
    parsed = _parse(name)
    _no_internal_error(parsed)
    _well_formed(parsed)

    for key in ("kind", "from_address", "from_name", "subject", "message_id", "reply_to", "text", "new_text"):
        if key in expected:
            assert getattr(parsed, key) == expected[key], key
    for key in ("in_reply_to", "references", "bounce_recipients"):
        if key in expected:
            assert getattr(parsed, key) == expected[key], key
    if "subject_length" in expected:
        assert len(parsed.subject) == expected["subject_length"]
    if "to_count" in expected:
        assert len(parsed.to) == expected["to_count"]
    if "cc_count" in expected:
        assert len(parsed.cc) == expected["cc_count"]
    if "recipient_count" in expected:
        assert parsed.recipient_count == expected["recipient_count"]
    if "date" in expected:
        assert parsed.date == datetime.fromisoformat(expected["date"])
    for key, field in (("text", "text"), ("new_text", "new_text"), ("html", "html")):
        for needle in expected.get(f"{key}_contains", []):
            assert needle in getattr(parsed, field), (field, needle)
        for needle in expected.get(f"{key}_excludes", []):
            assert needle not in getattr(parsed, field), (field, needle)
    if expected.get("html_empty"):
        assert parsed.html == ""
    if "attachments" in expected:
        got = [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": len(a.data),
                "inline": a.inline,
                "content_id": a.content_id,
            }
            for a in parsed.attachments
        ]
        wanted = [{"content_id": None, **item} for item in expected["attachments"]]
        assert got == wanted
    if "defects" in expected:
        assert bool(parsed.defects) == expected["defects"], parsed.defects
    for needle in expected.get("defects_contain", []):
        assert any(needle in defect for defect in parsed.defects), (needle, parsed.defects)
    for header, value in expected.get("headers", {}).items():
        assert parsed.headers.get(header) == value
    for header in expected.get("headers_absent", []):
        assert header not in parsed.headers


def test_every_eml_in_the_folder_parses_without_internal_error() -> None:
    for path in sorted(CORPUS.glob("*.eml")):
        parsed = parse_mail(path.read_bytes())
        _no_internal_error(parsed)
        _well_formed(parsed)


# --- charsets and headers ----------------------------------------------------------------------


def test_shift_jis_labels_decode_with_cp932_extensions() -> None:
    data = "①㈱～髙".encode("cp932")
    for label in ("Shift_JIS", "shift-jis", "Windows-31J", "x-sjis", "SJIS", "cp932"):
        assert decode_bytes(data, label) == ("①㈱～髙", None), label


def test_iso2022jp_with_nec_specials_falls_back_to_cp932_mapping() -> None:
    assert decode_iso2022jp("日本語".encode("iso2022_jp")) == "日本語"
    # ① is row 13 (NEC specials): ESC $ B 0x2D 0x21 ESC ( B, which Python's strict codec refuses.
    assert decode_iso2022jp(b"\x1b$B-!\x1b(B ok") == "① ok"
    # JIS X 0201 half-width katakana.
    assert decode_iso2022jp(b"\x1b(I1\x1b(B") == "ｱ"


def test_euc_jp_iso8859_and_windows_charsets() -> None:
    assert decode_bytes("ログイン".encode("euc_jp"), "EUC-JP") == ("ログイン", None)
    assert decode_bytes("Größe".encode("latin-1"), "ISO-8859-1") == ("Größe", None)
    assert decode_bytes("€ œ".encode("iso8859_15"), "iso-8859-15") == ("€ œ", None)
    assert decode_bytes(b"\x93smart\x94", "iso-8859-1") == ("“smart”", None)  # Windows-1252 really
    assert decode_bytes("Привет".encode("cp1251"), "windows-1251") == ("Привет", None)
    assert decode_bytes(b"\x81\x8d", "windows-1252") == ("\x81\x8d", None)  # bytes 1252 leaves undefined


def test_unknown_or_wrong_charset_falls_back_with_a_defect() -> None:
    text, defect = decode_bytes("naïve".encode(), "x-does-not-exist")
    assert text == "naïve" and defect and "unknown charset" in defect
    text, defect = decode_bytes("日本語です".encode("cp932"), "utf-8")
    assert text == "日本語です" and defect and "not valid utf-8" in defect
    for label in ("unicode_escape", "zlib", "base64", "rot13", "undefined", "a\x00b", "x" * 500):
        text, defect = decode_bytes(b"plain \\u0041", label)
        assert text == "plain \\u0041" and defect, label
    assert decode_bytes("é".encode(), None) == ("é", None)
    text, defect = decode_bytes(b"caf\xe9 cr\xe8me br\xfbl\xe9e", None)
    assert "caf" in text and defect and "without a declared charset" in defect


@pytest.mark.parametrize(
    ("text", "codec", "guessed"),
    [
        ("山田 太郎", "cp932", "cp932"),
        ("お問い合わせです。①②", "cp932", "cp932"),
        ("ログインできません", "euc_jp", "euc_jp"),
        ("François Dœuf – “déjà”", "cp1252", "cp1252"),
        ("Société Générale", "latin-1", "cp1252"),
        ("Иван Петров", "cp1251", "cp1251"),
    ],
)
def test_undeclared_8bit_text_is_guessed_predictably(text: str, codec: str, guessed: str) -> None:
    decoded, defect = decode_bytes(text.encode(codec), None)
    assert decoded == text
    assert defect == f"8-bit text without a declared charset, decoded as {guessed}"


def test_raw_cp932_header_from_a_windows_client() -> None:
    raw = "From: 山田 太郎 <taro@example.jp>\nSubject: お見積り\n\nbody\n".encode("cp932")
    parsed = parse_mail(raw)
    assert (parsed.from_name, parsed.from_address, parsed.subject) == ("山田 太郎", "taro@example.jp", "お見積り")
    assert "raw 8-bit bytes in a header, decoded as cp932 (from)" in parsed.defects


def test_encoded_words_split_mid_character_and_mixed_charsets() -> None:
    raw = "日本語".encode()
    first = base64.b64encode(raw[:4]).decode()
    second = base64.b64encode(raw[4:]).decode()
    assert decode_words(f"=?utf-8?B?{first}?= =?UTF-8?B?{second}?=") == ("日本語", [])
    value, defects = decode_words("a =?iso-8859-1?q?caf=E9?= =?utf-8?q?_=E2=9C=93?= b")
    assert value == "a café ✓ b" and defects == []
    assert decode_words("=?utf-8*ja?Q?x?=") == ("x", [])
    assert decode_words("=?utf-8?B?5pel5p?=")[0].startswith("日")  # bad padding: best effort
    assert decode_words("plain text") == ("plain text", [])
    assert decode_words("=?nonsense?Q?abc?=")[0] == "abc"


def test_header_injection_in_encoded_words_never_survives() -> None:
    raw = (
        b"From: =?UTF-8?B?" + base64.b64encode(b"Eve\r\nBcc: all@example.com") + b"?= <eve@example.com>\r\n"
        b"Subject: =?UTF-8?Q?Hi=0AX-Evil=3A_1=0D=0A?=\r\nMessage-ID: <a@b>\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\n"
        b"Content-Type: text/plain\r\n\r\nhello\r\n"
    )
    parsed = parse_mail(raw)
    assert parsed.from_name == "Eve Bcc: all@example.com"
    assert parsed.subject == "Hi X-Evil: 1"
    assert parsed.from_address == "eve@example.com"
    assert "bcc" not in parsed.headers and "x-evil" not in parsed.headers
    assert any("line breaks" in defect for defect in parsed.defects)


def test_safe_filename() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\x\\report.pdf") == "report.pdf"
    assert safe_filename("a\r\nb\x00c.txt") == "a bc.txt"
    assert safe_filename("invoice\u202efdp.exe") == "invoicefdp.exe"
    assert safe_filename("...") == ""
    long = safe_filename("x" * 500 + ".pdf")
    assert len(long) == 200 and long.endswith(".pdf")
    assert safe_filename('what?<is>"this".txt') == "what__is__this_.txt"


def test_attachment_without_name_gets_a_numbered_fallback() -> None:
    raw = (
        b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n"
        b"--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAEC\n"
        b'--b\nContent-Type: image/gif\nContent-Disposition: attachment; filename=""\n\nGIF89a\n--b--\n'
    )
    parsed = parse_mail(raw)
    assert [(a.filename, a.data) for a in parsed.attachments] == [
        ("attachment-1", b"\x00\x01\x02"),
        ("attachment-2", b"GIF89a"),
    ]


def test_addresses_dates_and_ids() -> None:
    raw = (
        b'From: "Doe, Jane" <Jane.Doe@Example.COM>\n'
        b"Reply-To: Replies <REPLY@example.com>\n"
        b"To: a@example.com, b@example.com, undisclosed-recipients:;\n"
        b"Cc: C <c@example.com>\nTo: d@example.com\n"
        b"Date: Tue, 1 Dec 2026 10:00:00 -0500\n"
        b"Message-ID: bare-id@example.com\n"
        b"In-Reply-To: <x@y> (comment) <z@w>\n"
        b"References: <1@a>\n <2@a>\t<3@a> <2@a>\n\nbody\n"
    )
    parsed = parse_mail(raw)
    assert (parsed.from_name, parsed.from_address) == ("Doe, Jane", "jane.doe@example.com")
    assert parsed.reply_to == "reply@example.com"
    assert parsed.to == ["a@example.com", "b@example.com", "d@example.com"]
    assert parsed.cc == ["c@example.com"]
    assert parsed.recipient_count == 4
    assert parsed.date == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    assert parsed.message_id == "<bare-id@example.com>"
    assert "Message-ID without angle brackets" in parsed.defects
    assert parsed.in_reply_to == ["<x@y>", "<z@w>"]
    assert parsed.references == ["<1@a>", "<2@a>", "<3@a>"]


def test_bad_date_and_bad_from_are_defects() -> None:
    parsed = parse_mail(b"From: not an address\nDate: yesterday-ish\nMessage-ID: <m@x>\n\nhi\n")
    assert parsed.from_address == "" and parsed.date is None
    assert "invalid Date header" in parsed.defects
    assert "no valid address in From" in parsed.defects
    naive = parse_mail(b"From: a@b.example\nDate: Tue, 1 Dec 2026 10:00:00 -0000\n\nhi\n")
    assert naive.date == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_headers_are_decoded_and_cut() -> None:
    raw = b"From: a@b.example\nX-Long: " + b"y" * 5000 + b"\nX-Enc: =?utf-8?q?caf=C3=A9?=\nX-Enc: second\n\nhi\n"
    parsed = parse_mail(raw)
    assert parsed.headers["x-long"] == "y" * 2000
    assert parsed.headers["x-enc"] == "café"


def test_format_flowed_is_unflowed() -> None:
    raw = (
        b"From: a@b.example\nContent-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\n\n"
        b"This is one long line that was wra pped by the client.\n> quoted soft  \n> line\n\n-- \nsig\n"
    )
    parsed = parse_mail(raw.replace(b"wra pped by", b"wra \npped by"))
    assert parsed.text.splitlines()[0] == "This is one long line that was wrapped by the client."
    assert "> quoted soft line" in parsed.text
    assert parsed.new_text == "This is one long line that was wrapped by the client."


# --- body structure ----------------------------------------------------------------------------


def test_alternative_with_empty_plain_part_uses_the_html() -> None:
    raw = (
        b"From: a@b.example\nContent-Type: multipart/alternative; boundary=x\n\n--x\n"
        b"Content-Type: text/plain; charset=utf-8\n\n \n--x\nContent-Type: text/html; charset=utf-8\n\n"
        b"<p>Only in <i>HTML</i></p><p>second</p>\n--x--\n"
    )
    parsed = parse_mail(raw)
    assert parsed.text == "Only in HTML\n\nsecond"
    assert parsed.html == "<p>Only in <i>HTML</i></p><p>second</p>"


def test_html_to_text_blocks_quotes_and_scripts() -> None:
    html = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<h1>Title</h1><p>One&nbsp;&amp; two</p><div>line<br>break</div>"
        "<blockquote><p>quoted</p><blockquote>deeper</blockquote></blockquote>"
        "<table><tr><td>a</td><td>b</td></tr></table><pre>  keep\n   spaces</pre>"
        "<script>var x = '<p>not text</p>';</script><ol><li>first</li></ol></body></html>"
    )
    assert html_to_text(html) == (
        "Title\n\nOne & two\n\nline\nbreak\n\n> quoted\n>\n> > deeper\n\na b\n\n  keep\n   spaces\n\n- first"
    )
    assert html_to_text("<p>unclosed <b>tags <div>and <a href='https://x.example/'>https://x.example/</a>") == (
        "unclosed tags\n\nand https://x.example/"
    )


def test_outlook_html_reply_is_cut_at_its_rule_and_header_block() -> None:
    html = (
        "<div>Yes, fine.</div><div><br></div><div>Chen</div><hr style='display:inline-block'>"
        "<div id='divRplyFwdMsg'><b>From:</b> Kizuna &lt;s@k.example&gt;<br><b>Sent:</b> Tuesday<br>"
        "<b>To:</b> Chen<br><b>Subject:</b> x</div><div>old text</div>"
    )
    text = html_to_text(html)
    assert text.startswith("Yes, fine.\n\nChen\n________________________________\nFrom: Kizuna <s@k.example>")
    assert extract_new_text(text) == "Yes, fine.\n\nChen"


def test_related_root_is_chosen_by_its_start_parameter() -> None:
    raw = (
        b'From: a@b.example\nContent-Type: multipart/related; boundary=r; start="<root@x>"\n\n'
        b"--r\nContent-Type: image/gif\nContent-ID: <img@x>\n\nGIF89a\n"
        b'--r\nContent-Type: text/html\nContent-ID: <root@x>\n\n<p>see <img src="cid:img@x"></p>\n--r--\n'
    )
    parsed = parse_mail(raw)
    assert parsed.text == "see"
    assert parsed.html == '<p>see <img src="cid:img@x"></p>'
    assert [(a.content_id, a.inline, a.filename) for a in parsed.attachments] == [("img@x", True, "attachment-1")]
    assert parsed.content_type == "multipart/related"


def test_degenerate_html_is_reduced_to_text_in_linear_time() -> None:
    import time

    cases = {
        "<div>" * 20_000 + "deep": "deep",  # html5ever is quadratic in nesting
        "<blockquote>" * 20_000 + "quote": "quote",
        "a&b " * 60_000: "a&b a&b",  # ... and in character references
        "<a " * 60_000: "<a <a",  # HTMLParser is quadratic on unterminated tags
        "<p>x" * 60_000: "x",  # too many tags
        "<script" * 60_000 + "<p>after</p>": "",
    }
    started = time.perf_counter()
    for html, expected in cases.items():
        text, clean, defect = render_html(html)
        assert expected in text
        assert clean == ""
        assert defect == "HTML body too large or too deeply nested to keep its formatting: text only"
    assert time.perf_counter() - started < 2
    text, clean, defect = render_html("<head><style>x{}</style></head><script>bad()</script><p>a &amp; b</p>" * 20_000)
    assert defect is not None and "bad()" not in text and "x{}" not in text and text.startswith("a & b")


def test_deep_quotes_are_marked_ten_levels_at_most() -> None:
    text = html_to_text("<blockquote>" * 50 + "deep")
    assert text == "> " * 10 + "deep"


def test_sanitize_html_keeps_the_safe_subset_only() -> None:
    dirty = (
        '<p style="position:fixed" onclick="x()">Hi <a href="javascript:alert(1)">js</a> '
        '<a href="https://ok.example/">ok</a> <a href="/relative">rel</a>'
        '<img src="cid:logo@x"><img src="http://img.example/a.png"><img src="data:image/png;base64,AA==">'
        '<img src="file:///etc/passwd"><svg><script>alert(1)</script></svg>'
        '<iframe src="https://evil.example"></iframe><object data="x"></object>'
        '<a href="mailto:help@example.com">mail</a></p><math><mi>x</mi></math>'
    )
    clean = sanitize_html(dirty)
    for bad in (
        "onclick",
        "style=",
        "javascript:",
        "<iframe",
        "<script",
        "alert(",
        "data:",
        "file:",
        "/relative",
        "<svg",
    ):
        assert bad not in clean, bad
    for good in ('src="cid:logo@x"', 'src="http://img.example/a.png"', 'href="https://ok.example/"', "mailto:help"):
        assert good in clean, good
    assert 'rel="noopener noreferrer nofollow"' in clean


def test_nested_forward_inside_forward_keeps_all_attachments() -> None:
    inner = (
        b"From: inner@example.com\nSubject: inner\nContent-Type: multipart/mixed; boundary=i\n\n--i\n"
        b"Content-Type: text/plain\n\ninner text\n--i\nContent-Type: image/png; name=a.png\n"
        b"Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--i--\n"
    )
    middle = b"From: middle@example.com\nSubject: middle\nContent-Type: multipart/mixed; boundary=m\n\n--m\n"
    middle += b"Content-Type: text/plain\n\nmiddle text\n--m\nContent-Type: message/rfc822\n\n" + inner + b"\n--m--\n"
    outer = b"From: outer@example.com\nSubject: Fwd\nContent-Type: multipart/mixed; boundary=o\n\n--o\n"
    outer += b"Content-Type: text/plain\n\nouter text\n--o\nContent-Type: message/rfc822\n\n" + middle + b"\n--o--\n"
    parsed = parse_mail(outer)
    assert [a.filename for a in parsed.attachments] == ["a.png"]
    assert parsed.attachments[0].data == b"\x89PNG\r\n\x1a\n"
    for text in ("outer text", "middle text", "inner text", "Subject: middle", "Subject: inner"):
        assert text in parsed.text
    assert parsed.new_text == "outer text"


def test_broken_mime_structures_never_crash() -> None:
    cases = [
        b"Content-Type: multipart/mixed\n\nno boundary parameter at all\n",
        b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nno closing boundary\n',
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n!!!not base64@@@\n",
        b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nbroken =ZZ soft=\n",
        b"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nRnJvbTogYUBiCgpoaQo=\n",
        b"Content-Type: message/delivery-status\n\nAction: failed\nFinal-Recipient: rfc822; x@y.example\n",
        b"Content-Type: /\nContent-Disposition: ;;;filename*0*=bad''%ZZ\n\nx",
        b"Content-Type: text/plain; charset*=''%E9\n\nx",
        b"\n\n\n",
        b"From:\nTo:\nCc:\nSubject:\nDate:\nMessage-ID:\n\n",
        b"From " + b"x" * 10 + b"\n" + b"A: " + b"\xff" * 100 + b"\n\n",
    ]
    for raw in cases:
        parsed = parse_mail(raw)
        _no_internal_error(parsed)
        _well_formed(parsed)


def test_extremely_deep_nesting_is_refused_cheaply() -> None:
    body = b"Content-Type: text/plain\n\nbottom\n"
    for level in range(1500):
        body = b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n%s\n--b%d--\n" % (level, level, body, level)
    parsed = parse_mail(b"From: a@b.example\n" + body)
    _no_internal_error(parsed)
    assert parsed.from_address == "a@b.example"
    assert "more than 100 multipart boundaries: body read as text" in parsed.defects
    assert "bottom" in parsed.text
    # Forwarded messages inside forwarded messages, beyond what the stdlib parser can recurse into.
    parsed = parse_mail(b"From: a@b.example\n" + b"Content-Type: message/rfc822\n\n" * 3000 + b"\ninner\n")
    _no_internal_error(parsed)
    assert "MIME structure nested too deeply: body read as text" in parsed.defects
    assert parsed.attachments and b"inner" in parsed.attachments[0].data


def test_non_bytes_input_is_accepted() -> None:
    assert parse_mail("From: a@b.example\n\nhi\n").text == "hi"  # type: ignore[arg-type]
    assert parse_mail(bytearray(b"From: a@b.example\n\nhi\n")).text == "hi"  # type: ignore[arg-type]


# --- quotes and signatures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("New.\n\nOn Tue, Dec 1, 2026 at 10:00 AM Name <a@b.example> wrote:\n> old", "New."),
        ("New.\n\nOn 1 Dec 2026, at 10:00, Name <a@b.example> wrote:\n\n> old", "New."),
        ("New.\n\nAm 01.12.2026 um 10:00 schrieb Name <a@b.example>:\n> alt", "New."),
        ("New.\n\nLe mar. 1 déc. 2026 à 10:00, Name <a@b.example> a écrit :\n> vieux", "New."),
        ("新しい本文\n\n2026年12月1日(火) 10:00 山田 太郎 <taro@example.jp>:\n> 古い", "新しい本文"),
        ("新しい本文\n\n2026年12月1日(火) 10:00 山田 太郎 <\ntaro@example.jp>:\n> 古い", "新しい本文"),
        ("新しい本文\n\n2026/12/01 10:00、山田太郎 のメール:\n\n> 古い", "新しい本文"),
        ("新しい本文\n\n2026/12/01 10:00 に 山田太郎 さんは書きました:\n> 古い", "新しい本文"),
        ("New.\n\n-----Original Message-----\nFrom: x\nold", "New."),
        ("本文\n\n-----元のメッセージ-----\n差出人: x\n古い", "本文"),
        ("本文\n\n差出人: Kizuna <a@b.example>\n送信日時: 2026年12月1日 10:00\n件名: x\n\n古い", "本文"),
        ("New.\n\n________________________________\nFrom: x\nSent: y\nTo: z\n\nold", "New."),
        ("New.\n\nFrom: x <a@b.example>\nSent: Tuesday\nTo: y\nSubject: z\n\nold", "New."),
        ("New.\n\n---------- Forwarded message ---------\nFrom: x\n\nold", "New."),
        ("New.\n\n> old line\n> more old", "New."),
        ("On 12/1/26 10:00 AM, Name wrote:\n> old\n\nBottom posted answer.", "Bottom posted answer."),
        ("Body.\n\n-- \nSig line\nMore sig", "Body."),
        ("Body.\n\nSent from my iPhone", "Body."),
        ("本文です。\n\niPhoneから送信", "本文です。"),
        ("Body.\n\nGet Outlook for Android<https://aka.ms/ghei36>", "Body."),
        # Not quotes: a From: line alone, a date line without time, a quote in the middle.
        ("From: my accountant, yesterday.\nPlease help.", "From: my accountant, yesterday.\nPlease help."),
        (
            "2026年12月1日に請求書を送りました。\n内容は以下の通りです：\n- 明細",
            "2026年12月1日に請求書を送りました。\n内容は以下の通りです：\n- 明細",
        ),
        ("You said:\n> a\nand I answer b.", "You said:\n> a\nand I answer b."),
        # Nothing left after stripping: keep it all.
        ("> only a quote", "> only a quote"),
        ("-- \nonly a signature", "--\nonly a signature"),  # kept (trailing spaces trimmed)
    ],
)
def test_extract_new_text(text: str, expected: str) -> None:
    assert extract_new_text(text) == expected


def test_quote_detection_is_fast_on_huge_inputs() -> None:
    import time

    texts = [
        ("On 1 x wrote:\n> a\nb\n" * 20000) + ("x" * 100000 + "\n") * 5 + ("On " + "1" * 400 + "\n") * 5000,
        "Da:\n" * 300000,  # every line a candidate
        ("On 1 x wrote:\n> a\nb\n" + "From: x\n" * 4000) * 50,
    ]
    started = time.perf_counter()
    for text in texts:
        extract_new_text(text)
    assert time.perf_counter() - started < 2


# --- classification ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "content_type", "kind"),
    [
        ({}, "multipart/report; report-type=delivery-status; boundary=x", "bounce"),
        ({}, 'multipart/report; report-type="delivery-status"', "bounce"),
        ({}, "multipart/report", "bounce"),
        ({}, "multipart/report; report-type=disposition-notification", "auto_reply"),
        ({"X-Failed-Recipients": "a@b.example"}, "text/plain", "bounce"),
        ({"from": "Mail Delivery System <MAILER-DAEMON@mx.example>"}, "", "bounce"),
        ({"auto-submitted": "auto-replied"}, "text/plain", "auto_reply"),
        ({"auto-submitted": "auto-generated; owner=x"}, "", "auto_reply"),
        ({"auto-submitted": "no"}, "", "normal"),
        ({"x-autoreply": "yes"}, "", "auto_reply"),
        ({"x-autorespond": "Vacation"}, "", "auto_reply"),
        ({"x-autoreply": "no"}, "", "normal"),
        ({"precedence": "auto_reply"}, "", "auto_reply"),
        ({"x-auto-response-suppress": "All", "subject": "Out of Office: hello"}, "", "auto_reply"),
        ({"x-auto-response-suppress": "OOF", "subject": "自動応答: お問い合わせ"}, "", "auto_reply"),
        ({"x-auto-response-suppress": "All", "subject": "Question about my bill"}, "", "normal"),
        ({"return-path": "<>"}, "", "auto_reply"),
        ({"precedence": "bulk"}, "", "bulk"),
        ({"precedence": "junk"}, "", "bulk"),
        ({"Precedence": "List"}, "", "bulk"),
        ({"list-id": "<x.example>"}, "", "bulk"),
        ({"list-unsubscribe": "<https://x.example/u>"}, "", "bulk"),
        # Precedence between kinds: bounce > auto_reply > bulk > normal.
        ({"auto-submitted": "auto-replied", "precedence": "bulk"}, "", "auto_reply"),
        (
            {"auto-submitted": "auto-replied", "list-id": "<x>"},
            "multipart/report; report-type=delivery-status",
            "bounce",
        ),
        ({"x-kizuna-staff": "true", "x-spam-status": "No"}, "text/plain", "normal"),
        ({}, "", "normal"),
    ],
)
def test_classify(headers: dict[str, str], content_type: str, kind: str) -> None:
    assert classify(headers, content_type) == kind


# --- fuzzing -----------------------------------------------------------------------------------

_SEEDS = [(CORPUS / name).read_bytes() for name in MY_FILES if (CORPUS / name).stat().st_size < 20000]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_fuzz_random_bytes_never_raise(raw: bytes) -> None:
    parsed = parse_mail(raw)
    _no_internal_error(parsed)
    _well_formed(parsed)


@st.composite
def _mutated_corpus_message(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(1, 12))):
        operation = rng.randrange(5)
        at = rng.randrange(len(data) + 1) if data else 0
        if operation == 0 and data:  # flip a byte
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif operation == 1:  # insert structural noise
            data[at:at] = rng.choice(
                [
                    b"\r\n",
                    b"\n--",
                    b"=?utf-8?B?",
                    b"?=",
                    b"\x1b$B",
                    b"; charset=x-bad",
                    b"boundary=",
                    b"\x00",
                    b">",
                    b":",
                ]
            )
        elif operation == 2:  # cut a slice
            del data[at : at + rng.randrange(1, 200)]
        elif operation == 3:  # duplicate a slice
            data[at:at] = data[at : at + rng.randrange(1, 300)]
        else:  # truncate
            del data[at:]
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_corpus_message())
def test_fuzz_mutated_corpus_never_raises(raw: bytes) -> None:
    parsed = parse_mail(raw)
    _no_internal_error(parsed)
    _well_formed(parsed)

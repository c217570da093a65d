"""Turning the bytes of a mail into text: charset labels as clients really write them,
RFC 2047 encoded words in headers, and the cleaning every decoded string goes through.

Nothing here raises for any input: a label Python does not know, bytes that do not fit the
declared charset or a broken encoded word each fall back to a best guess and return a
human-readable defect note instead.
"""

from __future__ import annotations

import binascii
import codecs
import re

# Labels clients send that Python spells differently, or where a superset decodes more of
# what is really sent: Japanese clients write Shift_JIS but use Microsoft's cp932 extensions
# (①, ㈱, ～), and "ISO-8859-1" text routinely carries Windows-1252 punctuation.
_ALIASES: dict[str, str] = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "s-jis": "cp932",
    "x-sjis": "cp932",
    "x_sjis": "cp932",
    "windows-31j": "cp932",
    "csshiftjis": "cp932",
    "cswindows31j": "cp932",
    "ms_kanji": "cp932",
    "ms932": "cp932",
    "x-ms-cp932": "cp932",
    "cp943c": "cp932",
    "ibm-943": "cp932",
    "euc-jp": "euc_jp",
    "x-euc-jp": "euc_jp",
    "eucjp": "euc_jp",
    "eucjp-ms": "euc_jp",
    "euc-jp-ms": "euc_jp",
    "cp51932": "euc_jp",
    "cseucpkdfmtjapanese": "euc_jp",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "big5": "big5hkscs",
    "iso-8859-8-i": "iso8859_8",
    "iso-8859-6-i": "iso8859_6",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}
# ISO-2022-JP as sent by Windows and phone clients: JIS with the cp932 extensions.
_ISO2022JP = {"iso-2022-jp", "iso2022jp", "iso_2022_jp", "csiso2022jp", "iso-2022-jp-ms", "cp50220", "cp50221"}
# Labels that mean "no idea": treated like a missing charset.
_UNDECLARED = {"", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "unknown", "x-user-defined", "default", "none"}
# Codecs Python knows that are not charsets a mail body can be in.
_NOT_MAIL_CODECS = {"unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode", "palmos", "mbcs", "oem"}

_SURROGATES = re.compile("[\ud800-\udfff]")
_LINE_BREAKS = re.compile("\r\n|\r|\n|\u2028|\u2029|\x85")
_OTHER_LINE_BREAKS = re.compile("\r\n?|\u2028|\u2029|\x85")
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # Unicode category Cc but tab and LF


def normalise_label(label: str | None) -> str:
    """A charset label as lower-case text without quotes or an RFC 2231 `*language` part."""
    if not label:
        return ""
    name = str(label).strip().strip("\"'").strip().lower()
    return name.split("*", 1)[0][:64]


def _lookup(name: str) -> str | None:
    """The Python codec for a charset label, or None when Python has none that fits mail."""
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if info.name in _NOT_MAIL_CODECS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _jis_to_sjis(first: int, second: int) -> bytes:
    lead = (first - 0x21) // 2 + 0x81
    if lead > 0x9F:
        lead += 0x40
    if first % 2:
        trail = second + 0x1F
        if trail >= 0x7F:
            trail += 1
    else:
        trail = second + 0x7E
    return bytes((lead & 0xFF, trail & 0xFF))


def decode_iso2022jp(data: bytes) -> str:
    """ISO-2022-JP including the cp932 extensions (NEC specials ①, ㈱; IBM kanji) that
    Python's strict codec refuses: every JIS pair is mapped to Shift_JIS, then cp932 decodes."""
    try:
        return data.decode("iso2022_jp")
    except UnicodeDecodeError:
        pass
    out = bytearray()
    mode = "ascii"
    i = 0
    size = len(data)
    while i < size:
        byte = data[i]
        if byte == 0x1B:
            sequence = data[i + 1 : i + 4]
            if sequence[:2] in (b"(B", b"(J"):
                mode, i = "ascii", i + 3
                continue
            if sequence[:2] == b"(I":
                mode, i = "kana", i + 3
                continue
            if sequence[:2] in (b"$@", b"$B"):
                mode, i = "kanji", i + 3
                continue
            if sequence[:3] in (b"$(D", b"$(O", b"$(Q", b"$(P"):
                mode, i = "kanji", i + 4
                continue
            i += 1
            continue
        if byte == 0x0E:  # shift out: half-width katakana (CP50221)
            mode, i = "kana", i + 1
            continue
        if byte == 0x0F:
            mode, i = "ascii", i + 1
            continue
        if byte in (0x0A, 0x0D):
            mode = "ascii"
            out.append(byte)
            i += 1
            continue
        if mode == "kanji" and 0x21 <= byte <= 0x7E and i + 1 < size and 0x21 <= data[i + 1] <= 0x7E:
            out += _jis_to_sjis(byte, data[i + 1])
            i += 2
            continue
        if mode == "kana" and 0x21 <= byte <= 0x5F:
            out.append(byte + 0x80)
            i += 1
            continue
        out.append(byte)
        i += 1
    return bytes(out).decode("cp932", errors="replace")


_JAPANESE = re.compile("[\u3000-\u30ff\u3200-\u33ff\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60\uffe0-\uffe6]")
_WEDGED = re.compile("[A-Za-z][^\\x00-\\x7f][A-Za-z]")
_KANA = re.compile("[\u3041-\u30fa]")
_HIGH_BYTES = bytes(range(0x80, 0x100))
_ASCII_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SAMPLE = 65536


def _looks_japanese(data: bytes, codec: str) -> bool:
    """Japanese text in `codec`: it decodes, and either has (full-width) kana with mostly
    Japanese characters, or is all kanji. Western text misread as cp932 gives kanji mixed with
    half-width katakana (its accented capitals) and hardly ever hiragana or katakana."""
    sample = data[:_SAMPLE].decode(codec, errors="replace")
    if sample.count("\ufffd") > 1:
        return False
    non_ascii = sum(1 for ch in sample if ord(ch) > 0x7F)
    japanese = len(_JAPANESE.findall(sample))
    if _KANA.search(sample):
        return japanese >= 0.7 * non_ascii
    # Kanji only (a name such as 山田 太郎, from a Windows client): every 8-bit character must
    # be a full-width one, none wedged between two ASCII letters (how "François" reads in
    # cp932: "Fran輟is"). Not for EUC-JP, where any two Latin-1/Cyrillic letters make a kanji.
    if codec != "cp932":
        return False
    return japanese >= 2 and japanese == non_ascii and not _WEDGED.search(sample)


def _guess(data: bytes, *, skip: str = "") -> tuple[str, str]:
    """Text and the charset used for bytes whose charset is unknown or wrong, decided by
    simple, predictable tests (statistical detectors misjudge the short texts mail is full
    of): UTF-8 when valid; ISO-2022-JP when its escapes appear; cp932 or EUC-JP when the text
    reads as Japanese; Windows-1251 when most letters are 8-bit (Cyrillic); else
    Windows-1252, and Latin-1 for the few bytes 1252 leaves undefined."""
    if skip != "utf-8":
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    if b"\x1b$B" in data or b"\x1b$@" in data:
        return decode_iso2022jp(data), "iso-2022-jp"
    for codec in ("cp932", "euc_jp"):
        if codec != skip and _looks_japanese(data, codec):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError:
                pass
    sample = data[:_SAMPLE]
    high = len(sample) - len(sample.translate(None, _HIGH_BYTES))
    letters = len(sample) - len(sample.translate(None, _ASCII_LETTERS))
    if skip != "cp1251" and high > letters and high >= 4:
        return data.decode("cp1251", errors="replace"), "cp1251"
    for codec in ("cp1252", "latin-1"):
        if codec != skip:
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError:
                pass
    return data.decode("latin-1"), "latin-1"


def decode_bytes(data: bytes, label: str | None) -> tuple[str, str | None]:
    """(text, defect note or None) for `data` declared in charset `label`."""
    name = normalise_label(label)
    if name in _UNDECLARED:
        if data.isascii():
            return data.decode("ascii"), None
        text, used = _guess(data)
        if used == "utf-8":
            return text, None
        return text, f"8-bit text without a declared charset, decoded as {used}"
    if name in _ISO2022JP:
        return decode_iso2022jp(data), None
    codec = _lookup(name)
    if codec is None:
        text, used = _guess(data)
        return text, f"unknown charset {name!r}, decoded as {used}"
    try:
        return data.decode(codec), None
    except UnicodeDecodeError:
        pass
    replaced = data.decode(codec, errors="replace")
    if replaced.count("\ufffd") <= max(1, len(replaced) // 100):  # a stray bad byte: the label is right
        return replaced, f"invalid bytes for charset {name!r} replaced"
    if codec == "cp1252":  # five bytes cp1252 leaves undefined: plain Latin-1 then
        return data.decode("latin-1"), None
    if codec == "euc_jp":
        for variant in ("euc_jis_2004", "euc_jisx0213"):
            try:
                return data.decode(variant), None
            except UnicodeDecodeError:
                pass
        return data.decode("euc_jp", errors="replace"), "invalid EUC-JP bytes replaced"
    text, used = _guess(data, skip=codec)
    return text, f"text is not valid {name}, decoded as {used}"


# --- RFC 2047 encoded words ---------------------------------------------------------------

# Lenient: encoded text may hold spaces (broken clients), but never a '?'.
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,80})\?([bBqQ])\?([^?]*)\?=")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def _decode_word(encoding: str, payload: str) -> bytes | None:
    if encoding in "bB":
        compact = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        if len(compact) % 4 == 1:
            compact = compact[:-1]
        compact += "=" * (-len(compact) % 4)
        try:
            return binascii.a2b_base64(compact)
        except (binascii.Error, ValueError):
            return None
    raw = payload.replace("_", " ").encode("ascii", errors="replace")
    return _QP_ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), raw)


def decode_words(value: str) -> tuple[str, list[str]]:
    """Decode RFC 2047 encoded words anywhere in `value` (also inside words and quotes, as
    clients produce them). Whitespace between two encoded words is dropped, and adjacent
    words in the same charset are joined as bytes before decoding, so a multi-byte
    character split across two words comes out whole."""
    if "=?" not in value:
        return value, []
    defects: list[str] = []
    pieces: list[tuple[str, str | None, list[bytes]]] = []  # (plain text, charset, bytes chunks)
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        position = match.end()
        data = _decode_word(match.group(2), match.group(3))
        if data is None:
            if "undecodable encoded word in a header" not in defects:
                defects.append("undecodable encoded word in a header")
            pieces.append((between + match.group(0), None, []))
            continue
        charset = normalise_label(match.group(1))
        previous = pieces[-1] if pieces else None
        if previous is not None and previous[1] is not None and not between.strip():
            if previous[1] == charset:
                previous[2].append(data)
                continue
            between = ""
        if between:
            pieces.append((between, None, []))
        pieces.append(("", charset, [data]))
    pieces.append((value[position:], None, []))
    out: list[str] = []
    for plain, charset, chunks in pieces:
        if charset is None:
            out.append(plain)
            continue
        text, defect = decode_bytes(b"".join(chunks), charset)
        if defect and defect not in defects:
            defects.append(defect)
        out.append(text)
    return "".join(out), defects


# --- cleaning ------------------------------------------------------------------------------


def raw_header_text(value: str) -> tuple[str, str | None]:
    """A header value as the stdlib hands it over (raw 8-bit bytes kept as surrogate escapes)
    turned into real text, unfolded: (text, defect note or None)."""
    defect = None
    if _SURROGATES.search(value):
        data = value.encode("ascii", errors="surrogateescape")
        value, used = _guess(data)
        defect = f"raw 8-bit bytes in a header, decoded as {used}"
    value = re.sub(r"\r?\n(?=[ \t])", "", value)
    return value, defect


def clean_line(value: str) -> str:
    """One-line text for a header-like field: line breaks, tabs and other control characters
    become a space or go, runs of spaces collapse, lone surrogates become U+FFFD."""
    value = _SURROGATES.sub("\ufffd", value)
    value = _CONTROLS.sub("", _LINE_BREAKS.sub(" ", value).replace("\t", " "))
    return re.sub(r" {2,}", " ", value).strip()


def clean_text(value: str) -> str:
    """Body text: LF line ends, no control characters but tab and newline, no lone
    surrogates, no byte-order mark."""
    value = _SURROGATES.sub("\ufffd", value)
    return _CONTROLS.sub("", _OTHER_LINE_BREAKS.sub("\n", value).lstrip("\ufeff"))

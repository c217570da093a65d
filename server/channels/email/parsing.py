"""Inbound mail parsing: raw RFC 5322 bytes in, a `ParsedMail` out, synchronously and without
touching the database. `parse_mail` never raises: whatever is wrong with the input is noted in
`ParsedMail.defects` and the best reading of the rest is returned.

The stdlib `email` package (compat32 policy, which keeps raw header text and tolerates broken
structure) does the MIME work; this module decides what the ticket needs from it:

- headers are decoded here (raw 8-bit bytes guessed as UTF-8 / cp932 / Latin-1, RFC 2047 words
  in any charset, see `charsets.py`) and every one-line value is stripped of CR/LF and other
  control characters, so nothing decoded can inject a header or a line anywhere;
- the body is chosen the way a mail client displays it: text/plain preferred in
  multipart/alternative, the root of multipart/related, the human-readable part of a report,
  forwarded message/rfc822 parts rendered inline after a "Forwarded message" banner with their
  attachments collected; HTML is rendered to text and separately sanitised (`htmltext.py`);
- `new_text` is the text without quoted history and signature (`quoting.py`);
- `kind` sorts out mail that must never open a ticket or get an auto-response (`classify`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from server.channels.email.charsets import clean_line, clean_text, decode_bytes, decode_words, raw_header_text
from server.channels.email.htmltext import render_html
from server.channels.email.quoting import extract_new_text

log = logging.getLogger(__name__)

MAX_HEADER_VALUE = 2000
MAX_FILENAME = 200
MAX_DEPTH = 20  # MIME nesting we follow (forwarded messages included)
MAX_PARTS = 1000
MAX_REFERENCES = 200
MAX_DEFECTS = 50
MAX_HEADER_NAMES = 300
MAX_HEADER_PARSED = 256 * 1024  # characters of one address list or subject that are read
MAX_BOUNDARIES = 100  # boundary parameters in one message
FORWARD_BANNER = "---------- Forwarded message ----------"
MAX_NAMED = 100  # To/Cc display names kept (the first ones; people copied on a ticket come from them)


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str  # decoded (RFC 2047 / RFC 2231), no path parts or control chars, <= 200 chars
    content_type: str  # lower-case, e.g. "application/pdf"
    data: bytes
    inline: bool  # has a Content-ID and is not marked `attachment` (an inline image)
    content_id: str | None  # without the angle brackets, as `cid:` URLs in the HTML name it


@dataclass(frozen=True)
class ParsedMail:
    message_id: str  # "<...>" as in the header; "" when missing
    in_reply_to: list[str]  # each "<...>"
    references: list[str]  # each "<...>", the last MAX_REFERENCES
    from_name: str
    from_address: str  # lower-cased addr-spec; "" when missing or invalid
    reply_to: str
    to: list[str]
    cc: list[str]
    subject: str  # decoded, one line, full length
    date: datetime | None  # aware, UTC
    text: str  # the whole body as text (text/plain preferred, else the HTML rendered)
    html: str  # the HTML body sanitised to a safe subset; "" when there is none
    new_text: str  # `text` without quoted history and signature
    attachments: list[ParsedAttachment]
    headers: dict[str, str]  # lower-case name -> decoded first value, <= 2,000 chars
    kind: str  # "normal" | "auto_reply" | "bulk" | "bounce"
    bounce_recipients: list[str]
    recipient_count: int  # addresses in To + Cc
    defects: list[str]
    content_type: str = ""  # of the top-level part, e.g. "multipart/mixed"
    names: dict[str, str] = field(default_factory=dict)  # To/Cc address -> its display name, when given


# --- classification --------------------------------------------------------------------------

_OOF_SUBJECT = re.compile(
    r"(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit|réponse automatique|"
    r"自動応答|自動返信|不在)",
    re.IGNORECASE,
)
_REPORT_TYPE = re.compile(r";\s*report-type\s*=\s*\"?([\w.-]+)", re.IGNORECASE)
_DAEMON = re.compile(r"(^|[<\s\"])(mailer-daemon|postmaster)@", re.IGNORECASE)


def classify(headers: dict[str, str], content_type: str) -> str:
    """What kind of mail this is, from its headers (any letter case) and its top-level
    Content-Type header value (with parameters, so report-type can be read).

    First match wins, in this order:

    1. "bounce": multipart/report with report-type delivery-status (or none given), an
       X-Failed-Recipients header, or From mailer-daemon@/postmaster@.
    2. "auto_reply": any other multipart/report (read receipts, feedback reports);
       Auto-Submitted other than "no"; X-Autoreply / X-Autorespond / X-Autoresponder (unless
       "no"); Precedence: auto_reply; X-Auto-Response-Suppress All/OOF together with an
       out-of-office subject; Return-Path: <> (the null sender of automated mail).
    3. "bulk": Precedence bulk, junk or list; a List-Id or List-Unsubscribe header.
    4. "normal".

    Only "normal" mail may open a ticket or receive an automatic response.
    """
    fields = {str(name).lower(): str(value) for name, value in headers.items()}
    ctype = (content_type or "").strip().lower()
    if ctype.startswith("multipart/report"):
        found = _REPORT_TYPE.search(ctype)
        if found is None or found.group(1) == "delivery-status":
            return "bounce"
        return "auto_reply"
    if fields.get("x-failed-recipients", "").strip() or _DAEMON.search(fields.get("from", "")):
        return "bounce"
    submitted = fields.get("auto-submitted", "").split(";", 1)[0].strip().lower()
    if submitted and submitted != "no":
        return "auto_reply"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if name in fields and fields[name].strip().lower() not in ("no", "false", "0"):
            return "auto_reply"
    precedence = fields.get("precedence", "").strip().lower()
    if precedence == "auto_reply":
        return "auto_reply"
    suppress = fields.get("x-auto-response-suppress", "").lower()
    if ("all" in suppress or "oof" in suppress) and _OOF_SUBJECT.search(fields.get("subject", "")):
        return "auto_reply"
    if fields.get("return-path", "").strip() == "<>":
        return "auto_reply"
    if precedence in ("bulk", "junk", "list"):
        return "bulk"
    if "list-id" in fields or "list-unsubscribe" in fields:
        return "bulk"
    return "normal"


# --- small helpers ---------------------------------------------------------------------------


class _Notes:
    """Defect notes, each once, in order, at most MAX_DEFECTS."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, note: str | None) -> None:
        if note and note not in self.items and len(self.items) < MAX_DEFECTS:
            self.items.append(clean_line(note)[:300])


_STDLIB_DEFECTS = {
    "NoBoundaryInMultipartDefect": "multipart without a boundary parameter",
    "StartBoundaryNotFoundDefect": "MIME boundary not found in a multipart body (broken boundary)",
    "CloseBoundaryNotFoundDefect": "closing MIME boundary missing",
    "FirstHeaderLineIsContinuationDefect": "first header line is a continuation line",
    "MisplacedEnvelopeHeaderDefect": "envelope 'From ' line among the headers",
    "MissingHeaderBodySeparatorDefect": "malformed header line or no blank line after the headers",
    "MultipartInvariantViolationDefect": "declared multipart but the body is not",
    "InvalidMultipartContentTransferEncodingDefect": "invalid transfer encoding on a multipart",
    "UndecodableBytesDefect": "undecodable bytes",
    "InvalidBase64PaddingDefect": "invalid base64 padding",
    "InvalidBase64CharactersDefect": "invalid characters in base64 data",
    "InvalidBase64LengthDefect": "invalid base64 length",
    "InvalidHeaderDefect": "invalid header",
}

_HEADER_NAME = re.compile(r"^[!-9;-~]{1,100}$")
_MESSAGE_ID = re.compile(r"<([^<>\s\x00-\x1f\x7f]{1,990})>")
_ADDRESS = re.compile(r"^[^\s@<>()\[\],;:\\\"]{1,64}@[\w-]+(\.[\w-]+)*\.?$")
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_BOUNDARY_PARAMETER = re.compile(rb"[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy][ \t]*\*?[0-9]*\*?[ \t]*=")
# A boundary line followed by a part's first header.
_BOUNDARY_LINE = re.compile(rb"^--([0-9A-Za-z'()+_,./:=?-]{1,70})[ \t]*\r?\n(?=[Cc]ontent-)", re.MULTILINE)
_SKIPPED_TYPES = {"application/pgp-signature", "application/pkcs7-signature", "application/x-pkcs7-signature"}


def _stdlib_defects(part: Message, notes: _Notes) -> None:
    for defect in getattr(part, "defects", []) or []:
        name = type(defect).__name__
        notes.add(_STDLIB_DEFECTS.get(name, re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()))


def _raw_values(part: Message, name: str, notes: _Notes | None = None) -> list[str]:
    """Every value of header `name`, as text (8-bit bytes decoded), unfolded, RFC 2047 words
    still encoded."""
    values = []
    for key, value in part.raw_items():
        if isinstance(key, str) and key.lower() == name:
            text, defect = raw_header_text(str(value))
            if notes is not None:
                notes.add(defect and f"{defect} ({name})")
            values.append(text)
    return values


def _first_raw(part: Message, name: str, notes: _Notes | None = None) -> str:
    values = _raw_values(part, name, notes)
    return values[0] if values else ""


def _decoded_line(value: str, notes: _Notes | None = None, what: str = "") -> str:
    text, defects = decode_words(value)
    if notes is not None:
        for defect in defects:
            notes.add(defect)
        if re.search(r"[\r\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text):
            notes.add(f"line breaks or control characters removed from {what or 'a header'}")
    return clean_line(text)


def valid_address(address: str) -> str:
    """The lower-cased addr-spec, or "" when `address` is not one."""
    address = address.strip().strip("<>").strip()
    if len(address) > 254 or not _ADDRESS.match(address):
        return ""
    return address.lower()


def _addresses(values: list[str], notes: _Notes, what: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of valid addresses in header values."""
    if not values:
        return []
    if sum(len(value) for value in values) > MAX_HEADER_PARSED:
        notes.add(f"{what} longer than {MAX_HEADER_PARSED} characters: only its start was read")
        kept, budget = [], MAX_HEADER_PARSED
        for value in values:
            kept.append(value[:budget].rpartition(",")[0] if len(value) > budget else value)
            budget -= len(kept[-1])
            if budget <= 0:
                break
        values = kept
    try:
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001 - malformed address lists must not stop the parse
        notes.add(f"unparseable {what} header")
        return []
    found = []
    invalid = 0
    for name, address in pairs:
        valid = valid_address(address)
        if valid:
            found.append((name, valid))
        elif address or name:
            invalid += 1
    if invalid:
        notes.add(f"{invalid} invalid address(es) in {what}")
    return found


def _message_ids(value: str) -> list[str]:
    seen: dict[str, None] = {}
    for found in _MESSAGE_ID.findall(value):
        seen.setdefault(f"<{found}>", None)
    return list(seen)


def _date(value: str, notes: _Notes) -> datetime | None:
    if not value.strip():
        notes.add("missing Date header")
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except Exception:  # noqa: BLE001 - any unreadable date is just a defect
        notes.add("invalid Date header")
        return None


def safe_filename(name: str) -> str:
    """`name` without directories, control or bidi-override characters, characters Windows
    refuses, leading/trailing dots; at most MAX_FILENAME characters, extension kept."""
    name = _BIDI.sub("", clean_line(name))
    name = re.split(r"[/\\]", name)[-1]
    name = re.sub(r'[<>:"|?*]', "_", name).strip(" .")
    if len(name) > MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: MAX_FILENAME - len(extension) - 1].rstrip(" .") + "." + extension
        else:
            name = name[:MAX_FILENAME].rstrip(" .")
    return name


def _unflow(text: str, delsp: bool) -> str:
    """Join the soft line breaks of format=flowed text (RFC 3676)."""
    out: list[str] = []
    pieces: list[str] = []  # the flowed paragraph being joined
    pending_depth = 0

    def emit(depth: int, content: str) -> None:
        out.append(">" * depth + (" " if depth else "") + content)

    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]
        if pieces and (depth != pending_depth or content == "-- "):
            emit(pending_depth, "".join(pieces))
            pieces = []
        if content.endswith(" ") and content != "-- ":
            pieces.append(content[:-1] if delsp else content)
            pending_depth = depth
            continue
        if pieces:
            pieces.append(content)
            content = "".join(pieces)
            pieces = []
        emit(depth, content)
    if pieces:
        emit(pending_depth, "".join(pieces))
    return "\n".join(out)


# --- the MIME tree ---------------------------------------------------------------------------


class _Body:
    """Walks the MIME tree once: collects body text, sanitised HTML, attachments, bounce
    recipients and defects."""

    def __init__(self, notes: _Notes) -> None:
        self.notes = notes
        self.attachments: list[ParsedAttachment] = []
        self.bounced: list[str] = []
        self.parts = 0

    @staticmethod
    def _type(part: Message) -> str:
        try:
            return part.get_content_type()
        except Exception:  # noqa: BLE001
            return "text/plain"

    @staticmethod
    def _disposition(part: Message) -> str:
        try:
            return (part.get_content_disposition() or "").lower()
        except Exception:  # noqa: BLE001
            return ""

    def _param(self, part: Message, name: str, header: str = "content-type") -> str:
        try:
            value = part.get_param(name, header=header)
        except Exception:  # noqa: BLE001
            return ""
        if isinstance(value, tuple):
            return str(value[2])
        return str(value or "")

    def _payload(self, part: Message) -> bytes:
        try:
            data = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001
            self.notes.add("undecodable part body")
            data = None
        if isinstance(data, bytes):
            return data
        payload = part.get_payload()
        if isinstance(payload, str):
            return payload.encode("utf-8", errors="surrogateescape")
        return b""

    def _decode(self, part: Message, data: bytes) -> str:
        try:
            charset = part.get_content_charset()
        except Exception:  # noqa: BLE001
            charset = None
        text, defect = decode_bytes(data, charset)
        self.notes.add(defect)
        return clean_text(text)

    def _filename(self, part: Message) -> str:
        value: object = None
        try:
            value = part.get_param("filename", header="content-disposition") or part.get_param("name")
        except Exception:  # noqa: BLE001
            self.notes.add("unreadable attachment file name")
        if not value:
            return ""
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded text)
            charset, _, text = (str(item or "") for item in value)
            try:
                data = text.encode("latin-1", errors="surrogateescape")
            except UnicodeEncodeError:
                return safe_filename(text)
            decoded, defect = decode_bytes(data, charset or "utf-8")
            self.notes.add(defect)
            return safe_filename(decoded)
        text, defect = raw_header_text(str(value))
        self.notes.add(defect)
        return safe_filename(_decoded_line(text, self.notes, "a file name"))

    def visit(self, part: Message, depth: int, body: bool) -> tuple[list[str], list[str]]:
        """(texts, sanitised htmls) of `part`; attachments are collected on the way."""
        self.parts += 1
        if self.parts > MAX_PARTS:
            self.notes.add(f"more than {MAX_PARTS} MIME parts: the rest ignored")
            return [], []
        if depth > MAX_DEPTH:
            self.notes.add(f"MIME parts nested deeper than {MAX_DEPTH}: ignored")
            return [], []
        ctype = self._type(part)
        try:
            result = self._visit(part, ctype, depth, body)
        finally:
            _stdlib_defects(part, self.notes)
        return result

    def _visit(self, part: Message, ctype: str, depth: int, body: bool) -> tuple[list[str], list[str]]:
        if ctype == "message/delivery-status":
            self._delivery_status(part)
            return [], []
        if part.is_multipart():
            children = [child for child in part.get_payload() if isinstance(child, Message)]
            if ctype.startswith("message/"):
                if ctype in ("message/rfc822", "message/global", "message/news") and children:
                    return self._forwarded(children[0], depth)
                return [], []
            if ctype == "multipart/alternative" and body:
                return self._alternative(children, depth)
            if ctype == "multipart/related" and body:
                return self._related(part, children, depth)
            if ctype == "multipart/report":
                return self._report(children, depth, body)
            texts: list[str] = []
            htmls: list[str] = []
            for child in children:
                child_texts, child_htmls = self.visit(child, depth + 1, body)
                texts += child_texts
                htmls += child_htmls
            return texts, htmls
        if ctype.startswith("multipart/"):
            return self._lost_boundary(part, ctype, depth, body)
        return self._leaf(part, ctype, body)

    def _lost_boundary(self, part: Message, ctype: str, depth: int, body: bool) -> tuple[list[str], list[str]]:
        """A multipart whose declared boundary never appears: when the body has boundary
        lines of another name (a client that rewrote one but not the other), parse with that;
        otherwise read the body as plain text."""
        data = self._payload(part)
        found = _BOUNDARY_LINE.search(data)
        if found is not None:
            boundary = found.group(1).decode("ascii")
            repaired = _mime_tree(f'Content-Type: {ctype}; boundary="{boundary}"\r\n\r\n'.encode() + data, self.notes)
            if repaired is not None and repaired.is_multipart():
                self.notes.add(f"MIME boundary did not match the body: parsed with {boundary!r} found in it")
                return self.visit(repaired, depth + 1, body)
        self.notes.add("multipart body without its boundary: read as plain text")
        return [self._decode(part, data)], []

    def _leaf(self, part: Message, ctype: str, body: bool) -> tuple[list[str], list[str]]:
        if ctype in _SKIPPED_TYPES or ctype in ("text/rfc822-headers", "message/rfc822-headers"):
            return [], []
        disposition = self._disposition(part)
        filename = self._filename(part)
        data = self._payload(part)
        if body and ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text = self._decode(part, data)
            if ctype == "text/html":
                rendered, clean, defect = render_html(text)
                self.notes.add(defect)
                return [rendered], [clean]
            if self._param(part, "format").lower() == "flowed":
                text = _unflow(text, self._param(part, "delsp").lower() == "yes")
            return [text], []
        content_id = clean_line(_first_raw(part, "content-id")).strip("<> ")[:500] or None
        self.attachments.append(
            ParsedAttachment(
                filename=filename or f"attachment-{len(self.attachments) + 1}",
                content_type=ctype,
                data=data,
                inline=content_id is not None and disposition in ("", "inline"),
                content_id=content_id,
            )
        )
        return [], []

    def _alternative(self, children: list[Message], depth: int) -> tuple[list[str], list[str]]:
        plain = next(
            (c for c in children if self._type(c) == "text/plain" and self._disposition(c) != "attachment"), None
        )
        rich = [c for c in children if c is not plain and (self._type(c) == "text/html" or c.is_multipart())]
        rich_texts: list[str] = []
        htmls: list[str] = []
        if rich:
            rich_texts, htmls = self.visit(rich[-1], depth + 1, True)
        if plain is not None:
            texts, _ = self.visit(plain, depth + 1, True)
            if any(text.strip() for text in texts):
                return texts, htmls
        if rich:
            return rich_texts, htmls
        return self.visit(children[0], depth + 1, True) if children else ([], [])

    def _related(self, part: Message, children: list[Message], depth: int) -> tuple[list[str], list[str]]:
        if not children:
            return [], []
        start = self._param(part, "start").strip("<> ")
        root = children[0]
        if start:
            for child in children:
                if clean_line(_first_raw(child, "content-id")).strip("<> ") == start:
                    root = child
                    break
        texts, htmls = self.visit(root, depth + 1, True)
        for child in children:
            if child is not root:
                self.visit(child, depth + 1, False)
        return texts, htmls

    def _report(self, children: list[Message], depth: int, body: bool) -> tuple[list[str], list[str]]:
        texts: list[str] = []
        htmls: list[str] = []
        for index, child in enumerate(children):
            if self._type(child) == "message/delivery-status":
                self.visit(child, depth + 1, False)
            elif index == 0:
                texts, htmls = self.visit(child, depth + 1, body)
            # the returned message or its headers: our own mail, not shown again
        return texts, htmls

    def _forwarded(self, inner: Message, depth: int) -> tuple[list[str], list[str]]:
        lines = [FORWARD_BANNER]
        for name, label in (("from", "From"), ("date", "Date"), ("subject", "Subject"), ("to", "To")):
            value = _first_raw(inner, name)
            if value:
                lines.append(f"{label}: {_decoded_line(value)[:MAX_HEADER_VALUE]}")
        texts, _ = self.visit(inner, depth + 1, True)
        body = "\n\n".join(text.strip("\n") for text in texts if text.strip())
        return ["\n".join(lines) + "\n\n" + body], []

    def _delivery_status(self, part: Message) -> None:
        blocks: list[dict[str, str]] = []
        payload = part.get_payload()
        if isinstance(payload, list):
            for block in payload:
                if isinstance(block, Message):
                    fields: dict[str, str] = {}
                    for key, value in block.raw_items():
                        fields.setdefault(str(key).lower(), raw_header_text(str(value))[0])
                    blocks.append(fields)
        else:
            text = self._decode(part, self._payload(part))
            for chunk in re.split(r"\n\s*\n", text):
                fields = {}
                for found in re.finditer(r"^([A-Za-z-]+)[ \t]*:[ \t]*(.*)$", chunk, re.MULTILINE):
                    fields.setdefault(found.group(1).lower(), found.group(2))
                blocks.append(fields)
        for fields in blocks:
            if fields.get("action", "").strip().lower().startswith("failed"):
                for name in ("original-recipient", "final-recipient"):
                    address = valid_address(fields.get(name, "").split(";", 1)[-1])
                    if address and address not in self.bounced:
                        self.bounced.append(address)


# --- entry point -----------------------------------------------------------------------------


def _headers(message: Message, notes: _Notes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in message.raw_items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            notes.add("header with an invalid name ignored")
            continue
        key = name.lower()
        if key in headers:
            continue
        if len(headers) >= MAX_HEADER_NAMES:
            notes.add(f"more than {MAX_HEADER_NAMES} different headers: the rest ignored")
            break
        text, defect = raw_header_text(str(value))
        notes.add(defect and f"{defect} ({key})")
        headers[key] = _decoded_line(text[: MAX_HEADER_VALUE * 4])[:MAX_HEADER_VALUE]
    return headers


def _mime_tree(raw: bytes, notes: _Notes) -> Message | None:
    """The parsed MIME tree, or None when its structure is too deep to parse safely."""
    if len(_BOUNDARY_PARAMETER.findall(raw)) > MAX_BOUNDARIES:
        # The stdlib parser's work grows with nesting depth times size: refuse absurd nesting.
        notes.add(f"more than {MAX_BOUNDARIES} multipart boundaries: body read as text")
        return None
    try:
        return message_from_bytes(raw, policy=compat32)
    except RecursionError:
        notes.add("MIME structure nested too deeply: body read as text")
        return None


def _parse(raw: bytes) -> ParsedMail:
    notes = _Notes()
    if not raw.strip():
        notes.add("empty message")
    message = _mime_tree(raw, notes) or BytesParser(policy=compat32).parsebytes(raw, headersonly=True)
    _stdlib_defects(message, notes)
    headers = _headers(message, notes)

    from_values = _raw_values(message, "from")
    if len(from_values) > 1:
        notes.add("several From headers: the first is used")
    senders = _addresses(from_values[:1], notes, "From")
    from_name, from_address = "", ""
    if senders:
        from_name = _decoded_line(senders[0][0], notes, "the From name").strip("\"' ")[:500]
        from_address = senders[0][1]
    elif not from_values:
        notes.add("missing From header")
    else:
        notes.add("no valid address in From")
    reply_to = _addresses(_raw_values(message, "reply-to")[:1], notes, "Reply-To")
    to_pairs = _addresses(_raw_values(message, "to"), notes, "To")
    cc_pairs = _addresses(_raw_values(message, "cc"), notes, "Cc")
    to = [address for _, address in to_pairs]
    cc = [address for _, address in cc_pairs]
    names: dict[str, str] = {}
    for name, address in [*to_pairs, *cc_pairs][:MAX_NAMED]:
        if name and address not in names:
            names[address] = _decoded_line(name).strip("\"' ")[:200]

    subject_values = _raw_values(message, "subject")
    if len(subject_values) > 1:
        notes.add("several Subject headers: the first is used")
    subject = ""
    if subject_values:
        if len(subject_values[0]) > MAX_HEADER_PARSED:
            notes.add(f"Subject longer than {MAX_HEADER_PARSED} characters: cut")
        subject = _decoded_line(subject_values[0][:MAX_HEADER_PARSED], notes, "the Subject")
    if len(subject) > 998:
        notes.add(f"Subject is {len(subject)} characters long")

    message_id_value = _first_raw(message, "message-id")
    ids = _message_ids(message_id_value)
    message_id = ids[0] if ids else ""
    if not message_id_value.strip():
        notes.add("missing Message-ID")
    elif not ids:
        bare = clean_line(message_id_value)
        if bare and " " not in bare and len(bare) < 990 and "<" not in bare and ">" not in bare:
            message_id = f"<{bare}>"
        notes.add("Message-ID without angle brackets" if message_id else "invalid Message-ID")
    in_reply_to = _message_ids(" ".join(_raw_values(message, "in-reply-to")))
    references = _message_ids(" ".join(_raw_values(message, "references")))[-MAX_REFERENCES:]
    date = _date(_first_raw(message, "date"), notes)

    walker = _Body(notes)
    texts, htmls = walker.visit(message, 0, True)
    text = clean_text("\n\n".join(t.strip("\n") for t in texts if t.strip())).strip("\n")
    content_type_value = headers.get("content-type", "")
    kind = classify(headers, content_type_value)
    bounced = list(walker.bounced)
    if kind == "bounce":
        for _, address in _addresses(_raw_values(message, "x-failed-recipients"), notes, "X-Failed-Recipients"):
            if address not in bounced:
                bounced.append(address)
    else:
        bounced = []
    return ParsedMail(
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        from_name=from_name,
        from_address=from_address,
        reply_to=reply_to[0][1] if reply_to else "",
        to=to,
        cc=cc,
        subject=subject,
        date=date,
        text=text,
        html="\n".join(html for html in htmls if html),
        new_text=extract_new_text(text) if text else "",
        attachments=walker.attachments,
        headers=headers,
        kind=kind,
        bounce_recipients=bounced,
        recipient_count=len(to) + len(cc),
        defects=notes.items,
        content_type=_Body._type(message),
        names=names,
    )


def _broken(raw: bytes, error: BaseException) -> ParsedMail:
    """What is left when parsing itself failed: the bytes as text, and the reason."""
    try:
        text = clean_text(raw.decode("utf-8", errors="replace"))
    except Exception:  # noqa: BLE001
        text = ""
    return ParsedMail(
        message_id="",
        in_reply_to=[],
        references=[],
        from_name="",
        from_address="",
        reply_to="",
        to=[],
        cc=[],
        subject="",
        date=None,
        text=text,
        html="",
        new_text=text,
        attachments=[],
        headers={},
        kind="normal",
        bounce_recipients=[],
        recipient_count=0,
        defects=[f"internal error while parsing: {type(error).__name__}"],
    )


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one raw RFC 5322 message. Never raises; see `ParsedMail.defects`."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="surrogateescape")
    try:
        raw = bytes(raw)
        return _parse(raw)
    except Exception as error:  # noqa: BLE001 - the contract: a result for any input
        log.exception("mail parsing failed on %d bytes", len(raw) if isinstance(raw, bytes) else -1)
        return _broken(raw if isinstance(raw, bytes) else b"", error)

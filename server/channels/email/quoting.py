"""What the sender just wrote: a reply's text without the quoted history and the signature.

Works on plain text lines (HTML bodies arrive here already rendered, blockquotes as `> `).
The history starts at the first of:

- an attribution line, possibly wrapped over up to three lines: Gmail and Apple Mail
  "On Tue, Dec 1, 2026 at 10:00 AM Name <a@b> wrote:", Thunderbird "On 12/1/26 10:00 AM, Name
  wrote:", German "Am … schrieb …:", French, Spanish, Dutch, and the Japanese clients'
  "2026年12月1日(火) 10:00 山田 太郎 <taro@example.jp>:", "2026/12/01 10:00、山田太郎 のメール:",
  "… さんは書きました:";
- a separator: "-----Original Message-----", "-----元のメッセージ-----", forwarded-message
  banners, Outlook's "________________________________" rule when a header block follows;
- a quoted header block: "From:/差出人:/Von:" followed within a few lines by "Sent:/Date:/To:/
  Subject:/送信日時:/宛先:/件名:" and the like.

When an attribution is followed by `>` lines and then more unquoted text (bottom posting), only
the attribution and the quote go. Trailing `>` blocks go too. The signature goes from the last
"-- " line, and a mobile footer ("Sent from my iPhone", "iPhoneから送信") near the end goes.
If nothing would be left, the whole text is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# Attributions that begin with a fixed word or a date may be wrapped over up to three lines.
_WRAPPING_ATTRIBUTIONS = [
    re.compile(r"^On\b.*\d.*\bwrote\s*:$", re.IGNORECASE),
    re.compile(r"^Am\b.*\d.*\bschrieb\b.*:$", re.IGNORECASE),
    re.compile(r"^Le\b.*\d.*\ba [ée]crit\s*:$", re.IGNORECASE),
    re.compile(r"^El\b.*\d.*\bescribi[óo]\s*:$", re.IGNORECASE),
    re.compile(r"^Op\b.*\d.*\bschreef\b.*:$", re.IGNORECASE),
    re.compile(r"^\d{4}年\s*\d{1,2}月\s*\d{1,2}日.{0,24}?\d{1,2}[:：]\d{2}.*[:：]$"),
    re.compile(r"^\d{4}[/-]\d{1,2}[/-]\d{1,2}.{0,12}?\d{1,2}:\d{2}.*(のメール|wrote|書きました|より)\s*[:：]$"),
]
# Looser ones only count on a line of their own.
_LINE_ATTRIBUTIONS = [
    re.compile(r"^.{1,200}(さんは書きました|さんが書きました|さんのメール)\s*[:：]$"),
    re.compile(r"^.{0,200}<[^<>\s@]+@[^<>\s]+>\s*(wrote|schrieb|a [ée]crit)\s*:$", re.IGNORECASE),
]
_SEPARATORS = [
    re.compile(
        r"^-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|"
        r"messaggio originale|元のメッセージ|オリジナルメッセージ|元メッセージ|"
        r"forwarded message|forwarded message follows|weitergeleitete nachricht|転送メッセージ)\s*-{2,}$",
        re.IGNORECASE,
    ),
    re.compile(r"^(begin forwarded message|転送されたメッセージ|anfang der weitergeleiteten nachricht)\s*[:：]$", re.I),
]
_RULE = re.compile(r"^_{10,}$")
_FROM_KEY = re.compile(r"^\*?(from|差出人|送信者|送信元|von|de|da)\*?\s*[:：]", re.IGNORECASE)
_OTHER_KEY = re.compile(
    r"^\*?(sent|date|to|cc|subject|送信日時|送信日|日付|日時|宛先|件名|gesendet|datum|an|betreff|envoyé|"
    r"objet|à|enviado|para|asunto|inviato|oggetto)\*?\s*[:：]",
    re.IGNORECASE,
)
_MOBILE = re.compile(
    r"^(sent from my \S.*|sent from (mail|outlook|yahoo mail|gmail|samsung|proton mail)\b.*|get outlook for \S.*|"
    r"(iphone|ipad|android|docomo|au|softbank|gmail)\s?(から|より)送信.*|"
    r"von meinem \S.* gesendet|envoyé de mon \S.*|enviado desde mi \S.*|inviato da \S.*)$",
    re.IGNORECASE,
)
# First characters of the lines the patterns above can match (attributions, separators, header
# blocks); lines ending in a colon are candidates too.
_START_CHARACTERS = frozenset("OoAaLlEe0123456789-_*FfVvDdBb差送転")
_MAX_HEADER_LINE = 500
_MAX_BOTTOM_POSTS = 20
_MAX_CANDIDATES = 5000


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _attribution_end(lines: list[str], start: int) -> int | None:
    """Index of the last line of an attribution beginning at `start`, or None."""
    joined = ""
    for index in range(start, min(start + 3, len(lines))):
        line = lines[index].strip()
        if not line or _quoted(line):
            return None
        joined = f"{joined} {line}".strip() if joined else line
        if len(joined) > _MAX_HEADER_LINE:
            return None
        if not joined.endswith((":", "：")):
            continue
        if any(pattern.match(joined) for pattern in _WRAPPING_ATTRIBUTIONS):
            return index
        if index == start and any(pattern.match(joined) for pattern in _LINE_ATTRIBUTIONS):
            return index
    return None


def _header_block_at(lines: list[str], start: int) -> bool:
    """A quoted message's header block (From: then Sent:/To:/Subject: …) starts at `start`."""
    if not _FROM_KEY.match(lines[start].strip()):
        return False
    following = [line.strip() for line in lines[start + 1 : start + 6] if line.strip()]
    return any(_OTHER_KEY.match(line) for line in following[:4])


def _separator_at(lines: list[str], start: int) -> bool:
    line = lines[start].strip()
    if len(line) > _MAX_HEADER_LINE:
        return False
    if any(pattern.match(line) for pattern in _SEPARATORS):
        return True
    if _RULE.match(line):
        following = [index for index in range(start + 1, min(start + 4, len(lines))) if lines[index].strip()]
        return bool(following) and _header_block_at(lines, following[0])
    return _header_block_at(lines, start)


def _candidates(lines: list[str], first: int, budget: list[int]) -> Iterator[int]:
    """Indices (from `first` on) of the lines where history could start: a cheap superset
    (first or last character) of what the patterns above accept."""
    for index in range(first, len(lines)):
        line = lines[index].strip()
        if line and (line[0] in _START_CHARACTERS or line[-1] in ":："):
            if budget[0] <= 0:  # pathological input: stop looking
                return
            budget[0] -= 1
            yield index


def _find_history(
    lines: list[str], first: int, bottom_posting: bool, budget: list[int]
) -> tuple[int, int | None] | None:
    """(first line of the history, first line of text after it or None) or None."""
    for index in _candidates(lines, first, budget):
        end = _attribution_end(lines, index)
        if end is not None:
            after = end + 1
            while after < len(lines) and not lines[after].strip():
                after += 1
            if bottom_posting and after < len(lines) and _quoted(lines[after]):
                resume = after
                while resume < len(lines) and (_quoted(lines[resume]) or not lines[resume].strip()):
                    resume += 1
                if resume < len(lines):  # the reply follows the quote
                    return index, resume
            return index, None
        if _separator_at(lines, index):
            return index, None
    return None


def _strip_history(lines: list[str]) -> list[str]:
    first = 0
    budget = [_MAX_CANDIDATES]  # lines examined closely, over all the searches
    for attempt in range(_MAX_BOTTOM_POSTS + 1):
        found = _find_history(lines, first, attempt < _MAX_BOTTOM_POSTS, budget)
        if found is None:
            return lines
        index, resume = found
        if resume is None:
            return lines[:index]
        lines = lines[:index] + lines[resume:]
        first = index  # the lines above were searched already
    return lines


def _strip_trailing_quote(lines: list[str]) -> list[str]:
    end = len(lines)
    seen_quote = False
    while end > 0 and (not lines[end - 1].strip() or _quoted(lines[end - 1])):
        seen_quote = seen_quote or _quoted(lines[end - 1])
        end -= 1
    return lines[:end] if seen_quote else lines


def _strip_signature(lines: list[str]) -> list[str]:
    for index in range(len(lines) - 1, 0, -1):
        if lines[index] in ("-- ", "--") and (lines[index] == "-- " or len(lines) - index <= 12):
            lines = lines[:index]
            break
    checked = 0
    for index in range(len(lines) - 1, -1, -1):
        if not lines[index].strip():
            continue
        if _MOBILE.match(lines[index].strip()[:200]):
            return lines[:index]
        checked += 1
        if checked == 3:
            break
    return lines


def extract_new_text(text: str) -> str:
    """`text` without quoted history and signature; the whole text when that leaves nothing."""
    lines = text.replace("\r\n", "\n").split("\n")
    kept = _strip_signature(_strip_trailing_quote(_strip_signature(_strip_history(lines))))
    result = "\n".join(line.rstrip() for line in kept).strip("\n")
    if not result.strip():
        return text.strip("\n")
    return result

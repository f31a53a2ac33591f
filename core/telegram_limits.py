"""Telegram's size limits, and fitting HTML (parse_mode=HTML) messages into them.

Pure functions over strings: the Bot API sender uses them to split long texts and captions before it calls
Telegram, so a long offer description arrives as several valid messages instead of a 400 error.

Lengths are counted in UTF-16 code units, as Telegram does (an emoji outside the BMP counts two), after
parsing: tags are free, and an entity such as ``&amp;`` counts as the one character it stands for.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from enum import Enum

# Bot API methods an outbox row may hold: the schema checks it, the sender maps each to its client call.
# editMessageCaption is there because offer cards are photos, whose text changes through the caption.
OUTBOX_METHODS: tuple[str, ...] = (
    "sendMessage",
    "sendPhoto",
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
    "answerCallbackQuery",
    "deleteMessage",
)

MAX_TEXT_CHARS = 4096
MAX_CAPTION_CHARS = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_ANSWER_CALLBACK_CHARS = 200

# The entities Telegram understands in HTML mode; any other "&name;" is shown literally, so it is text.
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
# A quoted attribute value may contain ">" (a URL), so a tag ends at the first ">" outside quotes.
_TAG = r"""(?P<tag><(?:[^<>"']|"[^"]*"|'[^']*')*>)"""
_ENTITY = r"(?P<entity>&(?:lt|gt|amp|quot|\#[0-9]{1,7}|\#[xX][0-9a-fA-F]{1,6});)"
_MARKUP_RE = re.compile(f"{_TAG}|{_ENTITY}")
_TOKEN_RE = re.compile(f"{_TAG}|{_ENTITY}|(?P<char>[\\s\\S])")
_BMP_END = "\uffff"
_TAG_NAME_RE = re.compile(r"<\s*/?\s*([a-zA-Z][a-zA-Z0-9-]*)")
# Break opportunities; a no-break space is deliberately not one.
_BREAKABLE_SPACE = frozenset(" \t\n\r")
_ZWJ = "\u200d"


class _Kind(Enum):
    TEXT = "text"
    OPEN = "open"
    CLOSE = "close"
    VOID = "void"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    raw: str
    char: str = ""  # decoded character, for TEXT tokens
    name: str = ""  # lower-case tag name, for OPEN / CLOSE tokens
    width: int = 0  # UTF-16 units of char

    @property
    def is_space(self) -> bool:
        return self.kind is _Kind.TEXT and self.char in _BREAKABLE_SPACE


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram's limits and entity offsets use."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _decode_entity(raw: str) -> str:
    body = raw[1:-1]
    if not body.startswith("#"):
        return _NAMED_ENTITIES[body]
    code = int(body.lstrip("#xX"), 16) if body[1:2] in ("x", "X") else int(body[1:])
    # An out-of-range reference still occupies one character on screen (the replacement character).
    return chr(code) if 0 < code <= 0x10FFFF else "\ufffd"


def _tokenize(html: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN_RE.finditer(html):
        raw = match.group()
        if match.lastgroup == "char":
            tokens.append(_Token(_Kind.TEXT, raw, char=raw, width=2 if raw > _BMP_END else 1))
        elif match.lastgroup == "entity":
            char = _decode_entity(raw)
            tokens.append(_Token(_Kind.TEXT, raw, char=char, width=2 if char > _BMP_END else 1))
        else:
            name_match = _TAG_NAME_RE.match(raw)
            if name_match is None:  # "<>" or "< 3": not a tag Telegram would accept; keep it as-is
                tokens.append(_Token(_Kind.VOID, raw))
                continue
            name = name_match.group(1).lower()
            if raw.lstrip("< \t\n").startswith("/"):
                tokens.append(_Token(_Kind.CLOSE, raw, name=name))
            elif raw.rstrip("> \t\n").endswith("/"):
                tokens.append(_Token(_Kind.VOID, raw, name=name))
            else:
                tokens.append(_Token(_Kind.OPEN, raw, name=name))
    return tokens


def _visible_text(match: re.Match[str]) -> str:
    if match.lastgroup == "entity":
        return _decode_entity(match.group())
    return "" if match.lastgroup == "tag" else match.group()


def visible_length(html: str) -> int:
    """How long Telegram considers an HTML-mode text: tags stripped, entities decoded, UTF-16 units."""
    # Substituting only the markup keeps this linear and fast; it is called on every outgoing text.
    return utf16_length(_MARKUP_RE.sub(_visible_text, html))


class _Document:
    """A tokenized HTML text with the bookkeeping needed to cut it anywhere into valid pieces."""

    def __init__(self, html: str) -> None:
        self.tokens = _tokenize(html)
        n = len(self.tokens)
        # prefix[i]: visible width of tokens[:i]; tags add nothing, so equal values mark tag runs.
        self.prefix = [0] * (n + 1)
        # open_before[i]: the elements still open just before tokens[i], outermost first.
        self.open_before: list[tuple[_Token, ...]] = [()] * (n + 1)
        stack: list[_Token] = []
        for i, token in enumerate(self.tokens):
            self.open_before[i] = tuple(stack)
            self.prefix[i + 1] = self.prefix[i] + token.width
            if token.kind is _Kind.OPEN:
                stack.append(token)
            elif token.kind is _Kind.CLOSE:
                # Close the innermost element of that name; a stray close tag is passed through untouched.
                for depth in range(len(stack) - 1, -1, -1):
                    if stack[depth].name == token.name:
                        del stack[depth:]
                        break
        self.open_before[n] = tuple(stack)
        self.run_newlines = self._space_runs()

    def _space_runs(self) -> dict[int, int]:
        """Start index of every run of breakable whitespace (tags may sit inside) -> newlines in it."""
        runs: dict[int, int] = {}
        start: int | None = None
        for i, token in enumerate(self.tokens):
            if token.kind is not _Kind.TEXT:
                continue
            if token.is_space:
                if start is None:
                    start = i
                    runs[i] = 0
                if token.char == "\n":
                    runs[start] += 1
            else:
                start = None
        return runs

    def first_visible(self, start: int) -> int | None:
        """Index of the first non-whitespace character at or after start."""
        for i in range(start, len(self.tokens)):
            token = self.tokens[i]
            if token.kind is _Kind.TEXT and not token.is_space:
                return i
        return None

    def content_width(self, start: int, end: int) -> int:
        """Visible width of tokens[start:end] once whitespace at both ends is dropped."""
        first = self.first_visible(start)
        if first is None or first >= end:
            return 0
        last = end - 1
        while self.tokens[last].kind is not _Kind.TEXT or self.tokens[last].is_space:
            last -= 1
        return self.prefix[last + 1] - self.prefix[first]

    def next_cut(self, start: int, limit: int) -> int:
        """Where the piece beginning at start (a visible character) should end, for pieces <= limit.

        Prefers the last paragraph break, then line break, then space that still fills at least half the
        limit; failing that the last break of any kind; failing that a hard cut between two characters.
        Cuts fall on token boundaries, so never inside a tag or an entity.
        """
        # Largest end with prefix[end] - prefix[start] <= limit; tokens[end] is the first that overflows.
        end = bisect_right(self.prefix, self.prefix[start] + limit) - 1
        end = max(end, start + 1)  # a single character wider than the limit still has to go somewhere
        best: dict[int, int] = {}  # class (0 = paragraph, 1 = line, 2 = space) -> last run start
        latest = None
        for run_start in range(start + 1, end + 1):
            newlines = self.run_newlines.get(run_start)
            if newlines is None:
                continue
            latest = run_start
            if 2 * (self.prefix[run_start] - self.prefix[start]) >= limit:
                best[0 if newlines >= 2 else 1 if newlines == 1 else 2] = run_start
        for rank in (0, 1, 2):
            if rank in best:
                return best[rank]
        if latest is not None:
            return latest
        # Hard cut: step back so an accent, a variation selector or a ZWJ emoji sequence stays whole.
        cut = end
        while (
            cut > start + 1
            and cut < len(self.tokens)
            and (_joins_previous(self.tokens[cut]) or self.tokens[cut - 1].char == _ZWJ)
        ):
            cut -= 1
        return cut

    def render(self, start: int, end: int) -> str:
        """tokens[start:end] as standalone HTML: open elements reopened and closed, edge spaces dropped."""
        first = self.first_visible(start)
        last = end - 1
        while last >= start and (self.tokens[last].kind is not _Kind.TEXT or self.tokens[last].is_space):
            last -= 1
        out: list[_Token] = list(self.open_before[start])
        for i in range(start, end):
            token = self.tokens[i]
            if token.is_space and (first is None or i < first or i > last):
                continue
            out.append(token)
        for opened in reversed(self.open_before[end]):
            out.append(_Token(_Kind.CLOSE, f"</{opened.name}>", name=opened.name))
        return "".join(t.raw for t in _drop_empty_elements(out))


def _joins_previous(token: _Token) -> bool:
    char = token.char
    if token.kind is not _Kind.TEXT or not char:
        return False
    return (
        char == _ZWJ
        or unicodedata.category(char) in ("Mn", "Me", "Mc")
        or "\ufe00" <= char <= "\ufe0f"  # variation selectors (emoji vs. text presentation)
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # skin-tone modifiers
    )


def _drop_empty_elements(tokens: list[_Token]) -> list[_Token]:
    """Remove <x></x> pairs left with nothing inside after a cut (Telegram rejects some empty entities)."""
    out: list[_Token] = []
    for token in tokens:
        if token.kind is _Kind.CLOSE and out and out[-1].kind is _Kind.OPEN and out[-1].name == token.name:
            out.pop()
        else:
            out.append(token)
    return out


def _check_limit(limit: int) -> None:
    # Below two units a single emoji (a surrogate pair) could never fit.
    if limit < 2:
        raise ValueError(f"limit must be at least 2 UTF-16 units, got {limit}")


def split_html_text(html: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """Split an HTML-mode text into pieces that each fit in one message and are each valid HTML.

    A text that already fits is returned unchanged as the only piece. Otherwise pieces end at the last
    paragraph, line or word boundary that keeps them at least half full (else at a hard cut), the
    whitespace at each boundary is dropped, and elements open across a boundary are closed at the end of
    one piece and reopened (same tag and attributes) at the start of the next.
    """
    _check_limit(limit)
    if visible_length(html) <= limit:
        return [html]
    doc = _Document(html)
    pieces: list[str] = []
    start = doc.first_visible(0)
    region_start = 0  # the first piece also carries any tags before its first character
    while start is not None:
        if doc.content_width(start, len(doc.tokens)) <= limit:
            pieces.append(doc.render(region_start, len(doc.tokens)))
            break
        cut = doc.next_cut(start, limit)
        pieces.append(doc.render(region_start, cut))
        region_start = cut
        start = doc.first_visible(cut)
    return pieces or [doc.render(0, len(doc.tokens))]  # nothing but whitespace: keep the (empty) text


def truncate_caption(html: str, limit: int = MAX_CAPTION_CHARS) -> tuple[str, str | None]:
    """Fit an HTML caption into limit: the caption to send, and the rest (or None) for a follow-up message.

    The caption ends at the best boundary, as in split_html_text; the rest is valid HTML on its own and
    may itself be longer than a message (split it with split_html_text before sending).
    """
    _check_limit(limit)
    if visible_length(html) <= limit:
        return html, None
    doc = _Document(html)
    start = doc.first_visible(0)
    if start is None or doc.content_width(start, len(doc.tokens)) <= limit:
        return doc.render(0, len(doc.tokens)), None  # only edge whitespace was over the limit
    cut = doc.next_cut(start, limit)
    return doc.render(0, cut), doc.render(cut, len(doc.tokens))


def check_callback_data(data: str) -> str:
    """Return data if Telegram accepts it as callback_data (1-64 UTF-8 bytes), else raise ValueError.

    The message names the size, not the content: callback data may carry ids we don't want in logs.
    """
    if not data:
        raise ValueError("callback_data must not be empty")
    size = len(data.encode("utf-8"))
    if size > MAX_CALLBACK_DATA_BYTES:
        raise ValueError(
            f"callback_data is {size} bytes but Telegram allows at most {MAX_CALLBACK_DATA_BYTES}; "
            "put short ids in it, not names"
        )
    return data

"""Telegram size limits: counting, splitting long HTML texts, fitting captions, callback data."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.telegram_limits import (
    MAX_ANSWER_CALLBACK_CHARS,
    MAX_CALLBACK_DATA_BYTES,
    MAX_CAPTION_CHARS,
    MAX_TEXT_CHARS,
    check_callback_data,
    split_html_text,
    truncate_caption,
    utf16_length,
    visible_length,
)

# ---------------------------------------------------------------------------------------------------------
# An independent reading of Telegram HTML (stdlib parser), so the tests don't trust the code under test.


class _Reader(HTMLParser):
    """Collects (character, enclosing start tags) pairs and checks nesting."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str]] = []  # (name, raw start tag)
        self.chars: list[tuple[str, tuple[str, ...]]] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append((tag, self.get_starttag_text() or ""))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"unexpected </{tag}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        context = tuple(raw for _, raw in self.stack)
        self.chars.extend((ch, context) for ch in data)


def _read(fragment: str) -> _Reader:
    reader = _Reader()
    reader.feed(fragment)
    reader.close()
    return reader


def _visible(fragment: str) -> str:
    return "".join(ch for ch, _ in _read(fragment).chars)


def _assert_well_formed(fragment: str) -> None:
    reader = _read(fragment)
    assert not reader.errors, (fragment, reader.errors)
    assert not reader.stack, f"unclosed {reader.stack} in {fragment!r}"


# The whitespace a split may drop at a cut; a no-break space is content, not a break opportunity.
_CUT_SPACE = " \t\n\r"


def _without_space(pairs: list[tuple[str, tuple[str, ...]]]) -> list[tuple[str, tuple[str, ...]]]:
    return [(ch, ctx) for ch, ctx in pairs if ch not in _CUT_SPACE]


# ---------------------------------------------------------------------------------------------------------
# Generated Telegram HTML: nested formatting around text with spaces, newlines, emoji and escapes.

_ALPHABET = st.sampled_from(list("abcxyz      \n\n\t<>&\"'é😀👍🏽\u200d\u0301\xa0"))
_text = st.text(_ALPHABET, max_size=30).map(lambda s: html.escape(s, quote=False))
_OPEN_TAGS = [
    ("b", "<b>"),
    ("i", "<i>"),
    ("u", "<u>"),
    ("s", "<s>"),
    ("code", "<code>"),
    ("pre", "<pre>"),
    ("tg-spoiler", "<tg-spoiler>"),
    ("blockquote", "<blockquote expandable>"),
    ("a", '<a href="https://example.com/?q=a&amp;b=c">'),
    ("span", '<span class="tg-spoiler">'),
]


def _wrap(children: list[str], tag: tuple[str, str]) -> str:
    name, opening = tag
    return f"{opening}{''.join(children)}</{name}>"


_html = st.recursive(
    _text,
    lambda inner: st.one_of(
        st.builds(_wrap, st.lists(inner, max_size=4), st.sampled_from(_OPEN_TAGS)),
        st.lists(inner, min_size=2, max_size=5).map("".join),
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(doc=_html, limit=st.integers(min_value=2, max_value=60))
def test_every_piece_fits_is_well_formed_and_together_they_say_the_same_thing(doc: str, limit: int) -> None:
    pieces = split_html_text(doc, limit)

    for piece in pieces:
        assert visible_length(piece) <= limit, (piece, limit)
        _assert_well_formed(piece)
    if len(pieces) > 1:
        assert all(_visible(piece).strip(_CUT_SPACE) for piece in pieces), "no piece may be empty"
    # Same characters with the same formatting, up to the whitespace dropped at the cuts.
    original = _without_space(_read(doc).chars)
    rejoined = [pair for piece in pieces for pair in _without_space(_read(piece).chars)]
    assert rejoined == original


@settings(max_examples=100, deadline=None)
@given(doc=_html, limit=st.integers(min_value=2, max_value=60))
def test_caption_and_overflow_cover_the_text(doc: str, limit: int) -> None:
    caption, rest = truncate_caption(doc, limit)

    assert visible_length(caption) <= limit
    _assert_well_formed(caption)
    if rest is None:
        assert _without_space(_read(caption).chars) == _without_space(_read(doc).chars)
    else:
        _assert_well_formed(rest)
        original = _without_space(_read(doc).chars)
        assert _without_space(_read(caption).chars) + _without_space(_read(rest).chars) == original


@settings(max_examples=50, deadline=None)
@given(doc=_html)
def test_visible_length_counts_what_the_reader_sees(doc: str) -> None:
    assert visible_length(doc) == utf16_length(_visible(doc))


# ---------------------------------------------------------------------------------------------------------
# Examples


def test_limits_are_telegrams() -> None:
    assert (MAX_TEXT_CHARS, MAX_CAPTION_CHARS, MAX_CALLBACK_DATA_BYTES, MAX_ANSWER_CALLBACK_CHARS) == (
        4096,
        1024,
        64,
        200,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("plain", 5),
        ("<b>bold</b> <i>x</i>", 6),
        ("a &lt; b &amp;&amp; c &gt; d &quot;q&quot;", 18),
        ("&#65;&#x42;", 2),
        ("&nbsp;", 6),  # not an entity Telegram knows: shown literally
        ('<a href="https://e.com/?a>b">link</a>', 4),
        ("😀", 2),  # outside the BMP: a surrogate pair in UTF-16
        ("é", 1),
    ],
)
def test_visible_length_counts_like_telegram(text: str, expected: int) -> None:
    assert visible_length(text) == expected


def test_a_text_that_fits_comes_back_unchanged() -> None:
    text = "<b>Fresh bread</b>\n\n  3 loaves  "
    assert split_html_text(text) == [text]
    assert truncate_caption(text) == (text, None)


def test_split_prefers_paragraphs_then_lines_then_words() -> None:
    para = "a" * 30 + "\n\n" + "b" * 30
    assert split_html_text(para, 40) == ["a" * 30, "b" * 30]

    lines = "aaaa bbbb cccc dddd eeee ffff\ngggg hhhh"
    assert split_html_text(lines, 35) == ["aaaa bbbb cccc dddd eeee ffff", "gggg hhhh"]

    words = "alpha beta gamma delta epsilon"
    assert split_html_text(words, 12) == ["alpha beta", "gamma delta", "epsilon"]


def test_an_early_paragraph_break_does_not_waste_most_of_the_message() -> None:
    text = "Hi\n\n" + " ".join(["word"] * 20)
    pieces = split_html_text(text, 50)
    assert visible_length(pieces[0]) > 25


def test_a_word_longer_than_the_limit_is_cut_hard() -> None:
    assert split_html_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_formatting_is_closed_and_reopened_across_pieces() -> None:
    text = '<b>bold <a href="https://e.com/o/1">long link text</a> tail</b>'
    pieces = split_html_text(text, 12)
    assert pieces == [
        '<b>bold <a href="https://e.com/o/1">long</a></b>',
        '<b><a href="https://e.com/o/1">link text</a></b>',
        "<b>tail</b>",
    ]


def test_entities_are_never_split() -> None:
    text = "&amp;" * 10
    pieces = split_html_text(text, 4)
    assert pieces == ["&amp;" * 4, "&amp;" * 4, "&amp;" * 2]


def test_emoji_and_accents_are_kept_whole() -> None:
    assert split_html_text("😀😀😀", 3) == ["😀", "😀", "😀"]
    assert split_html_text("ab\u0301cd", 2) == ["a", "b\u0301", "cd"]
    family = "👩\u200d👩\u200d👧"
    assert split_html_text("ab" + family, 8) == ["ab", family]  # 10 units: the cut goes before it


def test_a_5000_character_text_needs_two_messages() -> None:
    text = "<i>" + "\n".join(["x" * 99] * 50) + "</i>"  # 50 lines, 4999 visible characters
    pieces = split_html_text(text)
    assert len(pieces) == 2
    assert all(p.startswith("<i>") and p.endswith("</i>") for p in pieces)
    assert sum(visible_length(p) for p in pieces) == 4999 - 1  # the newline at the cut is dropped


def test_caption_is_cut_at_a_boundary_and_the_rest_follows() -> None:
    caption, rest = truncate_caption("<b>Bagels</b>\n\nSix <i>sesame bagels, still warm</i>", 12)
    assert caption == "<b>Bagels</b>"
    assert rest == "Six <i>sesame bagels, still warm</i>"


def test_limit_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        split_html_text("abc", 1)


@pytest.mark.parametrize("data", ["r:1", "x" * 64, "é" * 32])
def test_callback_data_within_64_bytes_is_accepted(data: str) -> None:
    assert check_callback_data(data) == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "must not be empty"),
        ("x" * 65, "65 bytes"),
        ("offer:" + "Пекарня на углу Тверской" * 2, r"bytes but Telegram allows at most 64"),
    ],
)
def test_callback_data_that_telegram_would_refuse_raises(data: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_callback_data(data)


def test_callback_error_does_not_echo_the_data() -> None:
    with pytest.raises(ValueError) as info:
        check_callback_data("name:" + "Анна" * 20)
    assert "Анна" not in str(info.value)
    assert re.search(r"\d+ bytes", str(info.value))

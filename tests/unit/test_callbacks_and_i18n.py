"""Callback data is untrusted; every user-facing string goes through one translation function."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.callbacks import RoleChoice, decode
from core.i18n import SUPPORTED_LANGUAGES, all_keys, resolve_language, t


def test_role_buttons_round_trip_within_telegram_limit() -> None:
    for role in ("customer", "business"):
        data = RoleChoice(role).encode()  # type: ignore[arg-type]
        assert len(data.encode()) <= 64
        assert decode(data) == RoleChoice(role)  # type: ignore[arg-type]


@pytest.mark.parametrize("forged", ["", "r:", "r:x", "r:admin", "x:c", "r:c:extra", "a" * 65, "пр" * 40])
def test_forged_or_stale_callback_data_decodes_to_nothing(forged: str) -> None:
    assert decode(forged) is None


@given(st.text(max_size=100))
def test_decode_never_raises_on_arbitrary_input(data: str) -> None:
    decode(data)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (None, "en"),
        ("en-US", "en"),
        ("id", "id"),
        ("in", "id"),
        ("zh-hans", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("th", "th"),
        ("vi", "vi"),
        ("ms-MY", "ms"),
        ("de", "en"),
    ],
)
def test_telegram_language_codes_map_to_supported_languages(code: str | None, expected: str) -> None:
    assert resolve_language(code) == expected
    assert expected in SUPPORTED_LANGUAGES


def test_languages_without_a_translation_fall_back_to_english() -> None:
    assert t("help", "th") == t("help", "en")


def test_every_translation_key_used_in_code_exists() -> None:
    used: set[str] = set()
    for path in Path("core").rglob("*.py"):
        used |= set(re.findall(r"\bt\(\s*\"([a-z_.]+)\"", path.read_text()))
        used |= set(re.findall(r"\bsay\(\s*\"([a-z_.]+)\"", path.read_text()))
    assert used, "expected to find translation calls"
    assert used <= all_keys(), f"missing keys: {used - all_keys()}"


def test_pre_rendered_html_is_inserted_once_and_plain_params_are_escaped() -> None:
    from core.i18n import Html

    inner = t("pickup.item", "en", quantity=2, name="<Pain & Co>")
    outer = t("pickup.redeemed", "en", code="ABC-234", buyer="<b>", items=Html(inner), title="T")
    assert "2 × &lt;Pain &amp; Co&gt;" in outer  # escaped exactly once
    assert "<b>&lt;b&gt;</b>" in outer  # a plain parameter is still escaped


def test_button_labels_show_names_as_typed_although_t_escapes_them_for_html() -> None:
    from core.messages import InlineButton

    label = t("offer.ask.item_name", "en", number="Fish & Chips <3")  # any key that takes a parameter
    assert "&amp;" in label  # right for a message, which Telegram parses as HTML

    rendered = InlineButton(label, callback_data="x").to_api()["text"]

    assert "Fish & Chips <3" in rendered and "&amp;" not in rendered and "&lt;" not in rendered

"""Pickup codes are easy to read aloud and type; pickup deep links round-trip and refuse anything forged."""

from __future__ import annotations

import base64
import random
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.pickup import (
    CODE_ALPHABET,
    CODE_LENGTH,
    MAX_START_PARAMETER_CHARS,
    PickupLink,
    deep_link_payload,
    display_code,
    generate_pickup_code,
    normalize_code,
    parse_deep_link_payload,
)

ORDER_ID = UUID("3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6b")
CODE = "ABC234"
TELEGRAM_START_PARAMETER = re.compile(r"[A-Za-z0-9_-]{1,64}")

codes = st.text(alphabet=CODE_ALPHABET, min_size=CODE_LENGTH, max_size=CODE_LENGTH)


def _bytes_source(stream: list[int]) -> Callable[[int], bytes]:
    data: Iterator[int] = iter(stream)
    return lambda n: bytes(next(data) for _ in range(n))


# ---- generating --------------------------------------------------------------------------------------


def test_the_alphabet_has_no_look_alikes() -> None:
    assert not set("0O1IL") & set(CODE_ALPHABET)
    assert len(set(CODE_ALPHABET)) == len(CODE_ALPHABET) == 31


@pytest.mark.parametrize(
    "rng",
    [random.Random(7), random.SystemRandom(), secrets.token_bytes],
    ids=["seeded-random", "system-random", "token-bytes"],
)
def test_codes_are_six_readable_characters(rng: random.Random | Callable[[int], bytes]) -> None:
    for _ in range(200):
        code = generate_pickup_code(rng)
        assert len(code) == CODE_LENGTH
        assert set(code) <= set(CODE_ALPHABET)


def test_a_seeded_generator_gives_repeatable_codes_for_tests() -> None:
    assert generate_pickup_code(random.Random(42)) == generate_pickup_code(random.Random(42))


def test_bytes_that_would_bias_the_code_are_skipped() -> None:
    # Given a byte source that starts with values at or above 248 (256 - 256 % 31)
    source = _bytes_source([248, 255, 250, 0, 1, 2, 249, 30, 31, 62, 247, 100, 100, 100])

    # When a code is generated from it
    code = generate_pickup_code(source)

    # Then only the unbiased bytes were used, each mapped onto the alphabet
    expected = [0, 1, 2, 30, 31, 62]
    assert code == "".join(CODE_ALPHABET[b % 31] for b in expected)


def test_every_character_is_about_equally_likely() -> None:
    counts = Counter("".join(generate_pickup_code(random.Random(seed)) for seed in range(3_000)))
    assert set(counts) == set(CODE_ALPHABET)
    expected = 3_000 * CODE_LENGTH / len(CODE_ALPHABET)
    assert all(0.75 * expected < n < 1.25 * expected for n in counts.values())


# ---- typing a code -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    ["ABC234", "abc234", "AbC 234", " abc-234 ", "A B C 2 3 4", "abc–234", "ＡＢＣ２３４", "ABC\u00a0234"],
)
def test_staff_can_type_a_code_any_way_they_read_it(typed: str) -> None:
    assert normalize_code(typed) == "ABC234"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "ABC23",  # too short
        "ABC2345",  # too long
        "ABO234",  # O is never in a code: the code was misread, so ask again rather than guess
        "AB0234",
        "ABI234",
        "AB1234",
        "ABL234",
        "ABC_234",
        "ABC.234",
        "ABßC23",  # "ß".upper() is "SS": must not turn into a 6-character code
        "АВС234",  # Cyrillic look-alikes
        "A" * 100,
        "/start ABC234",
    ],
)
def test_anything_that_is_not_a_possible_code_is_none(typed: str) -> None:
    assert normalize_code(typed) is None


def test_none_is_not_a_code() -> None:
    assert normalize_code(None) is None


def test_codes_are_shown_in_two_groups_that_type_back_in() -> None:
    assert display_code("ABC234") == "ABC-234"
    assert normalize_code(display_code("ABC234")) == "ABC234"


# ---- deep links --------------------------------------------------------------------------------------


def test_a_pickup_link_carries_the_order_and_its_code() -> None:
    # Given an order and its pickup code
    payload = deep_link_payload(ORDER_ID, CODE)

    # Then the payload is a valid Telegram start parameter that reads back to the same order and code
    assert TELEGRAM_START_PARAMETER.fullmatch(payload)
    assert payload.startswith("p_") and payload.endswith("_ABC234")
    assert parse_deep_link_payload(payload) == PickupLink(ORDER_ID, CODE)
    assert parse_deep_link_payload(payload) == (ORDER_ID, CODE)


@pytest.mark.parametrize("code", ["abc234", "ABC-234", "ABO234", "ABC23", ""])
def test_links_are_only_built_from_canonical_codes(code: str) -> None:
    with pytest.raises(ValueError):
        deep_link_payload(ORDER_ID, code)


def _tampered() -> list[tuple[str, str]]:
    good = deep_link_payload(ORDER_ID, CODE)
    encoded = good[2:24]
    spare_bits_set = encoded[:-1] + chr(ord(encoded[-1]) + 1)  # same 16 bytes, non-canonical text
    return [
        ("empty", ""),
        ("prefix-only", "p_"),
        ("other-start-parameter", "ref_campaign42"),
        ("wrong-prefix", "q" + good[1:]),
        ("lower-case-code", good[:-6] + "abc234"),
        ("look-alike-in-code", good[:-6] + "ABO234"),
        ("code-too-short", good[:-1]),
        ("code-too-long", good + "Z"),
        ("missing-separator", good[:24] + good[25:]),
        ("separator-replaced", good[:24] + "-" + good[25:]),
        ("uuid-too-short", "p_" + encoded[:-1] + "_" + CODE),
        ("non-canonical-base64", "p_" + spare_bits_set + "_" + CODE),
        ("padded-base64", "p_" + encoded[:-2] + "==" + "_" + CODE),
        ("standard-base64-chars", "p_" + encoded[:-1] + "+" + "_" + CODE),
        ("too-long-for-telegram", good + "_" * 40),
        ("non-ascii", good[:-1] + "Ä"),
        ("whitespace", " " + good),
    ]


@pytest.mark.parametrize(("text"), [t for _, t in _tampered()], ids=[name for name, _ in _tampered()])
def test_tampered_or_foreign_payloads_are_none(text: str) -> None:
    assert parse_deep_link_payload(text) is None


def test_no_payload_is_not_a_pickup_link() -> None:
    assert parse_deep_link_payload(None) is None


def test_the_base64_part_may_itself_contain_underscores_and_dashes() -> None:
    # Given an order id whose base64url form contains "_" and "-"
    order_id = UUID(bytes=bytes([0xFB, 0xFF] * 8))
    assert {"_", "-"} & set(base64.urlsafe_b64encode(order_id.bytes).decode())

    # Then the link still round-trips, because it is read by position, not split on "_"
    assert parse_deep_link_payload(deep_link_payload(order_id, "ZZZ999")) == (order_id, "ZZZ999")


# ---- properties --------------------------------------------------------------------------------------


@given(codes)
def test_codes_normalize_to_themselves(code: str) -> None:
    assert normalize_code(code) == code
    assert normalize_code(code.lower()) == code
    assert normalize_code(display_code(code)) == code


@given(st.uuids(), codes)
def test_every_link_round_trips_and_fits_telegrams_start_parameter(order_id: UUID, code: str) -> None:
    payload = deep_link_payload(order_id, code)

    assert len(payload) <= MAX_START_PARAMETER_CHARS
    assert TELEGRAM_START_PARAMETER.fullmatch(payload)
    assert parse_deep_link_payload(payload) == (order_id, code)


@given(st.text(max_size=100))
def test_parsing_never_raises_on_arbitrary_text(text: str) -> None:
    result = parse_deep_link_payload(text)
    if result is not None:
        assert deep_link_payload(*result) == text  # only exactly what we produce is accepted
    normalized = normalize_code(text)
    assert normalized is None or normalize_code(normalized) == normalized


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", max_size=64))
def test_random_telegram_start_parameters_are_only_accepted_when_canonical(text: str) -> None:
    result = parse_deep_link_payload(text)
    assert result is None or deep_link_payload(*result) == text


def test_a_fresh_uuid_and_code_round_trip() -> None:
    order_id, code = uuid4(), generate_pickup_code(secrets.token_bytes)
    assert parse_deep_link_payload(deep_link_payload(order_id, code)) == (order_id, code)

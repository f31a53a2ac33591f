"""Money: what shop owners type becomes exact minor units in the shop's currency, Stripe's way."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import DomainError
from core.money import (
    ISO_4217_CURRENCIES,
    MAX_MAJOR_UNITS,
    THREE_DECIMAL_CURRENCIES,
    ZERO_DECIMAL_CURRENCIES,
    InvalidAmount,
    Money,
    discount_percent,
    minor_units,
)

SAMPLE_CURRENCIES = ["SGD", "USD", "EUR", "IDR", "MYR", "THB", "JPY", "VND", "KRW", "KWD", "BHD", "CNY"]


# ---- decimals per currency ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "decimals"),
    [("SGD", 2), ("USD", 2), ("IDR", 2), ("THB", 2), ("JPY", 0), ("VND", 0), ("KRW", 0), ("KWD", 3)],
)
def test_currencies_have_stripes_number_of_decimals(currency: str, decimals: int) -> None:
    assert minor_units(currency) == decimals


def test_stripes_zero_and_three_decimal_lists_are_real_currencies() -> None:
    assert len(ZERO_DECIMAL_CURRENCIES) == 16 and len(THREE_DECIMAL_CURRENCIES) == 5
    assert ZERO_DECIMAL_CURRENCIES | THREE_DECIMAL_CURRENCIES <= ISO_4217_CURRENCIES
    assert all(minor_units(c) == 0 for c in ZERO_DECIMAL_CURRENCIES)
    assert all(minor_units(c) == 3 for c in THREE_DECIMAL_CURRENCIES)


@pytest.mark.parametrize("currency", ["sgd", "SG", "SGDX", "ABC", "", "XAU"])
def test_unknown_or_lower_case_currency_codes_are_refused(currency: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        minor_units(currency)
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(100, currency)


def test_money_is_never_negative() -> None:
    with pytest.raises(ValueError, match="never negative"):
        Money(-1, "SGD")


def test_amounts_are_integers_only() -> None:
    with pytest.raises(TypeError):
        Money(4.5, "SGD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "SGD")


# ---- parsing what owners type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("4.50", "SGD", 450),
        ("4,50", "SGD", 450),
        ("4,5", "SGD", 450),
        ("4", "SGD", 400),
        ("0", "SGD", 0),
        ("  4.50  ", "SGD", 450),
        ("S$4.50", "SGD", 450),
        ("S$ 4.50", "SGD", 450),
        ("$4.50", "SGD", 450),
        ("4.50 SGD", "SGD", 450),
        ("sgd 4.50", "SGD", 450),
        ("SGD 1,234.50", "SGD", 123_450),
        ("1.234,50 €", "EUR", 123_450),
        ("1 234,50", "EUR", 123_450),
        ("1,200", "SGD", 120_000),
        ("Rp 15.000", "IDR", 1_500_000),
        ("Rp15.000,50", "IDR", 1_500_050),
        ("RM4.50", "MYR", 450),
        ("฿120", "THB", 12_000),
        ("120 บาท", "THB", 12_000),
        ("1.200", "VND", 1_200),
        ("25.000đ", "VND", 25_000),
        ("25,000 VNĐ", "VND", 25_000),
        ("1.200.000", "VND", 1_200_000),
        ("1200", "JPY", 1_200),
        ("¥1,200", "JPY", 1_200),
        ("1 200", "JPY", 1_200),
        ("5000원", "KRW", 5_000),
        ("KWD 1.250", "KWD", 1_250),
        ("1,250", "KWD", 1_250),
        ("1,234.500", "KWD", 1_234_500),
        ("４．５０", "SGD", 450),
        ("10,000,000.00", "SGD", 1_000_000_000),
    ],
)
def test_owner_can_type_prices_the_way_they_write_them(typed: str, currency: str, minor: int) -> None:
    # Given a shop priced in `currency`, when the owner types `typed`
    money = Money.parse(typed, currency)

    # Then it is that many minor units of the shop's currency
    assert money == Money(minor, currency)


@pytest.mark.parametrize(
    ("typed", "currency", "reason"),
    [
        ("", "SGD", "garbage"),
        ("   ", "SGD", "garbage"),
        ("cheap", "SGD", "garbage"),
        ("four fifty", "SGD", "garbage"),
        ("4.50abc", "SGD", "garbage"),
        ("abc4.50", "SGD", "garbage"),
        ("USD 4.50", "SGD", "garbage"),
        ("4..50", "SGD", "garbage"),
        ("4.", "SGD", "garbage"),
        (".50", "SGD", "garbage"),
        ("4.50.1", "SGD", "garbage"),
        ("1,2,3", "SGD", "garbage"),
        ("12,34,567", "INR", "garbage"),
        ("1 200.000,50", "EUR", "garbage"),
        ("0,500", "JPY", "garbage"),
        ("4 50", "SGD", "garbage"),
        ("4.50 + 1", "SGD", "garbage"),
        ("1" * 80, "SGD", "garbage"),
        ("-4.50", "SGD", "negative"),
        ("- 4.50", "SGD", "negative"),
        ("S$-4.50", "SGD", "negative"),
        ("−4.50", "SGD", "negative"),
        ("4.5055", "KWD", "too_many_decimals"),
        ("4.5", "JPY", "fraction_not_allowed"),
        ("1200.00", "JPY", "fraction_not_allowed"),
        ("1,5", "VND", "fraction_not_allowed"),
        ("1.2000", "VND", "fraction_not_allowed"),
        ("10000000.01", "SGD", "too_large"),
        ("10,000,001", "JPY", "too_large"),
        ("99999999999999999999", "SGD", "too_large"),
    ],
)
def test_unusable_amounts_are_refused_with_a_reason(typed: str, currency: str, reason: str) -> None:
    # When the owner types something that is not a usable price
    with pytest.raises(InvalidAmount) as refused:
        Money.parse(typed, currency)

    # Then the error has the stable code and says why, with what the worker needs for a helpful message
    assert isinstance(refused.value, DomainError)
    assert refused.value.code == "invalid_amount"
    assert refused.value.params["reason"] == reason
    assert refused.value.params["currency"] == currency
    assert refused.value.params["decimals"] == minor_units(currency)
    Money.parse(str(refused.value.params["example"]), currency)  # the suggested example is itself valid


def test_a_single_separator_with_three_digits_is_thousands_except_for_three_decimal_currencies() -> None:
    assert Money.parse("4.505", "SGD") == Money(450_500, "SGD")
    assert Money.parse("4.505", "VND") == Money(4_505, "VND")
    assert Money.parse("4.505", "KWD") == Money(4_505, "KWD")


# ---- display and arithmetic --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "shown"),
    [
        (Money(450, "SGD"), "SGD 4.50"),
        (Money(0, "SGD"), "SGD 0.00"),
        (Money(5, "SGD"), "SGD 0.05"),
        (Money(123_450, "SGD"), "SGD 1,234.50"),
        (Money(1_200, "JPY"), "JPY 1,200"),
        (Money(25_000, "VND"), "VND 25,000"),
        (Money(1_250, "KWD"), "KWD 1.250"),
        (Money(1_500_000, "IDR"), "IDR 15,000.00"),
    ],
)
def test_display_shows_code_grouped_major_units_and_the_currencys_decimals(money: Money, shown: str) -> None:
    assert money.display() == shown
    assert str(money) == shown


def test_totals_add_up_and_multiply_by_quantity() -> None:
    price = Money(450, "SGD")

    assert price + Money(50, "SGD") == Money(500, "SGD")
    assert price * 3 == Money(1_350, "SGD")
    assert 3 * price == Money(1_350, "SGD")
    assert Money.zero("SGD") + price == price


def test_prices_compare_within_one_currency() -> None:
    cheap, dear = Money(300, "SGD"), Money(800, "SGD")

    assert cheap < dear and cheap <= dear and dear > cheap and dear >= cheap
    assert cheap <= Money(300, "SGD") and cheap >= Money(300, "SGD")
    assert sorted([dear, cheap]) == [cheap, dear]


def test_mixing_currencies_is_a_bug_and_fails_loudly() -> None:
    sgd, jpy = Money(100, "SGD"), Money(100, "JPY")

    with pytest.raises(ValueError, match="SGD with JPY"):
        sgd + jpy
    for compare in (sgd.__lt__, sgd.__le__, sgd.__gt__, sgd.__ge__):
        with pytest.raises(ValueError):
            compare(jpy)
    # Equality stays structural, so Money can be used in sets and as dict keys.
    assert sgd != jpy
    assert len({sgd, jpy, Money(100, "SGD")}) == 2


def test_money_does_not_mix_with_plain_numbers() -> None:
    price = Money(450, "SGD")

    with pytest.raises(TypeError):
        price + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        price * 1.5  # type: ignore[operator]
    with pytest.raises(TypeError):
        price < 500  # type: ignore[operator]  # noqa: B015
    with pytest.raises(ValueError, match="never negative"):
        price * -1


@pytest.mark.parametrize(
    ("normal", "offer", "percent"),
    [
        (1_000, 500, 50),
        (1_000, 333, 66),  # 66.7% is shown as 66%: never overstate a discount
        (1_000, 999, 0),
        (999, 1, 99),
        (1_000, 1_000, 0),
        (1_000, 1_200, 0),
        (0, 0, 0),
    ],
)
def test_discount_is_whole_percent_rounded_down(normal: int, offer: int, percent: int) -> None:
    assert discount_percent(Money(normal, "SGD"), Money(offer, "SGD")) == percent


def test_discount_between_currencies_is_refused() -> None:
    with pytest.raises(ValueError):
        discount_percent(Money(1_000, "SGD"), Money(500, "JPY"))


# ---- properties --------------------------------------------------------------------------------------


@st.composite
def money_in_range(draw: st.DrawFn) -> Money:
    currency = draw(st.sampled_from(SAMPLE_CURRENCIES))
    limit = MAX_MAJOR_UNITS * 10 ** minor_units(currency)
    return Money(draw(st.integers(min_value=0, max_value=limit)), currency)


@given(money_in_range())
def test_what_we_display_parses_back_to_the_same_money(money: Money) -> None:
    assert Money.parse(money.display(), money.currency) == money


@given(money_in_range())
def test_the_displayed_number_alone_parses_back_too(money: Money) -> None:
    _, number = money.display().split(" ", 1)
    assert Money.parse(number, money.currency) == money


@given(st.text(max_size=40), st.sampled_from(SAMPLE_CURRENCIES))
def test_parse_returns_money_or_invalid_amount_for_any_text(text: str, currency: str) -> None:
    try:
        money = Money.parse(text, currency)
    except InvalidAmount:
        return
    assert money.currency == currency
    assert 0 <= money.amount_minor <= MAX_MAJOR_UNITS * 10 ** minor_units(currency)


@given(money_in_range(), st.integers(min_value=0, max_value=20))
def test_multiplying_by_quantity_is_repeated_adding(money: Money, quantity: int) -> None:
    total = Money.zero(money.currency)
    for _ in range(quantity):
        total = total + money
    assert total == money * quantity

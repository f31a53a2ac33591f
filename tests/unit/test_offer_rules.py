"""Offer field rules: what an owner may post, and how quantities may change once buyers are in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import Money
from core.offers import (
    DIETARY_TAGS,
    MAX_QUANTITY,
    InvalidOffer,
    QuantityBelowCommitted,
    new_quantity_allowed,
    raise_if_invalid,
    remaining_after_edit,
    validate_description,
    validate_item,
    validate_pickup_window,
    validate_tags,
    validate_title,
)

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
NORMAL = Money(1_000, "SGD")
OFFER = Money(450, "SGD")


# ---- items -------------------------------------------------------------------------------------------


def test_a_sensible_item_has_no_problems() -> None:
    assert validate_item("Croissant box", 5, NORMAL, OFFER) == []
    assert validate_item("x", 1, NORMAL, Money(1, "SGD")) == []
    assert validate_item("x" * 64, MAX_QUANTITY, NORMAL, Money(999, "SGD")) == []
    assert validate_item("  Bagels  ", 3, NORMAL, OFFER) == []  # surrounding spaces do not count


@pytest.mark.parametrize(
    ("name", "quantity", "normal", "offer", "problems"),
    [
        ("", 5, NORMAL, OFFER, ["item_name_empty"]),
        ("   ", 5, NORMAL, OFFER, ["item_name_empty"]),
        ("x" * 65, 5, NORMAL, OFFER, ["item_name_too_long"]),
        ("Buns\nand more", 5, NORMAL, OFFER, ["item_name_invalid_characters"]),
        ("Bread", 0, NORMAL, OFFER, ["quantity_too_small"]),
        ("Bread", -3, NORMAL, OFFER, ["quantity_too_small"]),
        ("Bread", MAX_QUANTITY + 1, NORMAL, OFFER, ["quantity_too_large"]),
        ("Bread", 5, NORMAL, Money(0, "SGD"), ["offer_price_zero"]),
        ("Bread", 5, NORMAL, NORMAL, ["offer_price_not_below_normal"]),
        ("Bread", 5, NORMAL, Money(1_200, "SGD"), ["offer_price_not_below_normal"]),
        ("Bread", 5, NORMAL, Money(450, "JPY"), ["currency_mismatch"]),
        ("", 0, NORMAL, NORMAL, ["item_name_empty", "quantity_too_small", "offer_price_not_below_normal"]),
    ],
)
def test_item_problems_are_all_reported_at_once(
    name: str, quantity: int, normal: Money, offer: Money, problems: list[str]
) -> None:
    assert validate_item(name, quantity, normal, offer) == problems


def test_collected_problems_become_one_invalid_offer_error() -> None:
    # Given an item and a title with problems
    item_problems = validate_item("", 5, NORMAL, NORMAL)
    title_problems = validate_title("")

    # When the use case checks them together
    with pytest.raises(InvalidOffer) as refused:
        raise_if_invalid(item_problems, title_problems)

    # Then one error carries every problem code, in order
    assert refused.value.code == "invalid_offer"
    assert refused.value.problems == ("item_name_empty", "offer_price_not_below_normal", "title_empty")
    assert refused.value.params["problems"] == refused.value.problems


def test_no_problems_means_no_error() -> None:
    raise_if_invalid([], validate_title("Fresh bread"))


# ---- pickup window -----------------------------------------------------------------------------------


def test_now_until_eight_pm_is_a_fine_pickup_window() -> None:
    assert validate_pickup_window(NOW, NOW.replace(hour=20), NOW) == []


def test_a_start_the_owner_typed_a_little_while_ago_is_still_fine() -> None:
    start = NOW - timedelta(hours=1)
    assert validate_pickup_window(start, NOW + timedelta(hours=2), NOW) == []


def test_a_window_in_another_timezone_is_compared_as_the_same_instant() -> None:
    singapore = timezone(timedelta(hours=8))
    start = datetime(2026, 11, 24, 1, 0, tzinfo=singapore)  # 17:00 UTC
    end = datetime(2026, 11, 24, 4, 0, tzinfo=singapore)
    assert validate_pickup_window(start, end, NOW) == []


def test_the_window_may_end_up_to_48_hours_ahead() -> None:
    assert validate_pickup_window(NOW, NOW + timedelta(hours=48), NOW) == []


@pytest.mark.parametrize(
    ("start", "end", "problems"),
    [
        (NOW + timedelta(hours=2), NOW + timedelta(hours=1), ["pickup_end_not_after_start"]),
        (NOW + timedelta(hours=1), NOW + timedelta(hours=1), ["pickup_end_not_after_start"]),
        (NOW - timedelta(hours=1, seconds=1), NOW + timedelta(hours=1), ["pickup_start_in_past"]),
        (NOW - timedelta(hours=3), NOW, ["pickup_start_in_past", "pickup_end_in_past"]),
        (NOW - timedelta(minutes=30), NOW - timedelta(minutes=1), ["pickup_end_in_past"]),
        (NOW, NOW + timedelta(hours=48, seconds=1), ["pickup_end_too_far"]),
        (
            NOW - timedelta(hours=5),
            NOW - timedelta(hours=6),
            ["pickup_end_not_after_start", "pickup_start_in_past", "pickup_end_in_past"],
        ),
    ],
    ids=[
        "end-before-start",
        "end-equals-start",
        "start-more-than-an-hour-ago",
        "window-ended-now",
        "window-ended-a-minute-ago",
        "ends-more-than-48h-ahead",
        "everything-wrong",
    ],
)
def test_bad_pickup_windows_are_reported(start: datetime, end: datetime, problems: list[str]) -> None:
    assert validate_pickup_window(start, end, NOW) == problems


def test_pickup_times_without_a_timezone_are_a_caller_bug() -> None:
    naive = datetime(2026, 11, 23, 20, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_pickup_window(NOW, naive, NOW)


# ---- title, description, tags ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "problems"),
    [
        ("Evening bread bag", []),
        ("x" * 80, []),
        ("🥐 Croissants", []),
        ("", ["title_empty"]),
        (" \t ", ["title_empty"]),
        ("x" * 81, ["title_too_long"]),
        ("Two\nlines", ["title_invalid_characters"]),
        ("Bell\x07", ["title_invalid_characters"]),
    ],
)
def test_titles_are_one_line_of_1_to_80_characters(title: str, problems: list[str]) -> None:
    assert validate_title(title) == problems


@pytest.mark.parametrize(
    ("description", "problems"),
    [
        ("", []),
        ("Mixed pastries.\nBring a bag!", []),
        ("x" * 500, []),
        ("x" * 501, ["description_too_long"]),
        ("Nul\x00byte", ["description_invalid_characters"]),
    ],
)
def test_descriptions_are_optional_and_at_most_500_characters(description: str, problems: list[str]) -> None:
    assert validate_description(description) == problems


def test_dietary_tags_are_the_ones_the_buttons_offer() -> None:
    assert DIETARY_TAGS == ("vegetarian", "vegan", "halal", "gluten_free", "contains_nuts", "dairy_free")
    assert validate_tags([]) == []
    assert validate_tags(DIETARY_TAGS) == []
    assert validate_tags(["vegan", "halal"]) == []


@pytest.mark.parametrize(
    ("tags", "problems"),
    [
        (["kosher"], ["unknown_dietary_tag"]),
        (["Vegan"], ["unknown_dietary_tag"]),
        (["vegan", "vegan"], ["duplicate_dietary_tag"]),
        (["vegan", "vegan", "keto"], ["unknown_dietary_tag", "duplicate_dietary_tag"]),
    ],
)
def test_forged_or_repeated_tags_are_refused(tags: list[str], problems: list[str]) -> None:
    assert validate_tags(tags) == problems


# ---- quantity edits ----------------------------------------------------------------------------------


def test_owner_can_lower_quantity_down_to_what_buyers_already_have() -> None:
    # Given 10 units, 3 held in unpaid checkouts and 4 sold
    held, sold = 3, 4

    # Then 7 is the lowest total allowed, leaving nothing to sell (the offer becomes sold out)
    assert new_quantity_allowed(7, held, sold)
    assert remaining_after_edit(7, held, sold) == 0
    assert not new_quantity_allowed(6, held, sold)


def test_lowering_below_what_buyers_have_is_refused_with_the_minimum() -> None:
    with pytest.raises(QuantityBelowCommitted) as refused:
        remaining_after_edit(6, held=3, sold=4)

    assert refused.value.code == "offer_quantity_below_committed"
    assert refused.value.params == {"minimum": 7}


def test_raising_quantity_adds_units_to_sell() -> None:
    assert new_quantity_allowed(15, held=3, sold=4)
    assert remaining_after_edit(15, held=3, sold=4) == 8


def test_quantity_stays_within_the_item_limits() -> None:
    assert not new_quantity_allowed(MAX_QUANTITY + 1, held=0, sold=0)
    assert not new_quantity_allowed(0, held=0, sold=0)
    with pytest.raises(InvalidOffer) as too_many:
        remaining_after_edit(MAX_QUANTITY + 1, held=0, sold=0)
    assert too_many.value.problems == ("quantity_too_large",)
    with pytest.raises(InvalidOffer) as none:
        remaining_after_edit(0, held=0, sold=0)
    assert none.value.problems == ("quantity_too_small",)


def test_negative_held_or_sold_counts_are_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        new_quantity_allowed(5, held=-1, sold=0)
    with pytest.raises(ValueError):
        remaining_after_edit(5, held=0, sold=-1)


@given(
    st.integers(min_value=-5, max_value=MAX_QUANTITY + 5),
    st.integers(min_value=0, max_value=500),
    st.integers(min_value=0, max_value=500),
)
def test_an_allowed_edit_never_oversells(new_total: int, held: int, sold: int) -> None:
    if new_quantity_allowed(new_total, held, sold):
        remaining = remaining_after_edit(new_total, held, sold)
        assert remaining >= 0
        assert remaining + held + sold == new_total
    else:
        with pytest.raises((QuantityBelowCommitted, InvalidOffer)):
            remaining_after_edit(new_total, held, sold)

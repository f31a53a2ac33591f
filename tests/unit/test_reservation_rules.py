"""What a customer may ask to hold: 1..limit units in total, duplicates merged, locks in a fixed order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.reservations import DEFAULT_PER_ORDER_LIMIT, InvalidQuantity, Line, hold_expiry, validate_lines


def test_lines_for_the_same_item_are_merged_and_ordered_by_item() -> None:
    lines = validate_lines([Line(9, 1), Line(3, 2), Line(9, 2)], per_order_limit=None)
    assert lines == [Line(3, 2), Line(9, 3)]


@pytest.mark.parametrize(
    ("lines", "limit"),
    [
        ([], None),
        ([Line(1, 0)], None),
        ([Line(1, -2)], None),
        ([Line(1, 3), Line(2, 3)], 5),
        ([Line(1, DEFAULT_PER_ORDER_LIMIT + 1)], None),
    ],
)
def test_empty_non_positive_or_over_the_limit_requests_are_refused(
    lines: list[Line], limit: int | None
) -> None:
    with pytest.raises(InvalidQuantity):
        validate_lines(lines, per_order_limit=limit)


def test_a_hold_lasts_fifteen_minutes_by_default_and_needs_an_aware_clock() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert hold_expiry(now) == now + timedelta(minutes=15)
    with pytest.raises(ValueError):
        hold_expiry(datetime(2026, 11, 23, 10, 0))

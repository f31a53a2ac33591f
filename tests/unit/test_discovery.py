"""What a customer sees when finding food: distances, list cards and paging, the detail's quantity picker."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core import discovery
from core.callbacks import MAX_CALLBACK_BYTES, BuyOffer, SetRadius, ViewOffer, decode
from core.discovery import (
    BACK_TO_LIST,
    DetailItem,
    ListCard,
    ListPage,
    OfferDetail,
    bounding_box,
    clamp_page,
    format_distance,
    haversine_m,
    nonce_of,
    pick_quantities,
    radius_km,
    render_detail,
    render_list,
)
from core.messages import Keyboard
from core.money import Money
from core.telegram_limits import MAX_CAPTION_CHARS, MAX_TEXT_CHARS, visible_length

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Singapore


def sgd(minor: int) -> Money:
    return Money(minor, "SGD")


def card(offer_id: int = 1, **changes: object) -> ListCard:
    base = ListCard(
        offer_id=offer_id,
        title="Bread bag",
        business="Flo's Bakes",
        distance_m=350,
        price=sgd(250),
        normal_price=sgd(600),
        several_prices=False,
        units_left=4,
        pickup_start=NOW + timedelta(hours=8),  # 18:00 SGT
        pickup_end=NOW + timedelta(hours=10),
        timezone="Asia/Singapore",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def detail(*items: DetailItem, **changes: object) -> OfferDetail:
    base = OfferDetail(
        offer_id=42,
        title="Evening bag",
        business="Flo's Bakes",
        address="12 Baker Street",
        distance_m=1234,
        description="Fresh from today",
        tags=("vegetarian",),
        pickup_start=NOW + timedelta(hours=8),
        pickup_end=NOW + timedelta(hours=10),
        timezone="Asia/Singapore",
        items=items or (DetailItem("Loaf", sgd(600), sgd(250), 3),),
        per_order_limit=None,
        photo_file_id="photo-id",
        currency="SGD",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def all_data(keyboard: Keyboard) -> list[str]:
    return [b.callback_data or "" for row in keyboard for b in row]


def labels(keyboard: Keyboard) -> list[str]:
    return [b.to_api()["text"] for row in keyboard for b in row]


# -- distance ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meters", "shown"),
    [(0, "10 m"), (348, "350 m"), (994, "990 m"), (1_000, "1.0 km"), (1_234, "1.2 km"), (12_400, "12 km")],
)
def test_distances_read_like_a_person_would_say_them(meters: float, shown: str) -> None:
    assert format_distance(meters) == shown


def test_the_bounding_box_holds_every_point_within_the_radius_even_far_from_the_equator() -> None:
    # Given a point in Oslo (60°N, where a degree of longitude is half as long) and a 5 km radius
    box = bounding_box(59.91, 10.75, 5_000)
    # Then a point 4.9 km due east (along the parallel) and one 4.9 km due north are inside the box
    east = 10.75 + (4_900 / (111_195 * 0.4995))
    assert haversine_m(59.91, 10.75, 59.91, east) < 5_000
    assert box.west < 10.75 < east < box.east
    assert box.south < 59.91 + 4_900 / 111_195 < box.north


def test_a_customer_who_never_picked_a_distance_gets_the_default() -> None:
    assert radius_km(None) == discovery.DEFAULT_RADIUS_KM
    assert radius_km(10_000) == 10


# -- the list ---------------------------------------------------------------------------------------------


def test_a_card_shows_title_business_distance_prices_units_and_pickup_in_the_venue_timezone() -> None:
    page = ListPage("near", "all", 0, 1, 5, (card(),))
    text, keyboard = render_list(page, "en", NOW)
    assert "Bread bag" in text and "Flo's Bakes" in text and "350 m" in text
    assert "<b>SGD 2.50</b> <s>SGD 6.00</s>" in text
    assert "4 left" in text
    assert "Today 18:00–20:00" in text  # Asia/Singapore, not UTC (10:00–12:00)
    assert ViewOffer(1).encode() in all_data(keyboard)


def test_tabs_categories_and_the_distance_limit_mark_the_current_choice() -> None:
    page = ListPage("popular", "bakery", 0, 1, 10, (card(),))
    _, keyboard = render_list(page, "en", NOW)
    shown = labels(keyboard)
    assert "• Popular" in shown and "Near" in shown and "• Near" not in shown
    assert "• Bakery" in shown and "All" in shown
    assert "• 10 km" in shown and "5 km" in shown
    assert SetRadius(25).encode() in all_data(keyboard)


def test_paging_shows_only_the_buttons_that_apply() -> None:
    first = ListPage("near", "all", 0, 12, 5, tuple(card(n) for n in range(5)))
    middle = replace(first, page=1)
    last = replace(first, page=2, cards=(card(11), card(12)))
    assert [lbl for lbl in labels(render_list(first, "en", NOW)[1]) if "Prev" in lbl or "Next" in lbl] == [
        "Next ›"
    ]
    mid = labels(render_list(middle, "en", NOW)[1])
    assert "‹ Prev" in mid and "Next ›" in mid and "page 2/3" in mid
    end = labels(render_list(last, "en", NOW)[1])
    assert "‹ Prev" in end and "Next ›" not in end
    # a single page has no paging row at all
    alone = labels(render_list(replace(first, total=3, cards=(card(),)), "en", NOW)[1])
    assert not any("Prev" in x or "Next" in x or "page" in x for x in alone)


def test_cards_are_numbered_across_pages() -> None:
    page = ListPage("near", "all", 1, 7, 5, (card(6), card(7)))
    text, _ = render_list(page, "en", NOW)
    assert "6. Bread bag" in text and "7. Bread bag" in text


def test_a_stale_page_number_lands_on_a_page_that_exists() -> None:
    assert clamp_page(7, 12) == 2
    assert clamp_page(3, 0) == 0


def test_an_empty_list_says_so_kindly_and_suggests_a_wider_distance() -> None:
    text, keyboard = render_list(ListPage("ending", "cafe", 0, 0, 1, ()), "en", NOW)
    assert "Nothing on offer within 1.0 km" in text and "wider distance" in text
    assert SetRadius(50).encode() in all_data(keyboard)


def test_the_longest_possible_list_fits_one_message_and_every_button_fits_64_bytes() -> None:
    # Given five cards with the longest titles and names the offer rules allow, in a wide script
    long = card(
        offer_id=10**17,
        title="餐" * 80,
        business="店" * 64,
        price=Money(10**9, "IDR"),
        normal_price=Money(2 * 10**9, "IDR"),
        several_prices=True,
        units_left=10_000,
    )
    page = ListPage("popular", "restaurant", 998, 10**6, 50, (long,) * 5)
    text, keyboard = render_list(page, "en", NOW)
    assert visible_length(text) < MAX_TEXT_CHARS
    for data in all_data(keyboard):
        assert len(data.encode()) <= MAX_CALLBACK_BYTES and decode(data) is not None


def test_names_in_buttons_are_plain_text_not_html_escapes() -> None:
    _, keyboard = render_list(ListPage("near", "all", 0, 1, 5, (card(title="Fish & chips"),)), "en", NOW)
    assert "1. Fish & chips" in labels(keyboard)


# -- the detail and its picker -----------------------------------------------------------------------------


def test_the_detail_opens_with_one_of_the_first_item_that_is_left() -> None:
    offer = detail(DetailItem("Loaf", sgd(600), sgd(250), 0), DetailItem("Bun", sgd(300), sgd(100), 5))
    assert pick_quantities((), offer) == (0, 1)


def test_quantities_are_clamped_to_stock_and_to_the_per_order_limit() -> None:
    offer = detail(
        DetailItem("Loaf", sgd(600), sgd(250), 2), DetailItem("Bun", sgd(300), sgd(100), 9), per_order_limit=4
    )
    assert pick_quantities((5, 1), offer) == (2, 1)  # stock fell to 2 loaves
    assert pick_quantities((2, 9), offer) == (2, 2)  # the limit of 4 cuts the last item first
    assert pick_quantities((1,), offer) == (1, 0)  # too few numbers: the rest are zero
    assert pick_quantities((1, 1, 7), offer) == (1, 1)  # too many: ignored


def test_the_picker_shows_no_button_for_a_bound_that_is_reached() -> None:
    # Given 2 loaves left and 2 picked, and no buns picked
    offer = detail(DetailItem("Loaf", sgd(600), sgd(250), 2), DetailItem("Bun", sgd(300), sgd(100), 1))
    message = render_detail(offer, (2, 0), "abc", "en", NOW)
    data = all_data(message.keyboard)
    # Then the loaf can go down but not up, and the bun can go up but not down
    assert ViewOffer(42, (1, 0)).encode() in data
    assert ViewOffer(42, (3, 0)).encode() not in data
    assert ViewOffer(42, (2, 1)).encode() in data
    # And Buy shows the total
    assert "Reserve 2 · SGD 5.00" in labels(message.keyboard)
    assert BuyOffer(42, (2, 0), "abc").encode() in data


def test_the_per_order_limit_stops_every_plus_button() -> None:
    offer = detail(
        DetailItem("Loaf", sgd(600), sgd(250), 9), DetailItem("Bun", sgd(300), sgd(100), 9), per_order_limit=3
    )
    data = all_data(render_detail(offer, (2, 1), "n", "en", NOW).keyboard)
    assert ViewOffer(42, (3, 1)).encode() not in data and ViewOffer(42, (2, 2)).encode() not in data
    assert ViewOffer(42, (1, 1)).encode() in data and ViewOffer(42, (2, 0)).encode() in data


def test_nothing_picked_means_no_buy_button_and_a_hint() -> None:
    message = render_detail(detail(), (0,), "n", "en", NOW)
    assert not any(d.startswith("by:") for d in all_data(message.keyboard))
    assert "Pick at least one" in message.text
    assert BACK_TO_LIST.encode() in all_data(message.keyboard)


def test_the_detail_shows_where_when_and_what_in_the_venue_timezone() -> None:
    message = render_detail(detail(), (1,), "n", "en", NOW)
    assert message.photo == "photo-id"
    for fragment in (
        "Evening bag",
        "Flo's Bakes",
        "12 Baker Street",
        "1.2 km",
        "Fresh from today",
        "Vegetarian",
    ):
        assert fragment in message.text
    assert "Today 18:00–20:00" in message.text
    assert "<b>SGD 2.50</b> <s>SGD 6.00</s> · 3 left" in message.text


def test_a_long_photo_detail_shortens_its_description_to_fit_the_caption() -> None:
    items = tuple(DetailItem("Item " + "x" * 58, sgd(600), sgd(250), 7) for _ in range(6))
    message = render_detail(detail(*items, description="word " * 100), (1, 0, 0, 0, 0, 0), "n", "en", NOW)
    assert message.photo == "photo-id"
    assert visible_length(message.text) <= MAX_CAPTION_CHARS
    assert "…" in message.text


def test_a_detail_too_long_for_any_caption_becomes_a_text_message_whatever_is_picked() -> None:
    items = tuple(DetailItem("餐" * 64, Money(2 * 10**9, "IDR"), Money(10**9, "IDR"), 999) for _ in range(10))
    offer = detail(*items, currency="IDR", per_order_limit=99)
    for picked in [(1,) + (0,) * 9, (9,) * 10]:
        message = render_detail(offer, pick_quantities(picked, offer), nonce_of(2**40), "en", NOW)
        assert message.photo is None and visible_length(message.text) <= MAX_TEXT_CHARS
        for data in all_data(message.keyboard):
            assert len(data.encode()) <= MAX_CALLBACK_BYTES and decode(data) is not None


def test_the_buy_nonce_is_the_update_id_in_base36() -> None:
    assert nonce_of(0) == "0" and nonce_of(35) == "z" and nonce_of(36) == "10"
    assert len(nonce_of(2**63)) <= 12

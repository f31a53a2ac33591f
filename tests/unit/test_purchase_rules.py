"""Pure buying rules: quantities to lines, what a Checkout Session's state means, and the buyer's messages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core import purchase
from core.callbacks import ReleaseHold, ViewOffer
from core.money import Money
from core.pickup import deep_link_payload, pickup_qr_data
from core.reservations import InvalidQuantity, Line

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _view(**overrides: object) -> purchase.PurchaseView:
    fields: dict[str, object] = {
        "chat_id": 42,
        "lang": "en",
        "items": (("Croissant", 2), ("Pain <au> chocolat", 1)),
        "total": Money(750, "SGD"),
        "offer_id": 7,
        "offer_title": "Morning bag",
        "business": "Baker & Co",
        "venue": "Baker & Co Orchard",
        "address": "1 Orchard Road",
        "timezone": "Asia/Singapore",
        "pickup_start": NOW,  # 18:00 in Singapore
        "pickup_end": NOW + timedelta(hours=2),
        "message_id": 99,
        "photo_file_id": "AgACphoto",
    }
    fields.update(overrides)
    return purchase.PurchaseView(**fields)  # type: ignore[arg-type]


def test_zero_quantities_are_items_not_chosen() -> None:
    assert purchase.lines_from_quantities((2, 0, 1), [11, 12, 13]) == [Line(11, 2), Line(13, 1)]


def test_more_quantities_than_items_is_a_stale_button_and_refused() -> None:
    with pytest.raises(InvalidQuantity):
        purchase.lines_from_quantities((1, 1), [11])


@pytest.mark.parametrize(
    ("event_type", "status", "payment_status", "outcome"),
    [
        ("checkout.session.completed", "complete", "paid", "paid"),
        ("checkout.session.expired", "complete", "paid", "paid"),  # expired arriving late changes nothing
        ("checkout.session.completed", "complete", "no_payment_required", "paid"),
        ("checkout.session.completed", "complete", "unpaid", "processing"),
        ("checkout.session.async_payment_failed", "complete", "unpaid", "failed"),
        ("checkout.session.async_payment_succeeded", "complete", "paid", "paid"),
        ("checkout.session.expired", "expired", "unpaid", "expired"),
        ("checkout.session.completed", "open", "unpaid", "none"),
    ],
)
def test_the_outcome_is_read_from_the_sessions_current_state(
    event_type: str, status: str, payment_status: str, outcome: str
) -> None:
    assert purchase.session_outcome(event_type, status, payment_status) == outcome


@pytest.mark.parametrize(
    ("intent_status", "outcome"),
    [
        ("processing", "processing"),
        ("requires_payment_method", "failed"),  # the bank declined the debit
        ("canceled", "failed"),
        (None, "processing"),
    ],
)
def test_a_delayed_payments_failure_is_read_from_its_payment_intent(intent_status: str, outcome: str) -> None:
    # Whatever event brought us here (a late `completed`, or reconciliation after a lost webhook)
    event = "checkout.session.completed"
    assert purchase.session_outcome(event, "complete", "unpaid", intent_status) == outcome


def test_a_stale_reading_never_undoes_a_later_payment_state() -> None:
    assert purchase.payment_may_become("open", "processing")
    assert purchase.payment_may_become("processing", "paid")
    assert not purchase.payment_may_become("failed", "processing")  # a replayed `completed`
    assert not purchase.payment_may_become("paid", "expired")
    assert not purchase.payment_may_become("paid", "paid")  # an order or a refund already exists
    assert purchase.payment_may_become("expired", "paid")  # money that arrives anyway is never ignored


def test_stripe_amounts_follow_stripes_decimals() -> None:
    assert purchase.stripe_unit_amount(450, "SGD") == 450  # cents
    assert purchase.stripe_unit_amount(1200, "JPY") == 1200  # whole yen: JPY is zero-decimal
    assert purchase.stripe_unit_amount(25000, "VND") == 25000
    with pytest.raises(ValueError):
        purchase.stripe_unit_amount(100, "XXX")


def test_return_urls_and_qr_data_prefer_the_bot() -> None:
    assert purchase.return_url("@marketbot", None) == "https://t.me/marketbot"
    assert purchase.return_url(None, "https://bot.example.com") == "https://bot.example.com"
    assert purchase.return_url(None, None).startswith("http://localhost")
    order_id = uuid.UUID(int=7)
    payload = deep_link_payload(order_id, "ABC234")
    assert pickup_qr_data(order_id, "ABC234", "@marketbot") == f"https://t.me/marketbot?start={payload}"
    assert pickup_qr_data(order_id, "ABC234", None) == payload


def test_reserved_card_edits_the_photo_caption_without_the_buy_button() -> None:
    method, payload = purchase.reserved(_view(), 15).to_bot_api()

    assert method == "editMessageCaption" and payload["message_id"] == 99
    assert payload["caption"].startswith(
        "🧺 Reserved 2 × Croissant, 1 × Pain &lt;au&gt; chocolat for 15 minutes"
    )
    assert "reply_markup" not in payload


def test_pay_card_shows_the_hold_end_in_venue_time_and_the_pay_and_release_buttons() -> None:
    expires = NOW + timedelta(minutes=15)  # 10:15 UTC is 18:15 in Singapore
    reply = purchase.pay_button(
        _view(), url="https://pay.example/cs_1", expires_at=expires, reservation_hex="ab" * 16
    )
    method, payload = reply.to_bot_api()

    assert method == "editMessageCaption"
    assert "18:15" in payload["caption"] and "SGD 7.50" in payload["caption"]
    rows = payload["reply_markup"]["inline_keyboard"]
    assert rows[0][0] == {"text": "💳 Pay SGD 7.50", "url": "https://pay.example/cs_1"}
    assert rows[1][0]["callback_data"] == ReleaseHold("ab" * 16).encode()


def test_a_text_card_is_edited_as_text_and_no_card_means_a_new_message() -> None:
    assert purchase.paid_card(_view(photo_file_id=None)).to_bot_api()[0] == "editMessageText"
    assert purchase.paid_card(_view(message_id=None)).to_bot_api()[0] == "sendMessage"


def test_order_confirmation_is_a_qr_photo_with_code_items_venue_and_window() -> None:
    reply = purchase.order_confirmation(_view(), code="ABC-234", qr_data="https://t.me/bot?start=p_x")
    method, payload = reply.to_bot_api()

    assert method == "sendPhoto" and payload["marketbot_qr_data"] == "https://t.me/bot?start=p_x"
    caption = payload["caption"]
    for fragment in ("ABC-234", "2 × Croissant", "SGD 7.50", "Baker &amp; Co Orchard", "1 Orchard Road"):
        assert fragment in caption
    assert "Mon 23 Nov 18:00–20:00" in caption and "show this code at the counter" in caption.lower()


def test_owner_hears_the_code_items_and_window_in_their_language() -> None:
    reply = purchase.owner_new_order(_view(), owner_chat_id=5, owner_lang="en", code="ABC-234")
    assert reply.chat_id == 5
    assert reply.text.startswith("🛎 New order <b>ABC-234</b>: 2 × Croissant")
    assert "18:00–20:00" in reply.text


def test_closed_cards_offer_the_way_back_to_the_offer() -> None:
    _, payload = purchase.hold_closed(_view(), "hold.released").to_bot_api()
    assert payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == ViewOffer(7).encode()

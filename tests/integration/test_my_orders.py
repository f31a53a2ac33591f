"""A customer's orders on real PostgreSQL: the list, the pickup code again, cancelling before the cutoff."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.callbacks import MyOrders, OrderAction, decode
from core.messages import Reply
from core.pickup import display_code, parse_deep_link_payload
from db.models import AuditLogEntry, Offer, Order, Refund, User
from db.offer_repositories import NewItem
from db.uow import SqlAlchemyUnitOfWork
from tasks import order_flows
from tasks.business_flows import Context
from tasks.jobs import Job
from tasks.names import EXECUTE_REFUND
from tests.integration import seed
from tests.integration.order_seed import context, paid_order

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # 14:00 in Singapore, the venue's zone
HOUR = timedelta(hours=1)


@pytest.fixture
def uow(session_factory: sessionmaker[Session]) -> Iterator[SqlAlchemyUnitOfWork]:
    with SqlAlchemyUnitOfWork(session_factory) as unit:
        yield unit  # never committed: the test leaves nothing behind


@pytest.fixture(autouse=True)
def _bot_username(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_flows, "bot_username", lambda: "marketbot_test_bot")
    monkeypatch.setattr(order_flows, "cancel_cutoff", lambda: HOUR)


def _shop(uow: SqlAlchemyUnitOfWork, *, start: datetime = NOW + 3 * HOUR, title: str = "Pastry bag") -> Offer:
    owner = seed.user(uow, NOW, "Olivia")
    business = seed.verified_business(uow, owner, NOW, "Sunrise Bakery")
    return _offer(uow, business.id, start=start, title=title)


def _offer(uow: SqlAlchemyUnitOfWork, business_id: int, *, start: datetime, title: str) -> Offer:
    from db.models import Business

    business = uow.session.get(Business, business_id)
    assert business is not None
    return seed.offer(
        uow,
        business,
        NOW - 6 * HOUR,
        title=title,
        start=start,
        items=[NewItem("Croissant", 10, 300, 250), NewItem("Sourdough", 5, 600, 400)],
    )


def _text(replies: tuple[Reply, ...]) -> str:
    return "\n".join(r.text for r in replies)


def _press(
    uow: SqlAlchemyUnitOfWork, user: User, action: OrderAction, now: datetime = NOW
) -> tuple[Context, tuple[Reply, ...]]:
    ctx = context(user, now, button=action.encode())
    return ctx, order_flows.order_action(ctx, uow, action)


def _remaining(uow: SqlAlchemyUnitOfWork, offer: Offer) -> list[int]:
    return [item.remaining for item in uow.offers.items(offer.id)]


# -- the list ---------------------------------------------------------------------------------------------


def test_my_orders_lists_active_orders_first_then_past_ones_five_to_a_page(uow: SqlAlchemyUnitOfWork) -> None:
    # Given: a buyer with two orders still to collect and five past ones, and someone else's order
    buyer, stranger = seed.user(uow, NOW, "Ann"), seed.user(uow, NOW, "Ben")
    later = _shop(uow, start=NOW + 5 * HOUR, title="Evening bag")
    sooner = _offer(uow, later.business_id, start=NOW + 2 * HOUR, title="Lunch bag")
    ended = _offer(uow, later.business_id, start=NOW - 5 * HOUR, title="Breakfast bag")
    paid_order(uow, buyer, later, NOW)
    first, _ = paid_order(uow, buyer, sooner, NOW, quantities=(2, 1))
    for status in ("redeemed", "cancelled", "refunded", "paid"):
        paid_order(uow, buyer, ended, NOW - 7 * HOUR, status=status)
    paid_order(uow, buyer, ended, NOW - 8 * HOUR, status="redeemed")
    paid_order(uow, stranger, sooner, NOW)

    # When: they send /orders
    (page,) = order_flows.my_orders(context(buyer, NOW), uow, 0)

    # Then: one new message, the two active orders first (soonest pickup first) with their codes
    assert page.edit_message_id is None
    assert "page 1 of 2" in page.text
    assert page.text.index("Lunch bag") < page.text.index("Evening bag") < page.text.index("Past orders")
    assert f"<code>{display_code(first.pickup_code)}</code>" in page.text
    assert "2 × Croissant, 1 × Sourdough — SGD 9.00" in page.text
    assert "Today 16:00–19:00" in page.text  # the pickup window in Singapore time
    assert page.text.count("<b>", page.text.index("Past orders")) == 3  # three past orders fill the page
    buttons = [decode(b.callback_data) for row in page.inline_keyboard for b in row]
    assert OrderAction("show", first.id.hex) in buttons and OrderAction("cancel", first.id.hex) in buttons
    assert buttons[-1] == MyOrders(1)

    # When: they tap "Older"
    (older,) = order_flows.my_orders(context(buyer, NOW, button="mo:1", message_id=41), uow, 1)

    # Then: the same message shows the last two, with words for what became of them, and no stranger's order
    assert older.edit_message_id == 41
    assert "page 2 of 2" in older.text and "<b>6. Breakfast bag</b>" in older.text
    assert "<b>8." not in older.text
    assert [decode(b.callback_data) for b in older.inline_keyboard[-1]] == [MyOrders(0)]


def test_past_orders_say_what_became_of_them(uow: SqlAlchemyUnitOfWork) -> None:
    buyer = seed.user(uow, NOW, "Ann")
    ended = _shop(uow, start=NOW - 5 * HOUR)
    for status in ("redeemed", "refunded", "paid"):
        paid_order(uow, buyer, ended, NOW - 7 * HOUR, status=status)

    (page,) = order_flows.my_orders(context(buyer, NOW), uow, 0)

    assert "Picked up" in page.text and "Refunded to your card" in page.text
    assert "pickup window has ended" in page.text
    assert page.inline_keyboard == ()  # nothing to show or cancel any more


def test_no_orders_yet_points_to_find(uow: SqlAlchemyUnitOfWork) -> None:
    (reply,) = order_flows.my_orders(context(seed.user(uow, NOW), NOW), uow, 0)
    assert "no orders yet" in reply.text and "/find" in reply.text


# -- the code again ---------------------------------------------------------------------------------------


def test_show_code_sends_the_pickup_qr_with_the_deep_link(uow: SqlAlchemyUnitOfWork) -> None:
    buyer = seed.user(uow, NOW, "Ann")
    order, _ = paid_order(uow, buyer, _shop(uow), NOW)

    _, (reply,) = _press(uow, buyer, OrderAction("show", order.id.hex))

    assert reply.qr_data is not None and reply.qr_data.startswith("https://t.me/marketbot_test_bot?start=")
    assert parse_deep_link_payload(reply.qr_data.split("start=")[1]) == (order.id, order.pickup_code)
    assert display_code(order.pickup_code) in reply.text and "Pastry bag" in reply.text
    assert reply.to_bot_api()[0] == "sendPhoto"


def test_someone_elses_order_reads_like_an_unknown_one(uow: SqlAlchemyUnitOfWork) -> None:
    buyer, intruder = seed.user(uow, NOW, "Ann"), seed.user(uow, NOW, "Eve")
    offer = _shop(uow)
    order, _ = paid_order(uow, buyer, offer, NOW)

    for verb in ("show", "cancel", "cancel_confirmed"):
        ctx, replies = _press(uow, intruder, OrderAction(verb, order.id.hex))  # type: ignore[arg-type]
        assert "couldn't find that order" in _text(replies)
        assert not ctx.jobs
    uow.session.refresh(order)
    assert order.status == "paid" and _remaining(uow, offer) == [8, 5]
    assert uow.refunds.of_payment(_payment_id(uow, order)) is None


# -- cancelling -------------------------------------------------------------------------------------------


def test_cancelling_asks_first_and_changes_nothing_until_confirmed(uow: SqlAlchemyUnitOfWork) -> None:
    buyer = seed.user(uow, NOW, "Ann")
    order, _ = paid_order(uow, buyer, _shop(uow), NOW)

    ctx, (ask,) = _press(uow, buyer, OrderAction("cancel", order.id.hex))

    assert "Cancel your order for <b>2 × Croissant</b>" in ask.text and "SGD 5.00 back" in ask.text
    assert "until Mon 23 Nov 16:00 (Asia/Singapore)" in ask.text  # pickup 17:00 local, 60 min cutoff
    yes, no = ask.inline_keyboard[0]
    assert decode(yes.callback_data) == OrderAction("cancel_confirmed", order.id.hex)
    assert decode(no.callback_data) == MyOrders(0)
    uow.session.refresh(order)
    assert order.status == "paid" and not ctx.jobs


def test_cancelling_before_the_cutoff_returns_units_requests_the_refund_and_tells_both_sides(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    # Given: a paid order for 2 croissants, pickup at 17:00 local (cutoff 16:00), now 14:00
    buyer = seed.user(uow, NOW, "Ann")
    offer = _shop(uow)
    order, payment = paid_order(uow, buyer, offer, NOW, payment_intent_id="pi_test_cancel")
    assert _remaining(uow, offer) == [8, 5]

    # When: the buyer confirms the cancellation
    ctx, (told, owner_told) = _press(uow, buyer, OrderAction("cancel_confirmed", order.id.hex))

    # Then: the order is cancelled, the units are back on the offer, one refund is requested for later
    uow.session.refresh(order)
    assert (order.status, order.cancelled_at) == ("cancelled", NOW)
    assert _remaining(uow, offer) == [10, 5]
    refund = uow.refunds.of_payment(payment.id)
    assert refund is not None
    assert (refund.status, refund.reason, refund.amount_minor, refund.order_id) == (
        "requested",
        "customer_cancelled",
        500,
        order.id,
    )
    assert ctx.jobs == [Job(EXECUTE_REFUND, (refund.id,))]
    # And: the confirmation message turns into the answer; the shop hears which units are back
    assert told.chat_id == buyer.telegram_user_id and told.edit_message_id == 77
    assert "SGD 5.00 is on its way back to your card" in told.text
    assert f"Order <b>{display_code(order.pickup_code)}</b>" in owner_told.text
    assert "2 × Croissant are back in stock" in owner_told.text
    audit = uow.session.scalars(
        select(AuditLogEntry.action).where(AuditLogEntry.subject_id == str(order.id))
    ).all()
    assert audit == ["order.cancelled_by_customer"]
    # And: "My orders" shows it as cancelled with the refund on its way
    (page,) = order_flows.my_orders(context(buyer, NOW), uow, 0)
    assert "Cancelled · refund on its way" in page.text


def test_after_the_cutoff_cancelling_is_refused_with_the_cutoff_in_the_venues_time(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    buyer = seed.user(uow, NOW, "Ann")
    offer = _shop(uow, start=NOW + 3 * HOUR)  # 17:00 local
    order, payment = paid_order(uow, buyer, offer, NOW)
    at_cutoff = NOW + 2 * HOUR

    for verb in ("cancel", "cancel_confirmed"):
        ctx, replies = _press(uow, buyer, OrderAction(verb, order.id.hex), now=at_cutoff)  # type: ignore[arg-type]
        assert "can't be cancelled any more" in _text(replies)
        assert "60 minutes before pickup starts, at Mon 23 Nov 16:00 (Asia/Singapore)" in _text(replies)
        assert not ctx.jobs
    uow.session.refresh(order)
    assert order.status == "paid" and _remaining(uow, offer) == [8, 5]
    assert uow.refunds.of_payment(payment.id) is None


@pytest.mark.parametrize(
    ("status", "why"), [("redeemed", "already picked up"), ("refunded", "already refunded")]
)
def test_a_collected_or_refunded_order_cannot_be_cancelled(
    uow: SqlAlchemyUnitOfWork, status: str, why: str
) -> None:
    buyer = seed.user(uow, NOW, "Ann")
    order, payment = paid_order(uow, buyer, _shop(uow), NOW, status=status)

    ctx, replies = _press(uow, buyer, OrderAction("cancel_confirmed", order.id.hex))

    assert why in _text(replies) and not ctx.jobs
    assert uow.refunds.of_payment(payment.id) is None


def test_a_double_tap_on_yes_cancels_once_and_refunds_once(uow: SqlAlchemyUnitOfWork) -> None:
    buyer = seed.user(uow, NOW, "Ann")
    offer = _shop(uow)
    order, payment = paid_order(uow, buyer, offer, NOW)

    first, _ = _press(uow, buyer, OrderAction("cancel_confirmed", order.id.hex))
    second, again = _press(uow, buyer, OrderAction("cancel_confirmed", order.id.hex))

    assert len(first.jobs) == 1 and second.jobs == []
    assert "already cancelled; your refund is on its way" in _text(again)
    assert _remaining(uow, offer) == [10, 5]  # units came back once
    count = uow.session.scalar(
        select(func.count()).select_from(Refund).where(Refund.payment_id == payment.id)
    )
    assert count == 1


def test_returned_units_never_exceed_what_the_offer_has_in_total(uow: SqlAlchemyUnitOfWork) -> None:
    # Given: 2 croissants sold, then the shop put units back meanwhile so only 1 fits under the total
    buyer = seed.user(uow, NOW, "Ann")
    offer = _shop(uow)
    order, _ = paid_order(uow, buyer, offer, NOW)
    croissant = uow.offers.items(offer.id)[0]
    croissant.remaining = 9
    uow.session.flush()

    _press(uow, buyer, OrderAction("cancel_confirmed", order.id.hex))

    assert _remaining(uow, offer) == [10, 5]


def test_two_concurrent_confirmations_cancel_and_refund_once(
    session_factory: sessionmaker[Session],
) -> None:
    # Given: a committed paid order (two workers would each run one transaction)
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        buyer = seed.user(uow, NOW, "Ann")
        offer = _shop(uow)
        order, payment = paid_order(uow, buyer, offer, NOW)
        uow.commit()
    barrier = threading.Barrier(2)
    jobs: list[list[Job]] = []
    errors: list[BaseException] = []

    def confirm() -> None:
        try:
            with SqlAlchemyUnitOfWork(session_factory) as uow:
                user = uow.session.get(User, buyer.id)
                assert user is not None
                ctx = context(user, NOW, button="od:y:" + order.id.hex)
                barrier.wait()
                order_flows.order_action(ctx, uow, OrderAction("cancel_confirmed", order.id.hex))
                uow.commit()
                jobs.append(ctx.jobs)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert not errors
    assert sorted(len(j) for j in jobs) == [0, 1]
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        assert uow.session.get(Order, order.id).status == "cancelled"  # type: ignore[union-attr]
        assert _remaining(uow, offer) == [10, 5]
        refunds = uow.session.scalars(select(Refund).where(Refund.payment_id == payment.id)).all()
        assert len(refunds) == 1


def _payment_id(uow: SqlAlchemyUnitOfWork, order: Order) -> int:
    payment = uow.orders.payment_of_reservation(order.reservation_id)
    assert payment is not None
    return payment.id

"""The same update, Stripe event or Celery task arriving more than once has one effect (invariant 3).

Already covered elsewhere, not repeated here: one update POSTed three times in a row
(tests/e2e/test_walking_skeleton.py), the gateway's dedup (tests/integration/test_gateway.py), Stripe events
in any order (tests/integration/test_stripe_events.py), one outbox row sent by racing tasks
(tests/integration/test_outbound_delivery.py).
"""

from __future__ import annotations

import threading
import time

import pytest

from marketbot.harness import text_update
from tasks.names import CREATE_CHECKOUT, DRAIN_USER_MAILBOX, PROCESS_STRIPE_EVENT
from tests.faults.conftest import (
    FaultStack,
    checkout_sessions_for,
    confirmations,
    new_user_id,
    open_shop,
    order_rows,
    pay_messages,
    payment_rows,
    press_buy,
    publish,
    reservation_of,
    task_runs,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.mark.timeout(120)
def test_one_update_posted_three_times_at_once_gets_one_reply(stack: FaultStack) -> None:
    """Injects: the same Telegram update POSTed three times concurrently (Telegram retrying a slow answer).
    Checks: every POST gets 200, one reply is stored and sent."""
    user = new_user_id()
    update = text_update(user, "/help")
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(stack.post_update(update))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert statuses == [200, 200, 200]
    stack.wait_for_reply(user, "/cancel")
    time.sleep(1.0)  # a duplicated reply would follow right behind
    assert len(stack.sent_to(user)) == 1
    assert len(stack.rows("SELECT id FROM outbox WHERE chat_id = :c", c=user)) == 1


@pytest.mark.timeout(180)
def test_one_stripe_event_delivered_five_times_makes_one_order_and_one_confirmation(
    stack: FaultStack,
) -> None:
    """Injects: Stripe's `checkout.session.completed` for a paid hold delivered five times (once by the
    payment, four redeliveries), each enqueued by the gateway as its own task. Checks: all five are
    answered 200 and processed; one order, one paid payment, one confirmation to the buyer, one note to the
    shop."""
    offer_id = open_shop(stack)
    buyer = new_user_id()
    press_buy(stack, buyer, offer_id)
    reservation_id = reservation_of(stack, buyer)
    wait_until(lambda: pay_messages(stack, buyer), timeout=60, what="the buyer gets the Pay button")
    ((session_id, _),) = payment_rows(stack, reservation_id)

    stack.stripe.complete_checkout(session_id)
    (event,) = [
        e
        for e in stack.stripe.events
        if e["type"] == "checkout.session.completed" and e["data"]["object"]["id"] == session_id
    ]
    stack.stripe.send_event(event, times=4)

    def delivered() -> int:
        return sum(1 for d in list(stack.stripe.webhook_deliveries) if d == (event["id"], 200))

    wait_until(lambda: delivered() >= 5, timeout=60, what="five deliveries answered 200")
    wait_until(
        lambda: task_runs(stack, PROCESS_STRIPE_EVENT, event["id"]) >= 5,
        timeout=60,
        what="five event tasks ran",
    )
    wait_until(lambda: confirmations(stack, buyer), timeout=60, what="the buyer gets the confirmation")
    assert len(order_rows(stack, reservation_id)) == 1
    assert [p.status for p in payment_rows(stack, reservation_id)] == ["paid"]
    owner_notes = stack.rows(
        "SELECT id FROM outbox WHERE dedup_key = :k",
        k=f"order:{order_rows(stack, reservation_id)[0].id}:owner",
    )
    assert len(owner_notes) == 1
    time.sleep(1.0)  # a duplicated confirmation would follow right behind
    assert len(confirmations(stack, buyer)) == 1


@pytest.mark.timeout(180)
def test_the_same_celery_task_published_twice_has_one_effect(stack: FaultStack) -> None:
    """Injects: identical copies of tasks published next to the real ones: the user's drain twice more for
    one waiting update, and create_checkout twice more for a fresh hold (copies may run side by side in the
    two pool processes). Checks: one reply to the update; one Checkout Session, one payment row and one Pay
    button for the hold."""
    # A drain published three times for one update
    user = new_user_id()
    update = stack.telegram.send_user_message(user, "/start", first_name="Twice")
    copies = [publish(stack, DRAIN_USER_MAILBOX, user) for _ in range(2)]
    stack.wait_for_reply(user, "Welcome to MarketBot, Twice!")
    for marker in [f"tg-{update['update_id']}", *copies]:
        wait_until(
            lambda m=marker: task_runs(stack, DRAIN_USER_MAILBOX, m) >= 1,
            timeout=60,
            what=f"drain {marker} ran",
        )

    # create_checkout published three times for one hold
    offer_id = open_shop(stack)
    buyer = new_user_id()
    tap = press_buy(stack, buyer, offer_id)
    reservation_id = reservation_of(stack, buyer)
    copies = [publish(stack, CREATE_CHECKOUT, reservation_id) for _ in range(2)]
    for marker in [f"tg-{tap}", *copies]:
        wait_until(
            lambda m=marker: task_runs(stack, CREATE_CHECKOUT, m) >= 1,
            timeout=60,
            what=f"checkout {marker} ran",
        )
    wait_until(lambda: pay_messages(stack, buyer), timeout=60, what="the buyer gets the Pay button")
    time.sleep(1.0)  # duplicated messages would follow right behind
    assert len(stack.sent_to(user)) == 1
    assert len(checkout_sessions_for(stack, reservation_id)) == 1
    assert len(payment_rows(stack, reservation_id)) == 1
    assert len(pay_messages(stack, buyer)) == 1

"""Workers killed with SIGKILL in the middle of a payment task: the task runs again, the effect happens once.

The fake Stripe holds its answer back (`delay_next`), which parks the task at a known point: Stripe has
made the change, the worker has not heard of it. Then the process dies without a chance to clean up.
"""

from __future__ import annotations

import json
import time

import psutil
import pytest

from tasks.names import PROCESS_STRIPE_EVENT
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
    reservation_of,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.mark.timeout(240)
def test_pool_process_killed_while_creating_the_checkout_session_gives_one_session_and_one_pay_button(
    stack: FaultStack,
) -> None:
    """Injects: SIGKILL to the worker's pool processes while create_checkout waits for Stripe's answer
    (Stripe already made the session). Checks: Celery puts the task back (acks_late +
    reject_on_worker_lost), it runs again at once, and the buyer ends up with one Checkout Session, one
    payment row and one Pay button."""
    offer_id = open_shop(stack)
    buyer = new_user_id()
    # Given Stripe will be slow to answer the next Checkout Session request
    held = stack.stripe.delays_started
    stack.stripe.delay_next("/v1/checkout/sessions", 60)
    press_buy(stack, buyer, offer_id)
    reservation_id = reservation_of(stack, buyer)
    stack.stripe.wait_for_delayed(held + 1, timeout=60)
    assert len(checkout_sessions_for(stack, reservation_id)) == 1  # Stripe has it; the worker doesn't know

    # When the pool processes die (the out-of-memory killer's usual victims), the main process survives
    children = psutil.Process(stack.worker.proc.pid).children()
    assert children, stack.worker.tail()
    for child in children:
        child.kill()

    # Then the task is redelivered and finishes: the same session (Stripe's idempotency key), shown once
    wait_until(lambda: pay_messages(stack, buyer), timeout=90, what="the buyer gets the Pay button")
    assert stack.worker.proc.poll() is None
    wait_until(lambda: "WorkerLostError" in stack.worker.tail(400), timeout=10, what="Celery saw the loss")
    assert len(checkout_sessions_for(stack, reservation_id)) == 1
    ((session_id, status),) = payment_rows(stack, reservation_id)
    assert status == "open" and {session_id} == checkout_sessions_for(stack, reservation_id)
    time.sleep(1.0)  # a second, wrongly duplicated Pay message would be sent right behind the first
    assert len(pay_messages(stack, buyer)) == 1
    assert [
        r.status
        for r in stack.rows(
            "SELECT status FROM outbox WHERE dedup_key = :k", k=f"checkout:{reservation_id}:pay"
        )
    ] == ["sent"]


def _unacked_tasks(stack: FaultStack, task_name: str) -> list[bytes]:
    """Delivery tags of messages kombu holds as delivered-but-not-acknowledged for `task_name`."""
    with stack.redis_server.client() as client:
        held = client.hgetall("unacked")
    tags = []
    for tag, raw in held.items():
        message, _exchange, _routing_key = json.loads(raw)
        if message.get("headers", {}).get("task") == task_name:
            tags.append(tag)
    return tags


def _restore(stack: FaultStack, tags: list[bytes]) -> None:
    """What kombu's Redis transport does to these messages once the visibility timeout has passed."""
    from kombu import Connection

    from marketbot.settings import redis_url_for_celery

    with Connection(redis_url_for_celery(stack.redis_server.url)) as conn:
        qos = conn.default_channel.qos
        for tag in tags:
            qos.restore_by_tag(tag.decode())


@pytest.mark.timeout(300)
def test_whole_worker_killed_while_applying_a_payment_leaves_the_task_to_redelivery_and_one_order(
    stack: FaultStack,
) -> None:
    """Injects: SIGKILL to the whole worker (main process and pool) while the Stripe `completed` event's
    task re-reads the session from Stripe. Checks: the unacknowledged task stays in the broker (nothing is
    lost); a fresh worker runs it once it is redelivered, and the buyer gets exactly one order and one
    confirmation."""
    offer_id = open_shop(stack)
    buyer = new_user_id()
    press_buy(stack, buyer, offer_id)
    reservation_id = reservation_of(stack, buyer)
    wait_until(lambda: pay_messages(stack, buyer), timeout=60, what="the buyer gets the Pay button")
    ((session_id, _),) = payment_rows(stack, reservation_id)

    # Given the buyer pays and Stripe is slow to answer the worker's look at the session
    held = stack.stripe.delays_started
    stack.stripe.delay_next(f"/v1/checkout/sessions/{session_id}", 60, method="GET")
    stack.stripe.complete_checkout(session_id)
    stack.stripe.wait_for_delayed(held + 1, timeout=60)

    # When the whole worker dies (a host or container going away) and a new one starts
    stack.kill_worker()
    stranded = _unacked_tasks(stack, PROCESS_STRIPE_EVENT)
    assert len(stranded) == 1, "the event's task must wait in the broker, not vanish"
    stack.start_worker("f1")
    assert order_rows(stack, reservation_id) == []

    # Then, once the broker hands the task out again (the Redis transport does so after its visibility
    # timeout; here the test plays that part), the new worker applies the payment once
    _restore(stack, stranded)
    wait_until(lambda: confirmations(stack, buyer), timeout=90, what="the buyer gets the confirmation")
    assert len(order_rows(stack, reservation_id)) == 1
    assert [p.status for p in payment_rows(stack, reservation_id)] == ["paid"]
    time.sleep(1.0)  # a duplicated confirmation would follow right behind the first
    assert len(confirmations(stack, buyer)) == 1
    assert _unacked_tasks(stack, PROCESS_STRIPE_EVENT) == []

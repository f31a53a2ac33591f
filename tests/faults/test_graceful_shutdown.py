"""SIGTERM (a deploy, a scale-down) in the middle of work: the work finishes, nothing is half done."""

from __future__ import annotations

import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from marketbot.harness import free_port, start_gateway, text_update
from marketbot.settings import redis_url_for_celery
from tasks.names import CREATE_CHECKOUT
from tests.faults.conftest import (
    FaultStack,
    HoldingProxy,
    checkout_sessions_for,
    new_user_id,
    open_shop,
    pay_messages,
    payment_rows,
    press_buy,
    reservation_of,
    task_runs,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.mark.timeout(240)
def test_worker_sigterm_mid_checkout_finishes_the_task_before_exiting(stack: FaultStack) -> None:
    """Injects: SIGTERM to the worker while create_checkout waits 4 s for Stripe's answer. Checks: the worker
    finishes that task (its payment row is written) and exits with 0; the task ran once (one request to
    Stripe); a new worker sends the buyer exactly one Pay button."""
    offer_id = open_shop(stack)
    buyer = new_user_id()
    held = stack.stripe.delays_started
    stack.stripe.delay_next("/v1/checkout/sessions", 4)
    tap = press_buy(stack, buyer, offer_id)
    reservation_id = reservation_of(stack, buyer)
    stack.stripe.wait_for_delayed(held + 1, timeout=60)

    assert stack.worker.stop(signal.SIGTERM, timeout=90) == 0, stack.worker.tail()

    assert len(payment_rows(stack, reservation_id)) == 1, stack.worker.tail()
    assert task_runs(stack, CREATE_CHECKOUT, f"tg-{tap}") == 1, stack.worker.tail()
    stack.start_worker("f2")
    wait_until(lambda: pay_messages(stack, buyer), timeout=60, what="the buyer gets the Pay button")
    posts = [
        c
        for c in stack.stripe.calls("/v1/checkout/sessions")
        if c.method == "POST" and (c.params.get("metadata") or {}).get("reservation_id") == reservation_id
    ]
    assert len(posts) == 1 and len(checkout_sessions_for(stack, reservation_id)) == 1
    wait_until(lambda: len(pay_messages(stack, buyer)) == 1, timeout=5, what="exactly one Pay button")


def _refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


@pytest.mark.timeout(180)
def test_gateway_sigterm_stops_accepting_and_finishes_the_webhook_in_flight(stack: FaultStack) -> None:
    """Injects: SIGTERM to a gateway while a webhook request is inside it (held at its first Redis command
    by a proxy). Checks: the gateway stops accepting new connections at once, the request in flight still
    completes with 200, its update is answered exactly once, and the gateway exits with 0."""
    directory = Path(tempfile.mkdtemp(prefix="mbh-"))
    proxy = HoldingProxy(stack.redis_server.socket, directory / "hold.sock", marker=b"tg:update:")
    port = free_port()
    env = {
        **stack.env,
        "REDIS_URL": proxy.url,
        "CELERY_BROKER_URL": redis_url_for_celery(stack.redis_server.url),
        # Registers the same webhook as the stack's gateway, so Telegram's deliveries don't move here.
        "PUBLIC_BASE_URL": stack.gateway_url,
    }
    gateway = start_gateway(env, port=port, name="gateway-sigterm")
    try:
        user = new_user_id()
        update = text_update(user, "/start", first_name="Drain")
        statuses: list[int] = []
        proxy.hold()
        request = threading.Thread(target=lambda: statuses.append(stack.post_update(update, port=port)))
        request.start()
        assert proxy.held.wait(60), gateway.tail()

        gateway.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: _refuses_connections(port), timeout=20, what="the gateway stops accepting")
        proxy.release.set()
        request.join(60)

        assert statuses == [200], gateway.tail()
        stack.wait_for_reply(user, "Welcome to MarketBot, Drain!")
        assert gateway.proc.wait(60) == 0, gateway.tail()
        wait_until(lambda: len(stack.sent_to(user)) == 1, timeout=5, what="exactly one reply")
    finally:
        gateway.stop()
        proxy.close()
        shutil.rmtree(directory, ignore_errors=True)

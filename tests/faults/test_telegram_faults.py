"""Telegram refusing to take messages for a while: replies are late, never lost, never doubled, in order.

The sender's handling of each answer is tested against the stand-in in
tests/integration/test_outbound_delivery.py (one 429, one blocked user, 5xx until giving up) and one 429 and
one blocked user go through the whole stack in tests/e2e/test_walking_skeleton.py. Here: a longer flood, a
5xx outage and a blocked user with several messages, through the real worker processes.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import FaultStack, new_user_id, wait_until

pytestmark = pytest.mark.slow

# Three updates and the reply each gets, in the order they are sent.
CONVERSATION = [
    ("/start", "Welcome to MarketBot"),
    ("/help", "/cancel"),
    ("do you have bread?", "didn't understand"),
]


def _converse(stack: FaultStack, user: int, *, timeout: float) -> list[str]:
    """Send the conversation's three updates; wait for and return the texts of the three replies."""
    for text, _ in CONVERSATION:
        stack.telegram.send_user_message(user, text, first_name="Flo")
    wait_until(lambda: len(stack.sent_to(user)) >= 3, timeout=timeout, what="three replies arrive")
    time.sleep(1.0)  # a duplicated reply would follow right behind
    return [str(c.params["text"]) for c in stack.sent_to(user)]


def _assert_each_once_in_order(texts: list[str]) -> None:
    assert len(texts) == 3, texts
    for text, (_, expected) in zip(texts, CONVERSATION, strict=True):
        assert expected in text, texts


@pytest.mark.timeout(180)
def test_a_long_telegram_flood_delays_replies_but_loses_none(stack: FaultStack) -> None:
    """Injects: Telegram answering 429 (retry after 1 s) to the next 10 sendMessage calls, longer than the
    sender's bound for failed attempts (8). Checks: the conversation's three replies all arrive after the
    flood, each exactly once, in order, and every outbox row ends `sent` (a 429 is Telegram telling us
    when to come back, not a failure to give up on)."""
    user = new_user_id()
    stack.telegram.fail_next("sendMessage", status=429, times=10, retry_after=1)

    texts = _converse(stack, user, timeout=120)

    _assert_each_once_in_order(texts)
    refused = [c for c in stack.telegram.calls("sendMessage") if c.status == 429]
    assert len(refused) >= 10 and refused[-1].at < stack.sent_to(user)[0].at
    rows = stack.rows("SELECT status FROM outbox WHERE chat_id = :c ORDER BY id", c=user)
    assert [r.status for r in rows] == ["sent", "sent", "sent"]


@pytest.mark.timeout(180)
def test_telegram_server_errors_delay_replies_with_backoff_but_lose_and_double_none(
    stack: FaultStack,
) -> None:
    """Injects: Telegram answering 502 to the next 3 sendMessage calls (an outage on its side). Checks: the
    three replies arrive after it, each exactly once and in order; the retries waited longer each time."""
    user = new_user_id()
    stack.telegram.fail_next("sendMessage", status=502, times=3)

    texts = _converse(stack, user, timeout=120)

    _assert_each_once_in_order(texts)
    failed = [c.at for c in stack.telegram.calls("sendMessage") if c.status == 502]
    assert len(failed) == 3
    first_sent = stack.sent_to(user)[0].at
    gaps = [b - a for a, b in zip([*failed, first_sent], [*failed, first_sent][1:], strict=False)]
    assert gaps == sorted(gaps) and gaps[0] >= 1.0, gaps  # backoff grows: 2 s, 4 s, 8 s


@pytest.mark.timeout(120)
def test_a_user_who_blocked_the_bot_is_marked_and_none_of_their_messages_is_retried(
    stack: FaultStack,
) -> None:
    """Injects: a user who blocked the bot (every call to their chat answers 403) with three replies due.
    Checks: the user is marked unreachable, every reply is dropped (not failed, not pending), and no
    message was offered to Telegram more than once."""
    user = new_user_id()
    stack.telegram.block_user(user)
    try:
        for text, _ in CONVERSATION:
            stack.telegram.send_user_message(user, text, first_name="Gone")

        def settled() -> list[str]:
            rows = stack.rows("SELECT status FROM outbox WHERE chat_id = :c ORDER BY id", c=user)
            statuses = [str(r.status) for r in rows]
            return statuses if len(statuses) == 3 and "pending" not in statuses else []

        assert wait_until(settled, timeout=60, what="the three replies are settled") == ["dropped"] * 3
        time.sleep(1.0)  # a retry would come right behind
        calls = stack.sent_to(user, status=None)
        assert len(calls) <= 3 and {c.status for c in calls} == {403}
        (row,) = stack.rows("SELECT unreachable_at FROM users WHERE telegram_user_id = :u", u=user)
        assert row.unreachable_at is not None
    finally:
        stack.telegram.unblock_user(user)

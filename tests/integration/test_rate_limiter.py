"""The shared Telegram send budget, on a real Redis: per-chat burst and spacing, the global cap, penalties,
and one budget for any number of limiter instances (workers)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from tasks.adapters.ratelimit import TelegramRateLimiter
from tests.integration.conftest import LimiterFactory

Factory = LimiterFactory


def _take(limiter: TelegramRateLimiter, chat_id: int | None, until: float) -> int:
    """Send as fast as the limiter allows until `until` (monotonic); return how many slots were granted."""
    granted = 0
    while True:
        wait = limiter.reserve(chat_id)
        if wait == 0:
            granted += 1
            continue
        if time.monotonic() + wait >= until:
            return granted
        time.sleep(wait)


def test_a_chat_gets_its_burst_then_one_slot_per_interval(make_limiter: Factory) -> None:
    limiter = make_limiter(
        per_chat_per_second=10, per_chat_burst=3, global_per_second=1000, global_burst=1000
    )

    assert [limiter.reserve(42) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.reserve(42)
    assert 0.05 < wait <= 0.1

    time.sleep(wait)
    assert limiter.reserve(42) == 0.0
    assert 0.05 < limiter.reserve(42) <= 0.1  # the burst is spent: one per interval from here on


def test_a_refused_reservation_takes_nothing(make_limiter: Factory) -> None:
    limiter = make_limiter(
        per_chat_per_second=10, per_chat_burst=1, global_per_second=1000, global_burst=1000
    )
    assert limiter.reserve(7) == 0.0

    waits = [limiter.reserve(7) for _ in range(20)]

    # Asking again and again doesn't push the slot further out, and the global bucket wasn't charged.
    assert max(waits) <= 0.1
    assert limiter.reserve(8) == 0.0


def test_a_busy_chat_does_not_slow_down_other_chats(make_limiter: Factory) -> None:
    limiter = make_limiter(per_chat_per_second=1, per_chat_burst=1, global_per_second=1000, global_burst=1000)
    assert limiter.reserve(1) == 0.0
    assert limiter.reserve(1) > 0.5

    assert [limiter.reserve(chat) for chat in range(2, 12)] == [0.0] * 10


def test_the_global_cap_holds_across_many_chats(make_limiter: Factory) -> None:
    limiter = make_limiter(
        global_per_second=40, global_burst=5, per_chat_per_second=1000, per_chat_burst=1000
    )

    immediate = [limiter.reserve(chat) for chat in range(100, 110)]
    assert immediate[:5] == [0.0] * 5
    assert all(0 < wait <= 0.15 for wait in immediate[5:])

    # Steady state across ever new chats: about 40 per second, never more than burst + rate * time.
    started = time.monotonic()
    granted = 0
    chat = 1000
    while time.monotonic() - started < 0.5:
        wait = limiter.reserve(chat)
        if wait == 0:
            granted += 1
            chat += 1
        else:
            time.sleep(wait)
    elapsed = time.monotonic() - started
    assert granted <= 1 + 40 * elapsed
    assert granted >= 0.7 * 40 * 0.5


def test_the_default_global_budget_keeps_every_second_within_thirty(make_limiter: Factory) -> None:
    limiter = make_limiter()

    granted = _take(limiter, None, until=time.monotonic() + 1.0)

    assert 25 <= granted <= 31  # 30/s from an idle start; a burst of 30 would have let ~60 through


def test_penalizing_a_chat_holds_back_that_chat_only(make_limiter: Factory) -> None:
    limiter = make_limiter()

    limiter.penalize(5, 0.6)

    assert 0.5 < limiter.reserve(5) <= 0.6
    assert limiter.reserve(6) == 0.0
    time.sleep(0.6)
    assert limiter.reserve(5) == 0.0
    assert limiter.reserve(5) > 0.5  # resumes without a burst: Telegram just told us to slow down


def test_penalizing_the_bot_holds_back_every_chat(make_limiter: Factory) -> None:
    limiter = make_limiter()

    limiter.penalize(None, 0.4)

    assert 0.3 < limiter.reserve(11) <= 0.4
    assert 0.3 < limiter.reserve(12) <= 0.4


def test_a_penalty_never_shortens_an_existing_wait(make_limiter: Factory) -> None:
    limiter = make_limiter()
    limiter.penalize(9, 2.0)

    limiter.penalize(9, 0.1)

    assert limiter.reserve(9) > 1.5


def test_two_limiters_share_one_budget(make_limiter: Factory) -> None:
    shared = {"per_chat_per_second": 1, "per_chat_burst": 3, "global_per_second": 1000, "global_burst": 1000}
    first = make_limiter(**shared)
    second = make_limiter(**shared)

    assert [first.reserve(77), second.reserve(77), first.reserve(77)] == [0.0, 0.0, 0.0]
    assert second.reserve(77) > 0.5
    assert first.reserve(77) > 0.5

    second.penalize(None, 0.5)
    assert first.reserve(78) > 0.3


def test_concurrent_workers_together_stay_within_the_chat_limit(make_limiter: Factory) -> None:
    limiters = [make_limiter(per_chat_per_second=10, per_chat_burst=3) for _ in range(4)]
    counts = [0] * len(limiters)
    until = time.monotonic() + 0.5

    def work(index: int) -> None:
        counts[index] = _take(limiters[index], 500, until)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(limiters))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # One chat, four workers: burst 3 plus 10/s for 0.5 s in total, not per worker.
    assert 6 <= sum(counts) <= 3 + 10 * 0.5 + 1


def test_keys_expire_on_their_own(redis_client: redis.Redis) -> None:
    bot_key = f"test-{uuid.uuid4().hex[:8]}"
    limiter = TelegramRateLimiter(redis_client, bot_key=bot_key, per_chat_per_second=1, per_chat_burst=3)
    limiter.reserve(123)
    limiter.penalize(None, 2.0)

    keys = list(redis_client.scan_iter(match=f"tg:rate:[{{]{bot_key}[}}]:*"))
    assert sorted(keys) == [f"tg:rate:{{{bot_key}}}:{suffix}".encode() for suffix in ("chat:123", "global")]
    for key in keys:
        assert 0 < redis_client.pttl(key) <= 2100  # gone once the bucket is back to full anyway


def test_bad_settings_are_refused(make_limiter: Factory) -> None:
    with pytest.raises(ValueError, match="positive"):
        make_limiter(global_per_second=0)
    with pytest.raises(ValueError, match="at least 1"):
        make_limiter(per_chat_burst=0)

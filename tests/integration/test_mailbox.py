"""One user's updates are applied in update_id order and never concurrently (real Redis)."""

from __future__ import annotations

import threading
import time

import pytest
import redis
import redis.asyncio

from tasks import mailbox
from tasks.mailbox import Mailbox, StaleFence
from tests.integration.conftest import post_to_mailbox, random_user_id


def test_entries_are_applied_in_update_order_even_when_posted_out_of_order(redis_url: str) -> None:
    user = random_user_id()
    post_to_mailbox(redis_url, user, [105, 101, 103, 102, 104])
    seen: list[str] = []

    result = Mailbox(redis.Redis.from_url(redis_url)).drain(user, lambda raw, _token: seen.append(raw))

    assert seen == [f'{{"u": {i}}}' for i in range(101, 106)]
    assert result.processed == 5 and not result.busy and not result.more


def test_redelivered_update_is_stored_once(redis_url: str) -> None:
    user = random_user_id()
    post_to_mailbox(redis_url, user, [7, 7, 7])
    seen: list[str] = []
    Mailbox(redis.Redis.from_url(redis_url)).drain(user, lambda raw, _t: seen.append(raw))
    assert seen == ['{"u": 7}']


def test_concurrent_drains_never_overlap_and_keep_order(redis_url: str) -> None:
    """Eight threads drain one user's mailbox while updates keep arriving."""
    user = random_user_id()
    applied: list[int] = []
    active = threading.Semaphore(1)
    overlaps: list[int] = []

    def process(raw: str, _token: int) -> None:
        if not active.acquire(blocking=False):
            overlaps.append(1)
            return
        try:
            time.sleep(0.001)
            applied.append(int(raw.split(":")[1].strip(" }")))
        finally:
            active.release()

    def drainer() -> None:
        box = Mailbox(redis.Redis.from_url(redis_url))
        for _ in range(40):
            box.drain(user, process)
            time.sleep(0.002)

    threads = [threading.Thread(target=drainer) for _ in range(8)]
    for thread in threads:
        thread.start()
    post_to_mailbox(redis_url, user, list(range(1, 201)))
    for thread in threads:
        thread.join()
    Mailbox(redis.Redis.from_url(redis_url)).drain(user, process)  # whatever arrived after the last drain

    assert overlaps == []
    assert applied == list(range(1, 201))


def test_failed_entry_stays_at_the_head_for_the_retry(redis_url: str) -> None:
    user = random_user_id()
    post_to_mailbox(redis_url, user, [1, 2])
    box = Mailbox(redis.Redis.from_url(redis_url))

    def fail(_raw: str, _t: int) -> None:
        raise ConnectionError("database is away")

    with pytest.raises(ConnectionError):
        box.drain(user, fail)
    seen: list[str] = []
    box.drain(user, lambda raw, _t: seen.append(raw))
    assert seen == ['{"u": 1}', '{"u": 2}']


def test_a_stale_lock_holder_stops_without_consuming(redis_url: str) -> None:
    user = random_user_id()
    post_to_mailbox(redis_url, user, [1])
    box = Mailbox(redis.Redis.from_url(redis_url))

    def stale(_raw: str, _t: int) -> None:
        raise StaleFence("newer holder")

    result = box.drain(user, stale)
    assert result.busy and result.processed == 0
    assert box.redis.zcard(mailbox.queue_key(user)) == 1


def test_drain_stops_at_batch_limit_and_asks_to_continue(redis_url: str) -> None:
    user = random_user_id()
    post_to_mailbox(redis_url, user, list(range(1, 8)))
    box = Mailbox(redis.Redis.from_url(redis_url))
    result = box.drain(user, lambda _r, _t: None, batch=5)
    assert result.processed == 5 and result.more
    assert box.drain(user, lambda _r, _t: None, batch=5).processed == 2


def test_fence_tokens_increase_across_holders(redis_url: str) -> None:
    user = random_user_id()
    post_to_mailbox(redis_url, user, [1])
    box = Mailbox(redis.Redis.from_url(redis_url))
    tokens: list[int] = []
    box.drain(user, lambda _r, token: tokens.append(token))
    post_to_mailbox(redis_url, user, [2])
    box.drain(user, lambda _r, token: tokens.append(token))
    assert tokens[1] > tokens[0]


def test_mailbox_left_behind_is_found_by_the_stale_sweep(redis_url: str) -> None:
    user = random_user_id()
    post_to_mailbox(redis_url, user, [1])
    box = Mailbox(redis.Redis.from_url(redis_url))
    assert user in box.stale_users(older_than_seconds=-1)
    box.drain(user, lambda _r, _t: None)
    assert user not in box.stale_users(older_than_seconds=-1)

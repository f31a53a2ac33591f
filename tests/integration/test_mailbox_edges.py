"""The mailbox drain's edges: expired locks, updates racing the release, fence keys that expire, the cost.

The drain takes the lock with the first head in one Lua script and removes each entry together with reading
the next head (or releasing the lock when the mailbox is empty) in another, so these tests pin down what the
scripts must keep from DESIGN.md invariant 4 (real Redis).
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

from tasks import mailbox
from tasks.mailbox import Mailbox
from tests.integration.conftest import post_to_mailbox, random_user_id


def _update(raw: str) -> int:
    return int(raw.split(":")[1].strip(" }"))


def _active(client: redis.Redis, user: int) -> bool:
    return client.zscore(mailbox.ACTIVE_SET, user) is not None


def test_a_holder_whose_lock_expired_cannot_remove_entries_or_release_the_new_holders_lock(
    redis_url: str,
) -> None:
    # Given a user with two updates, and a drain whose lock expires while it applies the first
    user = random_user_id()
    post_to_mailbox(redis_url, user, [1, 2])
    box = Mailbox(redis.Redis.from_url(redis_url))

    def stall_past_expiry(_raw: str, _token: int) -> None:
        box.redis.delete(mailbox.lock_key(user))
        box.redis.set(mailbox.lock_key(user), "999999999999999999")  # a newer holder's token

    # When the stalled drain goes on
    result = box.drain(user, stall_past_expiry)

    # Then it stops without removing the entry it applied, and the newer holder keeps its lock
    assert result.busy and result.processed == 0
    assert box.redis.zrange(mailbox.queue_key(user), 0, -1) == [b"1", b"2"]
    assert box.redis.get(mailbox.lock_key(user)) == b"999999999999999999"


def test_a_failing_holder_whose_lock_expired_leaves_the_new_holders_lock(redis_url: str) -> None:
    user = random_user_id()
    post_to_mailbox(redis_url, user, [1])
    box = Mailbox(redis.Redis.from_url(redis_url))

    def stall_then_fail(_raw: str, _token: int) -> None:
        box.redis.set(mailbox.lock_key(user), "999999999999999999")
        raise ConnectionError("database is away")

    try:
        box.drain(user, stall_then_fail)
    except ConnectionError:
        pass
    else:  # pragma: no cover - the failure must reach the task, which retries
        raise AssertionError("the use case's failure was swallowed")
    assert box.redis.get(mailbox.lock_key(user)) == b"999999999999999999"
    assert box.redis.zcard(mailbox.queue_key(user)) == 1


def test_an_update_arriving_while_the_last_entry_is_applied_is_drained_by_the_holder(redis_url: str) -> None:
    # Given a drain applying a user's only update
    user = random_user_id()
    post_to_mailbox(redis_url, user, [1])
    box = Mailbox(redis.Redis.from_url(redis_url))
    other_worker = Mailbox(redis.Redis.from_url(redis_url))
    seen: list[int] = []
    gave_up: list[bool] = []

    def apply(raw: str, _token: int) -> None:
        seen.append(_update(raw))
        if seen == [1]:
            # When the next update arrives after the holder's last read, and its own drain task finds the
            # lock taken and gives up
            post_to_mailbox(redis_url, user, [2])
            gave_up.append(other_worker.drain(user, lambda _r, _t: seen.append(-1)).busy)

    result = box.drain(user, apply)

    # Then the holder applies it before letting go, and leaves nothing behind
    assert gave_up == [True]
    assert seen == [1, 2]
    assert result.processed == 2 and not result.busy and not result.more
    assert box.redis.zcard(mailbox.queue_key(user)) == 0
    assert not box.redis.exists(mailbox.lock_key(user))
    assert not _active(box.redis, user)


def test_an_update_arriving_after_the_release_finds_the_lock_free(redis_url: str) -> None:
    user = random_user_id()
    post_to_mailbox(redis_url, user, [1])
    box = Mailbox(redis.Redis.from_url(redis_url))
    box.drain(user, lambda _r, _t: None)

    post_to_mailbox(redis_url, user, [2])
    assert not box.redis.exists(mailbox.lock_key(user))
    assert _active(box.redis, user)
    seen: list[int] = []
    assert box.drain(user, lambda raw, _t: seen.append(_update(raw))).processed == 1
    assert seen == [2]


def test_fence_tokens_keep_increasing_when_the_fence_key_expires(redis_url: str) -> None:
    # Given a user whose holders already committed with some tokens
    user = random_user_id()
    box = Mailbox(redis.Redis.from_url(redis_url))
    tokens: list[int] = []

    def drain_one(update_id: int) -> None:
        post_to_mailbox(redis_url, user, [update_id])
        box.drain(user, lambda _r, token: tokens.append(token))

    drain_one(1)
    drain_one(2)

    # When the fence key expires (the user was away longer than its TTL) and they come back
    box.redis.delete(mailbox.fence_key(user))
    drain_one(3)
    drain_one(4)

    # Then the next tokens are still higher than every earlier one (the database refuses lower ones)
    assert len(tokens) == 4 and tokens == sorted(set(tokens))
    assert tokens[1] == tokens[0] + 1 and tokens[3] == tokens[2] + 1


def test_an_entry_whose_payload_is_gone_is_removed_without_being_applied(redis_url: str) -> None:
    user = random_user_id()
    post_to_mailbox(redis_url, user, [1, 2, 3])
    box = Mailbox(redis.Redis.from_url(redis_url))
    box.redis.hdel(mailbox.payload_key(user), "1", "2")
    seen: list[int] = []

    result = box.drain(user, lambda raw, _t: seen.append(_update(raw)))

    assert seen == [3] and result.processed == 3
    assert box.redis.zcard(mailbox.queue_key(user)) == 0


def test_a_drain_that_empties_the_mailbox_at_the_batch_limit_does_not_ask_to_continue(redis_url: str) -> None:
    user = random_user_id()
    post_to_mailbox(redis_url, user, [1, 2, 3])
    box = Mailbox(redis.Redis.from_url(redis_url))

    result = box.drain(user, lambda _r, _t: None, batch=3)

    assert result.processed == 3 and not result.more and not result.busy
    assert not box.redis.exists(mailbox.lock_key(user))
    assert not _active(box.redis, user)


def test_an_empty_mailbox_is_forgotten_without_taking_a_token(redis_url: str) -> None:
    user = random_user_id()
    post_to_mailbox(redis_url, user, [1])
    box = Mailbox(redis.Redis.from_url(redis_url))
    box.redis.delete(mailbox.queue_key(user))  # e.g. the keys expired before any drain ran

    result = box.drain(user, lambda _r, _t: None)

    assert result == mailbox.DrainResult(0, busy=False, more=False)
    assert not _active(box.redis, user)
    assert not box.redis.exists(mailbox.fence_key(user))


def test_a_drain_of_n_entries_makes_n_plus_one_round_trips(redis_url: str) -> None:
    """The task-overhead benchmark's budget: one round trip to take the lock and the head, one per entry."""
    user = random_user_id()
    box = Mailbox(redis.Redis.from_url(redis_url))
    post_to_mailbox(redis_url, user, [1])
    box.drain(user, lambda _r, _t: None)  # loads the scripts into Redis
    calls: list[Any] = []
    execute = box.redis.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        calls.append(args[0])
        return execute(*args, **options)

    box.redis.execute_command = counting  # type: ignore[method-assign]
    post_to_mailbox(redis_url, user, [2, 3, 4])

    assert box.drain(user, lambda _r, _t: None).processed == 3
    assert len(calls) == 4, calls

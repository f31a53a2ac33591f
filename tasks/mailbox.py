"""Per-user mailboxes: one user's updates are applied in update_id order and never concurrently.

Why (DESIGN.md invariant 4): a guided dialog must not see its steps swapped and a double tap on Buy must not
create two checkouts, with any number of gateways and workers. Celery alone cannot promise this: two
workers may pick up two of one user's tasks at once, and a retried task overtakes newer ones.

How:
- The gateway stores each command in the user's mailbox, a sorted set scored by update_id (plus a hash with
  the command JSON), then publishes a "drain user U" task. Storing is idempotent: Telegram redelivering an
  update stores the same member again.
- A worker that wins the user's lock (SET with expiry; value = a fencing token from INCR) processes the
  mailbox head to tail in score order, removing each entry only after its effects committed.
- The lock is released in the same atomic step (one Lua script) that removes the last entry and finds the
  mailbox empty. This is the "look once more after releasing" of DESIGN.md, with no window left: an update
  stored before that step is seen by it and processed by this drain; one stored after it finds the lock free,
  so its own drain task (published after the store) takes the lock. Either way nothing is stranded by a drain
  task that gave up because the lock was taken.
- A worker that stalls past the lock expiry could wake up and commit after a newer holder; the fencing token
  is checked by the database in the same transaction as the effects (users.fence_token), so it cannot. A
  holder whose lock expired cannot remove entries or release the newer holder's lock either (both check the
  token first). Tokens keep increasing even when the fence key expires with the mailbox's keys: a fresh key
  starts from the Redis clock in microseconds, above any token handed out before (a counter never gains a
  million a second), as long as the Redis host's clock does not step back.
- A drain processes at most `batch` entries, then releases and re-publishes itself, so one chatty user
  cannot pin a worker.
- Users with a non-empty mailbox are kept in `mb:active` (scored by the time of their last post) and removed
  when a drain empties the mailbox, so the stale-mailbox sweep finds mailboxes whose drain task was lost.

Cost: a drain of n entries makes n + 1 Redis round trips (acquire + first head, then one per entry: remove it
and read the next head, or release); the task-overhead benchmark counts them (docs/benchmarks.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

KEY_TTL_SECONDS = 2 * 24 * 3600  # longer than Telegram's 24 h redelivery window
LOCK_TTL_MS = 60_000  # above the task hard time limit, so a live holder never loses its lock
ACTIVE_SET = "mb:active"  # users with a non-empty mailbox, for the stale-mailbox sweep


def queue_key(user_id: int) -> str:
    return f"mb:{{{user_id}}}:q"


def payload_key(user_id: int) -> str:
    return f"mb:{{{user_id}}}:p"


def lock_key(user_id: int) -> str:
    return f"mb:{{{user_id}}}:lock"


def fence_key(user_id: int) -> str:
    return f"mb:{{{user_id}}}:fence"


def post_steps(
    *, queue: str, payloads: str, active: str, update_id: str, command: str, ttl: str, now: str, user: str
) -> str:
    """The Lua that stores one command in a mailbox, with each operand given as a Lua expression (`KEYS[1]`,
    `ARGV[2]`, …), so a larger script (the gateway's, which also dedupes and publishes in the same round
    trip) embeds exactly these steps. Idempotent: a redelivered update stores the same member again."""
    return f"""
redis.call('ZADD', {queue}, 'NX', {update_id}, {update_id})
redis.call('HSETNX', {payloads}, {update_id}, {command})
redis.call('EXPIRE', {queue}, {ttl})
redis.call('EXPIRE', {payloads}, {ttl})
redis.call('ZADD', {active}, {now}, {user})
"""


_POST = (
    post_steps(
        queue="KEYS[1]",
        payloads="KEYS[2]",
        active="KEYS[3]",
        update_id="ARGV[1]",
        command="ARGV[2]",
        ttl="ARGV[3]",
        now="ARGV[4]",
        user="ARGV[5]",
    )
    + "return 1\n"
)

# KEYS: lock, fence, queue, payloads, active set. ARGV: lock ttl (ms), key ttl (s), user id.
# Returns nil when another worker holds the lock (it will see our entries); {0} when the mailbox is empty (no
# token spent, the user leaves the active set); {token, head member, head payload or nil} when the lock is
# ours. A fence key that expired (a user away for longer than KEY_TTL_SECONDS) restarts from the Redis clock
# in microseconds rather than from 1, so the database, which keeps the highest token that committed, never
# sees tokens go back and refuse every later holder as stale.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return nil end
local head = redis.call('ZRANGE', KEYS[3], 0, 0)
if #head == 0 then
  redis.call('ZREM', KEYS[5], ARGV[3])
  return {0}
end
local token = redis.call('INCR', KEYS[2])
if token == 1 then
  local clock = redis.call('TIME')
  local seed = clock[1] .. string.format('%06d', tonumber(clock[2]))
  redis.call('SET', KEYS[2], seed)
  token = tonumber(seed)
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return {token, head[1], redis.call('HGET', KEYS[4], head[1])}
"""

# KEYS: lock, queue, payloads, active set. ARGV: token, member done, lock ttl (ms), user id, '1' to go on.
# Removes an entry only while still holding the lock: a holder whose lock expired must not touch the queue
# (nil). Then, in the same atomic step: an empty mailbox releases the lock and leaves the active set ({0});
# at the batch limit the lock is released with entries left ({1}); otherwise the lock is extended and the
# next head returned ({2, member, payload or nil}).
_ACK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return nil end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
local head = redis.call('ZRANGE', KEYS[2], 0, 0)
if #head == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[4], ARGV[4])
  return {0}
end
if ARGV[5] ~= '1' then
  redis.call('DEL', KEYS[1])
  return {1}
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {2, head[1], redis.call('HGET', KEYS[3], head[1])}
"""

# Only when a drain stops early (its use case raised): release the lock if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_EMPTY, _LIMIT, _NEXT = 0, 1, 2


async def post(client: redis.asyncio.Redis, user_id: int, update_id: int, command_json: str) -> None:
    """Store one command in the user's mailbox (idempotent per update_id). Raises on Redis errors."""
    await client.eval(  # type: ignore[misc]
        _POST,
        3,
        queue_key(user_id),
        payload_key(user_id),
        ACTIVE_SET,
        update_id,
        command_json,
        KEY_TTL_SECONDS,
        time.time(),
        user_id,
    )


@dataclass(frozen=True)
class DrainResult:
    processed: int
    busy: bool  # another worker held the lock; it will see our entries
    more: bool  # stopped at the batch limit; caller should re-publish the drain


class StaleFence(Exception):
    """Our lock expired and a newer holder took over: stop without touching the mailbox."""


class Mailbox:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._acquire = client.register_script(_ACQUIRE)
        self._ack = client.register_script(_ACK)
        self._release = client.register_script(_RELEASE)

    def drain(
        self,
        user_id: int,
        process: Callable[[str, int], Any],
        *,
        batch: int = 50,
    ) -> DrainResult:
        """Apply `process(command_json, fence_token)` to each queued command in update_id order.

        `process` must commit its effects (checking the fence token) before returning; it raises to leave the
        entry at the head for a retry (ordering is kept because nothing behind it runs first).
        """
        lock, queue, payloads = lock_key(user_id), queue_key(user_id), payload_key(user_id)
        taken: list[Any] | None = self._acquire(  # type: ignore[assignment]
            keys=[lock, fence_key(user_id), queue, payloads, ACTIVE_SET],
            args=[LOCK_TTL_MS, KEY_TTL_SECONDS, user_id],
        )
        if taken is None:
            return DrainResult(0, busy=True, more=False)
        if len(taken) == 1:
            return DrainResult(0, busy=False, more=False)
        token = int(taken[0])
        member, raw = taken[1], taken[2] if len(taken) > 2 else None
        processed = 0
        held = True  # until a script released the lock or found it gone
        try:
            while True:
                if raw is not None:
                    try:
                        process(raw.decode() if isinstance(raw, bytes) else raw, token)
                    except StaleFence:
                        return DrainResult(processed, busy=True, more=False)
                go_on = processed + 1 < batch
                reply: list[Any] | None = self._ack(  # type: ignore[assignment]
                    keys=[lock, queue, payloads, ACTIVE_SET],
                    args=[token, member, LOCK_TTL_MS, user_id, "1" if go_on else "0"],
                )
                if reply is None:
                    held = False
                    return DrainResult(processed, busy=True, more=False)
                processed += 1
                if reply[0] != _NEXT:
                    held = False
                    return DrainResult(processed, busy=False, more=reply[0] == _LIMIT)
                member, raw = reply[1], reply[2] if len(reply) > 2 else None
        finally:
            if held:
                self._release(keys=[lock], args=[token])

    def stale_users(self, older_than_seconds: float, limit: int = 500) -> list[int]:
        """Users whose mailbox has had entries for a while: their drain task was probably lost."""
        cutoff = time.time() - older_than_seconds
        users: list[bytes] = self.redis.zrangebyscore(  # type: ignore[assignment]
            ACTIVE_SET, "-inf", cutoff, start=0, num=limit
        )
        return [int(u) for u in users]

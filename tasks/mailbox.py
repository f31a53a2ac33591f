"""Per-user mailboxes: one user's updates are applied in update_id order and never concurrently.

Why (DESIGN.md invariant 4): a guided dialog must not see its steps swapped and a double tap on Buy must not
create two checkouts, with any number of gateways and workers. Celery alone cannot promise this: two
workers may pick up two of one user's tasks at once, and a retried task overtakes newer ones.

How:
- The gateway stores each command in the user's mailbox, a sorted set scored by update_id (plus a hash with
  the command JSON), then publishes a "drain user U" task. Storing is idempotent: Telegram redelivering an
  update stores the same member again.
- A worker that wins the user's lock (SET NX with expiry; value = a fencing token from INCR) processes the
  mailbox head to tail in score order, removing each entry only after its effects committed, then releases
  the lock and looks once more: an update may have arrived between its last read and its release, whose
  own drain task saw the lock taken and gave up.
- A worker that stalls past the lock expiry could wake up and commit after a newer holder; the fencing token
  is checked by the database in the same transaction as the effects (users.fence_token), so it cannot.
- A drain processes at most `batch` entries, then re-publishes itself, so one chatty user cannot pin a worker.
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


_POST = """
redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[1])
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
return 1
"""

# Remove an entry only while still holding the lock: a holder whose lock expired must not touch the queue.
_ACK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_FORGET_IF_EMPTY = """
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) return 1 end
return 0
"""


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
        self._ack = client.register_script(_ACK)
        self._release = client.register_script(_RELEASE)
        self._forget = client.register_script(_FORGET_IF_EMPTY)

    def _acquire(self, user_id: int) -> int | None:
        token = int(self.redis.incr(fence_key(user_id)))  # type: ignore[arg-type]
        self.redis.expire(fence_key(user_id), KEY_TTL_SECONDS)
        if self.redis.set(lock_key(user_id), token, nx=True, px=LOCK_TTL_MS):
            return token
        return None

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
        processed = 0
        while True:
            token = self._acquire(user_id)
            if token is None:
                return DrainResult(processed, busy=True, more=False)
            try:
                while processed < batch:
                    head: list[bytes] = self.redis.zrange(queue_key(user_id), 0, 0)  # type: ignore[assignment]
                    if not head:
                        break
                    member = head[0]
                    raw = self.redis.hget(payload_key(user_id), member)
                    if raw is not None:
                        try:
                            process(raw.decode() if isinstance(raw, bytes) else raw, token)
                        except StaleFence:
                            return DrainResult(processed, busy=True, more=False)
                    if not self._ack(
                        keys=[lock_key(user_id), queue_key(user_id), payload_key(user_id)],
                        args=[token, member, LOCK_TTL_MS],
                    ):
                        return DrainResult(processed, busy=True, more=False)
                    processed += 1
                else:
                    return DrainResult(processed, busy=False, more=True)
            finally:
                self._release(keys=[lock_key(user_id)], args=[token])
            # Look once more after releasing: an entry stored between our last read and the release was
            # published while we held the lock, and that task has already given up.
            if self.redis.zcard(queue_key(user_id)) == 0:
                self._forget(keys=[queue_key(user_id), ACTIVE_SET], args=[user_id])
                if self.redis.zcard(queue_key(user_id)) == 0:
                    return DrainResult(processed, busy=False, more=False)

    def stale_users(self, older_than_seconds: float, limit: int = 500) -> list[int]:
        """Users whose mailbox has had entries for a while: their drain task was probably lost."""
        cutoff = time.time() - older_than_seconds
        users: list[bytes] = self.redis.zrangebyscore(  # type: ignore[assignment]
            ACTIVE_SET, "-inf", cutoff, start=0, num=limit
        )
        return [int(u) for u in users]

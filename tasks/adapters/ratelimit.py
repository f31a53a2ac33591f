"""One Telegram send budget shared by every worker process, kept in Redis.

Telegram allows a bot about 30 messages per second overall and about one per second per chat; beyond that it
answers 429 and, if pushed, throttles the bot for longer. Each worker limiting itself is not enough once
there are several, so the budget lives in Redis and every send reserves a slot first.

The algorithm is GCRA (the "generic cell rate algorithm", a leaky bucket stored as one number per bucket):
the key holds the theoretical arrival time (TAT) of the next send. A send at `now` is allowed when
`TAT - burst_tolerance <= now`, and then moves TAT forward by one emission interval. The global and the
per-chat bucket are checked and advanced in one Lua script, so a slot is taken on both or on neither, and
"now" is the Redis server's clock, so workers on hosts with skewed clocks still share one timeline.
Keys expire when their TAT has passed, which is exactly when a missing key means the same thing.
"""

from __future__ import annotations

import math

import redis

_MICROS = 1_000_000

# KEYS: the buckets to charge (global first, then the chat's, if any).
# ARGV: per key, its emission interval and its burst tolerance (microseconds).
# Returns 0 when a slot was taken on every bucket, else the microseconds to wait (nothing taken).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local next_tat = {}
for i, key in ipairs(KEYS) do
    local interval = tonumber(ARGV[2 * i - 1])
    local tolerance = tonumber(ARGV[2 * i])
    local tat = tonumber(redis.call('GET', key) or '0')
    if tat < now then tat = now end
    local allowed_at = tat - tolerance
    if allowed_at > now and allowed_at - now > wait then wait = allowed_at - now end
    next_tat[i] = tat + interval
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
    local ttl_ms = math.ceil((next_tat[i] - now) / 1000) + 1
    redis.call('SET', key, string.format('%.0f', next_tat[i]), 'PX', ttl_ms)
end
return 0
"""

# KEYS[1]: the bucket. ARGV: penalty and the bucket's burst tolerance (microseconds).
# Moves TAT so that the next slot opens `penalty` from now, with no burst left (Telegram just said "slow
# down"; resuming at full burst would earn another 429). Never moves TAT backwards.
_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local penalty = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = now + penalty + tolerance
if wanted > tat then
    local ttl_ms = math.ceil((wanted - now) / 1000) + 1
    redis.call('SET', KEYS[1], string.format('%.0f', wanted), 'PX', ttl_ms)
end
return 0
"""


class TelegramRateLimiter:
    """Reserve Bot API send slots from a budget shared through Redis by all workers of one bot.

    `bot_key` names the bot (its numeric id, never the token). Defaults follow Telegram's published limits.
    `global_burst` defaults to 1, not 30: with a 30/s rate, a burst of b lets b + 29 sends through in some
    one-second window, so only 1 keeps every second within 30 (the fake Bot API enforces exactly that).
    """

    def __init__(
        self,
        redis: redis.Redis,
        *,
        bot_key: str,
        global_per_second: float = 30,
        per_chat_per_second: float = 1.0,
        per_chat_burst: int = 3,
        global_burst: int = 1,
    ) -> None:
        if global_per_second <= 0 or per_chat_per_second <= 0:
            raise ValueError("rates must be positive")
        if global_burst < 1 or per_chat_burst < 1:
            raise ValueError("bursts must be at least 1")
        self._redis = redis
        # The hash tag keeps both keys of one script in the same Redis Cluster slot.
        self._prefix = f"tg:rate:{{{bot_key}}}"
        # Rounding the interval up errs on the side of sending slightly slower than the limit, never faster.
        self._global = _Bucket(global_per_second, global_burst)
        self._chat = _Bucket(per_chat_per_second, per_chat_burst)
        self._reserve = redis.register_script(_RESERVE)
        self._penalize = redis.register_script(_PENALIZE)

    def _global_key(self) -> str:
        return f"{self._prefix}:global"

    def _chat_key(self, chat_id: int | str) -> str:
        return f"{self._prefix}:chat:{chat_id}"

    def reserve(self, chat_id: int | str | None) -> float:
        """Take a slot on the global and the chat's bucket and return 0.0, or take nothing and return
        the seconds to wait before asking again. `chat_id` None charges the global bucket only."""
        keys = [self._global_key()]
        args = [self._global.interval, self._global.tolerance]
        if chat_id is not None:
            keys.append(self._chat_key(chat_id))
            args += [self._chat.interval, self._chat.tolerance]
        wait_us = int(self._reserve(keys=keys, args=args))
        return wait_us / _MICROS

    def penalize(self, chat_id: int | str | None, seconds: float) -> None:
        """Push a bucket's next slot `seconds` out (Telegram's retry_after): the chat's, or the global one."""
        if seconds <= 0:
            return
        if chat_id is None:
            key, bucket = self._global_key(), self._global
        else:
            key, bucket = self._chat_key(chat_id), self._chat
        self._penalize(keys=[key], args=[math.ceil(seconds * _MICROS), bucket.tolerance])


class _Bucket:
    """GCRA parameters in whole microseconds (Lua numbers are doubles; integers stay exact)."""

    __slots__ = ("interval", "tolerance")

    def __init__(self, per_second: float, burst: int) -> None:
        self.interval = math.ceil(_MICROS / per_second)
        # A full bucket admits `burst` sends at once: the first is free, each further one uses an interval.
        self.tolerance = (burst - 1) * self.interval

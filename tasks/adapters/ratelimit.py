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

Per chat, a send has no burst by default (one per second, sustained and at any moment), except the rest of
a reply: a call that continues the reply whose call took the chat's last slot may use `reply_burst - 1`
intervals of credit, so a two-call reply arrives at once. The limiter remembers which reply (its correlation
id, `reply=`) took each chat's last slot, so this holds whichever worker sends the second call and however
it was written: the edit after a photo, or the Pay button a payments task adds to the card that Buy's reply
just edited. A split message's later parts say so directly (`follow_up=True`). The credit is paid back: the
chat's next reply waits for it, so over any stretch of time a chat still gets at most one message per
second (plus that one call of credit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis

_MICROS = 1_000_000

# We count a call when we take its slot, Telegram when the call arrives: a few ms later, tens of ms on a
# loaded host, and not the same for every call, so slots exactly 1/30 s apart can arrive 31 within one
# second (the stand-in answered 429 to a call now and then that way). The bot-wide budget is spread over
# a second plus this margin: 30 calls then arrive inside one second only if one is this much later than the
# one 29 slots after it. It costs 3.4% of the budget: about 29 sent per second for Telegram's 30.
GLOBAL_ARRIVAL_MARGIN_SECONDS = 0.035

# KEYS: the global bucket, then (if a chat is given) the chat's bucket, its penalty hold and the reply that
# took its last slot. ARGV: the global bucket's emission interval and burst tolerance; for a chat, its
# interval, its tolerance, the tolerance for a call of the reply that took its last slot, and this call's
# reply ('' for none); last, how far ahead a global slot may be booked (all times in microseconds). The
# global budget's next slot is found first, up to `ahead` from now; the chat must allow a send at that moment
# (its hold, Telegram's retry_after for the chat, lets nothing through before it ends, whatever the
# tolerance). Returns {taken, global wait, chat wait} in microseconds: taken 1 with the wait until the
# booked slot (both buckets charged for it, and the chat's last slot now this call's reply's), or taken 0
# with how long each bucket holds this send back (nothing charged).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ahead = tonumber(ARGV[#ARGV])
local g_tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if g_tat < now then g_tat = now end
local at = math.max(g_tat - tonumber(ARGV[2]), now)
local chat_wait = 0
local c_tat = 0
if #KEYS > 1 then
    c_tat = tonumber(redis.call('GET', KEYS[2]) or '0')
    if c_tat < at then c_tat = at end
    local hold = tonumber(redis.call('GET', KEYS[3]) or '0')
    local tolerance = tonumber(ARGV[4])
    if ARGV[6] ~= '' and redis.call('GET', KEYS[4]) == ARGV[6] then tolerance = tonumber(ARGV[5]) end
    local c_at = math.max(c_tat - tolerance, hold)
    if c_at > at then chat_wait = c_at - now end
end
if chat_wait > 0 or at - now > ahead then return {0, at - now, chat_wait} end
local g_next = g_tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', g_next), 'PX', math.ceil((g_next - now) / 1000) + 1)
if #KEYS > 1 then
    local c_next = c_tat + tonumber(ARGV[3])
    local ttl_ms = math.ceil((c_next - now) / 1000) + 1
    redis.call('SET', KEYS[2], string.format('%.0f', c_next), 'PX', ttl_ms)
    -- Kept as long as the chat's TAT: once that has passed, any call may go and no credit matters.
    if ARGV[6] ~= '' then
        redis.call('SET', KEYS[4], ARGV[6], 'PX', ttl_ms)
    else
        redis.call('DEL', KEYS[4])
    end
end
return {1, at - now, 0}
"""

# KEYS[1]: the bucket, KEYS[2] (optional): its hold. ARGV: penalty and the bucket's burst tolerance (µs).
# Moves TAT so that the next slot opens `penalty` from now, with no burst left (Telegram just said "slow
# down"; resuming at full burst would earn another 429), and holds even a reply's follow-up call back until
# then. Never moves TAT or the hold backwards.
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
if #KEYS > 1 then
    local hold = tonumber(redis.call('GET', KEYS[2]) or '0')
    if now + penalty > hold then
        redis.call('SET', KEYS[2], string.format('%.0f', now + penalty), 'PX', math.ceil(penalty / 1000) + 1)
    end
end
return 0
"""


# KEYS: the chat's bucket, hold and last slot's reply. ARGV: the bucket's burst tolerance, the tolerance for
# a call of the reply that took the last slot (µs), and this call's reply ('' for none). Takes nothing.
# Returns the microseconds until the chat's bucket would let a send through (0: now).
_CHAT_WAIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local hold = tonumber(redis.call('GET', KEYS[2]) or '0')
local tolerance = tonumber(ARGV[1])
if ARGV[3] ~= '' and redis.call('GET', KEYS[3]) == ARGV[3] then tolerance = tonumber(ARGV[2]) end
local allowed_at = math.max(tat - tolerance, hold)
if allowed_at > now then return allowed_at - now end
return 0
"""


@dataclass(frozen=True)
class Reservation:
    """What one attempt to take a send slot found. Taken: the slot opens `global_wait` seconds from now
    (0.0: at once), and is this caller's: send then. Not taken (nothing charged): how long the bot-wide
    budget and the chat's own limit each hold this send back."""

    taken: bool
    global_wait: float = 0.0
    chat_wait: float = 0.0

    @property
    def wait(self) -> float:
        return max(self.global_wait, self.chat_wait)


class TelegramRateLimiter:
    """Reserve Bot API send slots from a budget shared through Redis by all workers of one bot.

    `bot_key` names the bot (its numeric id, never the token). Defaults follow Telegram's published limits.
    `global_burst` defaults to 1, not 30: with a 30/s rate, a burst of b lets b + 29 sends through in some
    one-second window, so only 1 keeps every second within 30 (the fake Bot API enforces exactly that), and
    `arrival_margin` (see GLOBAL_ARRIVAL_MARGIN_SECONDS) keeps it so where the calls arrive.
    `per_chat_burst` defaults to 1 for the same reason per chat ("avoid sending more than one message per
    second in a chat"); `reply_burst` is how many calls of one reply may still go out together (see the
    module docstring): 2, a photo and its edit, or a message and the rest that didn't fit in it.
    """

    def __init__(
        self,
        redis: redis.Redis,
        *,
        bot_key: str,
        global_per_second: float = 30,
        per_chat_per_second: float = 1.0,
        per_chat_burst: int = 1,
        reply_burst: int = 2,
        global_burst: int = 1,
        arrival_margin: float = GLOBAL_ARRIVAL_MARGIN_SECONDS,
    ) -> None:
        if global_per_second <= 0 or per_chat_per_second <= 0:
            raise ValueError("rates must be positive")
        if global_burst < 1 or per_chat_burst < 1 or reply_burst < 1:
            raise ValueError("bursts must be at least 1")
        if arrival_margin < 0:
            raise ValueError("arrival_margin can't be negative")
        self._redis = redis
        # The hash tag keeps all keys of one script in the same Redis Cluster slot.
        self._prefix = f"tg:rate:{{{bot_key}}}"
        # Rounding the interval up errs on the side of sending slightly slower than the limit, never faster.
        self._global = _Bucket(global_per_second / (1 + arrival_margin), global_burst)
        self._chat = _Bucket(per_chat_per_second, per_chat_burst)
        # The same chat bucket, seen by a reply's follow-up call: more credit, never less than any send has.
        self._chat_follow_up = _Bucket(per_chat_per_second, max(per_chat_burst, reply_burst))
        self._reserve = redis.register_script(_RESERVE)
        self._penalize = redis.register_script(_PENALIZE)
        self._chat_wait = redis.register_script(_CHAT_WAIT)

    def _global_key(self) -> str:
        return f"{self._prefix}:global"

    def _chat_key(self, chat_id: int | str) -> str:
        return f"{self._prefix}:chat:{chat_id}"

    def _hold_key(self, chat_id: int | str) -> str:
        return f"{self._prefix}:hold:{chat_id}"

    def _reply_key(self, chat_id: int | str) -> str:
        return f"{self._prefix}:reply:{chat_id}"

    def _chat_args(self, follow_up: bool, reply: str | None) -> list[int | str]:
        chat = self._chat_follow_up if follow_up else self._chat
        return [chat.interval, chat.tolerance, self._chat_follow_up.tolerance, reply or ""]

    def reserve(
        self, chat_id: int | str | None, *, follow_up: bool = False, reply: str | None = None
    ) -> float:
        """Take a slot on the global and the chat's bucket and return 0.0, or take nothing and return
        the seconds to wait before asking again. `chat_id` None charges the global bucket only."""
        slot = self.try_reserve(chat_id, follow_up=follow_up, reply=reply)
        return 0.0 if slot.taken else slot.wait

    def try_reserve(
        self,
        chat_id: int | str | None,
        *,
        follow_up: bool = False,
        reply: str | None = None,
        ahead: float = 0.0,
    ) -> Reservation:
        """Like `reserve`, with two differences. The bot-wide budget's next slot may be booked up to
        `ahead` seconds from now (the caller then waits for it: while every worker waits for such a slot
        the bot sends at its full rate, and no slot goes unused between one worker's wait and its next
        ask). And a refusal tells a wait for the bot-wide budget from a wait for the chat's own next slot
        (up to a second, or Telegram's retry_after for the chat). `follow_up`: this call continues a reply
        whose previous call just went out to the chat. `reply`: the reply (correlation id) this call belongs
        to; if that reply took the chat's last slot, this call is its follow-up."""
        keys = [self._global_key()]
        args: list[int | str] = [self._global.interval, self._global.tolerance]
        if chat_id is not None:
            keys += [self._chat_key(chat_id), self._hold_key(chat_id), self._reply_key(chat_id)]
            args += self._chat_args(follow_up, reply)
        args.append(max(0, math.floor(ahead * _MICROS)))
        taken, global_us, chat_us = (int(v) for v in self._reserve(keys=keys, args=args))
        return Reservation(bool(taken), global_us / _MICROS, chat_us / _MICROS)

    def chat_wait(self, chat_id: int | str, *, follow_up: bool = False, reply: str | None = None) -> float:
        """Seconds until the chat's own limit would let a send through (0.0: now); takes nothing, and
        leaves the bot-wide budget out."""
        keys = [self._chat_key(chat_id), self._hold_key(chat_id), self._reply_key(chat_id)]
        _, tolerance, reply_tolerance, reply_arg = self._chat_args(follow_up, reply)
        return int(self._chat_wait(keys=keys, args=[tolerance, reply_tolerance, reply_arg])) / _MICROS

    def penalize(self, chat_id: int | str | None, seconds: float) -> None:
        """Push a bucket's next slot `seconds` out (Telegram's retry_after): the chat's, or the global one."""
        if seconds <= 0:
            return
        penalty = math.ceil(seconds * _MICROS)
        if chat_id is None:
            self._penalize(keys=[self._global_key()], args=[penalty, self._global.tolerance])
        else:
            keys = [self._chat_key(chat_id), self._hold_key(chat_id)]
            self._penalize(keys=keys, args=[penalty, self._chat.tolerance])


class _Bucket:
    """GCRA parameters in whole microseconds (Lua numbers are doubles; integers stay exact)."""

    __slots__ = ("interval", "tolerance")

    def __init__(self, per_second: float, burst: int) -> None:
        self.interval = math.ceil(_MICROS / per_second)
        # A full bucket admits `burst` sends at once: the first is free, each further one uses an interval.
        self.tolerance = (burst - 1) * self.interval

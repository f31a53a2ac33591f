"""The one enqueue helper: admit an update (dedupe, per-user rate limit), store its command in the user's
mailbox and publish the drain task, in one Redis round trip when the broker is the gateway's Redis.

All of it must succeed before the gateway answers 2xx; if anything fails, EnqueueFailed makes the webhook
answer 5xx so Telegram redelivers. A script that did not run wrote nothing, so the redelivery is not taken
for a duplicate; when the publish is a separate step (another broker) and fails, the caller releases the
duplicate marker. Storing is idempotent per update_id, so a retry after a half-done attempt is harmless.

Which publish path (see bot_gateway.publish): a Redis broker that is the gateway's REDIS_URL gets the drain
message LPUSHed inside the same script; a Redis broker elsewhere gets one LPUSH on its own client after the
script; any other broker (AMQP) gets `celery_app.send_task` in a thread.

Updates that reach the script in the same turn of the event loop share one pipeline (bot_gateway.batching);
each still runs its own script and gets its own answer.
"""

from __future__ import annotations

import time
from typing import Literal

import redis.asyncio
from redis.commands.core import AsyncScript

from bot_gateway.batching import ScriptBatcher
from bot_gateway.metrics import ENQUEUE_SECONDS
from bot_gateway.publish import PUBLISH_RETRY_POLICY, DrainPublisher, KombuRedisMessages
from core.commands import UserCommand, dump_command
from tasks import mailbox

DEDUP_TTL_SECONDS = 2 * 24 * 3600  # Telegram keeps redelivering for 24 h

Admission = Literal["enqueued", "duplicate", "warn", "drop"]


def dedup_key(update_id: int) -> str:
    return f"tg:update:{update_id}"


def rate_key(user_id: int) -> str:
    return f"rl:user:{user_id}"


# The mailbox post is tasks.mailbox's own steps (same keys, same semantics: the drain reads them), then the
# drain message for the broker, when the broker is this Redis.
_POST_STEPS = (
    mailbox.post_steps(
        queue="KEYS[3]",
        payloads="KEYS[4]",
        active="KEYS[5]",
        update_id="ARGV[4]",
        command="ARGV[5]",
        ttl="ARGV[6]",
        now="ARGV[7]",
        user="ARGV[8]",
    )
    + "if #KEYS >= 6 then redis.call('LPUSH', KEYS[6], ARGV[9]) end\n"
)

# KEYS: dedup marker, rate counter, mailbox queue, mailbox payloads, active set, [broker list]
# ARGV: dedup ttl, rate window, rate limit, update_id, command json, mailbox ttl, now, user_id, [message]
# Duplicate first (a redelivery is not counted against the user); then a fixed-window counter per user (INCR
# + EXPIRE on the first hit: EXPIRE … NX needs Redis 7, the embedded server is 6.2); the one update just
# over the limit comes back as 'warn' unposted, for the caller to post a SlowDown in its place.
_ADMIT_AND_POST = (
    """
if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1]) then return 'duplicate' end
local count = redis.call('INCR', KEYS[2])
if count == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
local limit = tonumber(ARGV[3])
if count == limit + 1 then return 'warn' end
if count > limit then return 'drop' end
"""
    + _POST_STEPS
    + "return 'enqueued'\n"
)

# Same KEYS and ARGV; the first two of each are not used (the update was already admitted).
_POST = _POST_STEPS + "return 'enqueued'\n"


class EnqueueFailed(Exception):
    """The update could not be handed to the workers; the caller must not acknowledge it."""


class Enqueuer:
    """`messages` when the broker is this Redis (the drain goes into the script), else `publisher`."""

    def __init__(
        self,
        redis_client: redis.asyncio.Redis,
        *,
        rate_limit: int,
        rate_window_s: int,
        messages: KombuRedisMessages | None = None,
        publisher: DrainPublisher | None = None,
    ) -> None:
        if (messages is None) == (publisher is None):
            raise ValueError("give exactly one of messages (broker is this Redis) and publisher")
        self.redis = redis_client
        self.rate_limit = rate_limit
        self.rate_window_s = rate_window_s
        self.messages = messages
        self.publisher = publisher
        self._admit_and_post = redis_client.register_script(_ADMIT_AND_POST)
        self._post = redis_client.register_script(_POST)
        self._scripts = ScriptBatcher(redis_client)

    async def admit_and_post(self, command: UserCommand) -> Admission:
        """Dedupe, count against the user's rate, and (within the limit) post and publish. 'warn': admitted
        one over the limit and nothing posted (see `post`); 'drop': admitted, over the limit, nothing posted.
        Raises EnqueueFailed; then the caller releases the duplicate marker."""
        started = time.perf_counter()
        try:
            outcome = await self._run(self._admit_and_post, command)
            if outcome == "enqueued" and self.publisher is not None:
                await self.publisher.publish(command.actor.telegram_user_id, command.correlation_id)
            return outcome
        except Exception as exc:
            raise EnqueueFailed(type(exc).__name__) from exc
        finally:
            ENQUEUE_SECONDS.observe(time.perf_counter() - started)

    async def post(self, command: UserCommand) -> None:
        """Post and publish an admitted command (the SlowDown in place of the update over the limit)."""
        started = time.perf_counter()
        try:
            await self._run(self._post, command)
            if self.publisher is not None:
                await self.publisher.publish(command.actor.telegram_user_id, command.correlation_id)
        except Exception as exc:
            raise EnqueueFailed(type(exc).__name__) from exc
        finally:
            ENQUEUE_SECONDS.observe(time.perf_counter() - started)

    async def claim(self, update_id: int) -> bool:
        """Only the duplicate marker (for updates no router handles): False if it was already there."""
        try:
            return bool(await self.redis.set(dedup_key(update_id), 1, nx=True, ex=DEDUP_TTL_SECONDS))
        except Exception as exc:
            raise EnqueueFailed(type(exc).__name__) from exc

    async def release(self, update_id: int) -> None:
        """Forget the duplicate marker, so Telegram's redelivery of a failed update is processed."""
        await self.redis.delete(dedup_key(update_id))

    async def _run(self, script: AsyncScript, command: UserCommand) -> Admission:
        user_id = command.actor.telegram_user_id
        keys = [
            dedup_key(command.update_id),
            rate_key(user_id),
            mailbox.queue_key(user_id),
            mailbox.payload_key(user_id),
            mailbox.ACTIVE_SET,
        ]
        args: list[str | int | float | bytes] = [
            DEDUP_TTL_SECONDS,
            self.rate_window_s,
            self.rate_limit,
            command.update_id,
            dump_command(command),
            mailbox.KEY_TTL_SECONDS,
            time.time(),
            user_id,
        ]
        if self.messages is not None:
            keys.append(self.messages.queue_key)
            args.append(self.messages.drain(user_id, command.correlation_id))
        result = await self._scripts.run(script, keys, args)
        outcome = result.decode() if isinstance(result, bytes) else str(result)
        if outcome not in ("enqueued", "duplicate", "warn", "drop"):
            raise RuntimeError(f"unexpected answer from the enqueue script: {outcome!r}")
        return outcome  # type: ignore[return-value]


# PUBLISH_RETRY_POLICY: the Stripe webhook publishes through Celery with it.
__all__ = ["DEDUP_TTL_SECONDS", "PUBLISH_RETRY_POLICY", "Admission", "EnqueueFailed", "Enqueuer"]

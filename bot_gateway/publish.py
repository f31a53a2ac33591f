"""Publishing "drain user U" from the gateway: straight onto kombu's Redis list, or through Celery.

Why not always `celery_app.send_task`: kombu's Redis client is synchronous, so the gateway had to run it in a
thread (`asyncio.to_thread`), where it contended with the event loop for the GIL; profiled under load, that
hop was ~42% of the gateway's CPU. For a Redis broker we instead write, with the gateway's own async Redis
client, exactly the message `send_task` would write: Celery's task protocol 2 (headers, properties, a
base64 JSON body) in kombu's Redis envelope, LPUSHed to the queue's list, which workers BRPOP from the
other end (first in, first out). `bot_gateway.enqueue` does that LPUSH in the same Lua script as the
mailbox post, so one round trip both stores the command and publishes its drain.

Which way is chosen by the broker URL's scheme (`direct_redis_supported`): redis://, rediss:// and
redis+socket:// (kombu's unix socket) brokers get the direct write; any other broker (AMQP is on the
roadmap) goes through `celery_app.send_task`, as does a Redis broker configured in a way this module does
not reproduce (a global key prefix, another task protocol or serializer, compression, task-sent events,
a default priority). tests/integration/test_publish.py pins the message against what `send_task` writes
and has a real worker consume it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from typing import Any, Protocol

import redis.asyncio
from celery import Celery
from celery.utils.nodenames import anon_nodename

from tasks.app import CORRELATION_HEADER
from tasks.names import DRAIN_USER_MAILBOX

# Fail fast when the broker is away: Telegram will redeliver, and a gateway stuck in kombu's default
# retries (seconds per update) would back up every other user's updates behind it.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}

REDIS_BROKER_SCHEMES = ("redis://", "rediss://", "redis+socket://")

# kombu.transport.redis: a queue is a Redis list; priorities other than 0 go to sibling lists named
# queue + sep + step (steps 0, 3, 6, 9), and the transport LPUSHes while workers BRPOP.
KOMBU_PRIORITY_SEP = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)
PERSISTENT = 2  # kombu's delivery_mode for 'persistent', Celery's task_default_delivery_mode


def kombu_queue_key(queue: str, priority: int = 0) -> str:
    """The Redis list kombu's Redis transport pushes a message of this priority to (its `_q_for_pri`)."""
    step = max(s for s in KOMBU_PRIORITY_STEPS if s <= max(0, min(priority, 9)))
    return f"{queue}{KOMBU_PRIORITY_SEP}{step}" if step else queue


def redis_py_url(broker_url: str) -> str | None:
    """The redis-py URL of a Redis broker URL (kombu spells a unix socket redis+socket://…?virtual_host=N),
    or None for a broker that is not Redis."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        return broker_url
    if broker_url.startswith("redis+socket://"):
        path, _, query = broker_url[len("redis+socket://") :].partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        return f"unix://{path}?db={params.get('virtual_host', '0') or '0'}"
    return None


def direct_redis_supported(celery_app: Celery) -> bool:
    """Whether `KombuRedisMessages` writes what `send_task` would for this app's broker and settings."""
    conf = celery_app.conf
    options = conf.broker_transport_options or {}
    return (
        str(conf.broker_url).startswith(REDIS_BROKER_SCHEMES)
        and int(conf.task_protocol) == 2
        and conf.task_serializer == "json"
        and not conf.task_compression
        and not conf.task_send_sent_event  # we write no task-sent event
        and conf.task_default_priority is None
        and conf.task_default_delivery_mode in ("persistent", PERSISTENT)
        and not options.get("global_keyprefix")
        and options.get("sep", KOMBU_PRIORITY_SEP) == KOMBU_PRIORITY_SEP
        and tuple(options.get("priority_steps", KOMBU_PRIORITY_STEPS)) == KOMBU_PRIORITY_STEPS
        and _direct_queue(celery_app) is not None
    )


def _direct_queue(celery_app: Celery) -> str | None:
    """The queue the drain task is routed to, if Celery would send it straight there: for a direct route it
    publishes to the anonymous exchange with the queue's name as routing key (celery.app.amqp)."""
    route = celery_app.amqp.router.route({}, DRAIN_USER_MAILBOX, (), {})
    queue = route.get("queue")
    if queue is None or queue.exchange.type != "direct" or route.get("exchange") or route.get("priority"):
        return None
    return str(queue.name)


class KombuRedisMessages:
    """Builds the message `send_task(DRAIN_USER_MAILBOX, args=[user_id], headers={CORRELATION_HEADER: …})`
    puts on a Redis broker, and names the list it goes to. Only ids differ from one call to the next."""

    def __init__(self, celery_app: Celery) -> None:
        queue_name = _direct_queue(celery_app)
        if queue_name is None:
            raise ValueError(f"{DRAIN_USER_MAILBOX} is not routed straight to a queue: use send_task")
        self.queue_name = queue_name
        self.queue_key = kombu_queue_key(self.queue_name)
        self._origin = anon_nodename()
        self._reply_to = celery_app.thread_oid  # what send_task puts there; unused without a result backend
        # The message is the same JSON every time but for five values: serialize it once with placeholders
        # and splice the values in per message (a third of the cost of json.dumps on the whole envelope).
        placeholders = {name: f"\x00{name}\x00" for name in _SLOTS}
        text = json.dumps(self.envelope(**placeholders))
        self._fragments = _PLACEHOLDER.split(text)  # literal, slot name, literal, slot name, …, literal

    def envelope(
        self, *, task_id: str, body: str, argsrepr: str, correlation_id: str, tag: str
    ) -> dict[str, Any]:
        """Celery protocol 2 in kombu's Redis envelope, as `send_task` → kombu's Channel._put writes it."""
        return {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": DRAIN_USER_MAILBOX,
                "id": task_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [None, None],
                "root_id": task_id,
                "parent_id": None,
                "argsrepr": argsrepr,
                "kwargsrepr": "{}",
                "origin": self._origin,
                "ignore_result": None,
                "replaced_task_nesting": 0,
                "stamped_headers": None,
                "stamps": {},
                CORRELATION_HEADER: correlation_id,
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": self._reply_to,
                "delivery_mode": PERSISTENT,
                # Celery publishes a direct route to the anonymous exchange with the queue as routing key.
                "delivery_info": {"exchange": "", "routing_key": self.queue_name},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": tag,
            },
        }

    def drain(self, user_id: int, correlation_id: str) -> bytes:
        args = f"[{int(user_id)}]"
        # JSON strings as json.dumps writes them: uuids, base64 and "[digits]" need no escaping; the
        # correlation id might.
        values = {
            "task_id": f'"{uuid.uuid4()}"',
            "body": f'"{base64.b64encode(DRAIN_BODY.format(args=args).encode()).decode()}"',
            "argsrepr": f'"{args}"',
            "correlation_id": json.dumps(correlation_id),
            "tag": f'"{uuid.uuid4()}"',  # kombu's delivery tag: a fresh uuid4 per message
        }
        parts = self._fragments.copy()
        for index in range(1, len(parts), 2):
            parts[index] = values[parts[index]]
        return "".join(parts).encode()


# Celery's body (args, kwargs, embed) for args=[user_id], as its JSON serializer writes it (kombu.utils.json:
# json.dumps, default separators); kombu then base64-encodes it. A test compares it with json.dumps.
DRAIN_BODY = '[{args}, {{}}, {{"callbacks": null, "errbacks": null, "chain": null, "chord": null}}]'

_SLOTS = ("task_id", "body", "argsrepr", "correlation_id", "tag")
# How json.dumps writes a placeholder "\x00name\x00": a quoted string with \u0000 escapes around the name.
_PLACEHOLDER = re.compile(r'"\\u0000(' + "|".join(_SLOTS) + r')\\u0000"')


class DrainPublisher(Protocol):
    async def publish(self, user_id: int, correlation_id: str) -> None: ...


class RedisDrainPublisher:
    """One LPUSH on an async client of the broker's Redis (for a broker that is not the gateway's REDIS_URL;
    when it is, `bot_gateway.enqueue` pushes the same message inside its mailbox script instead)."""

    def __init__(self, broker: redis.asyncio.Redis, messages: KombuRedisMessages) -> None:
        self.broker = broker
        self.messages = messages

    async def publish(self, user_id: int, correlation_id: str) -> None:
        await self.broker.lpush(self.messages.queue_key, self.messages.drain(user_id, correlation_id))  # type: ignore[misc]


class CeleryDrainPublisher:
    """`celery_app.send_task` in a thread: any broker Celery supports, at the cost of a thread hop."""

    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app

    async def publish(self, user_id: int, correlation_id: str) -> None:
        await asyncio.to_thread(self._send, user_id, correlation_id)

    def _send(self, user_id: int, correlation_id: str) -> None:
        self.celery.send_task(
            DRAIN_USER_MAILBOX,
            args=[user_id],
            headers={CORRELATION_HEADER: correlation_id},
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )

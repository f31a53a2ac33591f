"""Outbound messages: 10,000 messages to 1,000 chats through the sender, against the Telegram stand-in
enforcing Telegram's limits.

    python -m bench.outbound [--quick]

The messages are written to the outbox (as use cases do) and one send task is published per row; one
worker of the outbound queue alone (`--concurrency 2`, the pool such a worker runs: threads, see
marketbot/cli.py worker_pool) delivers them through `tasks/outbound.py` and the Bot API sender with the
shared Redis rate limiter. The stand-in answers 429 beyond 30 messages/s per bot or beyond
its per-chat limit. Baseline: Telegram's published budget of 30 messages/s. Targets (issue: benchmarks):
≥ 28 msg/s sustained, zero 429s, ≤ 1 msg/s per chat.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from bench.common import Figure, Servers, environment, stack, standalone, wait_until
from core.messages import Reply
from tasks.names import SEND_OUTBOX_MESSAGE

REDIS_DB = 7
TELEGRAM_BUDGET = 30.0
TARGET_RATE = 28.0  # msg/s


def _queue_messages(database_url: str, messages: int, chats: int) -> list[int]:
    from db.session import make_engine, make_session_factory
    from db.uow import SqlAlchemyUnitOfWork

    now = datetime.now(UTC)
    engine = make_engine(database_url)
    ids: list[int] = []
    try:
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            for i in range(messages):
                chat = 8 * 10**9 + i % chats
                method, payload = Reply(chat, f"Bench message {i}").to_bot_api()
                outbox_id = uow.outbox.add(
                    dedup_key=f"bench:{i}", chat_id=chat, method=method, payload=payload, now=now
                )
                assert outbox_id is not None
                ids.append(outbox_id)
            uow.commit()
    finally:
        engine.dispose()
    return ids


def run(servers: Servers, quick: bool) -> list[Figure]:
    database_url = servers.database("outbound")
    redis_url = servers.redis(REDIS_DB)
    messages, chats = (60, 20) if quick else (10_000, 1_000)
    ids = _queue_messages(database_url, messages, chats)
    with stack(database_url, redis_url, gateways=0, worker_queues="outbound") as s:
        from celery import Celery

        from marketbot.settings import load_settings
        from tasks.app import celery_config

        with environment(s.env):
            app = Celery("bench-publisher")
            app.conf.update(celery_config(load_settings()))
        with app.producer_or_acquire() as producer:
            for outbox_id in ids:
                app.send_task(SEND_OUTBOX_MESSAGE, args=[outbox_id], producer=producer)

        def sent() -> int:
            return sum(1 for c in s.telegram.calls("sendMessage") if c.status == 200)

        # Bounded: the rate is the figure; a slow sender is reported with how many it delivered in the window.
        # The window fits the whole run at nearly the target rate (it was capped at 240 s: at most ~7,000 of
        # the 10,000 could be delivered in it even at Telegram's full 30/s).
        wait_until(lambda: sent() >= messages, timeout=60 + messages / (0.9 * TARGET_RATE), interval=1.0)
        calls = [c for c in s.telegram.calls("sendMessage")]
    ok = sorted(c.at for c in calls if c.status == 200)
    throttled = sum(1 for c in calls if c.status == 429)
    rate = (len(ok) - 1) / (ok[-1] - ok[0]) if len(ok) > 1 else 0.0
    per_chat: dict[int, list[float]] = defaultdict(list)
    for c in calls:
        if c.status == 200:
            per_chat[int(c.params["chat_id"])].append(c.at)
    chat_rates = [
        (len(t) - 1) / (max(t) - min(t)) for t in per_chat.values() if len(t) > 1 and max(t) > min(t)
    ]
    worst_window = max(
        (sum(1 for x in t if start <= x < start + 1.0) for t in per_chat.values() for start in t), default=0
    )
    worst_chat = max(chat_rates, default=0.0)
    note = f"{len(ok):,} of {messages:,} delivered to {chats:,} chats"
    return [
        Figure(
            "outbound",
            "sustained send rate",
            rate,
            "msg/s",
            "Telegram's budget",
            TELEGRAM_BUDGET,
            rate / TELEGRAM_BUDGET,
            "≥ 28 msg/s",
            rate >= TARGET_RATE,
            note,
        ),
        Figure(
            "outbound", "429 answers from the stand-in", throttled, "calls", target="0", passed=throttled == 0
        ),
        Figure(
            "outbound",
            "fastest chat, sustained",
            worst_chat,
            "msg/s per chat",
            target="≤ 1 msg/s per chat",
            passed=worst_chat <= 1.0,
            note=f"most sends to one chat within any 1 s: {worst_window}",
        ),
    ]


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())

"""End-to-end reply under steady load: `/start` posted to the webhook → reply received by the Telegram
stand-in, at a steady 50 actions/s for 60 s.

    python -m bench.reply_load [--quick]

Whole stack: one gateway, one worker (prefork -c 2), real PostgreSQL and Redis, the Telegram stand-in
enforcing Telegram's limits (30 messages/s per bot, ~1/s per chat) as production meets them. Each action is
a new user's `/start`, posted on schedule (open loop); latency runs from the POST to the stand-in
answering the reply's sendMessage. Same-run baseline: an HTTP round trip to the gateway's /healthz.
Targets (issue: benchmarks): p50 ≤ 50 ms, p95 ≤ 150 ms (product plan: median < 300 ms, p95 < 500 ms).
`bench.webhook_latency` measures the same path one action at a time.
"""

from __future__ import annotations

import itertools
import time

from bench.common import (
    Figure,
    Servers,
    healthz_round_trips_ms,
    median,
    paced,
    percentile,
    post_update,
    stack,
    standalone,
    start_update,
    wait_until,
)

REDIS_DB = 5
RATE = 50.0
SECONDS = 60.0
_users = itertools.count(6 * 10**9)


def run(servers: Servers, quick: bool) -> list[Figure]:
    database_url = servers.database("reply_load")
    redis_url = servers.redis(REDIS_DB)
    rate, seconds = (10.0, 3.0) if quick else (RATE, SECONDS)
    with stack(database_url, redis_url) as s:
        for _ in range(3):  # warm up
            user = next(_users)
            post_update(s.webhook_url, start_update(user, user))
            s.telegram.wait_for_calls("sendMessage", predicate=lambda c, u=user: c.params.get("chat_id") == u)  # type: ignore[misc]
        posted: dict[int, float] = {}
        users = [next(_users) for _ in range(int(rate * seconds))]

        def act(i: int) -> None:
            posted[users[i]] = time.monotonic()
            post_update(s.webhook_url, start_update(users[i], users[i]))

        paced(rate, seconds, act)
        wanted = set(users)

        def replies() -> dict[int, float]:
            found: dict[int, float] = {}
            for call in s.telegram.calls("sendMessage"):
                chat = call.params.get("chat_id")
                if call.status == 200 and chat in wanted and chat not in found:
                    found[int(chat)] = call.at
            return found

        wait_until(lambda: len(replies()) == len(users), timeout=120 + seconds, interval=0.5)
        got = replies()
        latencies = [(got[u] - posted[u]) * 1000 for u in users if u in got]
        health = healthz_round_trips_ms(s.gateway_urls[0])
    p50, p95, base = median(latencies), percentile(latencies, 95), median(health)
    note = f"{len(latencies)} of {len(users)} replies received; {rate:g} actions/s for {seconds:g} s"
    return [
        Figure(
            "end-to-end reply",
            f"p50 at {rate:g} actions/s",
            p50,
            "ms",
            "gateway /healthz p50",
            base,
            p50 / base,
            "≤ 50 ms",
            p50 <= 50,
            note,
        ),
        Figure(
            "end-to-end reply",
            f"p95 at {rate:g} actions/s",
            p95,
            "ms",
            "gateway /healthz p50",
            base,
            p95 / base,
            "≤ 150 ms",
            p95 <= 150,
            note,
        ),
    ]


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())

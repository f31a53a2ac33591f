"""Browser tests: Playwright (Python) driving Debian's Chromium against `marketbot up`, as a newcomer runs it.

Chromium comes from Debian's packages, never from `playwright install` (that downloads a browser build, which
our machines cannot fetch). When /usr/bin/chromium is missing and we are root, the session installs it with
apt-get, once (about 45 s on a fresh CI machine); when it is missing and cannot be installed, the tests FAIL
saying so: a browser test that skips silently would hide a broken sandbox page.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from marketbot.embedded import drop_database, ensure_database
from marketbot.harness import ROOT, free_port

CHROMIUM = "/usr/bin/chromium"
# Emoji are half of what the bot says; without a font for them Chromium draws empty boxes in screenshots.
APT_PACKAGES = ("chromium", "fonts-noto-color-emoji")
# The flags DEPENDENCIES.md checked: no sandbox as root, no GPU, and no calls home (the network is closed,
# and Chromium's background requests would otherwise flood it).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(os.environ.get("MARKETBOT_SCREENSHOT_DIR", ROOT / ".marketbot" / "screenshots"))


def _install_chromium() -> None:
    missing = [
        p
        for p in APT_PACKAGES
        if subprocess.run(["dpkg", "-s", p], capture_output=True, check=False).returncode != 0
    ]
    if not missing and os.path.exists(CHROMIUM):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            f"browser tests need Debian's Chromium at {CHROMIUM} (missing: {', '.join(missing)}); install it "
            f"as root with `apt-get update && apt-get install -y {' '.join(APT_PACKAGES)}` "
            "(never `playwright install`)",
            pytrace=False,
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    started = time.monotonic()
    for argv in (
        ["apt-get", "update", "-q"],
        # Lock timeout: another apt run on the machine (a parallel session, an upgrade) finishes first.
        ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", *missing],
    ):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=900)
        if result.returncode != 0:
            pytest.fail(
                f"could not install {' '.join(missing)} with `{' '.join(argv)}`:\n{result.stderr[-2000:]}",
                pytrace=False,
            )
    print(f"\ninstalled {' '.join(missing)} with apt-get in {time.monotonic() - started:.0f} s", flush=True)


@pytest.fixture(scope="session")
def chromium() -> str:
    _install_chromium()
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"apt-get installed chromium, but {CHROMIUM} is not there", pytrace=False)
    return CHROMIUM


@dataclass
class Sandbox:
    url: str  # the page, as `marketbot up` printed it
    output: list[str]

    def log(self, lines: int = 80) -> str:
        return "".join(self.output[-lines:])


def _with_redis_db(url: str, db: int) -> str:
    if url.startswith("unix://"):
        return url.split("?", 1)[0] + f"?db={db}"
    return url.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture(scope="module")
def sandbox(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """`marketbot up --demo-data` with no Telegram token and no Stripe key, in a database and Redis database
    of its own (the demo city must not show up in other tests' searches)."""
    name = f"marketbot_browser_{uuid.uuid4().hex[:8]}"
    ensure_database(database_url, name)
    head, sep, query = database_url.partition("?")
    own_database = f"{head.rpartition('/')[0]}/{name}{sep}{query}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "STRIPE_", "PUBLIC_BASE_URL", "ADMIN_TELEGRAM_IDS"))
    }
    env.update(
        DATABASE_URL=own_database,
        REDIS_URL=_with_redis_db(redis_url, 14),
        MARKETBOT_DATA_DIR=str(tmp_path_factory.mktemp("sandbox-data")),
        HTTP_PORT=str(free_port()),
        FAKE_TELEGRAM_PORT="0",
        FAKE_STRIPE_PORT="0",
        LOG_LEVEL="WARNING",
    )
    env.pop("CELERY_BROKER_URL", None)
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    up = subprocess.Popen(
        [sys.executable, "-m", "marketbot.cli", "up", "--demo-data", "--concurrency", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    assert up.stdout is not None
    stream = up.stdout
    threading.Thread(target=lambda: output.extend(iter(stream.readline, "")), daemon=True).start()
    try:
        deadline = time.monotonic() + 150
        url = None
        while url is None:
            found = [re.search(r"Try it in your browser:\s+(http://\S+)", line) for line in list(output)]
            url = next((m.group(1) for m in found if m), None)
            assert up.poll() is None, "marketbot up exited:\n" + "".join(output[-80:])
            assert time.monotonic() < deadline, "marketbot up printed no sandbox URL:\n" + "".join(
                output[-80:]
            )
            time.sleep(0.1)
        yield Sandbox(url, output)
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        drop_database(database_url, name)

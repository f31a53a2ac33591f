"""What a worker loads before it says ready: everything its queues' tasks need, and only that."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# Enough configuration for the Celery app to load its task modules; nothing connects anywhere.
ENV = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", "TELEGRAM_BOT_TOKEN": "123:abc"}


def _run(code: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, env=ENV
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def test_every_task_registers_without_loading_aiogram_or_segno() -> None:
    # Only workers of the outbound queue send to Telegram; the others must not pay ~1 s for aiogram.
    out = _run(
        """
        import sys
        from tasks.app import app
        app.loader.import_default_modules()
        names = [n for n in app.tasks if n.startswith("marketbot.")]
        print(len(names) > 10, "marketbot.outbound.send_outbox_message" in names,
              "aiogram" in sys.modules, "segno" in sys.modules)
        """
    )
    assert out == "True True False False"


def test_an_outbound_worker_builds_what_its_sender_validates_before_it_forks() -> None:
    # The methods it sends and the responses aiogram's session validates their answers with: a child's
    # first send then builds nothing (each of these took ~0.1-0.25 s on first use).
    out = _run(
        """
        import sys
        from marketbot.cli import _prepare_sender
        built = _prepare_sender()
        from aiogram.methods import EditMessageText, SendMessage
        from aiogram.methods.base import Response
        print("tasks.outbound" in sys.modules, all(m.__pydantic_complete__ for m in built),
              Response[SendMessage.__returning__] in built, Response[EditMessageText.__returning__] in built)
        """
    )
    assert out == "True True True True"

"""A poison message ends as a dead letter an operator can list and replay, with its correlation id."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from db.models import DeadLetter
from db.uow import SqlAlchemyUnitOfWork
from marketbot.harness import ROOT, Process, start_worker
from tasks.app import CORRELATION_HEADER, app
from tasks.names import SEND_OUTBOX_MESSAGE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TELEGRAM_BOT_TOKEN": "4242:dead-letter-test",
        # Nothing listens here: the poison message fails before any network call anyway.
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9",
        "LOG_FORMAT": "json",
    }


@pytest.fixture(scope="module")
def worker(env: dict[str, str]) -> Iterator[Process]:
    process = start_worker(env, name="deadletters", queues="outbound", concurrency=1)
    try:
        yield process
    finally:
        process.stop()


def _dead_letters_for(uow_factory: Callable[[], SqlAlchemyUnitOfWork], marker: str) -> list[DeadLetter]:
    with uow_factory() as uow:
        rows = [row for row in uow.session.scalars(select(DeadLetter).order_by(DeadLetter.id))]
        uow.session.expunge_all()  # readable after the block (its rollback would expire them)
        return [row for row in rows if row.args == [marker]]


def _wait_for(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "marketbot.cli", "dead-letters", *argv],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_poison_task_is_dead_lettered_listed_and_replayed(
    worker: Process, env: dict[str, str], uow_factory: Callable[[], SqlAlchemyUnitOfWork]
) -> None:
    # Given a message no retry can fix (an outbox id that is not a number), published with a correlation id
    marker = f"poison-{time.monotonic_ns()}"
    app.send_task(SEND_OUTBOX_MESSAGE, args=[marker], headers={CORRELATION_HEADER: "corr-poison-1"})

    # Then the worker records it as a dead letter, once, and logs an error line carrying the correlation id
    _wait_for(lambda: len(_dead_letters_for(uow_factory, marker)) == 1)
    (letter,) = _dead_letters_for(uow_factory, marker)
    assert letter.task_name == SEND_OUTBOX_MESSAGE
    assert letter.correlation_id == "corr-poison-1"
    assert letter.exception_type and letter.replayed_at is None
    worker.wait_for_output('"event": "task_dead_lettered"', timeout=10)
    assert any("task_dead_lettered" in line and "corr-poison-1" in line for line in worker.output)

    # When the operator lists dead letters, it is there with its correlation id
    listed = _cli(env, "list")
    assert listed.returncode == 0, listed.stderr
    assert SEND_OUTBOX_MESSAGE in listed.stdout and "corr-poison-1" in listed.stdout

    # And when they replay it, the task runs again (and, still poisoned, is dead-lettered anew)
    replayed = _cli(env, "replay", str(letter.id))
    assert replayed.returncode == 0, replayed.stderr
    assert f"{letter.id}: replayed as task" in replayed.stdout
    _wait_for(lambda: len(_dead_letters_for(uow_factory, marker)) == 2)
    first, second = _dead_letters_for(uow_factory, marker)
    assert first.replayed_at is not None and first.replay_task_id == second.task_id

    # A second replay of the same letter is refused rather than run twice
    again = _cli(env, "replay", str(letter.id))
    assert again.returncode == 1 and "already replayed" in again.stdout


def test_replay_without_ids_is_a_clear_error(env: dict[str, str]) -> None:
    result = _cli(env, "replay")
    assert result.returncode != 0
    assert "give dead letter ids, or --all" in result.stderr

"""A guided dialog lives in the database: it carries on after every worker has been restarted."""

from __future__ import annotations

import random

from marketbot.harness import start_worker, wait_worker_ready
from tests.e2e.chat import Chat
from tests.e2e.conftest import Stack


def test_registration_continues_after_all_workers_restart_mid_dialog(stack: Stack) -> None:
    owner = Chat(stack, random.randint(10**9, 9 * 10**9))
    owner.press("r:b")
    owner.expect("What is your business called?")
    owner.say("Restart Rolls")
    owner.expect("What kind of business")

    # Every worker stops (SIGTERM: a warm shutdown), and the owner answers while none is running.
    for worker in stack.workers:
        assert worker.stop() == 0, worker.tail()
    owner.press("rg:c:bakery")
    fresh = [start_worker(stack.env, name=f"r{i}", wait=False) for i in range(len(stack.workers))]
    for worker in fresh:
        wait_worker_ready(worker)
    stack.workers[:] = fresh  # the rest of the suite and its teardown use the new ones

    owner.expect("pickup address")  # the answer waited in the mailbox and the dialog went on
    owner.say("/cancel")
    owner.expect("cancelled")

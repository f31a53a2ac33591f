"""A Celery worker for the task-overhead benchmark: our real app, settings and tasks, with the interactive
path's use case replaced by a no-op, plus a bare no-op task to compare with.

    python -m bench.noop_worker --queues interactive --concurrency 2

Run by bench.task_overhead, never in production. The patch is applied before the prefork pool forks, so
every child runs `drain_user_mailbox` with its real mailbox, lock, fencing token, acks and signals, and
only `apply_mailbox_entry` (parse, transaction, replies) does nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from marketbot.logs import configure_logging
from marketbot.settings import load_settings

BARE_NOOP = "bench.bare_noop"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queues", default="interactive")
    parser.add_argument("--concurrency", default="2")
    args = parser.parse_args()
    settings = load_settings()
    configure_logging(settings.log_level, fmt=settings.log_format, hash_key=settings.log_hash_key)
    import tasks.entrypoints
    from tasks.app import app

    def _no_op_entry(raw: str, fence_token: int, **_: Any) -> None:
        return None

    setattr(tasks.entrypoints, "apply_mailbox_entry", _no_op_entry)  # noqa: B010 - a patch, on purpose

    @app.task(name=BARE_NOOP)  # type: ignore[untyped-decorator]
    def bare_noop(*_: Any) -> None:
        return None

    app.worker_main(
        argv=["worker", "-Q", args.queues, "-c", args.concurrency, "--loglevel", "WARNING", "-n", "noop@%h"]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

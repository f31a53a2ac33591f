"""The periodic schedule names real tasks, all on the maintenance queue, the important ones frequent."""

from __future__ import annotations

from datetime import timedelta

from beat_schedule import SCHEDULE
from tasks.app import app
from tasks.names import QUEUE_MAINTENANCE, ROUTES


def test_every_scheduled_job_is_a_task_the_workers_know(redis_url: str) -> None:
    # (redis_url: the app's configuration needs the servers' environment to finalize)
    app.loader.import_default_modules()
    for job, entry in SCHEDULE.items():
        assert entry["task"] in app.tasks, f"{job}: {entry['task']} is not a registered task"


def test_every_scheduled_job_runs_on_the_maintenance_queue() -> None:
    for job, entry in SCHEDULE.items():
        assert entry["task"].startswith("marketbot.maintenance."), job
    assert ROUTES["marketbot.maintenance.*"] == {"queue": QUEUE_MAINTENANCE}


def test_the_schedule_releases_holds_and_expires_offers_at_least_every_minute() -> None:
    by_task = {entry["task"]: entry["schedule"] for entry in SCHEDULE.values()}
    assert by_task["marketbot.maintenance.release_expired_holds"] <= timedelta(minutes=1)
    assert by_task["marketbot.maintenance.expire_ended_offers"] <= timedelta(minutes=1)

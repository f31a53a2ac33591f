"""The broker's redelivery window fits between the longest legitimate wait and a useful recovery time."""

from __future__ import annotations

from marketbot.settings import Settings
from tasks import outbound
from tasks.app import VISIBILITY_TIMEOUT_SECONDS, celery_config


def test_a_killed_workers_tasks_come_back_within_minutes_but_no_healthy_task_is_handed_out_twice() -> None:
    config = celery_config(Settings(REDIS_URL="redis://127.0.0.1:6379/0"))  # type: ignore[call-arg]
    timeout = config["broker_transport_options"]["visibility_timeout"]
    assert timeout == VISIBILITY_TIMEOUT_SECONDS <= 15 * 60
    assert timeout > config["task_time_limit"]
    assert timeout > outbound.BACKOFF_MAX_SECONDS  # the longest countdown a worker holds un-acked
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]

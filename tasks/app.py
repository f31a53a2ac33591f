"""The Celery app: broker, serialization, reliability settings, queues and routing.

This module imports no database code, so the gateway can import it to publish without pulling in db/.
Task code lives in tasks.entrypoints and is loaded by workers through `include`.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun
from kombu import Exchange, Queue

from beat_schedule import SCHEDULE
from marketbot.logs import bind_correlation_id, current_correlation_id
from marketbot.settings import Settings, load_settings
from tasks.names import ALL_QUEUES, QUEUE_INTERACTIVE, ROUTES

VISIBILITY_TIMEOUT_SECONDS = 900


def celery_config(settings: Settings) -> dict[str, Any]:
    exchange = Exchange("marketbot", type="direct")
    return {
        "broker_url": settings.celery_broker_url,
        # No result backend: tasks report through the database and the outbox, not through Celery results.
        "task_ignore_result": True,
        "result_backend": None,
        # JSON only: pickle from a broker would let anyone who can write to Redis run code in workers.
        "task_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        # At-least-once: ack after the task ran, and put it back if the worker process dies mid-task.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One message at a time per process, so a slow task doesn't hold others hostage in its prefetch.
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": 45,
        "task_time_limit": 60,
        "task_queues": [Queue(name, exchange, routing_key=name) for name in ALL_QUEUES],
        "task_default_queue": QUEUE_INTERACTIVE,
        "task_default_exchange": "marketbot",
        "task_default_routing_key": QUEUE_INTERACTIVE,
        "task_routes": ROUTES,
        "broker_connection_retry_on_startup": True,
        # Redis hands un-acked messages to another worker after this. It bounds how long the tasks of a
        # worker killed outright (SIGKILL, OOM, host lost) wait before running again, so it is short; it
        # must still exceed the longest task (60 s time limit) and the longest retry countdown a worker
        # holds un-acked (300 s outbox backoff), or healthy tasks would be handed out twice (harmless,
        # every task is idempotent, but wasteful).
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
        # celery#8030: workers can stop consuming after a broker reconnect; cancelling in-flight tasks on
        # connection loss makes them redeliverable instead of stuck.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_send_task_events": True,
        # No task-sent event per publish: it doubled the broker writes of every publish (the gateway's hot
        # path), and Flower still sees tasks received, started and succeeded from the workers' own events.
        # The gateway's direct Redis publisher (bot_gateway.publish) writes none either.
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "beat_schedule": SCHEDULE,
        "timezone": "UTC",
        "enable_utc": True,
    }


def create_app(settings: Settings | None = None) -> Celery:
    """A configured app. Without explicit settings, configuration is read from the environment lazily, on
    first use, so importing this module (tests, tools) does not require the environment to be complete."""
    app = Celery(
        "marketbot", include=["tasks.entrypoints", "tasks.payment_entrypoints", "tasks.refund_entrypoints"]
    )
    if settings is not None:
        app.conf.update(celery_config(settings))
    else:
        app.add_defaults(lambda: celery_config(load_settings()))
    return app


# Celery uses the message property `correlation_id` for its own purposes (it is the task id), hence our name.
CORRELATION_HEADER = "marketbot_correlation_id"


@before_task_publish.connect
def _carry_correlation_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Put the current correlation id on every published task so logs can follow an update end to end."""
    if headers is not None and CORRELATION_HEADER not in headers:
        correlation_id = current_correlation_id()
        if correlation_id:
            headers[CORRELATION_HEADER] = correlation_id


@task_prerun.connect
def _bind_correlation_id(task: Any = None, **_: Any) -> None:
    """Tasks published without one (beat, sweeps) get their own task id, so their lines still group."""
    request = task.request if task is not None else None
    bind_correlation_id(getattr(request, CORRELATION_HEADER, None) or getattr(request, "id", None))


@task_postrun.connect
def _unbind_correlation_id(**_: Any) -> None:
    bind_correlation_id(None)


app = create_app()

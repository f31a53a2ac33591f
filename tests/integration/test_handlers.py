"""Applying a user's command: effects and replies commit together, exactly once (real PostgreSQL)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from core.commands import Actor, ChooseRole, SendText, StartBot, dump_command
from db.models import OutboxMessage, User
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from tasks.handlers import Effects, apply_mailbox_entry, handle_user_command
from tasks.jobs import Job
from tasks.mailbox import StaleFence

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
UowFactory = Callable[[], SqlAlchemyUnitOfWork]


def _base(user: int, update_id: int | None = None) -> dict[str, object]:
    update_id = update_id or random.randint(10**8, 10**12)
    actor = Actor(telegram_user_id=user, chat_id=user, first_name="Ana", username="ana", language_code="en")
    return {"update_id": update_id, "actor": actor, "received_at": NOW, "correlation_id": f"tg-{update_id}"}


@dataclass(frozen=True)
class Queued:
    id: int
    method: str
    payload: dict[str, Any]


def _outbox(uow_factory: UowFactory, user: int) -> list[Queued]:
    with uow_factory() as uow:
        rows = uow.session.scalars(
            select(OutboxMessage).where(OutboxMessage.chat_id == user).order_by(OutboxMessage.id)
        )
        return [Queued(r.id, r.method, dict(r.payload)) for r in rows]


def _no_jobs(job: Job) -> None:
    raise AssertionError(f"no job expected here, got {job}")


def test_start_stores_the_user_and_queues_the_welcome(uow_factory: UowFactory) -> None:
    user = random.randint(5 * 10**9, 6 * 10**9)  # beyond 32 bits
    with uow_factory() as uow:
        effects = handle_user_command(StartBot(**_base(user)), uow, fence_token=1, now=NOW)

    (message,) = _outbox(uow_factory, user)
    assert effects.outbox_ids == [message.id] and effects.jobs == []
    assert message.method == "sendMessage" and "Welcome" in message.payload["text"]
    with uow_factory() as uow:
        stored = uow.users.get_by_telegram_id(user)
        assert stored is not None and stored.first_name == "Ana" and stored.fence_token == 1


def test_a_redelivered_update_changes_nothing_and_queues_nothing(uow_factory: UowFactory) -> None:
    user = random.randint(10**9, 2 * 10**9)
    command = SendText(**_base(user), text="hi")
    with uow_factory() as uow:
        first = handle_user_command(command, uow, fence_token=1, now=NOW)
    with uow_factory() as uow:
        again = handle_user_command(command, uow, fence_token=2, now=NOW)

    assert len(first.outbox_ids) == 1 and again == Effects()
    assert len(_outbox(uow_factory, user)) == 1


def test_choosing_a_role_is_remembered(uow_factory: UowFactory) -> None:
    user = random.randint(10**9, 2 * 10**9)
    with uow_factory() as uow:
        handle_user_command(ChooseRole(**_base(user), role="business"), uow, fence_token=1, now=NOW)
    with uow_factory() as uow:
        stored = uow.users.get_by_telegram_id(user)
        assert stored is not None and stored.role == "business"


def test_a_worker_whose_lock_expired_cannot_commit_after_a_newer_one(uow_factory: UowFactory) -> None:
    user = random.randint(10**9, 2 * 10**9)
    with uow_factory() as uow:
        handle_user_command(SendText(**_base(user), text="from the new holder"), uow, fence_token=5, now=NOW)

    with uow_factory() as uow, pytest.raises(StaleFence):
        handle_user_command(
            SendText(**_base(user), text="from the stale holder"), uow, fence_token=4, now=NOW
        )

    assert len(_outbox(uow_factory, user)) == 1  # the stale holder's reply was rolled back with it


def test_a_bug_while_handling_apologizes_once_and_unblocks_the_mailbox(
    uow_factory: UowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = random.randint(10**9, 2 * 10**9)
    command = StartBot(**_base(user))

    def broken(*_args: object, **_kwargs: object) -> object:
        raise KeyError("a bug")

    monkeypatch.setattr("tasks.handlers.respond", broken)
    published: list[int] = []
    for _ in range(2):  # the drain is retried: still one apology
        apply_mailbox_entry(
            dump_command(command),
            1,
            uow_factory=uow_factory,
            now=lambda: NOW,
            publish_send=published.append,
            publish_job=_no_jobs,
        )

    (apology,) = _outbox(uow_factory, user)
    assert "Something went wrong" in apology.payload["text"]
    assert published == [apology.id]


def test_a_database_outage_is_raised_for_a_retry(uow_factory: UowFactory, database_url: str) -> None:
    from sqlalchemy.exc import OperationalError

    broken = make_session_factory(make_engine(database_url.replace("/marketbot_test", "/no_such_db_")))
    user = random.randint(10**9, 2 * 10**9)
    with pytest.raises(OperationalError):
        apply_mailbox_entry(
            dump_command(StartBot(**_base(user))),
            1,
            uow_factory=lambda: SqlAlchemyUnitOfWork(broken),
            now=lambda: NOW,
            publish_send=lambda _id: None,
            publish_job=_no_jobs,
        )


def test_malformed_mailbox_entry_is_discarded_without_effects(uow_factory: UowFactory) -> None:
    published: list[int] = []
    apply_mailbox_entry(
        '{"kind": "nope"}',
        1,
        uow_factory=uow_factory,
        now=lambda: NOW,
        publish_send=published.append,
        publish_job=_no_jobs,
    )
    assert published == []
    with uow_factory() as uow:
        assert uow.session.execute(text("SELECT 1")).scalar() == 1


def test_user_who_blocked_the_bot_and_writes_again_is_reachable(uow_factory: UowFactory) -> None:
    user = random.randint(10**9, 2 * 10**9)
    with uow_factory() as uow:
        handle_user_command(StartBot(**_base(user)), uow, fence_token=1, now=NOW)
    with uow_factory() as uow:
        uow.users.mark_unreachable(user, NOW)
        uow.commit()
    with uow_factory() as uow:
        handle_user_command(StartBot(**_base(user)), uow, fence_token=2, now=NOW)
    with uow_factory() as uow:
        stored = uow.session.scalar(select(User).where(User.telegram_user_id == user))
        assert stored is not None and stored.unreachable_at is None

"""The unit of work commits only when told to."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.uow import SqlAlchemyUnitOfWork


def _register(uow: SqlAlchemyUnitOfWork, telegram_id: int, now: datetime) -> None:
    uow.users.upsert_from_telegram(
        telegram_user_id=telegram_id,
        chat_id=telegram_id,
        first_name="Ada",
        username=None,
        language_code="en",
        now=now,
    )
    uow.audit.add(
        actor_telegram_user_id=telegram_id,
        action="user.registered",
        subject_type="user",
        subject_id=str(telegram_id),
        now=now,
        details={"source": "start"},
    )


def _exists(session_factory: sessionmaker[Session], telegram_id: int) -> bool:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        return uow.users.get_by_telegram_id(telegram_id) is not None


def test_unit_of_work_rolls_back_unless_committed(
    session_factory: sessionmaker[Session], telegram_id: int, now: datetime
) -> None:
    # Given a use case that writes but returns early without committing
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        _register(uow, telegram_id, now)
    # Then nothing it wrote is visible
    assert not _exists(session_factory, telegram_id)


def test_unit_of_work_rolls_back_when_the_use_case_fails(
    session_factory: sessionmaker[Session], telegram_id: int, now: datetime
) -> None:
    # Given a use case that fails half way
    with pytest.raises(RuntimeError, match="Stripe is down"), SqlAlchemyUnitOfWork(session_factory) as uow:
        _register(uow, telegram_id, now)
        raise RuntimeError("Stripe is down")
    # Then its writes are gone and the error reached the caller
    assert not _exists(session_factory, telegram_id)


def test_committed_work_persists_and_later_work_in_the_block_does_not(
    session_factory: sessionmaker[Session], telegram_id: int, now: datetime
) -> None:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        _register(uow, telegram_id, now)
        uow.commit()
        # Written after the commit, never committed itself
        uow.users.set_role(telegram_id, "business", now)
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        user = uow.users.get_by_telegram_id(telegram_id)
        assert user is not None and user.role is None


def test_explicit_rollback_discards_work_so_far(
    session_factory: sessionmaker[Session], telegram_id: int, now: datetime
) -> None:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        _register(uow, telegram_id, now)
        uow.rollback()
        uow.commit()
    assert not _exists(session_factory, telegram_id)

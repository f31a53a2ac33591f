"""Users: upsert from Telegram, storage-side fencing, reachability."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.repositories import UserNotFound, UserRepository
from db.uow import SqlAlchemyUnitOfWork


def _upsert(uow: SqlAlchemyUnitOfWork, telegram_id: int, now: datetime, **overrides: object) -> None:
    fields: dict[str, object] = {
        "chat_id": telegram_id,
        "first_name": "Ada",
        "username": "ada",
        "language_code": "en",
    }
    fields.update(overrides)
    uow.users.upsert_from_telegram(telegram_user_id=telegram_id, now=now, **fields)  # type: ignore[arg-type]


def test_first_contact_creates_the_user_and_later_contacts_refresh_them(
    session_factory: sessionmaker[Session], telegram_id: int, now: datetime
) -> None:
    # Given a new Telegram user writing to the bot
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        created = uow.users.upsert_from_telegram(
            telegram_user_id=telegram_id,
            chat_id=telegram_id,
            first_name="Ada",
            username="ada",
            language_code="en",
            now=now,
        )
        uow.commit()
    assert created.id is not None and created.fence_token == 0 and created.role is None
    # When they write again after renaming, dropping their username, from an update without chat/language
    later = now + timedelta(minutes=5)
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        refreshed = uow.users.upsert_from_telegram(
            telegram_user_id=telegram_id,
            chat_id=None,
            first_name="Ada L.",
            username=None,
            language_code=None,
            now=later,
        )
        uow.commit()
    # Then it is the same row, with the new names and the known chat and language kept
    assert refreshed.id == created.id
    assert (refreshed.first_name, refreshed.username) == ("Ada L.", None)
    assert (refreshed.chat_id, refreshed.language_code) == (telegram_id, "en")
    assert refreshed.created_at == now and refreshed.updated_at == later


def test_user_ids_beyond_32_bits_are_stored(
    session_factory: sessionmaker[Session], telegram_id: int, now: datetime
) -> None:
    # Given a Telegram id past 2**32 (new accounts already have such ids)
    big_id = 8_000_000_000 + telegram_id
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        _upsert(uow, big_id, now)
        uow.commit()
    # When it is read back in another transaction
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        user = uow.users.get_by_telegram_id(big_id)
        # Then nothing was truncated
        assert user is not None
        assert (user.telegram_user_id, user.chat_id) == (big_id, big_id)


def test_unknown_user_is_not_found(session_factory: sessionmaker[Session], telegram_id: int) -> None:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        assert uow.users.get_by_telegram_id(telegram_id) is None


def test_stale_fence_token_is_refused(
    session_factory: sessionmaker[Session], telegram_id: int, now: datetime
) -> None:
    # Given a user whose updates were processed by the holder of lock token 7
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        _upsert(uow, telegram_id, now)
        assert uow.users.advance_fence(telegram_id, 7) is True
        uow.commit()
    # When a worker whose lock expired long ago (token 6) tries to commit effects
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        stale = uow.users.advance_fence(telegram_id, 6)
    # Then it is refused, while the current holder may keep committing with its own token
    assert stale is False
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        assert uow.users.advance_fence(telegram_id, 7) is True
        assert uow.users.advance_fence(telegram_id, 8) is True
        uow.commit()
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        user = uow.users.get_by_telegram_id(telegram_id)
        assert user is not None and user.fence_token == 8


def test_fencing_an_unknown_user_refuses(session_factory: sessionmaker[Session], telegram_id: int) -> None:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        assert uow.users.advance_fence(telegram_id, 1) is False


def _wait_until_blocked_on_a_lock(engine: Engine, application_name: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name = :name AND wait_event_type = 'Lock'"
                ),
                {"name": application_name},
            ).scalar_one()
            if waiting:
                return
            conn.rollback()  # pg_stat_activity is a per-transaction snapshot: take a fresh one
            time.sleep(0.02)
    raise AssertionError("the stale holder never blocked on the user row")


def test_stale_holder_racing_a_newer_holder_is_refused_once_the_newer_one_commits(
    database_url: str, engine: Engine, session_factory: sessionmaker[Session], telegram_id: int, now: datetime
) -> None:
    from db.session import make_engine, make_session_factory

    with SqlAlchemyUnitOfWork(session_factory) as uow:
        _upsert(uow, telegram_id, now)
        uow.commit()
    stale_engine = make_engine(database_url, connect_args={"application_name": f"stale-{telegram_id}"})
    try:
        # Given the newer holder (token 2) has fenced the user but not committed yet
        with SqlAlchemyUnitOfWork(session_factory) as newer:
            assert newer.users.advance_fence(telegram_id, 2) is True
            # When the stale holder (token 1) tries at the same moment, from another connection
            result: list[bool] = []

            def stale_attempt() -> None:
                with SqlAlchemyUnitOfWork(make_session_factory(stale_engine)) as stale:
                    result.append(stale.users.advance_fence(telegram_id, 1))
                    stale.commit()

            worker = threading.Thread(target=stale_attempt)
            worker.start()
            _wait_until_blocked_on_a_lock(engine, f"stale-{telegram_id}")
            newer.commit()
        worker.join(timeout=10)
        # Then it waited for the newer holder and, seeing its token, was refused
        assert result == [False]
    finally:
        stale_engine.dispose()


def test_role_and_location_are_recorded(
    session_factory: sessionmaker[Session], telegram_id: int, now: datetime
) -> None:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        _upsert(uow, telegram_id, now)
        uow.users.set_role(telegram_id, "business", now)
        uow.users.set_location(telegram_id, 48.8566, 2.3522, now)
        uow.commit()
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        user = uow.users.get_by_telegram_id(telegram_id)
        assert user is not None
        assert (user.role, user.latitude, user.longitude, user.location_updated_at) == (
            "business",
            48.8566,
            2.3522,
            now,
        )


def test_only_known_roles_are_accepted(session: Session, telegram_id: int, now: datetime) -> None:
    users = UserRepository(session)
    users.upsert_from_telegram(
        telegram_user_id=telegram_id,
        chat_id=None,
        first_name="Ada",
        username=None,
        language_code=None,
        now=now,
    )
    with pytest.raises(IntegrityError, match="ck_users_role"):
        users.set_role(telegram_id, "admin", now)


def test_setting_the_role_of_an_unknown_user_is_an_error(
    session: Session, telegram_id: int, now: datetime
) -> None:
    with pytest.raises(UserNotFound):
        UserRepository(session).set_role(telegram_id, "customer", now)


def test_a_user_who_blocked_the_bot_is_unreachable_until_they_return(
    session_factory: sessionmaker[Session], telegram_id: int, now: datetime
) -> None:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        _upsert(uow, telegram_id, now)
        uow.commit()
    # When sends fail with 403 twice, the first time is kept
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        uow.users.mark_unreachable(telegram_id, now)
        uow.users.mark_unreachable(telegram_id, now + timedelta(hours=1))
        uow.commit()
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        user = uow.users.get_by_telegram_id(telegram_id)
        assert user is not None and user.unreachable_at == now
        # When they press Start again
        uow.users.mark_reachable(telegram_id)
        uow.commit()
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        user = uow.users.get_by_telegram_id(telegram_id)
        assert user is not None and user.unreachable_at is None


def test_marking_a_group_chat_unreachable_is_harmless(session: Session, now: datetime) -> None:
    # Group chat ids are negative and never a user's id
    UserRepository(session).mark_unreachable(-1001234567890, now)

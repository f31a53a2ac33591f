"""Instants are stored and returned timezone-aware, in UTC, whatever zone the caller used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from db.models import AuditLogEntry
from db.uow import SqlAlchemyUnitOfWork


def test_timestamps_are_timezone_aware(session_factory: sessionmaker[Session], telegram_id: int) -> None:
    # Given an instant expressed in a venue's local time (Kolkata, UTC+05:30)
    local = datetime(2026, 3, 29, 21, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        uow.users.upsert_from_telegram(
            telegram_user_id=telegram_id,
            chat_id=None,
            first_name="Ada",
            username=None,
            language_code=None,
            now=local,
        )
        uow.commit()
    # When it is read back in another transaction
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        user = uow.users.get_by_telegram_id(telegram_id)
        assert user is not None
        stored = user.created_at
    # Then it is the same instant, tz-aware, in UTC
    assert stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)
    assert stored == local
    assert stored == datetime(2026, 3, 29, 16, 0, tzinfo=UTC)


def test_database_sessions_run_in_utc(session: Session) -> None:
    # make_engine pins TimeZone=UTC, so server-side now() and casts never pick up the host's zone
    assert session.execute(text("SHOW TIME ZONE")).scalar_one() == "UTC"


def test_audit_details_round_trip_as_json(session: Session, now: datetime) -> None:
    session.add(
        AuditLogEntry(
            actor_telegram_user_id=None,
            action="offer.expired",
            subject_type="offer",
            subject_id="42",
            details={"remaining": 3, "tags": ["vegan"]},
            created_at=now,
        )
    )
    session.flush()
    row = session.execute(
        text("SELECT details, created_at FROM audit_log WHERE subject_type = 'offer' AND subject_id = '42'")
    ).one()
    assert row.details == {"remaining": 3, "tags": ["vegan"]}
    assert row.created_at == now and row.created_at.utcoffset() == timedelta(0)

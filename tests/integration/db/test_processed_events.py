"""Processed events: a redelivered Telegram update, Stripe event or task is a no-op."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import ProcessedEvent
from db.uow import SqlAlchemyUnitOfWork


def test_claiming_an_event_twice_is_a_noop(session_factory: sessionmaker[Session], now: datetime) -> None:
    event_id = f"evt_{uuid.uuid4().hex}"
    # Given Stripe delivered checkout.session.completed and we handled it
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        first = uow.events.claim("stripe", event_id, now)
        uow.commit()
    # When Stripe delivers the same event again
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        second = uow.events.claim("stripe", event_id, now + timedelta(minutes=1))
        uow.commit()
    # Then only the first claim wins
    assert (first, second) == (True, False)


def test_same_key_from_different_sources_are_different_events(
    session_factory: sessionmaker[Session], now: datetime
) -> None:
    key = str(uuid.uuid4().int % 10**9)
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        assert uow.events.claim("telegram", key, now) is True
        assert uow.events.claim("task", key, now) is True


def test_a_claim_rolled_back_with_its_effects_can_be_retried(
    session_factory: sessionmaker[Session], now: datetime
) -> None:
    update_id = str(uuid.uuid4().int % 10**12)
    # Given a worker that claimed an update and then crashed before committing
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        assert uow.events.claim("telegram", update_id, now) is True
    # When Telegram's redelivery is processed
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        retried = uow.events.claim("telegram", update_id, now)
    # Then the retry does the work
    assert retried is True


def test_purging_forgets_only_old_keys_in_bounded_batches(
    session_factory: sessionmaker[Session], now: datetime
) -> None:
    source = f"purge-test-{uuid.uuid4().hex[:8]}"
    long_ago = datetime(2001, 1, 1, tzinfo=now.tzinfo)
    # Given three keys from long ago and one from today
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        for i in range(3):
            uow.events.claim(source, f"old-{i}", long_ago + timedelta(seconds=i))
        uow.events.claim(source, "fresh", now)
        uow.commit()
    # When the cleanup job purges keys older than a week, two at a time
    cutoff = now - timedelta(days=7)
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        first_batch = uow.events.purge_older_than(cutoff, limit=2)
        uow.commit()
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        uow.events.purge_older_than(cutoff, limit=2)
        uow.commit()
    # Then the old keys are gone and today's key is still remembered
    assert first_batch == 2
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        left = uow.session.scalars(select(ProcessedEvent.key).where(ProcessedEvent.source == source)).all()
        assert left == ["fresh"]
        assert uow.session.scalar(select(func.count()).where(ProcessedEvent.processed_at < cutoff)) == 0

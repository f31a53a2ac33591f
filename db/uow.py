"""Unit of work: one transaction, the repositories that write in it, and rollback unless committed.

    with SqlAlchemyUnitOfWork(session_factory) as uow:
        if not uow.events.claim("telegram", str(update_id), now):
            return  # redelivered update: already handled
        ...
        uow.commit()

Leaving the block without `commit()` (an exception, an early return) rolls everything back, so a half-done
use case never leaks a partial write, and a redelivered task finds nothing claimed.

Rows loaded in a block that ends uncommitted are expired by that rollback and cannot be read afterwards
(DetachedInstanceError): read what you need inside the block. After `commit()` they stay readable
(expire_on_commit=False), so a handler can build its reply from what it just wrote.
"""

from __future__ import annotations

from functools import cached_property
from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from db.business_repositories import BusinessRepository, DialogRepository
from db.dead_letter_repositories import DeadLetterRepository
from db.discovery_repositories import DiscoveryRepository
from db.offer_repositories import OfferRepository
from db.order_repositories import OrderRepository
from db.payment_repositories import PaymentRepository
from db.refund_repositories import RefundRepository
from db.repositories import AuditLogRepository, OutboxRepository, ProcessedEventRepository, UserRepository
from db.reservation_repositories import ReservationRepository


class SqlAlchemyUnitOfWork:
    """Repositories are made on first use (a use case touches two or three of the thirteen) and belong to
    this block's session; entering again starts a new session with new repositories."""

    session: Session

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def __enter__(self) -> Self:
        for name in _REPOSITORIES:
            self.__dict__.pop(name, None)
        self.session = self._session_factory()
        return self

    @cached_property
    def users(self) -> UserRepository:
        return UserRepository(self.session)

    @cached_property
    def events(self) -> ProcessedEventRepository:
        return ProcessedEventRepository(self.session)

    @cached_property
    def outbox(self) -> OutboxRepository:
        return OutboxRepository(self.session)

    @cached_property
    def audit(self) -> AuditLogRepository:
        return AuditLogRepository(self.session)

    @cached_property
    def dialogs(self) -> DialogRepository:
        return DialogRepository(self.session)

    @cached_property
    def businesses(self) -> BusinessRepository:
        return BusinessRepository(self.session)

    @cached_property
    def offers(self) -> OfferRepository:
        return OfferRepository(self.session)

    @cached_property
    def orders(self) -> OrderRepository:
        return OrderRepository(self.session)

    @cached_property
    def reservations(self) -> ReservationRepository:
        return ReservationRepository(self.session)

    @cached_property
    def refunds(self) -> RefundRepository:
        return RefundRepository(self.session)

    @cached_property
    def dead_letters(self) -> DeadLetterRepository:
        return DeadLetterRepository(self.session)

    @cached_property
    def payments(self) -> PaymentRepository:
        return PaymentRepository(self.session)

    @cached_property
    def discovery(self) -> DiscoveryRepository:
        return DiscoveryRepository(self.session)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Always: after commit() this discards nothing (or only work done after the commit, which was
        # never committed either); the connection goes back to the pool clean.
        try:
            self.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


_REPOSITORIES = tuple(
    name for name, value in vars(SqlAlchemyUnitOfWork).items() if isinstance(value, cached_property)
)

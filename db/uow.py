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
    session: Session
    users: UserRepository
    events: ProcessedEventRepository
    outbox: OutboxRepository
    audit: AuditLogRepository
    dialogs: DialogRepository
    businesses: BusinessRepository
    offers: OfferRepository
    orders: OrderRepository
    reservations: ReservationRepository
    refunds: RefundRepository
    dead_letters: DeadLetterRepository
    payments: PaymentRepository
    discovery: DiscoveryRepository

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def __enter__(self) -> Self:
        self.session = self._session_factory()
        self.users = UserRepository(self.session)
        self.events = ProcessedEventRepository(self.session)
        self.outbox = OutboxRepository(self.session)
        self.audit = AuditLogRepository(self.session)
        self.dialogs = DialogRepository(self.session)
        self.businesses = BusinessRepository(self.session)
        self.offers = OfferRepository(self.session)
        self.orders = OrderRepository(self.session)
        self.reservations = ReservationRepository(self.session)
        self.refunds = RefundRepository(self.session)
        self.dead_letters = DeadLetterRepository(self.session)
        self.payments = PaymentRepository(self.session)
        self.discovery = DiscoveryRepository(self.session)
        return self

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

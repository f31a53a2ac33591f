"""MarketBot's tables, one module per area; import from here (`from db.models import Offer`)."""

from db.models.audit import AuditLogEntry
from db.models.base import NAMING_CONVENTION, Base
from db.models.catalog import (
    BUSINESS_CATEGORIES,
    BUSINESS_STATUSES,
    OFFER_STATUSES,
    Business,
    Offer,
    OfferItem,
    Venue,
)
from db.models.dialogs import Dialog
from db.models.reliability import OUTBOX_METHODS, OUTBOX_STATUSES, DeadLetter, OutboxMessage, ProcessedEvent
from db.models.sales import (
    ORDER_STATUSES,
    PAYMENT_STATUSES,
    REFUND_REASONS,
    REFUND_STATUSES,
    RESERVATION_STATUSES,
    Order,
    Payment,
    Refund,
    Reservation,
    ReservationItem,
)
from db.models.users import USER_ROLES, User

metadata = Base.metadata

__all__ = [
    "BUSINESS_CATEGORIES",
    "BUSINESS_STATUSES",
    "NAMING_CONVENTION",
    "OFFER_STATUSES",
    "ORDER_STATUSES",
    "OUTBOX_METHODS",
    "OUTBOX_STATUSES",
    "PAYMENT_STATUSES",
    "REFUND_REASONS",
    "REFUND_STATUSES",
    "RESERVATION_STATUSES",
    "USER_ROLES",
    "AuditLogEntry",
    "Base",
    "Business",
    "DeadLetter",
    "Dialog",
    "Offer",
    "OfferItem",
    "Order",
    "OutboxMessage",
    "Payment",
    "ProcessedEvent",
    "Refund",
    "Reservation",
    "ReservationItem",
    "User",
    "Venue",
    "metadata",
]

"""Ports: what the domain needs from the outside world, as Protocols. Adapters live in tasks/.

Payments are the payments issue's to connect to Stripe; until then the refund port records the request
(see tasks.payments_port), so cancelling an offer already asks for every paid order's refund in one place.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID


class RefundPort(Protocol):
    def refund_order(self, order_id: UUID, *, reason: str, idempotency_key: str) -> None:
        """Refund a paid order in full. Must be idempotent per `idempotency_key` (derive it from our ids)."""

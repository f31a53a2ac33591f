"""Ports: what the domain needs from the outside world, as Protocols. Adapters live in tasks/.

Refunds are decided in the use case's transaction (tasks.refunds.request_refund writes a refund row) and
executed later by the refund task through this port; tasks.adapters.stripe_payments.StripePayments is the
real implementation, the tests drive it against the Stripe stand-in.
"""

from __future__ import annotations

from typing import Any, Protocol


class RefundGateway(Protocol):
    def refund(self, *, payment_intent_id: str, idempotency_key: str, amount_minor: int | None = None) -> str:
        """Refund a PaymentIntent (in full without `amount_minor`); return the provider's refund id.

        Repeat-safe per `idempotency_key` (derive it from our ids): the same key returns the same refund.
        """

    def retrieve_checkout(self, session_id: str) -> Any:
        """The Checkout Session as the provider has it now (its `payment_intent` once paid)."""

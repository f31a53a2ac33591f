"""The one Stripe adapter: Checkout Sessions for holds, and refunds. Real stripe-python client.

Idempotency keys derive from our own ids (invariant 3): a retried task sends the same key and Stripe
replays the first answer instead of creating a second session or refund. STRIPE_API_BASE_URL points the
client at the local stand-in in tests and the sandbox.

Checkout Sessions must live at least 30 minutes, while a hold lasts 15: the session's `expires_at` is the
later of the hold's end and now + 31 min, and the worker expires the session when it releases the hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import stripe

MIN_SESSION_LIFETIME = timedelta(minutes=31)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the network, Stripe's rate limit, Stripe's own 5xx, or the same idempotency key
    still in flight elsewhere (409). Anything else (4xx) will fail the same way again."""
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    if isinstance(exc, stripe.IdempotencyError):
        return exc.http_status == 409
    if isinstance(exc, stripe.APIError):
        return exc.http_status is None or exc.http_status >= 500
    return False  # Stripe's floor is 30 minutes; one more for clock skew


@dataclass(frozen=True)
class CheckoutLine:
    name: str
    unit_amount_minor: int  # in Stripe's unit for the currency (whole units for zero-decimal currencies)
    quantity: int


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    expires_at: datetime


class StripePayments:
    def __init__(self, *, secret_key: str, api_base_url: str, max_network_retries: int = 2) -> None:
        self.client = stripe.StripeClient(
            secret_key, base_addresses={"api": api_base_url}, max_network_retries=max_network_retries
        )

    def create_checkout(
        self,
        *,
        reservation_id: UUID,
        currency: str,
        lines: list[CheckoutLine],
        hold_expires_at: datetime,
        now: datetime,
        success_url: str,
        cancel_url: str,
        metadata: dict[str, str],
    ) -> CheckoutSession:
        expires_at = max(hold_expires_at, now + MIN_SESSION_LIFETIME)
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": str(reservation_id),
            "success_url": success_url,
            "cancel_url": cancel_url,
            "expires_at": int(expires_at.timestamp()),
            "metadata": {**metadata, "reservation_id": str(reservation_id)},
            "line_items": [
                {
                    "quantity": line.quantity,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": line.unit_amount_minor,
                        "product_data": {"name": line.name},
                    },
                }
                for line in lines
            ],
        }
        session = self.client.v1.checkout.sessions.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": f"checkout-{reservation_id}"},
        )
        return CheckoutSession(id=session.id, url=str(session.url), expires_at=expires_at)

    def retrieve_checkout(self, session_id: str) -> Any:
        """Re-read a session instead of trusting a webhook payload (events may be stale or reordered)."""
        return self.client.v1.checkout.sessions.retrieve(session_id)

    def intent_status(self, payment_intent_id: str) -> str:
        """A PaymentIntent's state now: a delayed method's payment ends here, not on its session."""
        return str(self.client.v1.payment_intents.retrieve(payment_intent_id).status)

    def expire_checkout(self, session_id: str) -> None:
        """Close an open session whose hold was released; already completed/expired sessions are left."""
        try:
            self.client.v1.checkout.sessions.expire(session_id)
        except stripe.InvalidRequestError:
            session = self.retrieve_checkout(session_id)
            if session.status == "open":
                raise

    def refund(self, *, payment_intent_id: str, idempotency_key: str, amount_minor: int | None = None) -> str:
        params: dict[str, Any] = {"payment_intent": payment_intent_id}
        if amount_minor is not None:
            params["amount"] = amount_minor
        refund = self.client.v1.refunds.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
        return str(refund.id)

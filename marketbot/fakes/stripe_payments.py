"""The customer's and the money's side of the fake Stripe: paying a Checkout Session, delayed payment
methods settling or failing, and refunds against the PaymentIntent. Runs under ``FakeStripeState.lock``."""

from __future__ import annotations

from typing import Any

from marketbot.fakes.stripe_state import (
    FakeStripeState,
    StripeApiError,
    get_session,
    int_param,
    metadata_param,
    new_id,
    no_such,
)

__all__ = ["complete_session", "finish_async", "refund_payment"]


# -- the customer pays --------------------------------------------------------------------------------------


def complete_session(
    state: FakeStripeState, session_id: str, *, async_payment: bool = False
) -> dict[str, Any]:
    """The customer pays: a PaymentIntent (succeeded, or processing for delayed methods) and the event."""
    session = get_session(state, session_id)
    if session["status"] != "open":
        raise StripeApiError(400, f"This Checkout Session is {session['status']} and can no longer be paid.")
    now = state.now()
    pi_id, charge_id = new_id("pi"), new_id("ch")
    amount, currency = session["amount_total"], session["currency"]
    state.payment_intents[pi_id] = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": 0 if async_payment else amount,
        "currency": currency,
        "created": now,
        "latest_charge": charge_id,
        "livemode": False,
        "metadata": {},
        "payment_method_types": ["card"],
        "status": "processing" if async_payment else "succeeded",
    }
    state.charges[charge_id] = {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "currency": currency,
        "created": now,
        "livemode": False,
        "paid": not async_payment,
        "payment_intent": pi_id,
        "refunded": False,
        "status": "pending" if async_payment else "succeeded",
    }
    session.update(
        status="complete",
        payment_status="unpaid" if async_payment else "paid",
        payment_intent=pi_id,
        url=None,
        customer_details={"email": session["customer_email"], "name": None, "phone": None},
    )
    state.emit("checkout.session.completed", session)
    return session


def finish_async(state: FakeStripeState, session_id: str, *, succeeded: bool) -> dict[str, Any]:
    """The delayed payment method settles (or fails) after ``checkout.session.completed``."""
    session = get_session(state, session_id)
    pi = state.payment_intents.get(session.get("payment_intent") or "")
    if session["status"] != "complete" or pi is None or pi["status"] != "processing":
        raise StripeApiError(400, f"Checkout Session {session_id} has no pending asynchronous payment.")
    charge = state.charges[pi["latest_charge"]]
    if succeeded:
        pi.update(status="succeeded", amount_received=pi["amount"])
        charge.update(status="succeeded", paid=True)
        session["payment_status"] = "paid"
        state.emit("checkout.session.async_payment_succeeded", session)
    else:
        pi["status"] = "requires_payment_method"
        charge.update(status="failed", amount_captured=0)
        state.emit("checkout.session.async_payment_failed", session)
    return session


def refund_payment(
    state: FakeStripeState, params: dict[str, Any], idempotency_key: str | None = None
) -> dict[str, Any]:
    pi_id = params.get("payment_intent")
    if not pi_id and params.get("charge"):
        charge_obj = state.charges.get(str(params["charge"]))
        if charge_obj is None:
            raise no_such("charge", str(params["charge"]), "charge")
        pi_id = charge_obj["payment_intent"]
    if not pi_id:
        raise StripeApiError(
            400, "One of the following params should be provided for this request: payment_intent or charge."
        )
    pi = state.payment_intents.get(str(pi_id))
    if pi is None:
        raise no_such("payment_intent", str(pi_id), "payment_intent")
    charge = state.charges[pi["latest_charge"]]
    if pi["status"] != "succeeded":
        raise StripeApiError(
            400,
            f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
            code="charge_not_refundable"
            if pi["status"] != "processing"
            else "payment_intent_unexpected_state",
            param="payment_intent",
        )
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining <= 0:
        raise StripeApiError(
            400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = int_param(params, "amount", minimum=1)
    if amount is None:
        amount = remaining
    if amount > remaining:
        raise StripeApiError(
            400,
            f"Refund amount ({amount} {charge['currency']}) is greater than unrefunded amount on charge "
            f"({remaining} {charge['currency']})",
            code="amount_too_large",
            param="amount",
        )
    reason = params.get("reason") or None
    if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
        raise StripeApiError(
            400,
            "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
            param="reason",
        )
    refund = {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "charge": charge["id"],
        "created": state.now(),
        "currency": charge["currency"],
        "metadata": metadata_param(params),
        "payment_intent": pi["id"],
        "reason": reason,
        "status": "succeeded",
    }
    state.refunds[refund["id"]] = refund
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    state.emit("refund.created", refund, idempotency_key=idempotency_key)
    state.emit("charge.refunded", charge, idempotency_key=idempotency_key)
    return refund

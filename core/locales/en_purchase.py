"""English messages for buying: holding units, paying with Stripe Checkout, the order and its pickup code."""

MESSAGES: dict[str, str] = {
    # ---- holding units ---------------------------------------------------------------------------------
    "buy.reserved": "🧺 Reserved {items} for {minutes} minutes — preparing your payment link…",
    "buy.preparing": "🧺 Your hold on {items} is ready — preparing your payment link…",
    "buy.pay": (
        "🧺 {items} from <b>{business}</b>\n"
        "Held for you until <b>{until}</b> ({zone} time) — total <b>{total}</b>.\n"
        "Tap Pay to finish with Stripe."
    ),
    "buy.button.pay": "💳 Pay {total}",
    "buy.button.release": "✖️ Release hold",
    "buy.button.back": "↩️ Back to the offer",
    "buy.sold_out": "😔 Sorry, someone was faster: only {left} × {name} left.",
    "buy.sold_out_none": "😔 Sorry, someone was faster: {name} is sold out.",
    "buy.not_on_sale": "This offer is no longer on sale (paused, sold out or its pickup time is over).",
    "buy.invalid_quantity": "Please pick between 1 and {limit} units in total, then tap Buy again.",
    "buy.banned": "Your account can't reserve food at the moment. Please contact support if this is a mistake.",
    "buy.already_holding": "You already hold units of this offer — pay for them or release them first.",
    "buy.hold_over": "This hold is over. Open the offer again to reserve.",
    "buy.already_paid": "✅ That one is already paid. Your pickup code is in /orders.",
    "buy.checkout_failed": (
        "😔 We couldn't start the payment, so your hold on {items} was released. Please try again in a moment."
    ),
    # ---- releasing a hold ------------------------------------------------------------------------------
    "hold.released": "Hold released — {items} went back on sale.",
    "hold.not_found": "That hold doesn't exist any more.",
    "hold.already_paid": "✅ This hold is already paid. See /orders for your pickup code.",
    "hold.already_over": "This hold had already ended; nothing to release.",
    # ---- paying ----------------------------------------------------------------------------------------
    "pay.paid_card": "✅ Paid ✓ — {items}, total {total}. Your pickup code is below.",
    "pay.confirmation": (
        "🎉 <b>Order confirmed!</b>\n\n"
        "Pickup code: <b>{code}</b>\n"
        "{items} — {total}\n"
        "📍 <b>{venue}</b>, {address}\n"
        "🕒 Pick up {window} ({zone} time)\n\n"
        "Show this code at the counter."
    ),
    "pay.owner_new_order": "🛎 New order <b>{code}</b>: {items} ({title}), picks up between {window} ({zone} time).",
    "pay.processing": (
        "⏳ Thanks! Your bank is still confirming the payment for {items}. "
        "We'll send your pickup code as soon as it is confirmed."
    ),
    "pay.card.processing": "⏳ {items} — your bank is confirming the payment…",
    "pay.card.failed": "❌ {items} — the payment didn't go through; the hold was released.",
    "pay.card.ended": "⌛ {items} — this hold has ended.",
    "pay.card.refunding": "↩️ {items} — paid after the hold ended; a full refund is on its way.",
    "hold.payment_processing": "⏳ Your bank is already confirming the payment for this hold, so it can't be released.",
    "pay.failed": "❌ The payment for {items} didn't go through, so your hold was released. You can try again.",
    "pay.hold_ended": "⌛ Your hold on {items} ended before it was paid, so the units went back on sale.",
    "pay.refunding": (
        "😔 Your payment for {items} arrived after your hold had ended, and the units were gone. "
        "Your money ({total}) is on its way back: you'll get a full refund."
    ),
}

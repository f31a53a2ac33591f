"""English messages for a customer's orders: "My orders", the pickup code, cancelling, and refunds."""

MESSAGES: dict[str, str] = {
    # ---- "My orders" -----------------------------------------------------------------------------------
    "orders.empty": "🧾 You have no orders yet. Send /find to see surplus food near you.",
    "orders.header": "🧾 <b>Your orders</b> (page {page} of {pages})",
    "orders.section.active": "<b>To pick up</b>",
    "orders.section.past": "<b>Past orders</b>",
    "orders.entry": ("<b>{number}. {title}</b> · {business}\n{items} — {total}\n🕒 {window}\n{status}"),
    "orders.status.paid": "✅ Paid · pickup code <code>{code}</code>",
    "orders.status.missed": "⌛ Not picked up: the pickup window has ended",
    "orders.status.redeemed": "🎉 Picked up",
    "orders.status.refunded": "↩️ Refunded to your card",
    "orders.status.cancelled.none": "✖️ Cancelled",
    "orders.status.cancelled.requested": "✖️ Cancelled · refund on its way to your card",
    "orders.status.cancelled.succeeded": "✖️ Cancelled · refunded to your card",
    "orders.status.cancelled.failed": "✖️ Cancelled · refund delayed, our team is on it",
    "orders.button.show": "🎟 Code #{number}",
    "orders.button.cancel": "✖️ Cancel #{number}",
    "orders.button.previous": "◀️ Newer",
    "orders.button.next": "Older ▶️",
    "orders.not_found": "We couldn't find that order. Send /orders to see yours.",
    # ---- the pickup code -------------------------------------------------------------------------------
    "orders.code_caption": (
        "🎟 Pickup code <b>{code}</b>\n<b>{title}</b> · {business}\n{items}\n🕒 {window}\n\n"
        "Show this code (or the QR) at the counter."
    ),
    "orders.code_unavailable": "This order can't be picked up any more, so it has no code to show.",
    # ---- cancelling ------------------------------------------------------------------------------------
    "orders.confirm_cancel": (
        "Cancel your order for <b>{items}</b> ({title}, {business})? You'll get {total} back.\n"
        "You can cancel until {deadline}."
    ),
    "orders.button.cancel_yes": "Yes, cancel it",
    "orders.button.cancel_no": "No, keep it",
    "orders.cancelled": "✖️ Cancelled: {items} ({title}). {total} is on its way back to your card.",
    "orders.owner_told": (
        "ℹ️ Order <b>{code}</b> for <b>{title}</b> was cancelled by the customer; {items} are back in stock."
    ),
    "orders.refused.cutoff_passed": (
        "⏰ This order can't be cancelled any more: cancelling closes {minutes} minutes before pickup "
        "starts, at {deadline}. The shop is already preparing it."
    ),
    "orders.refused.already_collected": "This order was already picked up, so it can't be cancelled.",
    "orders.refused.already_refunded": "This order was already refunded to your card.",
    "orders.refused.cancel_refused": "This order can't be cancelled.",
    "orders.refused.already_cancelled.none": "This order is already cancelled.",
    "orders.refused.already_cancelled.requested": (
        "This order is already cancelled; your refund is on its way."
    ),
    "orders.refused.already_cancelled.succeeded": (
        "This order is already cancelled and the money was refunded to your card."
    ),
    "orders.refused.already_cancelled.failed": (
        "This order is already cancelled. Your refund is delayed; our team is on it."
    ),
    # ---- refunds (from the payments queue) -------------------------------------------------------------
    "refund.sent": (
        "💸 Refund of {total} for <b>{title}</b> sent to your card. Banks usually take 5–10 days to show it."
    ),
}

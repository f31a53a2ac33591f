"""English messages the periodic jobs send: end-of-window summaries, pickup reminders, last calls."""

MESSAGES: dict[str, str] = {
    "maint.offer_ended": (
        "⏰ The pickup window for <b>{title}</b> is over.\n"
        "Sold {sold} of {offered} units in {orders} orders ({revenue}).\n"
        "Collected: {redeemed} · not collected: {not_collected}"
    ),
    "maint.offer_ended_unsold": (
        "⏰ The pickup window for <b>{title}</b> is over. Nothing sold this time: a lower price or an "
        "earlier post often helps. /newoffer"
    ),
    "maint.reminder": (
        "⏰ Don't forget: pick up <b>{title}</b> at {venue}{address} before <b>{end}</b>.\n"
        "Your code: <code>{code}</code> · /orders"
    ),
    "maint.reminder_address": ", {address}",
    "maint.last_call": (
        "📣 <b>{title}</b>: pickup ends at <b>{end}</b> and {count} order(s) are not collected yet: {codes}"
    ),
}

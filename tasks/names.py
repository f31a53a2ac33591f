"""Task names and queues: the contract between publishers (gateway, beat) and workers.

Queues separate latency classes so a backlog in one cannot starve another: a flood of outbound messages
must not delay a user's next tap, and a slow reconciliation must not delay payments.
"""

QUEUE_INTERACTIVE = "interactive"
QUEUE_PAYMENTS = "payments"
QUEUE_OUTBOUND = "outbound"
QUEUE_MAINTENANCE = "maintenance"
ALL_QUEUES = (QUEUE_INTERACTIVE, QUEUE_PAYMENTS, QUEUE_OUTBOUND, QUEUE_MAINTENANCE)

DRAIN_USER_MAILBOX = "marketbot.interactive.drain_user_mailbox"
CREATE_CHECKOUT = "marketbot.payments.create_checkout"
PROCESS_STRIPE_EVENT = "marketbot.payments.process_stripe_event"
EXECUTE_REFUND = "marketbot.payments.execute_refund"
EXPIRE_CHECKOUT = "marketbot.payments.expire_checkout"
SEND_OUTBOX_MESSAGE = "marketbot.outbound.send_outbox_message"
RESEND_PENDING_OUTBOX = "marketbot.maintenance.resend_pending_outbox"
DRAIN_STALE_MAILBOXES = "marketbot.maintenance.drain_stale_mailboxes"
RELEASE_EXPIRED_HOLDS = "marketbot.maintenance.release_expired_holds"
EXPIRE_ENDED_OFFERS = "marketbot.maintenance.expire_ended_offers"
SEND_PICKUP_REMINDERS = "marketbot.maintenance.send_pickup_reminders"
PURGE_PROCESSED_EVENTS = "marketbot.maintenance.purge_processed_events"
PUBLISH_GAUGES = "marketbot.maintenance.publish_gauges"
RECONCILE_PAYMENTS = "marketbot.maintenance.reconcile_payments"

ROUTES = {
    "marketbot.interactive.*": {"queue": QUEUE_INTERACTIVE},
    "marketbot.payments.*": {"queue": QUEUE_PAYMENTS},
    "marketbot.outbound.*": {"queue": QUEUE_OUTBOUND},
    "marketbot.maintenance.*": {"queue": QUEUE_MAINTENANCE},
}

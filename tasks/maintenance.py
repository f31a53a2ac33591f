"""The periodic jobs' use cases (scheduled in beat_schedule/): each one idempotent and batch-bounded.

A missed tick only delays tidying up (availability never depends on these jobs: lapsed holds stop counting
the moment they lapse); a repeated tick finds nothing left to do, because every batch changes the rows it
claims in the same transaction as the messages it queues.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from core.i18n import Html, resolve_language, t
from core.messages import Reply
from core.money import Money
from core.pickup import display_code
from db.maintenance_repositories import EndedOffer, MaintenanceRepository
from db.uow import SqlAlchemyUnitOfWork
from tasks.jobs import Job
from tasks.names import EXPIRE_CHECKOUT

log = structlog.get_logger(__name__)

# Lapsed holds released per transaction, each batch one statement (db/maintenance_repositories.py). Measured
# on 100,000 holds (bench/hold_expiry.py): 500 took twice as long overall as 5,000, and 10,000 hardly less;
# a batch of 5,000 holds its item rows for well under a second, so buyers of those items barely wait.
HOLD_BATCH = 5000
OFFER_BATCH = 200
REMINDER_BATCH = 200
REMINDER_LEAD_MINUTES = 60  # buyers are reminded once, when the window is open and ends within the hour
LAST_CALL_LEAD_MINUTES = 20  # the business hears about uncollected orders this long before the end
PROCESSED_EVENT_RETENTION = timedelta(days=30)  # Stripe retries events for up to 3 days; Telegram 24 h

UowFactory = Callable[[], SqlAlchemyUnitOfWork]


@dataclass
class SweepResult:
    count: int = 0
    outbox_ids: list[int] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


def _queue(
    uow: SqlAlchemyUnitOfWork, result: SweepResult, dedup_key: str, reply: Reply, now: datetime
) -> None:
    method, payload = reply.to_bot_api()
    outbox_id = uow.outbox.add(
        dedup_key=dedup_key, chat_id=reply.chat_id, method=method, payload=payload, now=now
    )
    if outbox_id is not None:
        result.outbox_ids.append(outbox_id)


def _local_time(at: datetime, timezone: str) -> str:
    return at.astimezone(ZoneInfo(timezone)).strftime("%H:%M")


def release_expired_holds(uow_factory: UowFactory, *, now: datetime, batch: int = HOLD_BATCH) -> SweepResult:
    """Give lapsed holds' units back in batches, and expire their Checkout Sessions afterwards.

    One transaction per batch: a batch is committed before the next is claimed, so a crash rolls back only
    the batch in flight (the next tick claims it again), and a batch that came back short means nothing is
    left that this sweep could claim (the rest, if any, is locked by someone deciding it). Sessions of holds
    released before a crash stay open until reconciliation closes them (tasks/reconcile.py).
    """
    result = SweepResult()
    while True:
        with uow_factory() as uow:
            released = MaintenanceRepository(uow.session).release_lapsed_holds(now=now, batch=batch)
            uow.commit()
        result.count += len(released.reservation_ids)
        # A session left open could still be paid; the payment path would then re-reserve or refund, but
        # closing it spares the buyer that detour.
        result.jobs += [Job(EXPIRE_CHECKOUT, (session_id,)) for session_id in released.open_session_ids]
        if len(released.reservation_ids) < batch:
            break
    if result.count:
        log.info("expired_holds_released", count=result.count, sessions=len(result.jobs))
    return result


def _summary(ended: EndedOffer) -> str:
    lang = resolve_language(ended.owner_language)
    if ended.orders == 0:
        return t("maint.offer_ended_unsold", lang, title=ended.title)
    return t(
        "maint.offer_ended",
        lang,
        title=ended.title,
        sold=ended.units_sold,
        offered=ended.units_offered,
        orders=ended.orders,
        revenue=Money(ended.revenue_minor, ended.currency).display(),
        redeemed=ended.redeemed,
        not_collected=ended.not_collected,
    )


def expire_ended_offers(uow_factory: UowFactory, *, now: datetime, batch: int = OFFER_BATCH) -> SweepResult:
    """Offers whose pickup window is over become expired; each business gets a short summary."""
    result = SweepResult()
    while True:
        with uow_factory() as uow:
            ended = MaintenanceRepository(uow.session).expire_ended_offers(now=now, batch=batch)
            for offer in ended:
                if not offer.was_published:
                    continue  # a draft nobody saw ends quietly
                reply = Reply(offer.owner_chat_id, _summary(offer))
                _queue(uow, result, f"offer-ended:{offer.offer_id}", reply, now)
            uow.commit()
        result.count += len(ended)
        if len(ended) < batch:
            break
    if result.count:
        log.info("ended_offers_expired", count=result.count)
    return result


def send_pickup_reminders(
    uow_factory: UowFactory, *, now: datetime, batch: int = REMINDER_BATCH
) -> SweepResult:
    """Remind each buyer once while their window is open and about to end; give businesses a last call."""
    result = SweepResult()
    with uow_factory() as uow:
        repo = MaintenanceRepository(uow.session)
        for reminder in repo.claim_due_reminders(now=now, lead_minutes=REMINDER_LEAD_MINUTES, batch=batch):
            lang = resolve_language(reminder.language_code)
            address = t("maint.reminder_address", lang, address=reminder.address) if reminder.address else ""
            text = t(
                "maint.reminder",
                lang,
                title=reminder.title,
                venue=reminder.venue_name,
                address=Html(address),
                end=_local_time(reminder.pickup_end, reminder.timezone),
                code=display_code(reminder.pickup_code),
            )
            _queue(uow, result, f"pickup-reminder:{reminder.order_id}", Reply(reminder.chat_id, text), now)
            result.count += 1
        for call in repo.offers_for_last_call(now=now, lead_minutes=LAST_CALL_LEAD_MINUTES, batch=batch):
            # Once per offer, however many ticks fall inside the last-call window.
            if not uow.events.claim("last_call", str(call.offer_id), now):
                continue
            lang = resolve_language(call.owner_language)
            text = t(
                "maint.last_call",
                lang,
                title=call.title,
                end=_local_time(call.pickup_end, call.timezone),
                count=len(call.codes),
                codes=", ".join(display_code(code) for code in call.codes),
            )
            _queue(uow, result, f"last-call:{call.offer_id}", Reply(call.owner_chat_id, text), now)
        uow.commit()
    if result.count:
        log.info("pickup_reminders_queued", count=result.count)
    return result


def purge_processed_events(uow_factory: UowFactory, *, now: datetime) -> int:
    """Forget idempotency keys older than the longest redelivery window, in short transactions."""
    total = 0
    while True:
        with uow_factory() as uow:
            purged = uow.events.purge_older_than(now - PROCESSED_EVENT_RETENTION)
            uow.commit()
        total += purged
        if purged < 10_000:
            break
    if total:
        log.info("processed_events_purged", count=total)
    return total

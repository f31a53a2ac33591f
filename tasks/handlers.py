"""Use-case handlers: verbs that combine the database (unit of work) with core rules.

`handle_user_command` applies one command inside one transaction: it claims the update id (a redelivered
update is a no-op), checks the mailbox fencing token, runs core.conversation, stores state changes and the
replies (outbox) together, and commits. Sending happens after the commit, from the outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError

from core import offer_wizard, registration
from core.callbacks import (
    AdminAction,
    Browse,
    BuyOffer,
    DialogChoice,
    MyOrders,
    OfferManage,
    OrderAction,
    ReleaseHold,
    SetRadius,
    ViewOffer,
    decode,
)
from core.commands import (
    CancelDialog,
    ChooseRole,
    FindFood,
    ListMyOffers,
    NewOffer,
    OpenAdmin,
    PressButton,
    RedeemPickup,
    SendText,
    ShareLocation,
    ShowMyOrders,
    ShowStats,
    ShowTodaysOrders,
    StartBot,
    UserCommand,
    parse_command,
)
from core.conversation import Decision, UserView, apology, respond
from core.i18n import resolve_language
from core.messages import Reply
from core.pickup import normalize_code
from db.uow import SqlAlchemyUnitOfWork
from marketbot.logs import correlation
from tasks import business_flows as flows
from tasks import discovery_flows, offer_flows, order_flows, pickup_flows, purchase_flows
from tasks.jobs import Job
from tasks.mailbox import StaleFence

log = structlog.get_logger(__name__)

# Which callback prefix belongs to which dialog: a button only answers the dialog that offered it.
DIALOG_PREFIXES = {
    registration.DIALOG_KIND: "rg",
    offer_wizard.DIALOG_KIND: "of",
    offer_flows.EDIT_DIALOG: "oe",
}

UPDATE_EVENT_SOURCE = "telegram_update"

# Errors worth retrying: the database or Redis is briefly away. Anything else is a bug or bad data and must
# not block the user's mailbox behind it.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, ConnectionError, TimeoutError)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    import redis

    return isinstance(exc, redis.ConnectionError | redis.TimeoutError)


def _store_replies(
    uow: SqlAlchemyUnitOfWork, command: UserCommand, replies: tuple[Reply, ...], now: datetime, tag: str = "r"
) -> list[int]:
    ids: list[int] = []
    for index, reply in enumerate(replies):
        method, payload = reply.to_bot_api()
        # Keyed by update id: a retried handler finds the row and adds nothing (invariant 3).
        outbox_id = uow.outbox.add(
            dedup_key=f"tg:{command.update_id}:{tag}{index}",
            chat_id=reply.chat_id,
            method=method,
            payload=payload,
            now=now,
            correlation_id=command.correlation_id,
        )
        if outbox_id is not None:
            ids.append(outbox_id)
    return ids


@dataclass(frozen=True)
class Effects:
    """What to publish once a command's transaction has committed."""

    outbox_ids: list[int] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    counts: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def handle_user_command(
    command: UserCommand,
    uow: SqlAlchemyUnitOfWork,
    *,
    fence_token: int,
    now: datetime,
    admins: frozenset[int] = frozenset(),
) -> Effects:
    """Apply one command; return the outbox messages to send and the jobs to publish once committed."""
    actor = command.actor
    if not uow.events.claim(UPDATE_EVENT_SOURCE, str(command.update_id), now):
        log.info("update_duplicate_skipped", update_id=command.update_id)
        return Effects()
    row = uow.users.upsert_from_telegram(
        telegram_user_id=actor.telegram_user_id,
        chat_id=actor.chat_id,
        first_name=actor.first_name,
        username=actor.username,
        language_code=actor.language_code,
        now=now,
    )
    if not uow.users.advance_fence(actor.telegram_user_id, fence_token):
        raise StaleFence(f"fence token {fence_token} is stale")
    if row.unreachable_at is not None:
        # They are talking to us again, so they unblocked the bot.
        uow.users.mark_reachable(actor.telegram_user_id)
    user = UserView(
        telegram_user_id=actor.telegram_user_id,
        chat_id=actor.chat_id,
        language=resolve_language(row.language_code or actor.language_code),
        first_name=actor.first_name,
        role=row.role,
    )
    ctx = flows.Context(command=command, user=user, row_id=row.id, admins=admins, now=now)
    replies = _route(ctx, uow)
    ids = _store_replies(uow, command, replies, now)
    uow.commit()
    log.info("update_handled", update_id=command.update_id, kind=command.kind, replies=len(ids))
    return Effects(ids, list(ctx.jobs), list(ctx.counts))


def _route(ctx: flows.Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    """Pick the use case for a command: a dialog in progress takes free input; commands and buttons win."""
    command = ctx.command
    dialog = uow.dialogs.get(ctx.row_id)
    if isinstance(command, CancelDialog | StartBot) and dialog is not None:
        uow.dialogs.end(ctx.row_id)
        if isinstance(command, CancelDialog):
            return (Reply(ctx.chat_id, ctx.say("cancelled").text, remove_reply_keyboard=True),)
        dialog = None
    if isinstance(command, OpenAdmin):
        return flows.admin_console(ctx, uow)
    action = decode(command.data) if isinstance(command, PressButton) else None
    if isinstance(action, AdminAction):
        return flows.admin_action(ctx, uow, action)
    if isinstance(action, OfferManage):
        return offer_flows.manage_offer(ctx, uow, action)
    if isinstance(action, Browse):
        return discovery_flows.browse(ctx, uow, action)
    if isinstance(action, SetRadius):
        return discovery_flows.set_radius(ctx, uow, action)
    if isinstance(action, ViewOffer):
        return discovery_flows.view_offer(ctx, uow, action)
    if isinstance(action, BuyOffer):
        return purchase_flows.buy(ctx, uow, action)
    if isinstance(action, ReleaseHold):
        return purchase_flows.release_hold(ctx, uow, action)
    if isinstance(action, MyOrders):
        return order_flows.my_orders(ctx, uow, action.page)
    if isinstance(action, OrderAction):
        return order_flows.order_action(ctx, uow, action)
    if isinstance(command, PressButton) and not isinstance(action, DialogChoice):
        return (ctx.say("invalid_callback"),)
    if action == flows.REGISTER_AGAIN and (dialog is None or dialog.kind != registration.DIALOG_KIND):
        return flows.register_again(ctx, uow)
    if isinstance(command, StartBot) and (command.start_parameter or "").startswith("p_"):
        # The customer's QR code opens this deep link on the business's phone.
        return pickup_flows.redeem(ctx, uow, command.start_parameter or "")
    if isinstance(command, RedeemPickup):
        return pickup_flows.redeem(ctx, uow, command.code)
    if isinstance(command, ShowTodaysOrders):
        return pickup_flows.todays_orders(ctx, uow)
    if isinstance(command, ShowStats):
        return pickup_flows.stats(ctx, uow)
    if isinstance(command, NewOffer):
        return offer_flows.start_offer(ctx, uow)
    if isinstance(command, ListMyOffers):
        return offer_flows.list_offers(ctx, uow)
    if isinstance(command, ShowMyOrders):
        return order_flows.my_orders(ctx, uow, 0)
    if dialog is not None and dialog.kind in DIALOG_PREFIXES:
        choice = action if isinstance(action, DialogChoice) else None
        if choice is not None and choice.dialog != DIALOG_PREFIXES[dialog.kind]:
            return (ctx.say("invalid_callback"),)  # a button from another dialog's old message
        inp = flows.to_dialog_input(command, choice)
        if dialog.kind == registration.DIALOG_KIND:
            state = registration.RegistrationState(step=dialog.step, data=dialog.data)
            return flows.registration_step(ctx, uow, state, inp)
        if dialog.kind == offer_flows.EDIT_DIALOG:
            return offer_flows.edit_step(ctx, uow, dialog.step, dialog.data, inp)
        wizard = offer_wizard.OfferWizardState(step=dialog.step, data=dialog.data)
        return offer_flows.offer_step(ctx, uow, wizard, inp)
    if dialog is not None and dialog.kind in flows.REASON_DIALOGS.values():
        text = command.text if isinstance(command, SendText) else None
        return flows.admin_reason(ctx, uow, dialog.kind, dialog.data, text)
    if isinstance(action, DialogChoice):  # a dialog button with no dialog running: stale keyboard
        return (ctx.say("invalid_callback"),)
    if isinstance(command, SendText) and normalize_code(command.text) and _owns_verified_business(ctx, uow):
        return pickup_flows.redeem(ctx, uow, command.text)  # an owner typing a customer's code
    if isinstance(command, FindFood) or (isinstance(command, ChooseRole) and command.role == "customer"):
        if isinstance(command, ChooseRole):
            uow.users.set_role(ctx.user.telegram_user_id, "customer", ctx.now)
        return discovery_flows.find_food(ctx, uow)
    if isinstance(command, ShareLocation):
        return discovery_flows.location_shared(ctx, uow, command.latitude, command.longitude)
    if isinstance(command, ChooseRole) and command.role == "business":
        uow.users.set_role(ctx.user.telegram_user_id, "business", ctx.now)
        return flows.start_or_show_business(ctx, uow)
    decision: Decision = respond(command, ctx.user)
    if decision.set_role is not None:
        uow.users.set_role(ctx.user.telegram_user_id, decision.set_role, ctx.now)
    if decision.set_location is not None:
        uow.users.set_location(ctx.user.telegram_user_id, *decision.set_location, ctx.now)
    return decision.replies


def _owns_verified_business(ctx: flows.Context, uow: SqlAlchemyUnitOfWork) -> bool:
    business = uow.businesses.latest_of_owner(ctx.row_id)
    return business is not None and business.status == "verified"


def apply_mailbox_entry(
    raw: str,
    fence_token: int,
    *,
    uow_factory: Callable[[], SqlAlchemyUnitOfWork],
    now: Callable[[], datetime],
    publish_send: Callable[[int], None],
    publish_job: Callable[[Job], None],
    admins: frozenset[int] = frozenset(),
    record_count: Callable[[str, dict[str, str]], None] = lambda _metric, _labels: None,
) -> None:
    """Process one mailbox entry end to end: handle, commit, then publish the sends.

    Transient failures raise (the drain task retries with the entry still at the head of the mailbox).
    A bug or bad data is logged with its traceback, the user gets an apology, and the entry is consumed.
    """
    try:
        command = parse_command(raw)
    except ValidationError:
        log.error("mailbox_entry_malformed")
        return
    with correlation(command.correlation_id):
        try:
            with uow_factory() as uow:
                effects = handle_user_command(command, uow, fence_token=fence_token, now=now(), admins=admins)
        except StaleFence:
            raise
        except Exception as exc:
            if _is_transient(exc):
                log.warning("update_transient_failure", update_id=command.update_id, error=type(exc).__name__)
                raise
            log.exception("update_failed", update_id=command.update_id, kind=command.kind)
            effects = Effects(_apologize(command, uow_factory, now()))
        for outbox_id in effects.outbox_ids:
            publish_send(outbox_id)
        for job in effects.jobs:
            publish_job(job)
        for metric, labels in effects.counts:
            record_count(metric, labels)


def _apologize(
    command: UserCommand, uow_factory: Callable[[], SqlAlchemyUnitOfWork], now: datetime
) -> list[int]:
    with uow_factory() as uow:
        if not uow.events.claim(UPDATE_EVENT_SOURCE, str(command.update_id), now):
            return []
        user = UserView(
            telegram_user_id=command.actor.telegram_user_id,
            chat_id=command.actor.chat_id,
            language=resolve_language(command.actor.language_code),
        )
        ids = _store_replies(uow, command, (apology(user),), now, tag="e")
        uow.commit()
        return ids

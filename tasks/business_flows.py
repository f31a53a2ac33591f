"""Business registration and verification: the use cases behind the registration dialog and admin buttons.

Everything re-checks on the server what callback data claims (invariant 5): only ids in
ADMIN_TELEGRAM_IDS decide, a decision applies only to a business in a state that allows it (so a double tap
or two admins at once produce one effect), and every decision goes to the audit log with who, what, when
and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core import registration
from core.callbacks import AdminAction, AdminVerb, DialogChoice
from core.commands import SendPhoto, SendText, ShareContact, ShareLocation, UserCommand
from core.conversation import UserView
from core.dialog_inputs import (
    ButtonInput,
    ContactInput,
    DialogInput,
    LocationInput,
    OtherInput,
    PhotoInput,
    TextInput,
)
from core.i18n import resolve_language, t
from core.messages import InlineButton, Reply
from core.registration import BusinessDraft, RegistrationState
from db.models import Business, User
from db.uow import SqlAlchemyUnitOfWork
from tasks.jobs import Job

REGISTER_AGAIN = DialogChoice("rg", "n", "again")
REASON_DIALOGS = {"reject": "admin_reject_reason", "suspend": "admin_suspend_reason"}
# Which decision is allowed from which status, and where it leads.
DECISIONS: dict[str, tuple[str, str]] = {
    "approve": ("pending", "verified"),
    "reject": ("pending", "rejected"),
    "suspend": ("verified", "suspended"),
    "reinstate": ("suspended", "verified"),
}


@dataclass(frozen=True)
class Context:
    command: UserCommand
    user: UserView
    row_id: int
    admins: frozenset[int]
    now: datetime
    # Follow-up tasks to publish once this command's transaction has committed (tasks.jobs).
    jobs: list[Job] = field(default_factory=list)
    # Metric increments to record once the transaction committed (name, labels): a rolled-back or retried
    # command is not counted twice.
    counts: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def count(self, metric: str, **labels: str) -> None:
        self.counts.append((metric, labels))

    def defer(self, task: str, *args: str | int) -> None:
        """Ask for `task` to run after the commit (e.g. create the Checkout Session for a new hold)."""
        self.jobs.append(Job(task, args))

    @property
    def chat_id(self) -> int:
        return self.user.chat_id

    @property
    def lang(self) -> str:
        return self.user.language

    @property
    def is_admin(self) -> bool:
        return self.user.telegram_user_id in self.admins

    def say(self, key: str, **params: object) -> Reply:
        return Reply(self.chat_id, t(key, self.lang, **params))

    def audit(
        self,
        uow: SqlAlchemyUnitOfWork,
        action: str,
        subject_type: str,
        subject_id: object,
        *,
        reason: str | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        """Record that this user did `action` to the subject now (the audit log's who/what/when/why)."""
        uow.audit.add(
            actor_telegram_user_id=self.user.telegram_user_id,
            action=action,
            subject_type=subject_type,
            subject_id=str(subject_id),
            reason=reason,
            details=details,
            now=self.now,
        )


# -- the owner's side -------------------------------------------------------------------------------------


def start_or_show_business(ctx: Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    """ "Sell surplus food": start registering, or say where the owner's business stands."""
    business = uow.businesses.latest_of_owner(ctx.row_id)
    if business is None:
        return _start(ctx, uow)
    if business.status == "rejected":
        again = InlineButton(t("biz.register_again", ctx.lang), callback_data=REGISTER_AGAIN.encode())
        reply = ctx.say("biz.rejected", name=business.name, reason=business.rejection_reason or "—")
        return (Reply(ctx.chat_id, reply.text, inline_keyboard=((again,),)),)
    return (ctx.say(f"biz.{business.status}", name=business.name),)


def register_again(ctx: Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    """The "Register again" button under a rejection; stale if the owner's latest business isn't rejected."""
    business = uow.businesses.latest_of_owner(ctx.row_id)
    if business is None or business.status != "rejected":
        return (ctx.say("invalid_callback"),)
    return _start(ctx, uow)


def _start(ctx: Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    result = registration.start(ctx.chat_id, ctx.lang)
    uow.dialogs.store(ctx.row_id, registration.DIALOG_KIND, result.state, now=ctx.now)
    return result.replies


def registration_step(
    ctx: Context, uow: SqlAlchemyUnitOfWork, state: RegistrationState, inp: DialogInput
) -> tuple[Reply, ...]:
    result = registration.advance(state, inp, ctx.chat_id, ctx.lang)
    if result.submitted is not None:
        uow.dialogs.end(ctx.row_id)
        return result.replies + _submit(ctx, uow, result.submitted)
    uow.dialogs.store(ctx.row_id, registration.DIALOG_KIND, result.state, now=ctx.now)
    return result.replies


def _submit(ctx: Context, uow: SqlAlchemyUnitOfWork, draft: BusinessDraft) -> tuple[Reply, ...]:
    business = uow.businesses.create_with_venue(
        owner_user_id=ctx.row_id,
        name=draft.name,
        category=draft.category,
        currency=draft.currency,
        contact_phone=draft.contact_phone,
        address=draft.address,
        latitude=draft.latitude,
        longitude=draft.longitude,
        timezone=draft.timezone,
        now=ctx.now,
    )
    ctx.audit(uow, "business.registered", "business", business.id)
    return tuple(_admin_card(business, draft, admin, ctx) for admin in sorted(ctx.admins))


def _admin_card(business: Business, draft: BusinessDraft, admin_id: int, ctx: Context) -> Reply:
    lang = "en"  # operators' console language; their own language_code is unknown until they write
    summary = t(
        "reg.summary",
        lang,
        name=draft.name,
        category=t(f"category.{draft.category}", lang),
        address=draft.address,
        pin=t("reg.pin.yes" if draft.latitude is not None else "reg.pin.no", lang),
        phone=draft.contact_phone,
        timezone=draft.timezone,
        currency=draft.currency,
    )
    text = t(
        "admin.new_registration", lang, id=business.id, summary=summary, owner=ctx.user.first_name or "?"
    )
    return Reply(
        admin_id,
        text,
        inline_keyboard=(
            (
                InlineButton(
                    t("admin.button.approve", lang),
                    callback_data=AdminAction("approve", business.id).encode(),
                ),
                InlineButton(
                    t("admin.button.reject", lang), callback_data=AdminAction("reject", business.id).encode()
                ),
            ),
        ),
    )


def to_dialog_input(command: UserCommand, choice: DialogChoice | None) -> DialogInput:
    if choice is not None:
        return ButtonInput(choice)
    if isinstance(command, SendText):
        return TextInput(command.text)
    if isinstance(command, ShareLocation):
        return LocationInput(command.latitude, command.longitude)
    if isinstance(command, ShareContact):
        return ContactInput(command.phone_number, command.is_own)
    if isinstance(command, SendPhoto):
        return PhotoInput(command.file_id, command.thumb_file_id)
    return OtherInput(command.kind)


# -- the admin's side -------------------------------------------------------------------------------------


def admin_console(ctx: Context, uow: SqlAlchemyUnitOfWork) -> tuple[Reply, ...]:
    if not ctx.is_admin:
        return (ctx.say("admin.only"),)
    counts = uow.businesses.count_by_status()
    replies = [
        ctx.say(
            "admin.header",
            pending=counts.get("pending", 0),
            verified=counts.get("verified", 0),
            suspended=counts.get("suspended", 0),
        )
    ]
    pending = uow.businesses.list_by_status("pending")
    if not pending:
        replies.append(ctx.say("admin.nothing_pending"))
    for business in pending:
        replies.append(_entry(ctx, business, ("approve", "reject")))
    for business in uow.businesses.list_by_status("suspended"):
        replies.append(_entry(ctx, business, ("reinstate",)))
    for business in uow.businesses.list_by_status("verified"):
        replies.append(_entry(ctx, business, ("suspend",)))
    return tuple(replies)


def _entry(ctx: Context, business: Business, verbs: tuple[AdminVerb, ...]) -> Reply:
    text = t(
        "admin.entry",
        ctx.lang,
        id=business.id,
        name=business.name,
        category=t(f"category.{business.category}", ctx.lang),
        status=business.status,
    )
    buttons = tuple(
        InlineButton(
            t(f"admin.button.{verb}", ctx.lang), callback_data=AdminAction(verb, business.id).encode()
        )  # type: ignore[arg-type]
        for verb in verbs
    )
    return Reply(ctx.chat_id, text, inline_keyboard=(buttons,))


def admin_action(ctx: Context, uow: SqlAlchemyUnitOfWork, action: AdminAction) -> tuple[Reply, ...]:
    if not ctx.is_admin:
        return (ctx.say("admin.only"),)
    business = uow.businesses.get_for_update(action.business_id)
    if business is None:
        return (ctx.say("admin.not_found", id=action.business_id),)
    allowed_from, _ = DECISIONS[action.verb]
    if business.status != allowed_from:
        return (ctx.say("admin.already", id=business.id, name=business.name, status=business.status),)
    if action.verb in REASON_DIALOGS:
        uow.dialogs.save(
            ctx.row_id,
            kind=REASON_DIALOGS[action.verb],
            step="reason",
            data={"business_id": business.id},
            now=ctx.now,
        )
        return (ctx.say(f"admin.ask_{action.verb}_reason", id=business.id, name=business.name),)
    return _decide(ctx, uow, business, action.verb, reason=None)


def admin_reason(
    ctx: Context, uow: SqlAlchemyUnitOfWork, kind: str, data: dict[str, object], text: str | None
) -> tuple[Reply, ...]:
    verb = next(v for v, k in REASON_DIALOGS.items() if k == kind)
    reason = " ".join((text or "").split())
    if not 3 <= len(reason) <= 500:
        return (ctx.say("admin.reason_length"),)
    uow.dialogs.end(ctx.row_id)
    if not ctx.is_admin:  # removed from ADMIN_TELEGRAM_IDS mid-dialog
        return (ctx.say("admin.only"),)
    business = uow.businesses.get_for_update(int(str(data["business_id"])))
    if business is None:
        return (ctx.say("admin.not_found", id=data["business_id"]),)
    if business.status != DECISIONS[verb][0]:
        return (ctx.say("admin.already", id=business.id, name=business.name, status=business.status),)
    return _decide(ctx, uow, business, verb, reason=reason)


def _decide(
    ctx: Context, uow: SqlAlchemyUnitOfWork, business: Business, verb: str, *, reason: str | None
) -> tuple[Reply, ...]:
    _, new_status = DECISIONS[verb]
    uow.businesses.set_status(business, new_status, now=ctx.now, reason=reason)
    ctx.audit(uow, f"business.{verb}", "business", business.id, reason=reason)
    owner: User = uow.businesses.owner_of(business)
    owner_lang = _language(owner)
    owner_key = {
        "approve": "owner.approved",
        "reject": "owner.rejected",
        "suspend": "owner.suspended",
        "reinstate": "owner.reinstated",
    }[verb]
    done_key = {
        "approve": "admin.approved",
        "reject": "admin.rejected",
        "suspend": "admin.suspended",
        "reinstate": "admin.reinstated",
    }[verb]
    to_owner = Reply(
        owner.chat_id or owner.telegram_user_id,
        t(owner_key, owner_lang, name=business.name, reason=reason or ""),
    )
    return (ctx.say(done_key, id=business.id, name=business.name), to_owner)


def _language(user: User) -> str:
    return resolve_language(user.language_code)

"""English messages (HTML parse mode). Keys are stable ids; placeholders use str.format names."""

MESSAGES: dict[str, str] = {
    "welcome.title": "👋 <b>Welcome to MarketBot!</b>",
    "welcome.title_named": "👋 <b>Welcome to MarketBot, {first_name}!</b>",
    "welcome.body": (
        "Local bakeries, restaurants and shops post good food they would otherwise throw away, "
        "at a discount, for pickup today.\n\n"
        "What would you like to do?"
    ),
    "button.find_food": "🔎 Find food",
    "button.sell_food": "🏪 Sell surplus food",
    "button.share_location": "📍 Share my location",
    "help": (
        "<b>How MarketBot works</b>\n\n"
        "/start — choose what you want to do\n"
        "/find — food near you · /orders — your orders and pickup codes\n"
        "/help — this message\n"
        "/cancel — leave what you are doing\n"
        "/newoffer — post an offer (verified businesses)\n"
        "/myoffers — your offers with live counts\n"
        "/today — today's orders · /redeem CODE — confirm a pickup · /stats — your numbers\n\n"
        "<b>Finding food:</b> share your location, pick an offer, reserve and pay, then show your "
        "pickup code at the counter within the pickup window.\n"
        "<b>Selling food:</b> register your business; once verified you can post offers in a minute."
    ),
    "role.customer": (
        "🔎 <b>Let's find food near you.</b>\n\n"
        "Share your location with the button below so we can show offers nearby. "
        "We keep it only to sort offers by distance."
    ),
    "location.saved": "📍 Thanks! Your location is saved. Offers near you will show up here.",
    "cancelled": "Okay, cancelled. Send /start whenever you want to begin again.",
    "nothing_to_cancel": "There is nothing to cancel. Send /start to see what you can do.",
    "unknown_text": (
        "🤔 I didn't understand that. Send /start to see what you can do, or /help for the commands."
    ),
    "unknown_command": "🤔 I don't know the command {command}. Send /help to see the ones I know.",
    "unsupported_input": (
        "I can't use that here. Send /start to see what you can do, or /help for the commands."
    ),
    "invalid_callback": "That button has expired. Send /start to get fresh buttons.",
    "slow_down": "⏳ You're going a little fast. Give me a few seconds and try again.",
    "error.generic": "😕 Something went wrong on our side. Please try again in a moment.",
    "admin.only": "That is for MarketBot operators only.",
    # --- business registration ---
    "category.bakery": "🥐 Bakery",
    "category.restaurant": "🍽 Restaurant",
    "category.cafe": "☕ Café",
    "category.grocery": "🛒 Grocery",
    "category.other": "🏷 Other",
    "reg.intro": (
        "🏪 <b>Let's register your business.</b> It takes about a minute; send /cancel at any time to stop."
    ),
    "reg.ask.name": "What is your business called?",
    "reg.ask.category": "What kind of business is it?",
    "reg.ask.address": "What is the pickup address customers should come to?",
    "reg.ask.location": (
        "📍 Send the venue's location with the button below (best done at the venue), so customers nearby "
        "can find you."
    ),
    "reg.location.skip_note": 'No pin? You can continue with the address only; you won\'t appear in "nearby".',
    "reg.ask.phone": "📞 Share a contact phone number for our team with the button below.",
    "reg.phone.saved": "Thanks, got your number.",
    "reg.ask.timezone": "🕒 Which timezone is the venue in? Pickup times are shown in it. Tap one or type a name.",
    "reg.ask.currency": "💱 Which currency do you sell in? Tap one or type its code (e.g. SGD).",
    "reg.ask.confirm": "Is everything right?",
    "reg.summary": (
        "<b>{name}</b>\n{category}\n📍 {address} ({pin})\n📞 {phone}\n🕒 {timezone}\n💱 {currency}"
    ),
    "reg.pin.yes": "pin set",
    "reg.pin.no": "no pin",
    "reg.button.send_location": "📍 Send venue location",
    "reg.button.skip_location": "Continue without a pin",
    "reg.button.share_phone": "📞 Share my phone number",
    "reg.button.currency": "{code}",
    "reg.button.submit": "✅ Submit for verification",
    "reg.button.restart": "✏️ Start over",
    "reg.restarted": "Okay, let's start again.",
    "reg.submitted": (
        "🎉 Thanks! <b>{name}</b> is registered and waiting for our team to verify it. "
        "We'll message you here as soon as that's done."
    ),
    "reg.hint.text_expected": "Please answer with a text message.",
    "reg.hint.name_length": "The name should be 2 to 64 characters.",
    "reg.hint.address_length": "The address should be 5 to 200 characters.",
    "reg.hint.pick_a_button": "Please tap one of the buttons.",
    "reg.hint.stale_button": "That button belongs to an earlier question.",
    "reg.hint.location_expected": 'Please send the location with the button, or tap "Continue without a pin".',
    "reg.hint.phone_expected": 'Please use the "Share my phone number" button.',
    "reg.hint.own_phone": "Please share your own number with the button, not someone else's contact.",
    "reg.hint.timezone": "I don't know that timezone. Tap one of the buttons, or type a name like Asia/Singapore.",
    "reg.hint.currency": "I don't know that currency. Tap one of the buttons, or type a code like SGD.",
    # --- business status, for the owner ---
    "biz.pending": "⏳ <b>{name}</b> is waiting for verification. We'll message you here when it's done.",
    "biz.verified": "✅ <b>{name}</b> is verified. Send /newoffer to post an offer, /myoffers to see yours.",
    "biz.rejected": "❌ Your registration of <b>{name}</b> was not approved: {reason}",
    "biz.suspended": "⛔ <b>{name}</b> is suspended. Please contact our team.",
    "biz.register_again": "Register again",
    "owner.approved": "🎉 Good news: <b>{name}</b> is verified! You can now publish offers.",
    "owner.rejected": "❌ <b>{name}</b> was not approved.\nReason: {reason}\n\nYou can register again with /start.",
    "owner.suspended": "⛔ <b>{name}</b> has been suspended.\nReason: {reason}",
    "owner.reinstated": "✅ <b>{name}</b> is active again.",
    # --- offers, owner's side ---
    "owner.offers.register_first": 'Register your business first: send /start and tap "Sell surplus food".',
    "owner.offers.published": "🚀 <b>{title}</b> is live! Customers nearby can see it now. /myoffers shows live counts.",
    "owner.offers.none": "You have no offers yet. Send /newoffer to post one.",
    "owner.offers.header": "<b>Offers of {name}</b>",
    "owner.offers.line": "<b>{title}</b> · {status}\n🕒 {window}\n🟢 {available} available · ⏳ {held} held · ✅ {sold} sold",
    "owner.offers.status.draft": "draft",
    "owner.offers.status.published": "🟢 live",
    "owner.offers.status.paused": "⏸ paused",
    "owner.offers.status.sold_out": "sold out",
    "owner.offers.status.cancelled": "cancelled",
    "owner.offers.status.expired": "ended",
    "owner.offers.button.pause": "⏸ Pause",
    "owner.offers.button.resume": "▶️ Resume",
    "owner.offers.button.mark_sold_out": "🚫 Sold out",
    "owner.offers.button.restock": "♻️ Back on sale",
    "owner.offers.button.cancel": "🗑 Cancel offer",
    "owner.offers.button.cancel_confirmed": "Yes, cancel and refund buyers",
    "owner.offers.confirm_cancel": "Cancel <b>{title}</b>? It disappears for customers, and {paid} paid order(s) will be refunded in full.",
    "owner.offers.done.pause": "⏸ <b>{title}</b> is paused: customers can't see it until you resume.",
    "owner.offers.done.resume": "▶️ <b>{title}</b> is live again.",
    "owner.offers.done.mark_sold_out": "🚫 <b>{title}</b> is marked sold out.",
    "owner.offers.done.restock": "♻️ <b>{title}</b> is on sale again.",
    "owner.offers.done.cancel_confirmed": "🗑 <b>{title}</b> is cancelled. Buyers are being refunded and told.",
    "owner.offers.refused": "<b>{title}</b> is {status}, so that button no longer applies. /myoffers shows the current state.",
    "owner.offers.window_over": "The pickup window of <b>{title}</b> has ended, so it can't go back on sale.",
    "owner.offers.not_yours": "That offer isn't one of yours (or no longer exists). /myoffers lists yours.",
    "owner.offers.button.edit": "✏️ Edit",
    "owner.edit.pick_item": "Which item of <b>{title}</b> do you want to change?",
    "owner.edit.item_button": "{name}: {left} of {total} left · {price}",
    "owner.edit.pick_field": "What should change for <b>{name}</b>?",
    "owner.edit.quantity": "Quantity",
    "owner.edit.price": "Offer price",
    "owner.edit.ask_quantity": "Type the new total quantity of <b>{name}</b>: a whole number from {minimum} to 1000 (buyers already have the units below that).",
    "owner.edit.ask_price": "Type the new offer price of <b>{name}</b>: more than 0 and below the normal price {normal}. Existing reservations keep their price.",
    "owner.edit.below_committed": "Buyers already have {minimum} of <b>{name}</b>, so the quantity can't go below {minimum}.",
    "owner.edit.done": "✅ <b>{name}</b> in <b>{title}</b> is updated.",
    "buyer.offer_cancelled": "😔 Sorry: <b>{title}</b> was cancelled by the shop. Your payment is being refunded in full.",
    # --- admin ---
    "admin.new_registration": ("🆕 <b>New business to verify</b> (#{id})\n\n{summary}\n👤 owner: {owner}"),
    "admin.button.approve": "✅ Approve",
    "admin.button.reject": "❌ Reject",
    "admin.button.suspend": "⛔ Suspend",
    "admin.button.reinstate": "♻️ Reinstate",
    "admin.approved": "✅ Approved #{id} {name}.",
    "admin.rejected": "❌ Rejected #{id} {name}.",
    "admin.suspended": "⛔ Suspended #{id} {name}.",
    "admin.reinstated": "♻️ Reinstated #{id} {name}.",
    "admin.ask_reject_reason": "Why is #{id} {name} rejected? The owner will see your answer. /cancel to stop.",
    "admin.ask_suspend_reason": "Why is #{id} {name} suspended? The owner will see your answer. /cancel to stop.",
    "admin.reason_length": "Please give a reason of 3 to 500 characters.",
    "admin.already": "#{id} {name} is already {status}; nothing changed.",
    "admin.not_found": "There is no business #{id}.",
    "admin.header": "<b>Operator console</b>\nPending: {pending} · Verified: {verified} · Suspended: {suspended}",
    "admin.nothing_pending": "No businesses are waiting for verification.",
    "admin.entry": "#{id} <b>{name}</b> · {category} · {status}",
}

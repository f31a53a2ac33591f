"""English messages for offers: the creation wizard, the card customers see, managing offers."""

MESSAGES: dict[str, str] = {
    # ---- the creation wizard -------------------------------------------------------------------------
    "offer.intro": "🍱 Let's post a new offer for <b>{business}</b>. It takes a minute.",
    "offer.ask.photo": "📷 Send a photo of the food customers will get.",
    "offer.ask.title": "✏️ Give the offer a short title (up to 80 characters), e.g. <i>Surprise pastry bag</i>.",
    "offer.ask.description": (
        "📝 Describe it in a few words (up to 500 characters): what is inside, allergens, what to bring. "
        'Or tap "Skip".'
    ),
    "offer.ask.item_name": "🥐 Item {number}: what is it called? (e.g. <i>Croissant</i>)",
    "offer.ask.item_quantity": "🔢 How many <b>{name}</b> can you offer? Type a number from 1 to 1000.",
    "offer.ask.normal_price": (
        "💲 What is the normal price of one <b>{name}</b> in {currency}? Type a number, e.g. {example}."
    ),
    "offer.ask.offer_price": (
        "🏷 And your offer price for one <b>{name}</b>? It must be lower than the normal price ({normal})."
    ),
    "offer.ask.more_items": "✅ Item saved ({count} of at most {max}). Add another item, or are you done?",
    "offer.ask.pickup": (
        "🕒 When can customers pick up? Type one window in {zone} time, e.g. <code>18:00-21:00</code> for "
        "today or <code>tomorrow 8:00-10:30</code>."
    ),
    "offer.ask.tags": "🌱 Tap the dietary tags that apply (tap again to remove), then tap Done.",
    "offer.ask.preview": "👀 This is exactly how customers will see your offer. Publish it?",
    "offer.ask.edit": "✏️ What would you like to change?",
    "offer.button.skip": "Skip",
    "offer.button.add_item": "➕ Add another item",
    "offer.button.items_done": "✅ Done with items",
    "offer.button.tags_done": "Done",
    "offer.button.publish": "🚀 Publish",
    "offer.button.edit": "✏️ Edit",
    "offer.button.discard": "🗑 Discard",
    "offer.button.edit_photo": "📷 Photo",
    "offer.button.edit_title": "✏️ Title",
    "offer.button.edit_description": "📝 Description",
    "offer.button.edit_items": "🥐 Items (enter all again)",
    "offer.button.edit_pickup": "🕒 Pickup window",
    "offer.button.edit_tags": "🌱 Tags",
    "offer.button.back_to_preview": "↩️ Back to the preview",
    "offer.items.max_reached": "That's {max} items, the most one offer can have.",
    "offer.discarded": "🗑 Offer discarded. Nothing was published.",
    "offer.hint.stale_button": "That button belongs to an earlier question.",
    "offer.hint.pick_a_button": "Please tap one of the buttons.",
    "offer.hint.photo_expected": "Please send a photo of the food (as a photo, not a file).",
    "offer.hint.text_expected": "Please answer with a text message.",
    "offer.hint.description_expected": 'Please answer with a text message, or tap "Skip".',
    "offer.hint.title_empty": "The title can't be empty.",
    "offer.hint.title_too_long": "The title should be at most 80 characters.",
    "offer.hint.title_invalid_characters": "The title should be one line of plain text.",
    "offer.hint.description_too_long": "The description should be at most 500 characters.",
    "offer.hint.description_invalid_characters": "The description contains characters that can't be shown.",
    "offer.hint.item_name_empty": "The item name can't be empty.",
    "offer.hint.item_name_too_long": "The item name should be at most 64 characters.",
    "offer.hint.item_name_invalid_characters": "The item name should be one line of plain text.",
    "offer.hint.quantity": "Please type a whole number from 1 to 1000, like 5.",
    "offer.hint.quantity_too_small": "Please type a whole number from 1 to 1000, like 5.",
    "offer.hint.quantity_too_large": "Please type a whole number from 1 to 1000, like 5.",
    "offer.hint.price_expected": "Please type the price in {currency} as a number, e.g. {example}.",
    "offer.hint.price_garbage": "I couldn't read that as a price. Type just the number in {currency}, e.g. {example}.",
    "offer.hint.price_negative": "A price can't be negative. Type it like {example}.",
    "offer.hint.price_too_many_decimals": "Too many decimals for {currency}. Type it like {example}.",
    "offer.hint.price_fraction_not_allowed": "{currency} prices are whole numbers, without decimals, e.g. {example}.",
    "offer.hint.price_too_large": "That price is too large. Type it like {example}.",
    "offer.hint.normal_price_zero": "The normal price must be more than 0.",
    "offer.hint.offer_price_zero": "The offer price must be more than 0.",
    "offer.hint.offer_price_not_below_normal": "The offer price must be lower than the normal price ({normal}).",
    "offer.hint.currency_mismatch": "Prices must be in the business's currency.",
    "offer.hint.pickup_format": (
        "I couldn't read that window. Type a start and end time, like 18:00-21:00 or tomorrow 8:00-10:30."
    ),
    "offer.hint.pickup_end_not_after_start": "The end time must be after the start time.",
    "offer.hint.pickup_start_in_past": (
        "The start time has already passed (it is {now} now in {zone}). Start from now or later."
    ),
    "offer.hint.pickup_end_in_past": (
        'That window is already over today (it is {now} now in {zone}). For tomorrow, start with "tomorrow".'
    ),
    "offer.hint.pickup_end_too_far": "The pickup must end within 48 hours from now.",
    "offer.hint.window_passed_meanwhile": "The pickup window is no longer valid. Please type a new one.",
    # ---- the card customers see -----------------------------------------------------------------------
    "offer.card.head": "<b>{title}</b>\n🏪 {business}",
    "offer.card.item": "• {name}: <s>{normal}</s> → <b>{offer}</b> (−{percent}%), {quantity} available",
    "offer.card.item_no_percent": "• {name}: <s>{normal}</s> → <b>{offer}</b>, {quantity} available",
    "offer.card.pickup": "🕒 Pickup: {window}",
    "offer.card.tags": "🌱 {tags}",
    "offer.card.description": "{description}",
    "offer.day.today": "Today",
    "offer.day.tomorrow": "Tomorrow",
    "offer.tag.vegetarian": "Vegetarian",
    "offer.tag.vegan": "Vegan",
    "offer.tag.halal": "Halal",
    "offer.tag.gluten_free": "Gluten-free",
    "offer.tag.contains_nuts": "Contains nuts",
    "offer.tag.dairy_free": "Dairy-free",
    # --- pickups and stats (owner) ---
    "pickup.owners_only": "Only the owner of a verified business can redeem pickup codes.",
    "pickup.bad_format": (
        "That doesn't look like a pickup code. Codes have 6 letters and digits, like <code>ABC-234</code>: "
        "type it as the customer shows it, or scan their QR code."
    ),
    "pickup.unknown_code": (
        "❓ No order with code <code>{code}</code> at your business. Please check the code with the customer."
    ),
    "pickup.redeemed": "✅ <b>{code}</b> redeemed: hand <b>{buyer}</b> {items} from <b>{title}</b>.",
    "pickup.buyer_confirmed": "✅ Pickup confirmed for <b>{title}</b> at {business}. Enjoy your food! 🌱",
    "pickup.already_redeemed": "⚠️ <b>{code}</b> was already redeemed on {when}. Don't hand it over again.",
    "pickup.cancelled": "⛔ Order <b>{code}</b> was cancelled. Don't hand it over.",
    "pickup.refunded": "⛔ Order <b>{code}</b> was refunded. Don't hand it over.",
    "pickup.item": "{quantity} × {name}",
    "pickup.someone": "the customer",
    "pickup.today.none": "No orders for pickup today.",
    "pickup.today.header": "📋 <b>Today's pickups at {name}</b>",
    "pickup.today.offer": "<b>{title}</b> · 🕒 {window}",
    "pickup.today.line": "• {buyer} · {quantity} · <code>{code}</code> · {status}",
    "pickup.status.paid": "to collect",
    "pickup.status.redeemed": "collected ✅",
    "pickup.status.cancelled": "cancelled",
    "pickup.status.refunded": "refunded",
    "stats.header": "📊 <b>{name}</b>",
    "stats.period.today": "Today",
    "stats.period.7d": "Last 7 days",
    "stats.period.30d": "Last 30 days",
    "stats.block": (
        "<b>{period}</b>\n📦 Offers posted: {offers}\n🛍 Units sold: {units}\n💰 Revenue: {revenue}\n"
        "🌱 Food saved: {saved} units"
    ),
}

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
        "/help — this message\n"
        "/cancel — leave what you are doing\n\n"
        "<b>Finding food:</b> share your location, pick an offer, reserve and pay, then show your "
        "pickup code at the counter within the pickup window.\n"
        "<b>Selling food:</b> register your business; once verified you can post offers in a minute."
    ),
    "role.customer": (
        "🔎 <b>Let's find food near you.</b>\n\n"
        "Share your location with the button below so we can show offers nearby. "
        "We keep it only to sort offers by distance."
    ),
    "role.business": (
        "🏪 <b>Sell your surplus food.</b>\n\n"
        "Business registration opens here soon: you will enter your business name, venue and pickup "
        "details, and our team verifies you before your first offer goes live."
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
}

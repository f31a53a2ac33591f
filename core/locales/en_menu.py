"""English descriptions of the bot's commands in Telegram's menu (plain text, 1-256 characters, no HTML)."""

MESSAGES: dict[str, str] = {
    "menu.find": "Find food near you",
    "menu.orders": "My orders",
    "menu.newoffer": "Post a new offer (businesses)",
    "menu.myoffers": "My offers with live counts",
    "menu.today": "Today's orders to hand out",
    "menu.redeem": "Confirm a customer's pickup code",
    "menu.stats": "My sales numbers",
    "menu.help": "How MarketBot works",
    "menu.cancel": "Leave what you are doing",
}

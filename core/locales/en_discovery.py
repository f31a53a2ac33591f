"""English messages for customers finding food: the nearby list and an offer's detail (HTML parse mode)."""

MESSAGES: dict[str, str] = {
    "find.location_saved": "📍 Location saved. Here is what's near you:",
    "find.tab.near": "Near",
    "find.tab.latest": "Latest",
    "find.tab.popular": "Popular",
    "find.tab.ending": "Ending soon",
    "find.category.all": "All",
    "find.category.bakery": "Bakery",
    "find.category.restaurant": "Restaurant",
    "find.category.cafe": "Café",
    "find.category.grocery": "Grocery",
    "find.category.other": "Other",
    "find.list.header": "🔎 <b>{tab}</b> · {category} · within {radius}",
    "find.list.empty": (
        "Nothing on offer within {radius} right now. 🌱\n\n"
        "Try a wider distance below, another tab or category, or look again later: shops post their "
        "surplus through the day."
    ),
    "find.card": (
        "<b>{number}. {title}</b>\n🏪 {business} · 📍 {distance}\n💰 {price} · {left} left\n🕒 {window}"
    ),
    "find.card.price": "<b>{price}</b> <s>{normal}</s>",
    "find.card.price_from": "from <b>{price}</b> <s>{normal}</s>",
    "find.card.open": "{number}. {title}",
    "find.page.prev": "‹ Prev",
    "find.page.next": "Next ›",
    "find.page.of": "page {page}/{pages}",
    "find.detail.head": "<b>{title}</b>\n🏪 {business}",
    "find.detail.address": "📍 {address}",
    "find.detail.distance": "🚶 {distance} away",
    "find.detail.description": "{description}",
    "find.detail.tags": "🌱 {tags}",
    "find.detail.pickup": "🕒 Pickup: {window}",
    "find.detail.item": "• {name}: <b>{price}</b> <s>{normal}</s> · {left} left",
    "find.detail.item_sold_out": "• {name}: <s>{normal}</s> · sold out",
    "find.detail.pick_some": "Pick at least one item with ＋ to reserve.",
    "find.detail.limit": "Up to {limit} per order.",
    "find.picker.less": "− {name}: {quantity}",
    "find.picker.more": "＋",
    "find.picker.more_named": "＋ {name}: {quantity}",
    "find.buy": "Reserve {units} · {total}",
    "find.back": "‹ Back to list",
    "find.gone.unknown": "😕 That offer isn't available. Have a look at what's on offer now:",
    "find.gone.sold_out": "😕 <b>{title}</b> is sold out. Someone was faster this time.",
    "find.gone.ended": "😕 <b>{title}</b> has ended: its pickup window is over.",
    "find.gone.paused": "⏸ <b>{title}</b> is paused by the shop for now. Check back later.",
    "find.gone.cancelled": "😕 <b>{title}</b> was cancelled by the shop.",
}

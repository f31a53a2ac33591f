"""The browser sandbox: a chat-emulator page for trying MarketBot with no Telegram app and no Stripe account.

`marketbot up` without TELEGRAM_BOT_TOKEN serves it from the Telegram stand-in (``/sandbox/``). The page is
only a client: everything it does goes through the stand-in's ``/_sandbox`` API, which turns each action
into a real Update delivered to the gateway's webhook, and it shows what the workers sent to the stand-in's
Bot API. See ``page.py`` for why it lives on the stand-in's server.
"""

"""Process-level plumbing shared by every MarketBot process: settings, logging, embedded servers, the CLI."""

from marketbot import lazy_aiogram

# Before anything imports aiogram: its Bot API models are then built on first use, not all at import
# (start-up seconds and ~110 MB per process; see marketbot/lazy_aiogram.py).
lazy_aiogram.install()

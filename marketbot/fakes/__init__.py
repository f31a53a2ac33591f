"""Local stand-ins for external services (Telegram Bot API) used by tests and the local sandbox."""

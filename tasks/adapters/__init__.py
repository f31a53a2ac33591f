"""Adapters to the outside world used by workers: the Bot API sender and its shared rate limiter."""

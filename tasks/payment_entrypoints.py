"""Celery entrypoints of the payments queue: Checkout Sessions, Stripe events, refunds.

Being built (payments issue). Each task parses its arguments and calls one handler.
"""

from __future__ import annotations

"""Celery app, task entrypoints, use-case handlers and adapters (workers)."""

"""The stateless gateway: Telegram updates in, typed commands onto Celery queues.

It never touches the database (an import-linter contract checks this).
"""

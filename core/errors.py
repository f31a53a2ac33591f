"""Domain errors carry a stable code; workers map codes to translated text (core.i18n) for the user."""

from __future__ import annotations


class DomainError(Exception):
    code: str = "domain_error"

    def __init__(self, message: str = "", **params: object) -> None:
        super().__init__(message or self.code)
        self.params = params


class NotAllowed(DomainError):
    code = "not_allowed"

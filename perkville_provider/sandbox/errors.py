"""Typed errors raised by the sandbox's store; the HTTP layer maps each to one status and body shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class StoreError(Exception):
    """Base class: every refusal the store makes is one of the subclasses."""


class ValidationFailed(StoreError):
    """400: one or more fields are wrong. ``errors`` maps a field (or ``__all__``) to code+message items."""

    def __init__(self, errors: dict[str, list[dict[str, str]]], resource: str | None = None) -> None:
        self.errors = errors
        #: Set: answered in stock tastypie's form-validation shape ``{resource: {field: [messages]}}``.
        self.resource = resource
        super().__init__("; ".join(f"{f}: {e['message']}" for f, items in errors.items() for e in items))

    @classmethod
    def one(cls, field: str, code: str, message: str) -> ValidationFailed:
        return cls({field: [{"code": code, "message": message}]})


class NotFound(StoreError):
    """404: the resource does not exist, or the token may not know that it does."""


class PermissionDenied(StoreError):
    """403: the token's scopes or its user's staff role do not allow the action."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class InvalidToken(StoreError):
    """401: the bearer token is missing, unknown or revoked."""


class OAuthError(StoreError):
    """An RFC 6749 error from the token endpoint (``invalid_grant``, ``invalid_client``, ...)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(f"{error}: {description}")


class ErrorCollector:
    """Gathers field errors so a request reports all of them together, then raises once."""

    def __init__(self) -> None:
        self.errors: dict[str, list[dict[str, str]]] = {}

    def add(self, field: str, code: str, message: str) -> None:
        self.errors.setdefault(field, []).append({"code": code, "message": message})

    def collect(self, check: Callable[[], Any]) -> Any:
        """Run one field check; on failure record its errors and go on (``None``), so all are reported."""
        try:
            return check()
        except ValidationFailed as exc:
            for field, items in exc.errors.items():
                self.errors.setdefault(field, []).extend(items)
            return None

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)

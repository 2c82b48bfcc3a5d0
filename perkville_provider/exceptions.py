"""Typed errors for Perkville API failures, and the one mapping from an HTTP answer to them.

Every error a hook method raises is a ``PerkvilleError``; catch it to catch them all::

    AirflowException
    └── PerkvilleError                   status, details, codes, method, path, retriable
        ├── PerkvilleConfigurationError  the connection or the call lacks a setting (nothing sent)
        ├── RecordValidationError        a record field that cannot be sent (nothing sent); also a ValueError
        ├── PerkvilleNetworkError        no answer after every retry
        ├── PerkvilleAuthenticationError 401, or a refused token grant
        │   └── PerkvilleCircuitOpenError    refused again after a re-grant: stops the batch
        ├── PerkvillePermissionError     403
        ├── PerkvilleNotFoundError       404
        ├── PerkvilleValidationError     400/409/422: Perkville refused the data
        ├── PerkvilleRateLimitedError    429 after every retry (retry_after)
        ├── PerkvilleServerError         5xx after every retry
        └── PerkvilleAnswerError         an answer the hook cannot use (a redirect loop, an unsettled write)
            ├── PerkvilleMalformedAnswerError  empty, not JSON, nested too deep, wrong shape
            ├── PerkvilleAnswerTooLargeError   over max_response_bytes (reading stopped there)
            ├── PerkvilleForeignLinkError      a link off the API's origin (not followed)
            ├── PerkvillePaginationError       a list walk that would not end
            └── PerkvilleLookupError           an ignored filter that a bounded walk cannot settle

Every error carries the HTTP status, the ``pv_*`` (or OAuth) error codes, the method and the path,
so an operator can sort failures without parsing text. None carries the token, the password or
the client secret: every piece of server text (message, field, code) passes through
:func:`~perkville_provider.redaction.redact_text` as it is read, and the request's query string
and headers are never included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from airflow.sdk.exceptions import AirflowException

from perkville_provider.redaction import redact_text
from perkville_provider.retries import is_retriable_status

if TYPE_CHECKING:
    import requests

__all__ = [
    "CUSTOMER_SAFE_MESSAGES",
    "GENERAL_FIELD",
    "ErrorDetail",
    "PerkvilleAnswerError",
    "PerkvilleAnswerTooLargeError",
    "PerkvilleAuthenticationError",
    "PerkvilleCircuitOpenError",
    "PerkvilleConfigurationError",
    "PerkvilleError",
    "PerkvilleForeignLinkError",
    "PerkvilleLookupError",
    "PerkvilleMalformedAnswerError",
    "PerkvilleNetworkError",
    "PerkvilleNotFoundError",
    "PerkvillePaginationError",
    "PerkvillePermissionError",
    "PerkvilleRateLimitedError",
    "PerkvilleServerError",
    "PerkvilleValidationError",
    "RecordValidationError",
    "customer_safe_message",
    "error_details",
    "error_from_response",
    "summarise_details",
]

GENERAL_FIELD = "__all__"
#: An exception message holds a few server texts (each already bounded) and a hint.
MAX_MESSAGE_CHARS = 4_000

#: Customer-safe copy for join errors, from Perkville's "Joining the loyalty program" guide.
CUSTOMER_SAFE_MESSAGES: Mapping[str, str] = {
    "pv_connection_membership_not_active": (
        "Your membership is not active. Please contact the business for help."
    ),
    "pv_agreement_required": "Please review and accept the required terms to join at {perkville_url}",
}


def customer_safe_message(code: str, *, perkville_url: str | None = None) -> str | None:
    """The message Perkville recommends showing a customer for ``code``, or None if it gives none."""
    template = CUSTOMER_SAFE_MESSAGES.get(code)
    if template is None:
        return None
    return template.format(perkville_url=perkville_url or "the business's Perkville page")


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of Perkville's ``errors`` object: which field, which code, what it says."""

    field: str
    code: str
    message: str


class PerkvilleError(AirflowException):
    """Base of every Perkville API error.

    :param message: what went wrong, already free of secrets
    :param status: the HTTP status, or None when no answer arrived
    :param details: the error entries the API returned
    :param method: the HTTP method of the request
    :param path: the request path, without its query string

    ``retriable`` says whether a later try of the task could succeed where this one failed: the
    batch engine uses it to choose between a retried and a failed-for-good task. ``stops_batch``
    says that no other record can succeed either (the batch stops at once).
    """

    stops_batch: ClassVar[bool] = False
    #: True on the classes whose errors no later try can fix, whatever the status.
    permanent: ClassVar[bool] = False

    @property
    def retriable(self) -> bool:
        """No answer, 5xx, 408, 425 and 429 may pass later; any other 4xx, or a permanent class, not."""
        return not self.permanent and is_retriable_status(self.status)

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        details: tuple[ErrorDetail, ...] = (),
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.message = redact_text(message, limit=MAX_MESSAGE_CHARS)
        self.status = status
        self.details = details
        self.method = method
        self.path = path
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f"{self.method} {self.path}" if self.method and self.path else "Perkville"
        status = f" -> {self.status}" if self.status is not None else ""
        return f"{where}{status}: {self.message}"

    @property
    def codes(self) -> tuple[str, ...]:
        """The error codes in the answer, in order, without repeats."""
        return tuple(dict.fromkeys(detail.code for detail in self.details if detail.code))

    @property
    def code(self) -> str | None:
        """The first error code, the one a report shows."""
        return self.codes[0] if self.codes else None

    def fields(self) -> tuple[str, ...]:
        """The fields named in the errors, in order, without repeats."""
        return tuple(dict.fromkeys(detail.field for detail in self.details))


class PerkvilleConfigurationError(PerkvilleError):
    """The Airflow connection or the call lacks a setting it needs (no request was sent)."""

    permanent = True


class RecordValidationError(PerkvilleError, ValueError):
    """A record field that cannot be sent: says which field, what is wrong and the bad value.

    Raised before any request (so a retry cannot fix it). It is also a ``ValueError``, for callers
    that validate records without caring about the API.

    :param field: the record's field
    :param message: what is wrong, with the bad value
    :param code: a short code for reports (``invalid``, ``required``)
    """

    permanent = True

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        # Not through PerkvilleError.__init__: records are validated by the million, and a
        # record's message holds its own data, not a secret of the connection.
        Exception.__init__(self, f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = None
        self.details = (ErrorDetail(field, code, message),)
        self.method = None
        self.path = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class PerkvilleNetworkError(PerkvilleError):
    """No answer after every retry: connection refused or reset, or a timeout."""


class PerkvilleAuthenticationError(PerkvilleError):
    """401 or a refused token grant: bad username or password, bad client, or a refused token."""

    permanent = True


class PerkvilleCircuitOpenError(PerkvilleAuthenticationError):
    """Perkville refused a token granted again after a 401, or refused the grant.

    Every call of this connection in this process now fails at once, without a request, and the
    batch stops.
    """

    stops_batch = True


class PerkvillePermissionError(PerkvilleError):
    """403: the token lacks the scope, or its user lacks the staff role, for this action."""

    permanent = True


class PerkvilleNotFoundError(PerkvilleError):
    """404: the object or path does not exist (or is not visible to this token)."""

    permanent = True


class PerkvilleValidationError(PerkvilleError):
    """400: Perkville refused the request's data; ``details`` names the fields and ``pv_*`` codes."""

    permanent = True

    @property
    def field(self) -> str:
        """The first field named in the errors (``__all__`` when the error is not about one field)."""
        fields = [detail.field for detail in self.details]
        specific = [field for field in fields if field != GENERAL_FIELD]
        return (specific or fields or [GENERAL_FIELD])[0]

    def customer_message(self, *, perkville_url: str | None = None) -> str | None:
        """The customer-safe copy for the first code that has one (join errors), else None."""
        for code in self.codes:
            message = customer_safe_message(code, perkville_url=perkville_url)
            if message is not None:
                return message
        return None


class PerkvilleRateLimitedError(PerkvilleError):
    """429 after every retry; ``retry_after`` is the server's last wait hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class PerkvilleServerError(PerkvilleError):
    """5xx after every retry."""


_ERROR_CLASS_BY_STATUS: Mapping[int, type[PerkvilleError]] = {
    400: PerkvilleValidationError,
    401: PerkvilleAuthenticationError,
    403: PerkvillePermissionError,
    404: PerkvilleNotFoundError,
    409: PerkvilleValidationError,
    422: PerkvilleValidationError,
    429: PerkvilleRateLimitedError,
}


def error_details(body: Any) -> tuple[ErrorDetail, ...]:
    """Read Perkville's error entries from an answer's body.

    Reads ``{"errors": {field: [{code, message}]}}``, stock tastypie's form validation
    ``{resource_name: {field: [messages]}}`` and OAuth's ``{"error", "error_description"}``;
    anything else yields no details.
    """
    if not isinstance(body, Mapping):
        return ()
    errors = body.get("errors")
    details: list[ErrorDetail] = []
    if isinstance(errors, Mapping):
        for field, entries in list(errors.items())[:MAX_DETAILS]:
            for entry in (entries if isinstance(entries, list) else [entries])[:MAX_DETAILS]:
                if isinstance(entry, Mapping):
                    details.append(_detail(field, entry.get("code", ""), entry.get("message", "")))
                else:
                    details.append(_detail(field, "", entry))
    if not details and len(body) == 1:
        resource, fields = next(iter(body.items()))
        if resource not in ("error", "detail") and isinstance(fields, Mapping):
            for field, entries in list(fields.items())[:MAX_DETAILS]:
                for entry in (entries if isinstance(entries, list) else [entries])[:MAX_DETAILS]:
                    details.append(_detail(field, "", entry))
    if not details and isinstance(body.get("error"), str):
        details.append(_detail(GENERAL_FIELD, body["error"], body.get("error_description", "")))
    if not details and isinstance(body.get("detail"), str):
        details.append(_detail(GENERAL_FIELD, "", body["detail"]))
    return tuple(details[:MAX_DETAILS])


#: Error entries kept from one answer (a hostile answer may hold thousands).
MAX_DETAILS = 20
_FIELD_MAX_CHARS = 100
_CODE_MAX_CHARS = 100
_DETAIL_MESSAGE_MAX_CHARS = 500


def _detail(field: Any, code: Any, message: Any) -> ErrorDetail:
    """One error entry, every part redacted and bounded (servers and proxies may echo the request)."""
    return ErrorDetail(
        redact_text(field, limit=_FIELD_MAX_CHARS),
        redact_text(code, limit=_CODE_MAX_CHARS),
        redact_text(message, limit=_DETAIL_MESSAGE_MAX_CHARS),
    )


def summarise_details(details: tuple[ErrorDetail, ...]) -> str:
    """``field: code (message); ...`` for an exception message."""
    parts = []
    for detail in details:
        code = f" {detail.code}" if detail.code else ""
        message = f" ({detail.message})" if detail.message else ""
        parts.append(f"{detail.field}:{code}{message}")
    return "; ".join(parts)


def error_from_response(
    response: requests.Response, *, retry_after: float | None = None, hint: str | None = None
) -> PerkvilleError:
    """The typed error for a non-2xx answer. ``hint`` is added to say what the caller can do."""
    request = response.request
    method = request.method if request is not None else None
    path = urlsplit(request.url).path if request is not None and request.url else None
    status = response.status_code
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    details = error_details(body)
    summary = summarise_details(details) or redact_text(response.reason or "no error details", limit=200)
    message = f"{summary}. {hint}" if hint else summary
    if status >= 500:
        error_class: type[PerkvilleError] = PerkvilleServerError
    else:
        error_class = _ERROR_CLASS_BY_STATUS.get(status, PerkvilleError)
    kwargs: dict[str, Any] = {"status": status, "details": details, "method": method, "path": path}
    if error_class is PerkvilleRateLimitedError:
        kwargs["retry_after"] = retry_after
    return error_class(message, **kwargs)


class PerkvilleAnswerError(PerkvilleError):
    """An answer the hook cannot use; says the status, method and path, and no retry can fix it.

    Unreadable, of the wrong shape, too large, pointing away, or a write it cannot settle.
    """

    permanent = True


class PerkvilleMalformedAnswerError(PerkvilleAnswerError):
    """A body that is not the JSON the call needs (empty, not JSON, nested too deep, wrong shape)."""


class PerkvilleAnswerTooLargeError(PerkvilleAnswerError):
    """An answer larger than the connection's ``max_response_bytes``; reading stopped at the cap."""


class PerkvilleForeignLinkError(PerkvilleAnswerError):
    """A link (``meta.next``) to another origin than the API's.

    Never followed: the request would carry the token there.
    """


class PerkvillePaginationError(PerkvilleAnswerError):
    """A list walk that does not end.

    A ``next`` link already read, a page repeating the last one, or more pages than the
    connection's ``max_pages``.
    """


class PerkvilleLookupError(PerkvilleAnswerError):
    """A look-up that cannot be proven either way.

    The server ignored its filter, and the bounded walk that replaces it ended before it could find
    or rule out the object.
    """

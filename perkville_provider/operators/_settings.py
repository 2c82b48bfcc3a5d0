"""How the operators read their parameters after rendering: each bad one fails the task for good.

Private to the operators: a template renders to text, so each reader takes the text forms too
(``"True"``, ``"20"``, a JSON list) and names the parameter in its error.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from perkville_provider import staging
from perkville_provider.records import RecordValidationError, validate_positive_int, validate_ref

_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off", "", "none"})


def setting_error(name: str, message: str) -> AirflowFailException:
    """A bad operator parameter: a retry cannot fix it."""
    return AirflowFailException(f"{name}: {message}")


def as_bool(value: Any, name: str) -> bool:
    """A flag, also from a rendered template (``"True"``, ``"false"``...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise setting_error(name, f"must be true or false, got {value!r}")


def as_positive_int(value: Any, name: str) -> int:
    """A positive integer, also from its text."""
    try:
        return validate_positive_int(value, name)
    except RecordValidationError as error:
        raise setting_error(name, error.message) from None


def as_optional_positive_int(value: Any, name: str) -> int | None:
    """A positive integer, or None when not given."""
    return None if value is None or value == "" else as_positive_int(value, name)


def as_optional_ref(value: Any, name: str, collection: str) -> int | None:
    """An optional related object given as an id or as its resource URI (``/v2/perks/501/``)."""
    if value is None or value == "":
        return None
    try:
        return validate_ref(value, name, collection)
    except RecordValidationError as error:
        raise setting_error(name, error.message) from None


def as_text(value: Any, name: str) -> str:
    """A non-empty string (an int is taken as its text)."""
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    raise setting_error(name, f"must be a non-empty string, got {value!r}")


def as_records(value: Any, name: str) -> Iterable[Any]:
    """Records given inline, by XCom, by a template, or staged on object storage.

    Inline or by XCom: a list, or the lazy sequence of a mapped task. Staged: an
    ``ObjectStoragePath`` or a path/URL of a JSON Lines file, or a list of them (read lazily by
    :mod:`perkville_provider.staging`).

    A template renders to text unless the DAG renders native objects, so a string is read back
    as JSON or as a Python literal. A lone mapping is refused: it is almost surely a mistake.
    """
    if value is None:
        return []
    if staging.is_staged_reference(value):
        try:
            return staging.read_staged_records(value)
        except staging.StagedRecordsNotFoundError as error:
            raise setting_error(name, str(error)) from None
    if isinstance(value, str):
        value = _parse_rendered(value, name)
    if isinstance(value, Mapping | str | bytes) or not isinstance(value, Iterable):
        raise setting_error(name, f"must be a list of records, got {type(value).__name__}")
    return value


def _parse_rendered(text: str, name: str) -> Any:
    if not text.strip():
        return []
    try:
        return json.loads(text)
    except ValueError:
        pass
    except RecursionError:
        raise setting_error(name, "is text nested too deep to read as records") from None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise setting_error(name, "is text that is neither a JSON nor a Python list of records") from None


def optional_positive_number(value: Any, name: str) -> float | None:
    """A positive (finite) number, or None when not given."""
    if value is None or value == "" or value == "None":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if isinstance(value, bool) or not 0 < number < float("inf"):
        raise setting_error(name, f"must be a positive number or None, got {value!r}")
    return number


def optional_rate(value: Any) -> float | None:
    """``max_requests_per_second``: a positive number, or None."""
    return optional_positive_number(value, "max_requests_per_second")


def ratio(value: Any, name: str = "max_failure_ratio") -> float:
    """A share: a number from 0 to 1 (``max_failure_ratio`` unless named)."""
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        ratio = -1.0
    if isinstance(value, bool) or not 0.0 <= ratio <= 1.0:
        raise setting_error(name, f"must be a number from 0 to 1, got {value!r}")
    return ratio


def optional_ratio(value: Any, name: str) -> float | None:
    """A share from 0 to 1, or None (the check it sets is off)."""
    return None if value is None or value == "" or value == "None" else ratio(value, name)


def as_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """One of ``choices`` (any case, surrounding space ignored)."""
    options = tuple(choices)
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in options:
        raise setting_error(name, f"must be one of {', '.join(options)}, got {value!r}")
    return text


def report_path(value: Any) -> Any:
    """None, or a path the engine can open: URLs become ``ObjectStoragePath`` (object storage too)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and "://" in value:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(value.strip())
    return value

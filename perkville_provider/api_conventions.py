"""How requests are spelled where the real Perkville API is not documented, set per connection.

Perkville's v2 API is a django-tastypie API. Where no public source says what it expects, the
provider sends what stock tastypie expects (relations as resource URIs, datetimes in the form the
API itself returns), and every such choice can be changed from the connection's extras without a
new release: ``paths``, ``relations``, ``quantity_format`` and ``datetime_format``. The sandbox's
README lists each unknown, the default chosen and why.

Nothing here talks HTTP: the hook reads an :class:`ApiConventions` from its connection once and
the request bodies are spelled with it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

import pendulum

__all__ = [
    "API_EXTRAS",
    "DEFAULT_PATHS",
    "ApiConventions",
    "ConventionError",
    "id_from_uri",
]

#: Every resource path the hook uses, by the name the ``paths`` extra overrides it with.
DEFAULT_PATHS: Mapping[str, str] = MappingProxyType(
    {
        "users_me": "/v2/users/me/",
        "users": "/v2/users/",
        "businesses": "/v2/businesses/",
        "locations": "/v2/locations/",
        "perks": "/v2/perks/",
        "connections": "/v2/connections/",
        "external_members": "/v2/external-members/",
        "transactions": "/v2/transactions/",
        "agreements_view": "/v2/agreements-view/",
        "agreements_batch": "/v2/agreements-batch/",
    }
)

Relations = Literal["uri", "id"]
QuantityFormat = Literal["number", "string"]
DatetimeFormat = Literal["api", "iso"]

#: The connection extras read here (settings, never headers).
API_EXTRAS = ("paths", "relations", "quantity_format", "datetime_format")

_PATH_RE = re.compile(r"^/(?:[A-Za-z0-9._~-]+/)+$")
_URI_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://[^/]+)?(/(?:[A-Za-z0-9._~-]+/)*)(\d+)/?$")
_API_DATETIME = "%Y-%m-%d %H:%M:%S+00:00"


class ConventionError(ValueError):
    """A convention extra that cannot be used; says which setting and why."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"the {setting} extra {message}")
        self.setting = setting


def id_from_uri(value: str, collection: str) -> int | None:
    """The id in a resource URI of ``collection`` (``/v2/perks/501/``, or an absolute URL).

    :return: the id, or None when ``value`` is not a URI of that collection
    """
    match = _URI_RE.match(value.strip())
    if match is None or match.group(1).rstrip("/").rsplit("/", 1)[-1] != collection:
        return None
    return int(match.group(2))


def _choice(extra: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = extra.get(name)
    if value in (None, ""):
        return allowed[0]
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise ConventionError(name, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value.strip().lower()


def _paths(value: Any) -> Mapping[str, str]:
    """The default paths with the overrides of the ``paths`` extra, each checked."""
    if value in (None, ""):
        return DEFAULT_PATHS
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConventionError("paths", "must be a JSON object of resource names to paths") from None
    if not isinstance(value, Mapping):
        raise ConventionError("paths", f"must be a mapping of resource names to paths, got {value!r}")
    paths = dict(DEFAULT_PATHS)
    for name, path in value.items():
        if name not in DEFAULT_PATHS:
            raise ConventionError(
                "paths", f"names an unknown resource {name!r}; known: {', '.join(sorted(DEFAULT_PATHS))}"
            )
        if not isinstance(path, str) or not _PATH_RE.match(path):
            raise ConventionError(
                "paths",
                f"maps {name!r} to {path!r}; a path starts and ends with '/' and holds only "
                "letters, digits and . _ ~ - (e.g. /v2/external_members/)",
            )
        paths[name] = path
    return MappingProxyType(paths)


@dataclass(frozen=True)
class ApiConventions:
    """The connection's answers to the API's unknowns; the defaults are stock tastypie's.

    :param paths: resource name -> path (see :data:`DEFAULT_PATHS`)
    :param relations: ``uri`` sends ``/v2/perks/501/`` (tastypie "accepts resources in the same
        format as it gives you"); ``id`` sends ``501``
    :param quantity_format: ``number`` sends ``9.99``; ``string`` sends ``"9.99"``
    :param datetime_format: ``api`` sends ``2026-05-01 11:30:00+00:00`` (what the API returns);
        ``iso`` sends ``2026-05-01T07:30:00-04:00``
    """

    paths: Mapping[str, str] = field(default_factory=lambda: DEFAULT_PATHS)
    relations: Relations = "uri"
    quantity_format: QuantityFormat = "number"
    datetime_format: DatetimeFormat = "api"

    @classmethod
    def from_extras(cls, extra: Mapping[str, Any]) -> ApiConventions:
        """Read and check the convention extras; raise :class:`ConventionError` naming the setting."""
        return cls(
            paths=_paths(extra.get("paths")),
            relations=_choice(extra, "relations", get_args(Relations)),  # type: ignore[arg-type]
            quantity_format=_choice(extra, "quantity_format", get_args(QuantityFormat)),  # type: ignore[arg-type]
            datetime_format=_choice(extra, "datetime_format", get_args(DatetimeFormat)),  # type: ignore[arg-type]
        )

    def path(self, name: str) -> str:
        """The path of a resource collection, e.g. ``path("transactions")``."""
        return self.paths[name]

    def detail_path(self, name: str, pk: int) -> str:
        """The path of one object, e.g. ``detail_path("perks", 501)``."""
        return f"{self.paths[name]}{pk}/"

    def relation(self, name: str, pk: int) -> int | str:
        """A related object in a request body: its URI by default, its id with ``relations: id``."""
        return pk if self.relations == "id" else self.detail_path(name, pk)

    def quantity(self, value: int | decimal.Decimal) -> int | float | str:
        """A quantity in a request body, exactly as the record gave it.

        A fractional ``Decimal`` (at most 2 places, bounded) goes out as a JSON number whose text is
        the decimal's own digits: Python writes a float with the shortest digits that round-trip,
        which for such a value are exactly the decimal's.
        """
        if self.quantity_format == "string":
            return str(value)
        if isinstance(value, decimal.Decimal):
            if value == value.to_integral_value():
                return int(value)
            number = float(value)
            if decimal.Decimal(repr(number)) != value:  # more digits than a double holds
                return str(value)
            return number
        return value

    def temporal(self, value: Any) -> Any:
        """A date stays ``YYYY-MM-DD``; a datetime goes out in UTC in the API's own form, or ISO."""
        if isinstance(value, dt.datetime):
            if self.datetime_format == "iso":
                return value.isoformat()
            return pendulum.instance(value).in_timezone("UTC").strftime(_API_DATETIME)
        if isinstance(value, dt.date):
            return value.isoformat()
        return value

    def relation_id(self, value: Any, name: str) -> int | None:
        """The id of a related object the API returned (a URI like ``/v2/users/5/``, or an id)."""
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            if value.strip().isdigit():
                return int(value)
            collection = self.paths[name].rstrip("/").rsplit("/", 1)[-1]
            return id_from_uri(value, collection)
        return None

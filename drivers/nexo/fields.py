"""Strict readers of decoded JSON objects.

Each reader takes the object, the key and `where` (the path of the object in
the message, e.g. "PaymentResponse.POIData") and returns the value with its
type checked, or raises NexoProtocolError naming the field. A value is
repeated in an error only when it is an enumeration's value (cut short), so
no card data can reach a message.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from drivers.nexo.errors import NexoProtocolError

E = TypeVar("E", bound=enum.Enum)


def path(where: str, key: str) -> str:
    return "%s.%s" % (where, key) if where else key


def as_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise NexoProtocolError("%s is not an object" % where)
    return value


def obj(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    if key not in parent:
        raise NexoProtocolError("%s is missing" % path(where, key))
    return as_object(parent[key], path(where, key))


def opt_obj(parent: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    return obj(parent, key, where) if key in parent else None


def text(parent: dict[str, Any], key: str, where: str, *, max_length: int | None = None) -> str:
    """A non-empty string of at most `max_length` characters."""
    if key not in parent:
        raise NexoProtocolError("%s is missing" % path(where, key))
    value = parent[key]
    if not isinstance(value, str):
        raise NexoProtocolError("%s is not a string" % path(where, key))
    if not value:
        raise NexoProtocolError("%s is empty" % path(where, key))
    if max_length is not None and len(value) > max_length:
        raise NexoProtocolError("%s is longer than %d characters" % (path(where, key), max_length))
    return value


def opt_text(parent: dict[str, Any], key: str, where: str, *, max_length: int | None = None,
             default: str | None = None) -> str | None:
    return text(parent, key, where, max_length=max_length) if key in parent else default


def any_text(parent: dict[str, Any], key: str, where: str) -> str:
    """A string that may be empty; "" when absent."""
    value = parent.get(key, "")
    if not isinstance(value, str):
        raise NexoProtocolError("%s is not a string" % path(where, key))
    return value


def choice(parent: dict[str, Any], key: str, kind: type[E], where: str) -> E:
    """One value of the enumeration `kind`."""
    if key not in parent:
        raise NexoProtocolError("%s is missing" % path(where, key))
    return as_choice(parent[key], kind, path(where, key))


def opt_choice(parent: dict[str, Any], key: str, kind: type[E], where: str) -> E | None:
    return choice(parent, key, kind, where) if key in parent else None


def as_choice(value: Any, kind: type[E], where: str) -> E:
    if not isinstance(value, str):
        raise NexoProtocolError("%s is not a string" % where)
    try:
        return kind(value)
    except ValueError:
        raise NexoProtocolError("%s %r is not a %s" % (where, value[:24], kind.__name__)) from None


def number(parent: dict[str, Any], key: str, where: str) -> Decimal:
    """A JSON number (read as a Decimal, never a float)."""
    if key not in parent:
        raise NexoProtocolError("%s is missing" % path(where, key))
    value = parent[key]
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise NexoProtocolError("%s is not a number" % path(where, key))
    return Decimal(value)


def opt_number(parent: dict[str, Any], key: str, where: str) -> Decimal | None:
    return number(parent, key, where) if key in parent else None


def whole(parent: dict[str, Any], key: str, where: str) -> int:
    value = number(parent, key, where)
    if value != value.to_integral_value():
        raise NexoProtocolError("%s is not a whole number" % path(where, key))
    return int(value)


def flag(parent: dict[str, Any], key: str, where: str, *, default: bool = False) -> bool:
    value = parent.get(key, default)
    if not isinstance(value, bool):
        raise NexoProtocolError("%s is not true or false" % path(where, key))
    return value


def array(parent: dict[str, Any], key: str, where: str, *, required: bool = True) -> list[Any]:
    if key not in parent:
        if required:
            raise NexoProtocolError("%s is missing" % path(where, key))
        return []
    value = parent[key]
    if not isinstance(value, list):
        raise NexoProtocolError("%s is not an array" % path(where, key))
    return value


def timestamp(parent: dict[str, Any], key: str, where: str) -> str:
    """An ISO 8601 date and time (nexo's ISODateTime), kept as written."""
    value = text(parent, key, where, max_length=64)
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise NexoProtocolError("%s is not an ISO date and time" % path(where, key)) from None
    return value

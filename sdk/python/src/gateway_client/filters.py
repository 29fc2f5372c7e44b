"""A typed builder for the gateway's AIP-160 ``filter`` strings.

    from gateway_client.models import OrderFields as O
    f = (O.status == "paid") & (O.total_cents > 1000) & ~O.note.has("gift")
    str(f)  # '(status = "paid") AND (total_cents > 1000) AND (NOT (note : "gift"))'

The grammar (the gateway's ``db/filtering.py``): text is always written as a
double-quoted string in which a backslash makes the next character literal, so
quotes, backslashes, ``*`` (the prefix wildcard) and keywords inside a value are only
ever text. ``null`` is the bare keyword, ``"null"`` the text. Every composite is
parenthesized, so AIP-160's unusual precedence (OR binds tighter than AND) never
changes what you wrote. Field kinds are checked by the type checker: an ``IntField``
compares with ``int``, a ``TextField`` with ``str``, and only text has ``has`` and
``startswith``.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Generic, TypeVar

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

V = TypeVar("V")
E = TypeVar("E", bound=Enum)


def quote(text: str) -> str:
    """``text`` as a filter string literal, every special character escaped."""
    escaped = re.sub(r'(["\\*])', r"\\\1", text)
    return f'"{escaped}"'


def literal(value: object) -> str:
    """A Python value as a filter value: None, bool, int, str, Enum or aware datetime."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Enum):
        return quote(str(value.value))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("filter: a datetime needs a time zone (e.g. tzinfo=UTC)")
        return quote(value.isoformat())
    if isinstance(value, str):
        return quote(value)
    raise TypeError(f"filter: cannot compare with a {type(value).__name__}")


class Filter:
    """A filter expression; combine with ``&`` (AND), ``|`` (OR) and ``~`` (NOT)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"

    def __and__(self, other: Filter) -> Filter:
        return all_of(self, other)

    def __or__(self, other: Filter) -> Filter:
        return any_of(self, other)

    def __invert__(self) -> Filter:
        return Filter(f"NOT ({self.text})")

    def __bool__(self) -> bool:
        raise TypeError("a Filter is not a bool: combine with & | ~, not and/or/not")


def all_of(*filters: Filter) -> Filter:
    if not filters:
        raise ValueError("all_of: give at least one filter")
    return Filter(" AND ".join(f"({f.text})" for f in filters))


def any_of(*filters: Filter) -> Filter:
    if not filters:
        raise ValueError("any_of: give at least one filter")
    return Filter(" OR ".join(f"({f.text})" for f in filters))


class Field(Generic[V]):
    """A filterable field whose values are of type ``V``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not _FIELD.fullmatch(name):
            raise ValueError(f"filter: {name!r} is not a field name")
        self.name = name

    def _compare(self, op: str, value: object) -> Filter:
        return Filter(f"{self.name} {op} {literal(value)}")

    def __eq__(self, value: V | None) -> Filter:  # type: ignore[override]
        return self._compare("=", value)

    def __ne__(self, value: V | None) -> Filter:  # type: ignore[override]
        return self._compare("!=", value)

    def is_null(self) -> Filter:
        return self._compare("=", None)

    def is_not_null(self) -> Filter:
        return self._compare("!=", None)

    def __hash__(self) -> int:
        return hash(self.name)


class OrderedField(Field[V]):
    def __lt__(self, value: V) -> Filter:
        return self._compare("<", value)

    def __le__(self, value: V) -> Filter:
        return self._compare("<=", value)

    def __gt__(self, value: V) -> Filter:
        return self._compare(">", value)

    def __ge__(self, value: V) -> Filter:
        return self._compare(">=", value)


class IntField(OrderedField[int]):
    pass


class DateTimeField(OrderedField[datetime]):
    pass


class BoolField(Field[bool]):
    pass


class EnumField(Field[E | str]):
    """An enum: compare with a member or its value."""


class TextField(OrderedField[str]):
    def has(self, text: str) -> Filter:
        """Case-insensitive substring (``:``)."""
        return self._compare(":", text)

    def startswith(self, prefix: str) -> Filter:
        """Case-insensitive prefix: ``= "prefix*"`` (the prefix itself escaped)."""
        return Filter(f'{self.name} = {quote(prefix)[:-1]}*"')

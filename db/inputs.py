"""What clients may write: the base of every input model, its text and time types.

Every door validates a body or a GraphQL input with ``validate_input``, so REST
and GraphQL refuse the same things with the same ``errors[].loc/msg/type``:

- **Strict types.** An integer is a JSON integer: not ``true``, not ``"125"``,
  not ``12.0``; text is a JSON string; a boolean is ``true``/``false``. Times
  (``Timestamp``) are RFC 3339 strings with a zone.
- **Null only where a field is nullable.** ``null`` for any other field is
  ``null_not_allowed``: a partial update leaves a field out to keep it.
- **Unknown fields** are ``extra_forbidden`` (no mass assignment).
- **Text rules.** Every text field is a ``Line`` (names, SKUs, emails: one line)
  or a ``Text`` (descriptions, notes: line breaks and tabs allowed); text that
  does not say is held to ``Line``. Both refuse, with a stable ``type`` per rule:

  ``control_character``    C0 and C1 controls (``\\t``, ``\\n``, ``\\r`` too in a
                           ``Line``; a ``Text`` may hold ``\\n`` and ``\\t``),
                           and U+2028/U+2029 (line and paragraph separators)
  ``bidi_character``       U+202A-U+202E, U+2066-U+2069 (embeddings, overrides,
                           isolates), U+200E/U+200F/U+061C (direction marks):
                           they make text display as something it is not
  ``invisible_character``  format characters that render as nothing and let
                           two different names look identical (zero width
                           space, word joiner, BOM, invisible operators, tag
                           characters, Hangul fillers, soft hyphen in a
                           ``Line``). ZWJ and ZWNJ stay allowed: Persian, the
                           Indic scripts and emoji sequences need them; so do
                           tag characters inside an emoji subdivision flag.
  ``invalid_character``    unpaired surrogates, which no database can store

Leading and trailing whitespace is stripped after the check, so a name that
starts with a tab is refused rather than quietly repaired.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeVar, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from db.errors import FieldError, InvalidArgument, ValidationFailed

M = TypeVar("M", bound=BaseModel)

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_INVISIBLE = (
    "\u180e\u200b\u2060-\u2064\u206a-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
_SEPARATORS = "\u2028\u2029"


def _rules(control: str, invisible: str) -> re.Pattern[str]:
    return re.compile(
        f"(?P<control_character>[{control}{_SEPARATORS}])|(?P<bidi_character>[{_BIDI}])"
        f"|(?P<invisible_character>[{invisible}])|(?P<invalid_character>[\ud800-\udfff])"
    )


_LINE = _rules("\x00-\x1f\x7f-\x9f", "\u00ad" + _INVISIBLE)
_TEXT = _rules("\x00-\x08\x0b-\x1f\x7f-\x9f", _INVISIBLE)
# An emoji subdivision flag (England, Scotland, Wales): a black flag, tag letters, a cancel tag.
_FLAG = re.compile("\U0001f3f4[\U000e0020-\U000e007e]{1,30}\U000e007f")

_WHY = {
    "control_character": "control characters (tab and line breaks included) are not allowed "
    "in one-line text",
    "bidi_character": "bidirectional formatting characters can make text display as "
    "something it is not",
    "invisible_character": "invisible characters can make different text look identical",
    "invalid_character": "an unpaired surrogate is not a character; send valid UTF-8",
}
_WHY_TEXT = "only line breaks (\\n) and tabs are allowed among control characters"


def _check(value: str, rules: re.Pattern[str]) -> None:
    if value.isascii() and value.isprintable():
        return  # plain ASCII (most text): nothing to refuse
    scanned = _FLAG.sub(lambda m: "x" * len(m.group()), value) if "\U000e007f" in value else value
    found = rules.search(scanned)
    if found is None:
        return
    kind = str(found.lastgroup)
    why = _WHY_TEXT if rules is _TEXT and kind == "control_character" else _WHY[kind]
    raise PydanticCustomError(
        kind,
        f"contains U+{ord(found.group()):04X} at character {found.start() + 1}: {why}; remove it",
    )


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339(value: object) -> object:
    if not isinstance(value, str):
        return value  # a datetime from Python or GraphQL; anything else fails the type check
    if _RFC3339.fullmatch(value):
        try:
            return datetime.fromisoformat(value.upper())  # RFC 3339 allows "t" and "z"
        except ValueError:
            pass  # a 30th of February, an hour 25, a leap second
    raise PydanticCustomError(
        "datetime_parsing",
        "expected an RFC 3339 date-time with a time zone, e.g. 2030-01-01T00:00:00Z",
    )


@dataclass(frozen=True, slots=True)
class TextRule:
    """Marks a text field with its rule; pydantic ignores it, ``Input`` applies it.

    Applied by ``Input`` before any other check (and so before stripping and length
    limits, which stay the field's own constraints, reported as usual).
    """

    multiline: bool


Line = Annotated[str, TextRule(multiline=False)]
Text = Annotated[str, TextRule(multiline=True)]
Email = Annotated[EmailStr, TextRule(multiline=False)]
Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]
MAX_ID = 2**31 - 1  # ids are 32-bit integer columns
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _multiline(annotation: Any, metadata: Iterable[Any] = ()) -> bool:
    if any(isinstance(m, TextRule) and m.multiline for m in metadata):
        return True
    if get_origin(annotation) is Annotated:
        base, *extra = get_args(annotation)
        return _multiline(base, extra)
    return any(_multiline(arg) for arg in get_args(annotation))


class Input(BaseModel):
    """What clients write: strict types, no unknown fields, text screened by its rule.

    Every text value (in a list too) is one line (``Line``) unless its field is a
    ``Text``: a field that forgets to say is held to the stricter rule.
    """

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)
    _multiline_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._multiline_fields = frozenset(
            name
            for name, field in cls.model_fields.items()
            if _multiline(field.annotation, field.metadata)
        )

    @field_validator("*", mode="before")
    @classmethod
    def _screen_text(cls, value: Any, info: ValidationInfo) -> Any:
        rules = _TEXT if info.field_name in cls._multiline_fields else _LINE
        if isinstance(value, str):
            _check(value, rules)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    _check(item, rules)
        return value


def _field_error(at: str, error: ErrorDetails) -> FieldError:
    loc = (at, *error["loc"])
    if error["loc"] and error["type"] != "missing" and error.get("input", ...) is None:
        # Pydantic says "Input should be a valid string"; the client needs to hear null.
        return FieldError(
            loc,
            "may not be null: send a value (or, in a partial update, leave the field out "
            "to keep its current value)",
            "null_not_allowed",
        )
    return FieldError(loc, error["msg"], error["type"])


def validate_input(model: type[M], data: object, *, at: str) -> M:
    """``data`` (a decoded JSON body, a GraphQL input) as ``model``, or ``ValidationFailed``.

    ``at`` starts every error's ``loc`` (``db.errors.FieldError``'s one shape):
    ``"body"`` for a REST body, an XML one included, and for a GraphQL mutation's
    input alike, so the two doors report the same errors at the same paths.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [_field_error(at, e) for e in exc.errors(include_url=False)]
    first = errors[0]
    where = ".".join(str(part) for part in first.loc[1:]) or at
    more = f" (and {len(errors) - 1} more; see errors)" if len(errors) > 1 else ""
    raise ValidationFailed(f"the {at} is not valid: {where}: {first.msg}{more}", errors=errors)


def check_line(value: str, *, what: str, max_length: int) -> str:
    """``value`` as one line of text held to the ``Line`` rules, stripped; for callers
    that take plain arguments (the ``gateway`` command) rather than an input model.
    ``InvalidArgument`` names ``what`` when it is empty, too long or has a forbidden
    character."""
    try:
        _check(value, _LINE)
    except PydanticCustomError as exc:
        raise InvalidArgument(f"{what}: {exc.message()}") from None
    value = value.strip()
    if not value or len(value) > max_length:
        raise InvalidArgument(f"{what}: 1 to {max_length} characters, not only spaces")
    return value

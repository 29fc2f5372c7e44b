"""The ``filter`` language: one AIP-160 (https://google.aip.dev/160) subset for every door.

REST lists (``?filter=``), GraphQL (``filter:`` arguments) and real-time event
subscriptions all parse with :func:`parse_filter`; the tree compiles to a SQL
condition with :func:`to_sql` or runs in process on an event snapshot with :func:`matches`.
Both evaluate the same two-valued logic, so a row matches in SQL iff it matches here.

Grammar (the public contract)::

    filter     := [expression]
    expression := sequence {"AND" sequence}
    sequence   := factor {factor}               juxtaposition means AND
    factor     := term {"OR" term}
    term       := {"NOT" | "-"} simple
    simple     := comparison | "(" expression ")"
    comparison := FIELD OP value
    OP         := "=" | "!=" | "<" | "<=" | ">" | ">=" | ":"
    value      := "null" | "true" | "false" | INTEGER | STRING | WORD

* Precedence, as in AIP-160: NOT/``-`` bind tightest, then OR, then AND (and
  juxtaposition), so ``a AND b OR c`` means ``a AND (b OR c)``. Keywords are upper-case.
* FIELD is a public field name from the endpoint's whitelist (a :data:`Filterable`).
* STRING is single- or double-quoted; a backslash makes the next character literal.
  WORD is a bare run of characters other than whitespace and ``()"'=!<>:``, so
  ``status = paid`` works. INTEGER is a WORD like ``42`` or ``-7``. Quoting only matters
  for ``null``: ``"null"`` is the text null.
* ``:`` (has) is a case-insensitive substring match, for text fields only.
* ``=`` with a value ending in an unescaped ``*`` is a case-insensitive prefix match on
  text fields: ``name = "Acme*"``; write ``\\*`` for a literal asterisk. ``!=`` rejects
  the wildcard (use ``NOT name = "Acme*"``).
* ``null`` goes with ``=``/``!=`` only (``IS NULL``/``IS NOT NULL``). ``<``, ``<=``, ``>``,
  ``>=`` apply to int, text and datetime fields. Enum values must be one of the
  choices; bool values are ``true``/``false``; datetimes are RFC 3339 with an offset
  (``created_at > "2024-01-01T00:00:00Z"``), normalised to UTC.
* Null semantics: a comparison with a null field is false, so ``x != 5`` is true when
  ``x`` is null (SQL gets ``x <> 5 OR x IS NULL``) and ``NOT x = 5`` is true as well
  (under NOT, SQL comparisons get ``AND x IS NOT NULL`` so NULL never leaks into NOT).
* Limits: 2000 characters, 50 comparisons, nesting depth 20 (parentheses and negations).

Every problem raises :class:`~db.errors.InvalidArgument` naming the 1-based position.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn, TypeAlias, cast

from db.errors import FieldError, InvalidArgument

MAX_LENGTH = 2000
MAX_COMPARISONS = 50
MAX_DEPTH = 20

Kind: TypeAlias = Literal["int", "str", "enum", "datetime", "bool"]
Op: TypeAlias = Literal["=", "!=", "<", "<=", ">", ">=", ":", "prefix"]
Value: TypeAlias = int | str | bool | datetime | None


@dataclass(frozen=True, slots=True)
class FilterField:
    kind: Kind
    column: str | None = None
    choices: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.kind == "enum" and not self.choices:
            raise ValueError("FilterField(kind='enum') needs choices")


Filterable: TypeAlias = Mapping[str, FilterField]


class Expr:
    """Base of the filter tree; values in :class:`Compare` are already coerced."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Compare(Expr):
    field: str  # public name
    op: Op  # "prefix" is ``=`` with a trailing ``*``; the value excludes the ``*``
    value: Value


@dataclass(frozen=True, slots=True)
class And(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not(Expr):
    item: Expr


def _fail(msg: str) -> NoReturn:
    raise InvalidArgument(
        f"filter: {msg}",
        errors=[FieldError(loc=("query", "filter"), msg=msg, type="invalid_filter")],
    )


_TokKind: TypeAlias = Literal["word", "string", "op", "(", ")", "-", "end"]


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: _TokKind
    text: str
    pos: int  # 1-based
    wild: bool = False  # ends with an unescaped "*"


_SPECIAL = frozenset("()\"'=!<>:")
_KEYWORDS = frozenset({"AND", "OR", "NOT"})
_ORDERING = frozenset({"<", "<=", ">", ">="})
_INT = re.compile(r"-?[0-9]+", re.ASCII)
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c, pos = text[i], i + 1
        if c.isspace():
            i += 1
        elif c in "()-":
            toks.append(_Tok(cast("_TokKind", c), c, pos))
            i += 1
        elif c in "\"'":
            chars: list[str] = []
            escaped = False
            i += 1
            while i < n and text[i] != c:
                escaped = text[i] == "\\"
                i += escaped
                if i >= n:
                    break
                chars.append(text[i])
                i += 1
            if i >= n:
                _fail(f"unterminated string starting at position {pos}; close it with {c}")
            wild = bool(chars) and chars[-1] == "*" and not escaped
            toks.append(_Tok("string", "".join(chars), pos, wild))
            i += 1
        elif c in "<>!" and text[i + 1 : i + 2] == "=":
            toks.append(_Tok("op", c + "=", pos))
            i += 2
        elif c in "<>=:":
            toks.append(_Tok("op", c, pos))
            i += 1
        elif c in _SPECIAL:
            _fail(f"unexpected character {c!r} at position {pos}; to negate use NOT or -")
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            toks.append(_Tok("word", text[i:j], pos, text[j - 1] == "*"))
            i = j
    toks.append(_Tok("end", "", n + 1))
    return toks


def _join(node: type[And | Or], items: list[Expr]) -> Expr:
    return items[0] if len(items) == 1 else node(tuple(items))


class _Parser:
    def __init__(self, text: str, fields: Filterable) -> None:
        self.toks = _tokenize(text)
        self.fields = fields
        self.i = 0
        self.depth = 0
        self.count = 0

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.peek()
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def at_keyword(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text == word

    def parse(self) -> Expr:
        expr = self.expression()
        tok = self.peek()
        if tok.kind == ")":
            _fail(f"unexpected ')' at position {tok.pos}; it closes no '('")
        if tok.kind != "end":
            _fail(f"unexpected {tok.text!r} at position {tok.pos}; expected AND, OR or the end")
        return expr

    def expression(self) -> Expr:
        items = [self.sequence()]
        while self.at_keyword("AND"):
            items.append(self.sequence(after=self.take()))
        return _join(And, items)

    def sequence(self, after: _Tok | None = None) -> Expr:
        items = [self.factor(after)]
        while self.peek().kind in ("word", "(", "-", "string") and not (
            self.at_keyword("AND") or self.at_keyword("OR")
        ):
            items.append(self.factor(None))
        return _join(And, items)

    def factor(self, after: _Tok | None) -> Expr:
        items = [self.term(after)]
        while self.at_keyword("OR"):
            items.append(self.term(self.take()))
        return _join(Or, items)

    def term(self, after: _Tok | None) -> Expr:
        negations = 0
        while self.peek().kind == "-" or self.at_keyword("NOT"):
            after = self.take()
            negations += 1
            self.enter(after)
        expr = self.simple(after)
        self.depth -= negations
        for _ in range(negations):
            expr = Not(expr)
        return expr

    def enter(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            _fail(f"nesting deeper than {MAX_DEPTH} levels at position {tok.pos}; simplify it")

    def simple(self, after: _Tok | None) -> Expr:
        tok = self.peek()
        if tok.kind == "(":
            self.enter(self.take())
            expr = self.expression()
            if self.peek().kind != ")":
                _fail(f"expected ')' at position {self.peek().pos} to close the '(' at {tok.pos}")
            self.take()
            self.depth -= 1
            return expr
        if tok.kind == "word" and tok.text not in _KEYWORDS:
            return self.comparison()
        where = f" after {after.text!r}" if after else ""
        _fail(f'expected a comparison such as name = "x"{where} at position {tok.pos}')

    def comparison(self) -> Compare:
        name = self.take()
        spec = self.fields.get(name.text)
        if spec is None:
            hint = f"; keywords are upper-case: {name.text.upper()}"
            known = ", ".join(sorted(self.fields)) or "(none)"
            if name.text.upper() not in _KEYWORDS:
                hint = f"; filterable fields: {known}"
            _fail(f"unknown field {name.text!r} at position {name.pos}{hint}")
        self.count += 1
        if self.count > MAX_COMPARISONS:
            _fail(f"too many comparisons at position {name.pos}; at most {MAX_COMPARISONS}")
        op_tok, field = self.take(), name.text
        at = f"at position {op_tok.pos}"
        if op_tok.kind != "op":
            _fail(f"expected an operator (=, !=, <, <=, >, >=, :) after {field!r} {at}")
        op = cast("Op", op_tok.text)
        if op == ":" and spec.kind != "str":
            _fail(f"':' (has) needs a text field, {field!r} is {spec.kind} {at}; use =")
        if op in _ORDERING and spec.kind in ("bool", "enum"):
            _fail(f"{op!r} does not apply to {spec.kind} field {field!r} {at}; use = or !=")
        val = self.peek()
        if val.kind == "-" and self.peek(1).kind == "word" and self.peek(1).pos == val.pos + 1:
            self.take()
            word = self.peek()
            val = _Tok("word", "-" + word.text, val.pos, word.wild)
        if val.kind not in ("word", "string") or (val.kind == "word" and val.text in _KEYWORDS):
            _fail(f"expected a value after {op!r} at position {val.pos}")
        self.take()
        if val.kind == "word" and val.text == "null":
            if op not in ("=", "!="):
                _fail(f"null can only be compared with = or != at position {val.pos}")
            return Compare(field, op, None)
        value, op = self.coerce(field, spec, op, val)
        return Compare(field, op, value)

    def coerce(self, field: str, spec: FilterField, op: Op, tok: _Tok) -> tuple[Value, Op]:
        text, pos = tok.text, tok.pos

        def bad(what: str, hint: str = "") -> NoReturn:
            _fail(f"{text!r} is not a valid {what} for field {field!r} at position {pos}{hint}")

        if spec.kind == "int":
            if not _INT.fullmatch(text) or not -(2**31) <= int(text) < 2**31:
                bad("int", "; use a whole number between -2147483648 and 2147483647")
            return int(text), op
        if spec.kind == "bool":
            if text not in ("true", "false"):
                bad("bool", "; use true or false")
            return text == "true", op
        if spec.kind == "enum":
            if text not in (spec.choices or ()):
                bad("value", "; allowed: " + ", ".join(sorted(spec.choices or ())))
            return text, op
        if spec.kind == "datetime":
            match = _RFC3339.fullmatch(text)
            if match and not match["offset"]:
                bad("datetime", '; add a time zone offset such as "Z" or "+02:00"')
            try:
                if match:
                    return datetime.fromisoformat(text.upper()).astimezone(UTC), op
            except (ValueError, OverflowError):
                pass
            bad("RFC 3339 datetime", '; use a quoted value such as "2024-01-01T00:00:00Z"')
        if tok.wild and op == "=":
            return text[:-1], "prefix"
        if tok.wild and op == "!=":
            hint = f'use NOT {field} = "{text}", or \\* for a literal asterisk'
            _fail(f"a trailing '*' (prefix match) needs '=' at position {pos}; {hint}")
        return text, op


def parse_filter(text: str | None, fields: Filterable) -> Expr | None:
    """Parse ``text`` against the ``fields`` whitelist; None or blank text -> None."""
    if text is None:
        return None
    if len(text) > MAX_LENGTH:
        _fail(f"too long at position {MAX_LENGTH + 1}; at most {MAX_LENGTH} characters")
    if not text.strip():
        return None
    if "\x00" in text:
        _fail(f"NUL character at position {text.index(chr(0)) + 1}; remove it")
    return _Parser(text, fields).parse()


_SQL_OP = {"=": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def _like_pattern(value: str, *, prefix: bool) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%" if prefix else f"%{escaped}%"


def to_sql(expr: Expr, fields: Filterable, param: Callable[[Any], str], alias: str = "t") -> str:
    """Compile to a SQL condition with the same (two-valued) semantics as :func:`matches`.

    ``param`` binds a value and returns its placeholder (see ``db.sql.Params``);
    ``expr`` must come from :func:`parse_filter` with the same ``fields``.
    """
    return _to_sql(expr, fields, param, alias, guard=False)


def _to_sql(
    expr: Expr, fields: Filterable, param: Callable[[Any], str], alias: str, guard: bool
) -> str:
    if isinstance(expr, And | Or):
        join = " AND " if isinstance(expr, And) else " OR "
        return "(" + join.join(_to_sql(i, fields, param, alias, guard) for i in expr.items) + ")"
    if isinstance(expr, Not):
        return "(NOT " + _to_sql(expr.item, fields, param, alias, guard=True) + ")"
    assert isinstance(expr, Compare)
    column = f"{alias}.{fields[expr.field].column or expr.field}"
    if expr.value is None:
        return f"({column} IS {'' if expr.op == '=' else 'NOT '}NULL)"
    if expr.op == "!=":  # SQL's "<>" drops NULLs; matches() keeps them
        return f"({column} <> {param(expr.value)} OR {column} IS NULL)"
    if expr.op in (":", "prefix"):
        pattern = _like_pattern(str(expr.value), prefix=expr.op == "prefix")
        condition = f"UPPER({column}) LIKE UPPER({param(pattern)}) ESCAPE '\\'"
    else:
        condition = f"{column} {_SQL_OP[expr.op]} {param(expr.value)}"
    if guard:  # under NOT, a comparison with NULL must be false, not unknown
        return f"({condition} AND {column} IS NOT NULL)"
    return f"({condition})"


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    ":": lambda a, b: isinstance(a, str) and b.upper() in a.upper(),
    "prefix": lambda a, b: isinstance(a, str) and a.upper().startswith(b.upper()),
}


def matches(expr: Expr | None, row: Mapping[str, Any]) -> bool:
    """Evaluate on a dict keyed by public field names (missing key = null; None -> True).

    Datetimes in ``row`` may be ``datetime`` objects or ISO 8601 strings (naive = UTC).
    """
    if expr is None:
        return True
    if isinstance(expr, And):
        return all(matches(item, row) for item in expr.items)
    if isinstance(expr, Or):
        return any(matches(item, row) for item in expr.items)
    if isinstance(expr, Not):
        return not matches(expr.item, row)
    assert isinstance(expr, Compare)
    actual = row.get(expr.field)
    if expr.value is None:
        return (actual is None) == (expr.op == "=")
    if isinstance(expr.value, datetime):
        actual = _as_datetime(actual)
    if actual is None:
        return expr.op == "!="
    try:
        return bool(_COMPARE[expr.op](actual, expr.value))
    except TypeError:
        return expr.op == "!="

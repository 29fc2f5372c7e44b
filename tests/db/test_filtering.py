"""The AIP-160 filter subset: parsing, errors, matches(), and SQL/matches() agreement."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from tortoise import connections, fields
from tortoise.context import TortoiseContext
from tortoise.models import Model

from db.errors import InvalidArgument
from db.filtering import (
    MAX_COMPARISONS,
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    Compare,
    Filterable,
    FilterField,
    Not,
    Or,
    matches,
    parse_filter,
    to_sql,
)
from db.sql import Params, select
from tests.conftest import BACKEND, POSTGRES_URL

STATUSES = ("pending", "paid", "shipped")
FIELDS: Filterable = {
    "id": FilterField("int"),
    "qty": FilterField("int"),
    "name": FilterField("str"),
    "nick": FilterField("str", column="nickname"),
    "status": FilterField("enum", choices=frozenset(STATUSES)),
    "active": FilterField("bool"),
    "created_at": FilterField("datetime", column="created"),
}


class Thing(Model):
    id = fields.IntField(primary_key=True)
    qty = fields.IntField(null=True)
    name = fields.CharField(max_length=50)
    nickname = fields.CharField(max_length=50, null=True)
    status = fields.CharField(max_length=20)
    active = fields.BooleanField()
    created = fields.DatetimeField(null=True)

    class Meta:
        app = "filtering_test"


def parse(text: str) -> Any:
    return parse_filter(text, FIELDS)


def c(field: str, op: str, value: Any) -> Compare:
    return Compare(field, op, value)  # type: ignore[arg-type]


# --- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\t\n"])
def test_blank_is_no_filter(text: str | None) -> None:
    assert parse_filter(text, FIELDS) is None
    assert matches(None, {}) is True


def test_or_binds_tighter_than_and() -> None:
    a, b, d = c("id", "=", 1), c("id", "=", 2), c("id", "=", 3)
    assert parse("id = 1 AND id = 2 OR id = 3") == And((a, Or((b, d))))
    assert parse("id = 1 OR id = 2 AND id = 3") == And((Or((a, b)), d))
    assert parse("(id = 1 AND id = 2) OR id = 3") == Or((And((a, b)), d))
    assert parse("id = 1 id = 2 OR id = 3") == And((a, Or((b, d))))  # juxtaposition = AND
    assert parse("id=1 AND id=2 AND id=3") == And((a, b, d))


def test_negation_binds_tightest() -> None:
    a, b = c("id", "=", 1), c("id", "=", 2)
    assert parse("NOT id = 1 OR id = 2") == Or((Not(a), b))
    assert parse("-id = 1 id = 2") == And((Not(a), b))
    assert parse("NOT (id = 1 OR id = 2)") == Not(Or((a, b)))
    assert parse("NOT -id = 1") == Not(Not(a))
    assert parse("id = 1 -id = 2") == And((a, Not(b)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id = 5", c("id", "=", 5)),
        ("id != -5", c("id", "!=", -5)),
        ("qty < 3", c("qty", "<", 3)),
        ("qty <= 3", c("qty", "<=", 3)),
        ("qty > -3", c("qty", ">", -3)),
        ("qty>=3", c("qty", ">=", 3)),
        ('qty = "7"', c("qty", "=", 7)),
        ("name : acme", c("name", ":", "acme")),
        ('name = "Acme*"', c("name", "prefix", "Acme")),
        ("name = Acme*", c("name", "prefix", "Acme")),
        (r'name = "Acme\*"', c("name", "=", "Acme*")),
        ('name : "a*"', c("name", ":", "a*")),
        (r"name = 'O\'Brien \\ \"x\"'", c("name", "=", 'O\'Brien \\ "x"')),
        ('name = "say AND (or) = x"', c("name", "=", "say AND (or) = x")),
        ("name = ''", c("name", "=", "")),
        ("name = true", c("name", "=", "true")),
        ("name = -x-y", c("name", "=", "-x-y")),
        ("name = null", c("name", "=", None)),
        ("name != null", c("name", "!=", None)),
        ('name = "null"', c("name", "=", "null")),
        ("name > m", c("name", ">", "m")),
        ("status = paid", c("status", "=", "paid")),
        ("status != 'shipped'", c("status", "!=", "shipped")),
        ("active = true", c("active", "=", True)),
        ("active != false", c("active", "!=", False)),
        (
            'created_at >= "2024-01-01T02:00:00+02:00"',
            c("created_at", ">=", datetime(2024, 1, 1, tzinfo=UTC)),
        ),
        (
            'created_at < "2024-03-01t10:00:00.5z"',
            c("created_at", "<", datetime(2024, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ),
    ],
)
def test_comparisons(text: str, expected: Compare) -> None:
    assert parse(text) == expected


def test_datetimes_are_utc() -> None:
    expr = parse('created_at = "2024-06-01T12:00:00-05:00"')
    assert expr.value == datetime(2024, 6, 1, 17, tzinfo=UTC)
    assert expr.value.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        (
            "colour = red",
            1,
            "filter: unknown field 'colour' at position 1; filterable fields: active, created_at,",
        ),
        ("id = 1 and qty = 2", 8, "'and' at position 8; keywords are upper-case: AND"),
        ("name =", 7, "expected a value after '='"),
        ("name = AND id = 1", 8, "expected a value after '='"),
        ("id = - 5", 6, "expected a value after '='"),
        ("qty = abc", 7, "'abc' is not a valid int for field 'qty'"),
        ("qty = 1.5", 7, "not a valid int"),
        ("qty = 99999999999999999999", 7, "not a valid int"),
        ("qty = ١٢", 7, "not a valid int"),
        ("active = yes", 10, "'yes' is not a valid bool"),
        ("status = lost", 10, "allowed: paid, pending, shipped"),
        ("created_at > 2024", 14, "not a valid RFC 3339 datetime"),
        ('created_at > "2024-01-01"', 14, "not a valid RFC 3339 datetime"),
        ('created_at > "2024-01-01T00:00:00"', 14, "add a time zone offset"),
        ('created_at > "2024-02-30T00:00:00Z"', 14, "not a valid RFC 3339 datetime"),
        ('created_at > "0001-01-01T00:00:00+01:00"', 14, "not a valid RFC 3339 datetime"),
        ("id : 1", 4, "':' (has) needs a text field, 'id' is int at position 4; use ="),
        (
            "active < true",
            8,
            "'<' does not apply to bool field 'active' at position 8; use = or !=",
        ),
        ("status >= paid", 8, "'>=' does not apply to enum field"),
        ("qty < null", 7, "null can only be compared with = or !="),
        ("name : null", 8, "null can only be compared"),
        (
            'name != "Ac*"',
            9,
            "trailing '*' (prefix match) needs '=' at position 9; use NOT name = \"Ac*\", or \\*",
        ),
        ("name", 5, "expected an operator (=, !=, <, <=, >, >=, :) after 'name'"),
        ("name name", 6, "expected an operator"),
        ("name == x", 7, "expected a value after '='"),
        ("name ! x", 6, "unexpected character '!'"),
        ('name = "abc', 8, 'unterminated string starting at position 8; close it with "'),
        ("name = 'abc\\'", 8, "unterminated string"),
        ("(id = 1", 8, "expected ')' at position 8 to close the '(' at 1"),
        ("id = 1)", 7, "unexpected ')'"),
        ("()", 2, "expected a comparison"),
        ("id = 1 AND", 11, "expected a comparison such as name = \"x\" after 'AND' at position 11"),
        ("id = 1 OR OR id = 2", 11, "after 'OR'"),
        ("NOT", 4, "after 'NOT'"),
        ("AND id = 1", 1, "expected a comparison"),
        ('"acme"', 1, "expected a comparison"),
        ("id = 1 = 2", 8, "unexpected '='"),
    ],
)
def test_errors_name_the_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse(text)
    detail = info.value.detail
    assert detail.startswith("filter: ")
    assert f"position {position}" in detail
    assert fragment in detail
    [error] = info.value.errors
    assert error.loc == ("query", "filter")
    assert error.type == "invalid_filter"
    assert error.msg == detail.removeprefix("filter: ")


def test_limits() -> None:
    at_most = " AND ".join(["id = 1"] * MAX_COMPARISONS)
    assert isinstance(parse(at_most), And)
    with pytest.raises(InvalidArgument, match="too many comparisons"):
        parse(at_most + " id = 2")
    assert parse(" " * (MAX_LENGTH - 6) + "id = 1") == c("id", "=", 1)
    with pytest.raises(InvalidArgument, match=f"too long at position {MAX_LENGTH + 1}"):
        parse(" " * (MAX_LENGTH - 5) + "id = 1")
    deepest = [
        "(" * MAX_DEPTH + "id = 1" + ")" * MAX_DEPTH,
        "NOT " * MAX_DEPTH + "id = 1",
        "-" * MAX_DEPTH + "id = 1",
        "(NOT " * (MAX_DEPTH // 2) + "id = 1" + ")" * (MAX_DEPTH // 2),
    ]
    for text in deepest:
        assert parse(text) is not None
    with pytest.raises(InvalidArgument, match="nesting deeper than 20 levels at position 21"):
        parse("(" * 21 + "id = 1" + ")" * 21)
    with pytest.raises(InvalidArgument, match="nesting deeper than 20 levels at position 21"):
        parse("-(" * 11 + "id = 1" + ")" * 11)
    with pytest.raises(InvalidArgument, match="nesting deeper than 20 levels at position 81"):
        parse("NOT " * 21 + "id = 1")
    with pytest.raises(InvalidArgument, match="nesting deeper"):
        parse("-" * MAX_LENGTH)


def test_enum_fields_need_choices() -> None:
    with pytest.raises(ValueError, match="choices"):
        FilterField("enum")


# --- matches() -------------------------------------------------------------------------


def ok(text: str, row: dict[str, Any]) -> bool:
    return matches(parse(text), row)


def test_matches_null_semantics() -> None:
    assert ok("qty = null", {})
    assert ok("qty = null", {"qty": None})
    assert not ok("qty != null", {})
    assert ok("qty != null", {"qty": 0})
    assert ok("qty != 3", {})
    assert ok("NOT qty = 3", {"qty": None})
    for text in ("qty = 3", "qty < 3", "qty >= 3", "name : a", "name = a*"):
        assert not ok(text, {})
        assert ok(f"NOT {text}", {})
    assert not ok("NOT qty != 3", {})


def test_matches_operators() -> None:
    row = {"id": 7, "name": "Acme Corp", "status": "paid", "active": True, "qty": 0}
    assert ok("id = 7 AND id <= 7 AND id >= 7 AND id > 6 AND id < 8 AND id != 8", row)
    assert ok("name : ACME AND name : 'e c' AND name = Acme* AND name = 'Acme Corp'", row)
    assert ok("name = acme*", row)  # prefix match ignores case
    assert not ok("name = corp* OR name : x OR name = Acme OR name < Acme", row)
    assert ok("status = paid active = true -active = false qty = 0", row)
    assert ok("status != pending OR id = 1", row)
    assert not ok("qty = 1 OR qty != 0", row)


def test_matches_datetimes_from_objects_and_strings() -> None:
    expr = parse('created_at > "2024-01-01T00:00:00Z"')
    later = datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert matches(expr, {"created_at": later})
    assert matches(expr, {"created_at": later.astimezone(timezone(timedelta(hours=-3)))})
    assert matches(expr, {"created_at": "2024-01-01T00:00:01Z"})
    assert matches(expr, {"created_at": "2024-01-01T00:00:01"})  # naive means UTC
    assert matches(expr, {"created_at": datetime(2024, 1, 1, 0, 0, 1)})
    assert not matches(expr, {"created_at": "2024-01-01T01:00:00+02:00"})
    assert not matches(expr, {"created_at": "garbage"})
    assert not matches(expr, {"created_at": 12})


def test_matches_tolerates_odd_row_types() -> None:
    assert not ok("qty < 3", {"qty": "two"})
    assert ok("qty != 3", {"qty": "two"})
    assert not ok("name : a", {"name": 5})
    assert not ok("name = a*", {"name": ["a"]})


def compiled(text: str) -> tuple[str, list[Any]]:
    params = Params()
    return to_sql(parse(text), FIELDS, params), params.values


def test_to_sql_shapes() -> None:
    assert compiled("nick = x") == ("(t.nickname = $1)", ["x"])
    assert compiled("nick = null") == ("(t.nickname IS NULL)", [])
    assert compiled("created_at != null") == ("(t.created IS NOT NULL)", [])
    assert compiled("nick != x") == ("(t.nickname <> $1 OR t.nickname IS NULL)", ["x"])
    assert compiled("name = Ac* OR name : b_% id < 3") == (
        "(((UPPER(t.name) LIKE UPPER($1) ESCAPE '\\') OR (UPPER(t.name) LIKE UPPER($2) "
        "ESCAPE '\\')) AND (t.id < $3))",
        ["Ac%", "%b\\_\\%%", 3],
    )
    # Under NOT, comparisons are guarded with IS NOT NULL so SQL never negates an unknown.
    assert compiled("NOT (qty > 1 OR qty = null)") == (
        "(NOT ((t.qty > $1 AND t.qty IS NOT NULL) OR (t.qty IS NULL)))",
        [1],
    )


# --- SQL and matches() agree -----------------------------------------------------------

BASE = datetime(2024, 1, 1, tzinfo=UTC)
NAMES = ["Acme", "acme labs", "Acme Corp", "ACME", "Beta_1", "BetaX1", "50% off", "500 off"]
NAMES += ["O'Brien", 'say "hi"', "back\\slash", "zed", "", "Zulu*", "Zulu star"]


def make_rows() -> list[dict[str, Any]]:
    rng = random.Random(160)
    rows = []
    for i in range(1, 31):
        rows.append(
            {
                "id": i,
                "qty": rng.choice([None, -5, 0, 1, 2, 3, 10, 42]),
                "name": NAMES[i % len(NAMES)],
                "nick": rng.choice([None, None, "ace", "Ace", "bob", ""]),
                "status": STATUSES[i % 3],
                "active": i % 4 == 0,
                "created_at": rng.choice([None, BASE + timedelta(hours=rng.randint(-48, 48))]),
            }
        )
    return rows


ROWS = make_rows()

FILTERS = [
    "id = 7",
    "id != 7 AND id <= 10",
    "qty > 2",
    "qty != 3",
    "NOT qty = 3",
    "NOT qty > 2",
    "-(qty < 2 OR qty > 5)",
    "qty = null",
    "qty != null AND qty >= -1",
    "name = Acme*",
    "name = acme*",
    "NOT name = A*",
    r'name = "Zulu\*"',
    "name = 'Beta_*'",
    'name : "50%"',
    "name : ACME",
    "name : _",
    "name = ''",
    "name > M AND name < b",
    'name = "O\'Brien" OR name = \'say "hi"\' OR name = "back\\\\slash"',
    "nick = ace",
    "nick : ACE",
    "nick != ace",
    "NOT nick : c",
    "nick = null OR nick = ''",
    "status = paid active = true",
    "status != paid OR NOT active = false",
    'created_at > "2024-01-01T00:00:00Z"',
    'created_at <= "2024-01-01T05:00:00+05:00" AND created_at != null',
    'NOT created_at < "2024-01-02T00:00:00Z"',
    'created_at = null OR (status = shipped AND NOT created_at > "2023-12-31T00:00:00Z")',
]


def value_for(rng: random.Random, field: str, op: str) -> str:
    kind = FIELDS[field].kind
    if op in ("=", "!=") and rng.random() < 0.15:
        return "null"
    if kind == "int":
        return str(rng.choice([-5, 0, 1, 2, 3, 7, 10, 15, 42]))
    if kind == "bool":
        return rng.choice(["true", "false"])
    if kind == "enum":
        return rng.choice(STATUSES)
    if kind == "datetime":
        moment = BASE + timedelta(hours=rng.randint(-50, 50))
        return f'"{moment.isoformat().replace("+00:00", rng.choice(["Z", "+00:00"]))}"'
    text = rng.choice(["a", "A", "acme", "Acme", "ace", "Beta_", "50%", "o", "", "Zulu"])
    if op == "=" and rng.random() < 0.3:
        text += "*"
    return repr(text) if rng.random() < 0.5 else f'"{text}"' if text else "''"


def random_filter(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth >= 3 or roll < 0.45:
        field = rng.choice(list(FIELDS))
        kind = FIELDS[field].kind
        ops = ["=", "!="] + (["<", "<=", ">", ">="] if kind in ("int", "str", "datetime") else [])
        op = rng.choice([*ops, ":"] if kind == "str" else ops)
        return f"{field} {op} {value_for(rng, field, op)}"

    def sub() -> str:
        return random_filter(rng, depth + 1)

    if roll < 0.6:
        return f"{sub()} AND {sub()}"
    if roll < 0.75:
        return f"{sub()} OR {sub()}"
    if roll < 0.8:
        return f"{sub()} {sub()}"
    if roll < 0.9:
        return f"{rng.choice(['NOT ', '-'])}{sub()}"
    return f"({sub()})"


RANDOM_FILTERS = [random_filter(random.Random(seed)) for seed in range(300)]


async def run_in_database(db_url: str, texts: list[str]) -> dict[str, list[int]]:
    # A context of its own, so the session's gateway database is never touched.
    async with TortoiseContext() as ctx:
        await ctx.init(db_url=db_url, modules={"filtering_test": [__name__]})
        await ctx.generate_schemas()
        if db_url.startswith("sqlite"):
            # Case-insensitive matching must not depend on SQLite's LIKE default.
            await connections.get("default").execute_script("PRAGMA case_sensitive_like = ON")
        for row in ROWS:
            await Thing.create(
                id=row["id"],
                qty=row["qty"],
                name=row["name"],
                nickname=row["nick"],
                status=row["status"],
                active=row["active"],
                created=row["created_at"],
            )
        found = {}
        for text in texts:
            expr = parse_filter(text, FIELDS)
            assert expr is not None
            params = Params()
            condition = to_sql(expr, FIELDS, params)
            rows = await select(
                f"SELECT t.id FROM {Thing._meta.db_table} t WHERE {condition} ORDER BY t.id",
                params.values,
            )
            found[text] = [row["id"] for row in rows]
        return found


async def run_on_backend(texts: list[str]) -> dict[str, list[int]]:
    """On the embedded pass SQLite; on the services pass a scratch PostgreSQL database."""
    if BACKEND != "services":
        return await run_in_database("sqlite://:memory:", texts)
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://"))
    name = f"gateway_filter_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = POSTGRES_URL.replace("postgres://", "asyncpg://").rsplit("/", 1)[0]
        return await run_in_database(f"{url}/{name}", texts)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="module")
def sql_results() -> dict[str, list[int]]:
    return asyncio.run(run_on_backend(FILTERS + RANDOM_FILTERS))


def expected_ids(text: str) -> list[int]:
    expr = parse_filter(text, FIELDS)
    return [row["id"] for row in ROWS if matches(expr, row)]


@pytest.mark.parametrize("text", FILTERS)
def test_sql_agrees_with_matches(sql_results: dict[str, list[int]], text: str) -> None:
    assert sql_results[text] == expected_ids(text)


def test_sql_agrees_with_matches_on_random_filters(sql_results: dict[str, list[int]]) -> None:
    disagreements = [t for t in RANDOM_FILTERS if sql_results[t] != expected_ids(t)]
    assert disagreements == []
    sizes = {len(sql_results[t]) for t in FILTERS + RANDOM_FILTERS}
    assert 0 in sizes  # the filters discriminate
    assert len(ROWS) in sizes
    assert len(sizes) > 10


# --- fuzzing ---------------------------------------------------------------------------

TOKENS = [*FIELDS, "colour", "AND", "OR", "NOT", "and", "-", "(", ")", "=", "!=", "<", "<="]
TOKENS += [">", ">=", ":", "!", '"', "'", "\\", "*", "null", "true", "false", "paid", "-3"]
TOKENS += ["42", "1e5", "0x1F", "9" * 30, '"Acme*"', "'x\\'y'", '"2024-01-01T00:00:00Z"']
TOKENS += ['"2024-01-01T00:00:00"', '"0001-01-01T00:00:00+01:00"', "é", "✓", "\t", "\x00"]
ERROR = re.compile(r"filter: .+ at position \d+")


def test_fuzz_never_leaks_other_exceptions() -> None:
    rng = random.Random(2024)
    parsed, bad_errors = 0, []
    for _ in range(4000):
        parts = [rng.choice(TOKENS) for _ in range(rng.randint(0, 14))]
        text = "".join(part + rng.choice(["", " ", " ", "  "]) for part in parts)
        if rng.random() < 0.02:
            text *= rng.randint(50, 300)
        try:
            expr = parse_filter(text, FIELDS)
        except InvalidArgument as error:
            msgs = [e.msg for e in error.errors]
            if not ERROR.match(error.detail) or msgs != [error.detail.removeprefix("filter: ")]:
                bad_errors.append((text, error.detail, msgs))
            continue
        parsed += 1
        if expr is not None:
            to_sql(expr, FIELDS, Params())
            for row in ROWS[:5]:
                matches(expr, row)
    assert bad_errors == []
    assert parsed > 200  # the fuzzer reaches past the tokenizer

"""Every GraphQL document costs bounded work, however it is built.

Work is counted, not timed: the number of Python function calls made while a
document is parsed, measured and validated (``sys.setprofile``). A machine's
speed changes seconds, not calls. The budget is what a legitimate document of
the largest allowed size costs, with room; the fan-out attack of issue 12 cost
2^n (n=25: 211 s on one worker) and must now grow linearly with the document.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from graphql import get_introspection_query

from gateway.settings import Settings
from resolvers.engine import Prepared, Runner
from resolvers.limits import MAX_FRAGMENT_NESTING

# Calls for the worst document within the default limits (2,000 tokens, 64 KiB):
# about 300,000 (a list literal of 1,988 items: 56 ms here); the introspection query:
# about 33,000.
WORK_BUDGET = 400_000


@pytest.fixture(scope="module")
def runner() -> Runner:
    runner = Runner(Settings(environment="test"))
    runner.prepare("{ __typename }")  # warm graphql-core's lazy tables
    return runner


def work(runner: Runner, query: str) -> tuple[int, Prepared]:
    """Function calls made preparing ``query`` from scratch, and what came out."""
    runner.cache.clear()
    calls = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        prepared = runner.prepare(query)
    finally:
        sys.setprofile(None)
    return calls, prepared


def codes(prepared: Prepared) -> set[str]:
    """Codes as the wire shows them (spec validation errors carry none of their own)."""
    return {
        (error.extensions or {}).get("code", "GRAPHQL_VALIDATION_FAILED")
        for error in prepared.errors
    }


def fan_out(n: int, leaf: str = "__typename") -> str:
    """Each fragment spreads the next twice: 2^n spreads once inlined."""
    parts = ["query { ...L0 }"]
    parts += [f"fragment L{i} on Query {{ ...L{i + 1} ...L{i + 1} }}" for i in range(n)]
    parts.append(f"fragment L{n} on Query {{ {leaf} }}")
    return "\n".join(parts)


def chain(n: int) -> str:
    frags = "".join(f"fragment F{i} on Query {{ ...F{i + 1} }}\n" for i in range(n))
    return f"query {{ ...F0 }}\n{frags}fragment F{n} on Query {{ __typename }}"


Hostile = Callable[[Settings], str]


def _repeat(text: str, n: int, sep: str = " ") -> str:
    return sep.join(text.format(i=i) for i in range(n))


# name: (a document for these limits, as large as they allow; the code it is refused
# with, or None when it is a legitimate document that must pass)
HOSTILE: dict[str, tuple[Hostile, str | None]] = {
    "fan-out n=30": (lambda s: fan_out(30), "QUERY_TOO_COMPLEX"),
    "fan-out n=30, empty leaf": (lambda s: fan_out(30, ""), "QUERY_TOO_COMPLEX"),
    "fan-out n=30, list leaf": (
        lambda s: fan_out(30, "orders(first: 100) { nodes { databaseId } }"),
        "QUERY_TOO_COMPLEX",
    ),
    "fan-out of fields": (
        lambda s: (
            "query { ...A }"
            + "".join(
                f"fragment {a} on Query {{ orders {{ nodes {{ databaseId }} }} ...{b} ...{b} }}"
                for a, b in zip("ABCDEFGHIJKLMNOPQRST", "BCDEFGHIJKLMNOPQRSTU", strict=True)
            )
            + "fragment U on Query { __typename }"
        ),
        "QUERY_TOO_COMPLEX",
    ),
    "the same field, as often as tokens allow": (
        lambda s: "{ " + "__typename " * (s.graphql_max_tokens - 2) + "}",
        "QUERY_TOO_COMPLEX",
    ),
    "the same nested field 35 x 35 times": (
        lambda s: (
            "{ "
            + _repeat("orders(first: 1) {{ nodes {{ " + "databaseId " * 35 + "}} }}", 35)
            + " }"
        ),
        "QUERY_TOO_COMPLEX",
    ),
    "deep fields": (
        lambda s: "{" + "orders { nodes { customer { " * 60 + "name" + " } } }" * 60 + "}",
        "QUERY_TOO_COMPLEX",
    ),
    "deep inline fragments": (
        lambda s: "{" + "... on Query { " * 400 + "__typename" + " }" * 400 + "}",
        "GRAPHQL_VALIDATION_FAILED",  # the parser stops at 200 levels of nesting
    ),
    "wide aliases": (
        lambda s: "{ " + _repeat("a{i}: __typename", s.graphql_max_tokens // 3 - 1) + " }",
        "QUERY_TOO_COMPLEX",
    ),
    "a long comment": (
        lambda s: "#" + "x" * (s.graphql_max_document_bytes - 40) + "\n{ __typename }",
        None,
    ),
    "a comment over the size limit": (
        lambda s: "#" + "x" * s.graphql_max_document_bytes + "\n{ __typename }",
        "QUERY_TOO_LARGE",
    ),
    "many comments": (
        lambda s: "#\n" * (s.graphql_max_document_bytes // 2 - 20) + "{ __typename }",
        "QUERY_TOO_LARGE",
    ),
    "a long string": (
        lambda s: (
            '{ orders(filter: "' + "x" * (s.graphql_max_document_bytes - 60) + '") { totalCount } }'
        ),
        None,  # a bad filter is a field error at execution, not here
    ),
    "unicode escapes": (
        lambda s: (
            '{ orders(filter: "'
            + "\\u0041" * (s.graphql_max_document_bytes // 6 - 10)
            + '") { totalCount } }'
        ),
        None,
    ),
    "many fragments in a chain": (lambda s: chain(s.graphql_max_tokens // 10), "QUERY_TOO_COMPLEX"),
    "a chain just within the nesting limit": (lambda s: chain(MAX_FRAGMENT_NESTING - 1), None),
    "a fragment cycle": (
        lambda s: "{ ...A } fragment A on Query { ...A ...A }",
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "a long cycle": (
        lambda s: (
            "{ ...F0 } "
            + _repeat("fragment F{i} on Query {{ ...F{i}x ...F{i}x }}", 40).replace("F39x", "F0")
        ),
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "many operations sharing fragments": (
        lambda s: _repeat("query q{i} {{ ...F0 }}", s.graphql_max_tokens // 6 - 60) + chain(40),
        "QUERY_TOO_COMPLEX",
    ),
    "many unknown arguments": (
        lambda s: (
            "{ orders("
            + _repeat("a{i}: 1", s.graphql_max_tokens // 3 - 4, ", ")
            + ") { totalCount } }"
        ),
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "unknown arguments over the token limit": (
        lambda s: (
            "{ orders(" + _repeat("a{i}: 1", s.graphql_max_tokens, ", ") + ") { totalCount } }"
        ),
        "QUERY_TOO_LARGE",
    ),
    "many unused variables": (
        lambda s: (
            "query(" + _repeat("$v{i}: Int", s.graphql_max_tokens // 4 - 3) + ") { __typename }"
        ),
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "many directives": (
        lambda s: "{ __typename" + " @include(if: true)" * (s.graphql_max_tokens // 7 - 1) + " }",
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "a big list literal": (
        lambda s: (
            "{ orders(first: ["
            + ",".join("111" for _ in range(s.graphql_max_tokens - 12))
            + "]) { totalCount } }"
        ),
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "the introspection query": (lambda s: get_introspection_query(), None),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_every_document_costs_bounded_work(runner, name):
    build, expected = HOSTILE[name]
    query = build(Settings(environment="test"))
    calls, prepared = work(runner, query)
    if expected is None:
        assert not prepared.errors, prepared.errors
    else:
        assert prepared.document is None
        assert expected in codes(prepared), [e.formatted for e in prepared.errors]
    assert calls <= WORK_BUDGET, f"{name}: {calls} calls"


def test_fan_out_work_grows_linearly_not_exponentially(runner):
    small, _ = work(runner, fan_out(10))
    large, prepared = work(runner, fan_out(30))
    assert codes(prepared) == {"QUERY_TOO_COMPLEX", "QUERY_TOO_COSTLY"}
    assert prepared.errors[0].extensions["code"] == "QUERY_TOO_COMPLEX"  # fan-out first
    # 20 more fragments: 2^20 times the spreads, about 3 times the work.
    assert large < 4 * small, (small, large)


def test_the_limits_hold_at_their_edges():
    settings = Settings(
        environment="test",
        graphql_max_fields=50,
        graphql_max_fragment_spreads=8,
        graphql_max_document_bytes=2048,
        graphql_max_aliases=1000,
    )
    runner = Runner(settings)
    wide = Runner(settings.model_copy(update={"graphql_max_fields": 1000}))

    def refused(query: str) -> set[str]:
        runner.cache.clear()
        return codes(runner.prepare(query))

    def aliases(n: int) -> str:
        return " ".join(f"a{i}: __typename" for i in range(n))

    # fields: exactly the limit passes, one more is refused
    assert refused("{ " + aliases(50) + " }") == set()
    assert refused("{ " + aliases(51) + " }") == {"QUERY_TOO_COMPLEX"}
    # a field selected n times at one place counts n*n: 7*7 = 49 passes, 8*8 = 64 not
    assert refused("{ " + "__typename " * 7 + "}") == set()
    assert refused("{ " + "__typename " * 8 + "}") == {"QUERY_TOO_COMPLEX"}
    # spreads, fragments inlined: 8 pass, 9 are refused
    spreads = "fragment F on Query { __typename } query { " + "... on Query { ...F } " * 8 + "}"
    assert not wide.prepare(spreads).errors
    assert codes(wide.prepare(spreads.replace("query { ", "query { ...F "))) == {
        "QUERY_TOO_COMPLEX"
    }
    # bytes: exactly the limit passes, one more byte is refused
    body = "{ __typename }"
    exact = "#" + "x" * (2048 - len(body) - 2) + "\n" + body
    assert len(exact.encode()) == 2048
    assert refused(exact) == set()
    assert refused("#" + exact) == {"QUERY_TOO_LARGE"}
    # fragment nesting: the limit passes, one more is refused
    default = Runner(Settings(environment="test"))
    assert not default.prepare(chain(MAX_FRAGMENT_NESTING - 1)).errors
    assert codes(default.prepare(chain(MAX_FRAGMENT_NESTING))) == {"QUERY_TOO_COMPLEX"}


async def test_the_weakest_credential_gets_the_refusal_quickly_over_http(server, tenant):
    """The attack of issue 12 as it was sent: a viewer token and an 864-byte document."""
    from tests.factories import TOKENS

    viewer = {"Authorization": f"Bearer {TOKENS.mint(tenant.id, 'viewer')}"}
    query = fan_out(25)
    r = await tenant.client.post("/graphql", json={"query": query}, headers=viewer)
    assert r.status_code == 200
    body = r.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert body["errors"][0]["extensions"]["spreads"] > body["errors"][0]["extensions"]["limit"]
    health = await tenant.client.get("/healthz")
    assert health.status_code == 200

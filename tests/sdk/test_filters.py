"""The typed AIP-160 builder: what it writes, and that hostile text stays text.

The hostile values are names of real customers; the gateway's own parser
(db/filtering.py) must find exactly the customer each filter names, whatever
quotes, backslashes, wildcards, keywords or parentheses the text holds.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from gateway_client import Client, Filter, all_of, any_of
from gateway_client.filters import quote
from gateway_client.models import CustomerFields as C
from gateway_client.models import OrderFields as O
from gateway_client.models import OrderStatus

from db.filtering import FilterField, parse_filter
from tests.sdk.live import LiveGateway

HOSTILE = [
    'a"b',
    "a'b",
    "back\\slash",
    "trailing\\",
    "\\",
    '\\"',
    "star*",
    "*",
    "\\*",
    "st*ar",
    "AND",
    "OR",
    "NOT x",
    'x OR name = "y"',
    'x" OR name != "',
    "(paren",
    "paren)",
    "null",
    "true",
    "-7",
    "a:b = c",
    "<=>!",
    "ünïcødé ✓ 名前",
    " padded ",
]
# Text no customer name may hold (one-line text refuses control characters): parsed only.
UNSTORABLE = ["tab\there", "line\nbreak"]


@pytest.mark.backend_independent
def test_the_builder_writes_the_grammar() -> None:
    f = (O.status == OrderStatus.PAID) & (O.total_cents > 1000) & ~O.note.has("gift")
    assert str(f) == ('((status = "paid") AND (total_cents > 1000)) AND (NOT (note : "gift"))')
    assert str(O.status == "paid") == 'status = "paid"'
    assert str(C.name.startswith('Ac"me*')) == 'name = "Ac\\"me\\**"'
    assert str(C.name == None) == "name = null"  # noqa: E711 (the builder's ==)
    assert str(C.name == "null") == 'name = "null"'
    assert str(C.id.is_not_null()) == "id != null"
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert str(C.created_at >= when) == 'created_at >= "2024-01-02T03:04:05+00:00"'
    assert str(any_of(C.id == 1, C.id == 2)) == "(id = 1) OR (id = 2)"
    assert str(all_of(C.id > 1)) == "(id > 1)"
    with pytest.raises(ValueError, match="time zone"):
        C.created_at > datetime(2024, 1, 1)  # noqa: B015
    with pytest.raises(TypeError, match="not a bool"):
        bool(C.id == 1)
    with pytest.raises(ValueError, match="not a field name"):
        type(C.id)("id = 1 OR id")
    assert isinstance(C.id == 1, Filter)


@pytest.mark.backend_independent
@pytest.mark.parametrize("text", HOSTILE + UNSTORABLE)
def test_hostile_text_parses_back_to_itself(text: str) -> None:
    """The gateway's parser reads each quoted value back as exactly the text."""
    fields = {"name": FilterField("str")}
    tree = parse_filter(f"name = {quote(text)}", fields)
    assert tree is not None
    assert (tree.op, tree.value) == ("=", text)  # type: ignore[attr-defined]
    prefix = parse_filter(str(C.name.startswith(text)), fields)
    assert (prefix.op, prefix.value) == ("prefix", text)  # type: ignore[union-attr]
    has = parse_filter(str(C.name.has(text)), fields)
    assert (has.op, has.value) == (":", text)  # type: ignore[union-attr]


def test_hostile_names_find_exactly_their_customer(gw: LiveGateway) -> None:
    tag = uuid.uuid4().hex[:8]
    with Client(gw.url, client_id=gw.sdk.client_id, client_secret=gw.sdk.client_secret) as sdk:
        made: dict[str, int] = {}
        for i, text in enumerate(HOSTILE):
            stored = sdk.customers.create({"name": text, "email": f"h{i}-{tag}@example.com"})
            made[stored.name] = stored.id  # as the gateway keeps it (" padded " is trimmed)
        ours = C.email.has(tag)
        for text, ident in made.items():
            exact = [c.id for c in sdk.customers.list(filter=(C.name == text) & ours)]
            assert exact == [ident], text
            starting = {c.name for c in sdk.customers.list(filter=C.name.startswith(text) & ours)}
            assert text in starting, text
            assert all(name.lower().startswith(text.lower()) for name in starting), text
            containing = {c.name for c in sdk.customers.list(filter=C.name.has(text) & ours)}
            assert all(text.lower() in name.lower() for name in containing), text
            others = [c.id for c in sdk.customers.list(filter=(C.name != text) & ours)]
            assert ident not in others
            assert len(others) == len(HOSTILE) - 1

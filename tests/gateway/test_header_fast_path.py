"""Sanic's header sanitizer with a fast path (``gateway.edge._strip_header_value``):
the same result as Sanic's own, for every string, and installed in the app."""

from __future__ import annotations

import random

import pytest
from sanic.response import types

from gateway.edge import _SANIC_HEADER_TABLE, _strip_header_value, install_header_fast_path


def sanic_original(value: str) -> str:
    return value.translate(types.HEADER_TRANSLATION_TABLE)


@pytest.mark.parametrize(
    "value",
    ["", "plain", "a\r\nInjected: yes", "\x00", "\n", "\r", "tab\tand é ü 中", "x" * 5000],
)
def test_the_fast_path_strips_what_sanic_strips(value):
    assert _strip_header_value(value) == sanic_original(value)


def test_random_strings_come_out_the_same():
    alphabet = "ab:;= \t\r\n\x00\x01\x7f\u00e9\u2028"
    rng = random.Random(12)
    for _ in range(5000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        assert _strip_header_value(value) == sanic_original(value)


def test_it_is_what_responses_use_once_the_app_is_set_up(server):
    assert types.BaseHTTPResponse._sanitize_header_value is _strip_header_value
    response = types.HTTPResponse(b"{}", headers={"X-Test": "a\r\nSet-Cookie: x=1"})
    assert dict(response.processed_headers)[b"X-Test"] == b"aSet-Cookie: x=1"


def test_a_changed_sanic_table_stops_startup(monkeypatch):
    monkeypatch.setattr(types, "HEADER_TRANSLATION_TABLE", str.maketrans("", "", "\r"))
    with pytest.raises(RuntimeError, match="header sanitizer changed"):
        install_header_fast_path()
    assert _SANIC_HEADER_TABLE != types.HEADER_TRANSLATION_TABLE

"""Sanic's response header block written in one pass (``gateway.http1_headers``):
the same bytes as Sanic's own code, for every header set, and installed in the app."""

from __future__ import annotations

import random

import pytest
from multidict import CIMultiDict
from sanic import headers as sanic_headers
from sanic.http import http1
from sanic.response import types

from gateway.http1_headers import (
    SANIC_HEADER_TABLE,
    HeaderBlock,
    install_header_fast_path,
    strip_header_value,
)

ORIGINAL_FORMAT = sanic_headers.format_http1_response


def sanic_original(value: str) -> str:
    return value.translate(types.HEADER_TRANSLATION_TABLE)


def sanic_block(status: int, headers: CIMultiDict[object]) -> bytes:
    """Sanic 25.12's own processed_headers and format_http1_response, as written there."""
    pairs = (
        (
            sanic_original(name).encode("ascii"),
            sanic_original(f"{value}").encode(errors="surrogateescape"),
        )
        for name, value in headers.items()
    )
    return ORIGINAL_FORMAT(status, pairs)


@pytest.mark.parametrize(
    "value",
    ["", "plain", "a\r\nInjected: yes", "\x00", "\n", "\r", "tab\tand é ü 中", "x" * 5000],
)
def test_the_fast_path_strips_what_sanic_strips(value):
    assert strip_header_value(value) == sanic_original(value)


def test_random_strings_come_out_the_same():
    alphabet = "ab:;= \t\r\n\x00\x01\x7f\u00e9\u2028"
    rng = random.Random(12)
    for _ in range(5000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        assert strip_header_value(value) == sanic_original(value)


@pytest.mark.parametrize(
    "pairs",
    [
        [],
        [("Content-Type", "application/json"), ("content-length", 12)],
        [("X-Test", "a\r\nSet-Cookie: x=1")],  # an injection attempt: the CR LF go
        [("X-Test", "line\nbreak"), ("X-Other", "fine")],
        [("X-Test", "cr\ronly")],
        [("X-Nul", "a\x00b")],
        [("X-Name\r\nInjected", "v")],
        [("Content-Disposition", 'attachment; filename="é.csv"')],  # not ASCII
        [("X-Many", "1"), ("x-many", "2"), ("X-MANY", "3")],
    ],
)
@pytest.mark.parametrize("status", [200, 201, 304, 404, 500])
def test_a_header_block_is_the_bytes_sanic_writes(server, pairs, status):
    headers: CIMultiDict[object] = CIMultiDict(pairs)
    assert http1.format_http1_response(status, HeaderBlock(headers)) == sanic_block(status, headers)


def test_random_header_sets_come_out_the_same(server):
    alphabet = "aZ09-:;= \t\r\n\x00\u00e9"
    rng = random.Random(7)
    for _ in range(3000):
        headers: CIMultiDict[object] = CIMultiDict()
        for _ in range(rng.randint(0, 6)):
            name = "X-" + "".join(rng.choice("abcXYZ-\r\n") for _ in range(rng.randint(1, 6)))
            value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            headers.add(name, value if rng.random() < 0.8 else rng.randint(0, 10**6))
        status = rng.choice([200, 204, 301, 400, 429, 503])
        try:
            expected: bytes | type[Exception] = sanic_block(status, headers)
        except UnicodeEncodeError:  # a name Sanic cannot encode: it fails the same way
            expected = UnicodeEncodeError
        if expected is UnicodeEncodeError:
            with pytest.raises(UnicodeEncodeError):
                http1.format_http1_response(status, HeaderBlock(headers))
        else:
            assert http1.format_http1_response(status, HeaderBlock(headers)) == expected


def test_it_is_what_responses_use_once_the_app_is_set_up(server):
    assert types.BaseHTTPResponse._sanitize_header_value is strip_header_value
    response = types.HTTPResponse(b"{}", headers={"X-Test": "a\r\nSet-Cookie: x=1"})
    block = response.processed_headers
    assert isinstance(block, HeaderBlock)
    assert dict(block)[b"X-Test"] == b"aSet-Cookie: x=1"  # what ASGI and HTTP/3 iterate


async def test_responses_carry_the_headers_on_the_wire(anon):
    response = await anon.get("/healthz")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-request-id"]


def test_a_changed_sanic_table_stops_startup(monkeypatch):
    monkeypatch.setattr(types, "HEADER_TRANSLATION_TABLE", str.maketrans("", "", "\r"))
    with pytest.raises(RuntimeError, match="response headers changed"):
        install_header_fast_path()
    assert SANIC_HEADER_TABLE != types.HEADER_TRANSLATION_TABLE


def test_a_changed_sanic_formatter_stops_startup(monkeypatch):
    monkeypatch.setattr(http1, "format_http1_response", lambda status, headers: b"")
    with pytest.raises(RuntimeError, match="response headers changed"):
        install_header_fast_path()

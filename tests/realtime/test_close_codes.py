"""One table of close codes: the README and the AsyncAPI document are rendered from it."""

from __future__ import annotations

from pathlib import Path

from realtime import close_codes
from realtime.asyncapi import document
from realtime.close_codes import (
    NORMAL,
    RESYNC,
    SLOW_CONSUMER,
    TABLE,
    TOKEN_REVOKED,
    Close,
    close_name,
    markdown_table,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_shows_the_table():
    assert markdown_table() in README.read_text(encoding="utf-8")


def test_every_close_frame_has_a_row():
    codes = {row.code for row in TABLE}
    frames = [v for v in vars(close_codes).values() if isinstance(v, Close)]
    assert frames
    assert all(frame.code in codes for frame in frames)
    assert NORMAL not in codes


def test_names_follow_the_frame_then_the_code():
    assert close_name(*SLOW_CONSUMER) == "SLOW_CONSUMER"
    assert close_name(*RESYNC) == "RESYNC_REQUIRED"
    assert close_name(*TOKEN_REVOKED) == "TOKEN_REVOKED"
    assert close_name(4403, "a refusal's own words") == "TOKEN_REVOKED"
    assert close_name(4408, "authentication timeout") == "CLOSED"  # the row has no name
    assert close_name(4999, "not ours") == "CLOSED"


def test_the_asyncapi_document_describes_every_code():
    described = document("http://gateway.test")["info"]["description"]
    for row in TABLE:
        assert f"{row.code} " in described
    assert "](#" not in described  # no Markdown left
    assert "`" not in described

"""The access log: its time stamp (the text ``datetime.isoformat`` gives, made cheaper) and
its lines, which wait to be written together."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, timedelta

import pytest

from gateway.logs import AccessLog, BufferedStreamHandler, write_pending

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_the_time_is_written_as_datetime_writes_it() -> None:
    now = [0]
    log = AccessLog("json", True, clock_ns=lambda: now[0])
    second = 1_764_825_320 * 10**9
    # Within one second, across seconds, at the rounding edges of micro- and milliseconds.
    for ns in (
        second,
        second + 1,
        second + 499,
        second + 500,
        second + 728_123_456,
        second + 999_499_999,
        second + 999_999_499,
        second + 999_999_500,
        second + 10**9 + 3_000_000,
        second + 86_400 * 10**9,
        0,
    ):
        now[0] = ns
        expected = EPOCH + timedelta(microseconds=(ns + 500) // 1000)
        assert log.now() == expected.isoformat(timespec="milliseconds"), ns


def test_lines_wait_and_keep_their_order_with_other_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_pending()
    capsys.readouterr()
    log = AccessLog("json", True)
    log.enabled = True  # whatever the level of the gateway.access logger in this test run
    handler = BufferedStreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.write("r1", {"method": "GET", "path": "/a", "status": 200})
    log.write("r2", {"method": "GET", "path": "/b", "status": 204})
    assert capsys.readouterr().out == ""  # no write per request
    handler.emit(logging.makeLogRecord({"msg": "something else", "levelno": logging.ERROR}))
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["request_id"] for line in lines[:2]] == ["r1", "r2"]
    assert lines[2:] == ["something else"]
    log.write("r3", {"method": "GET", "path": "/c", "status": 200})
    write_pending()
    assert json.loads(capsys.readouterr().out)["path"] == "/c"


def test_lines_are_written_once_64_kb_wait(capsys: pytest.CaptureFixture[str]) -> None:
    write_pending()
    capsys.readouterr()
    log = AccessLog("text", True)
    log.enabled = True
    fields = {"method": "GET", "path": "/" + "x" * 1000, "status": 200, "duration_ms": 1.0}
    for n in range(100):
        log.write(f"r{n}", {**fields, "principal": None})
        if capsys.readouterr().out:
            break
    assert 60 <= n <= 66, n  # about 64 KB of 1 KB lines
    write_pending()

"""The access log's time stamp: the text ``datetime.isoformat`` gives, made cheaper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.logs import AccessLog

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

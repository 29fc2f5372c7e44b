"""Structured logs: one JSON object per line, each stamped with the request id."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line; extra fields passed via ``extra=`` are kept."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):  # the fast path: extra={"fields": {...}}
            entry.update(fields)
        else:
            for key, value in record.__dict__.items():
                if key not in _RESERVED and key not in entry and not key.startswith("_"):
                    entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request_id = request_id_var.get()
        prefix = f"[{request_id}] " if request_id else ""
        base = f"{record.levelname.lower():7} {record.name}: {prefix}{record.getMessage()}"
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


class _AccessLines:
    """Access log lines not written to stdout yet.

    Whatever ``sys.stdout`` does, one line per request must not be one system call
    per request (with ``PYTHONUNBUFFERED=1``, common in containers, every write to
    stdout is one). Lines wait here until ``write_pending`` (each log record the
    handler writes first writes these, so the order on stdout stays the order of
    events), ``flush_periodically`` or 64 KB of them.
    """

    MAX_BYTES = 64 * 1024
    lock = threading.Lock()
    lines: list[str] = []
    size = 0


def write_pending() -> None:
    """Write the access log lines that are waiting (see ``_AccessLines``)."""
    with _AccessLines.lock:
        lines, _AccessLines.lines, _AccessLines.size = _AccessLines.lines, [], 0
    if lines:
        sys.stdout.write("".join(lines))


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that does not flush after every record.

    ``StreamHandler`` flushes each line: one system call per request for the
    access log, a measurable share of a fast request. This one flushes on
    warnings and errors, when ``interval`` seconds have passed, and when
    ``flush_periodically`` (run by each worker) says so.
    """

    def __init__(self, stream: Any, interval: float = 0.5) -> None:
        super().__init__(stream)
        self.interval = interval
        self._last_flush = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_pending()
            self.stream.write(self.format(record) + self.terminator)
            now = time.monotonic()
            if record.levelno >= logging.WARNING or now - self._last_flush >= self.interval:
                self.flush()
                self._last_flush = now
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        write_pending()
        super().flush()


async def flush_periodically(interval: float = 0.5) -> None:
    """Write the waiting access log lines and flush the root logger's handlers every
    ``interval`` seconds (a worker task), and once more when cancelled."""
    try:
        while True:
            await asyncio.sleep(interval)
            write_pending()
            for handler in logging.getLogger().handlers:
                handler.flush()
    finally:
        write_pending()


def configure_logging(level: str, fmt: str) -> None:
    """Route the root, Sanic and Tortoise loggers through one formatter on stdout."""
    handler = BufferedStreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("sanic.root", "sanic.error", "sanic.access", "sanic.server", "tortoise"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("tortoise").setLevel(max(logging.INFO, logging.getLevelName(level)))
    # httpx logs every request's full URL at INFO (a webhook receiver's URL may carry a
    # token in its query) and httpcore every socket step at DEBUG: warnings only.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


class AccessLog:
    """One line per request, written to stdout in the configured format.

    Going through ``logging`` cost more than the rest of a fast request's own
    work (a LogRecord, handler locks, formatting); this makes the same JSON shape
    in one ``orjson.dumps`` and leaves writing to ``write_pending``.
    """

    def __init__(
        self, fmt: str, enabled: bool, *, clock_ns: Callable[[], int] = time.time_ns
    ) -> None:
        self.enabled = enabled and logging.getLogger("gateway.access").isEnabledFor(logging.INFO)
        self._json = fmt == "json"
        self._clock_ns = clock_ns
        self._second = -1
        self._second_text = ""

    def now(self) -> str:
        """``datetime.now(UTC).isoformat(timespec="milliseconds")``, with the date and
        time up to the second formatted once a second (the whole took about as long as
        the rest of the line)."""
        micros = (self._clock_ns() + 500) // 1000
        second, micro = divmod(micros, 1_000_000)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._second_text}.{micro // 1000:03d}+00:00"

    def write(self, request_id: str | None, fields: dict[str, Any]) -> None:
        if not self.enabled:
            return
        entry: dict[str, Any] = {
            "time": self.now(),
            "level": "info",
            "logger": "gateway.access",
            "message": "request",
            "request_id": request_id,
        }
        entry.update(fields)
        if self._json:
            line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE).decode()
        else:
            line = (
                f"info    gateway.access: [{request_id}] {fields['method']} {fields['path']} "
                f"{fields['status']} {fields['duration_ms']}ms {fields['principal'] or '-'}\n"
            )
        with _AccessLines.lock:
            _AccessLines.lines.append(line)
            _AccessLines.size += len(line)
            full = _AccessLines.size >= _AccessLines.MAX_BYTES
        if full:
            write_pending()

"""``gateway serve`` processes for tests: a database of their own, logs, readiness.

Tests wait for what a server does (a log line, a readiness answer, a socket it
closes), never for time to pass; ``GUARD`` is a failure guard only.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import BACKEND, POSTGRES_URL
from tests.processes import clean_env, free_port, gateway

GUARD = 60.0  # seconds: only ever reached when something is broken
# Lines a clean shutdown never logs: Sanic's manager gave up on a worker, a task was
# dropped unfinished, or anything with a traceback.
NEVER = ("Event loop stopped before Future completed", "Task was destroyed", "Traceback")


@dataclass
class Gateway:
    """One ``gateway serve`` process, its port, and its log (stdout and stderr)."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def readyz(self) -> httpx.Response:
        return httpx.get(f"{self.url}/readyz", timeout=10)

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def records(self, since_line: int = 0) -> list[dict[str, Any]]:
        """The JSON log lines from line ``since_line`` on (the banner is plain text)."""
        found = []
        for line in self.lines()[since_line:]:
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
                if isinstance(record, dict):
                    found.append(record)
        return found

    def wait_for_line(self, text: str) -> str:
        deadline = time.monotonic() + GUARD
        while True:
            for line in self.lines():
                if text in line:
                    return line
            assert time.monotonic() < deadline, (
                f"no log line with {text!r}:\n{self.log.read_text()}"
            )
            time.sleep(0.05)

    def exit_code(self) -> int:
        return self.proc.wait(timeout=GUARD)

    def assert_clean_log(self) -> None:
        text = self.log.read_text(errors="replace")
        for bad in NEVER:
            assert bad not in text, text
        assert not [r for r in self.records() if r.get("exception")], text


_SERVER = POSTGRES_URL.rsplit("/", 1)[0]
_ADMIN = f"{_SERVER}/postgres"
_NEW_KEY = "UPDATE installation SET key = '{}' WHERE id = 1"


def _psql(url: str, sql: str, check: bool = True) -> None:
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=check)


_templates: dict[str, str] = {}  # what ``gateway migrate`` made once in this process


def _migrated_template() -> str:
    """A database ``gateway migrate`` brought to the schema, once per pytest process:
    a SQLite file, or a PostgreSQL database (dropped at exit). Tests get copies, each
    with an installation key of its own, as a migration of their own would give them."""
    if BACKEND in _templates:
        return _templates[BACKEND]
    if BACKEND != "services":
        where = Path(tempfile.mkdtemp(prefix="gateway-template-"))
        atexit.register(shutil.rmtree, where, ignore_errors=True)
        env = {"DATABASE_URL": f"sqlite://{where / 'gateway.sqlite3'}", "SEED_DEMO": "false"}
        made = str(where / "gateway.sqlite3")
    else:
        name = f"gateway_template_{uuid.uuid4().hex[:10]}"
        _psql(_ADMIN, f'CREATE DATABASE "{name}"')
        atexit.register(_psql, _ADMIN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', False)
        env = {"DATABASE_URL": f"{_SERVER}/{name}", "AUTO_MIGRATE": "false"}
        made = name
    done = gateway("migrate", env=clean_env(**env), cwd=Path(tempfile.gettempdir()))
    assert done.returncode == 0, done.stderr
    _templates[BACKEND] = made
    return made


def migrated_sqlite(path: Path) -> None:
    """A migrated SQLite database at ``path`` (its directory made as the gateway does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_migrated_template(), path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(_NEW_KEY.format(uuid.uuid4().hex))


@contextlib.contextmanager
def migrated_postgres() -> Iterator[str]:
    """The URL of a new, migrated PostgreSQL database, dropped on the way out."""
    template = _migrated_template()
    name = f"gateway_test_{uuid.uuid4().hex[:10]}"
    _psql(_ADMIN, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        _psql(f"{_SERVER}/{name}", _NEW_KEY.format(uuid.uuid4().hex))
        yield f"{_SERVER}/{name}"
    finally:
        _psql(_ADMIN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)


@contextlib.contextmanager
def own_database(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings for a database of this test's own, migrated."""
    if BACKEND != "services":
        migrated_sqlite(tmp_path / "gateway.sqlite3")
        yield {"DATABASE_URL": f"sqlite://{tmp_path / 'gateway.sqlite3'}", "SEED_DEMO": "false"}
        return
    with migrated_postgres() as url:
        yield {"DATABASE_URL": url, "AUTO_MIGRATE": "false"}


@contextlib.contextmanager
def gateways(tmp_path: Path, database: dict[str, str]) -> Iterator[Callable[..., Gateway]]:
    """Start ``gateway serve``; returns once every worker answers /readyz with 200.

    Every gateway started is killed (with its workers) on the way out.
    """
    started: list[Gateway] = []

    def start(workers: int = 1, **env: str) -> Gateway:
        port = free_port()
        log = tmp_path / f"gateway-{port}.log"
        settings = {"LOG_LEVEL": "INFO", "ACCESS_LOG": "false", "RATE_LIMITS_ENABLED": "false"}
        with log.open("wb") as out:  # the child writes to its own copy of the file
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway",
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
                env=clean_env(**{**settings, **database, **env}),
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        node = Gateway(proc, port, log)
        started.append(node)
        deadline = time.monotonic() + GUARD
        pids: set[int] = set()
        while len(pids) < workers:
            with contextlib.suppress(httpx.TransportError, ValueError):
                reply = node.readyz()
                if reply.status_code == 200:
                    pids.add(reply.json()["worker"]["pid"])
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the gateway did not start:\n{log.read_text()}"
            time.sleep(0.05)
        return node

    try:
        yield start
    finally:
        for node in started:
            # The whole group: a manager's workers would outlive a SIGKILL of the manager.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc.wait(timeout=GUARD)


def start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is needed for this test (it is on the services machines)")
    command = [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + GUARD
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return proc
        assert time.monotonic() < deadline, "the private Redis did not start"
        time.sleep(0.05)

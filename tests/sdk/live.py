"""A live ``gateway serve`` for the SDK's tests: one per session, restartable in place.

The SDK is a client of a real process: its sync client blocks, so it cannot share
the test's event loop with an in-process server, and the restart tests kill the
process and start it again on the same port and database. On the services backend
the gateway reaches PostgreSQL through a ``TcpProxy`` (tests/tcp_proxy.py), so a
test can stop the database; on the embedded one a test holds the SQLite file locked.

The organization has two OAuth clients: ``sdk`` with the gateway's normal limits,
and ``throttled`` with a read and write limit of 2 per second (RATE_LIMIT_OVERRIDES),
which the retry tests run into on purpose.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.processes import clean_env, gateway
from tests.tcp_proxy import TcpProxy

GUARD = 60.0  # seconds: reached only when something is broken
THROTTLED_RATE = "2/second"


@dataclass
class Credentials:
    client_id: str
    client_secret: str


@dataclass
class LiveGateway:
    """One ``gateway serve`` process on a fixed port; ``kill()`` and ``start()`` it."""

    directory: Path
    env: dict[str, str]
    port: int
    org: str
    sdk: Credentials
    throttled: Credentials
    hooks: Credentials  # webhooks:admin (privileged: not in a client's defaults), orders:read
    api_key: str
    database_path: Path | None = None  # embedded: the SQLite file
    proxy: TcpProxy | None = None  # services: the way to PostgreSQL
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the gateway; return once it answers /readyz with 200."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = self.directory / f"gateway-{self.starts}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "--port", str(self.port)],
                env=clean_env(**self.env),
                cwd=self.directory,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + GUARD
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            assert self.proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the gateway did not start:\n{log.read_text()}"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the whole process group: no goodbye to any connection."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=GUARD)

    def ensure_running(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.start()


def cli(*args: str, env: dict[str, str], cwd: Path) -> dict[str, str]:
    done = gateway(*args, "--json", env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    parsed: dict[str, str] = json.loads(done.stdout)
    return parsed


def client_credentials(
    org: str, name: str, env: dict[str, str], cwd: Path, *scopes: str
) -> Credentials:
    asked = [arg for scope in scopes for arg in ("--scope", scope)]
    made = cli("create-client", org, name, "--role", "owner", *asked, env=env, cwd=cwd)
    return Credentials(made["client_id"], made["client_secret"])

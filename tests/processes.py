"""Running the ``gateway`` command as an operator does: real processes, a clean environment."""

from __future__ import annotations

import atexit
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx


def gateway(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 120, fresh: bool = False
) -> subprocess.CompletedProcess[str]:
    """``gateway ARGS`` run to its end, as ``subprocess.run`` reports it.

    Each command is its own process, forked from one that has already imported the
    CLI (tests/cli_forks.py): the interpreter start and imports, most of a second of
    CPU, are paid once per session instead of once per command. ``serve`` and
    ``fresh=True`` start ``python -m gateway`` from nothing, as an operator's shell does.
    """
    command = [sys.executable, "-m", "gateway", *args]
    if fresh or args[:1] == ("serve",):
        return subprocess.run(
            command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    return _FORKS.run(command, list(args), env=env, cwd=cwd, timeout=timeout)


class _Forks:
    """The session's tests/cli_forks.py process, started on first use."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.outputs = Path(tempfile.mkdtemp(prefix="gateway-cli-"))
        atexit.register(shutil.rmtree, self.outputs, ignore_errors=True)
        self.count = 0

    def _start(self) -> subprocess.Popen[bytes]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("cli_forks.py"))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=self.outputs,
                env=clean_env(),
            )
            atexit.register(self.proc.kill)
        return self.proc

    def run(
        self, command: list[str], argv: list[str], env: dict[str, str], cwd: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        with self.lock:
            proc = self._start()
            assert proc.stdin is not None
            assert proc.stdout is not None
            self.count += 1
            out, err = (self.outputs / f"{self.count}.{name}" for name in ("out", "err"))
            request = {
                "argv": argv,
                "env": env,
                "cwd": str(cwd),
                "stdout": str(out),
                "stderr": str(err),
                "timeout": max(1, math.ceil(timeout)),
            }
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
            answer = proc.stdout.readline()
            assert answer, "tests/cli_forks.py exited"
            returncode = json.loads(answer)["returncode"]
            stdout, stderr = out.read_text(), err.read_text()
            out.unlink()
            err.unlink()
        if returncode == -signal.SIGALRM:
            raise subprocess.TimeoutExpired(command, timeout, stdout, stderr)
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)


_FORKS = _Forks()


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "AUTH_ISSUER", "PUBLIC_URL"}
    }
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serving(port: int, cwd: Path, **env: str) -> subprocess.Popen[str]:
    """``gateway serve`` on the embedded default, returned once /healthz answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
        env=clean_env(**env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read() if proc.stderr else "server exited")
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)

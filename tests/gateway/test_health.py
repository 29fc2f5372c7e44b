"""Liveness and readiness against a private Redis that the test stops and restarts."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.test_cli import clean_env, free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed; the readiness test needs it")
    proc = subprocess.Popen(
        [
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
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("private redis-server did not start")


def wait_for(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer")


@pytest.fixture
def gateway_with_private_redis(tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    redis_port, port = free_port(), free_port()
    redis = start_redis(redis_port, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
        env=clean_env(REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", LOG_LEVEL="WARNING"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}", redis_port, tmp_path
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        redis.kill()
        redis.wait()


def test_readiness_follows_redis(gateway_with_private_redis):
    base, redis_port, directory = gateway_with_private_redis
    ready = httpx.get(f"{base}/readyz", timeout=5)
    assert ready.status_code == 200
    body = ready.json()
    assert (body["status"], body["checks"]) == ("ok", {"database": "ok", "redis": "ok"})
    assert body["realtime"]["relay"] in {"leading", "standby"}

    subprocess.run(["redis-cli", "-p", str(redis_port), "shutdown", "nosave"], check=False)
    time.sleep(0.3)
    down = httpx.get(f"{base}/readyz", timeout=10)
    assert down.status_code == 503
    assert down.json()["checks"]["database"] == "ok"
    assert down.json()["checks"]["redis"].startswith("error")
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200  # alive all along

    redis = start_redis(redis_port, directory)
    try:
        deadline = time.monotonic() + 10
        while httpx.get(f"{base}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "not ready again after Redis came back"
            time.sleep(0.2)
    finally:
        redis.kill()
        redis.wait()

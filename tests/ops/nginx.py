"""Debian's nginx run on ops/deploy/nginx/gateway.conf, privately: a configuration, pid,
logs and temporary files in a test's directory, never the system service.

The site is used as shipped except for what differs between a compose host and a test:
the upstream servers (the test's gateways), the listening address and the access log's
path. Each of these is replaced exactly once, so an edit of the site that these
replacements no longer fit fails the tests instead of testing something else.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "ops" / "deploy" / "nginx" / "gateway.conf"
NGINX = os.environ.get("NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
# CI installs nginx (ops/scripts/install); elsewhere its absence skips, loudly.
REQUIRED = any(
    os.environ.get(name, "") not in ("", "0", "false") for name in ("CI", "REQUIRE_SERVICES")
)
GUARD = 30.0  # seconds: only ever reached when something is broken

_UPSTREAM_SERVER = re.compile(r"^    server gateway-\d+:8000 (?P<options>[^;]*);\n", re.MULTILINE)
_LISTEN = "    listen 80;\n"
_ACCESS_LOG = "access_log /var/log/nginx/access.log gateway;"


def need_nginx() -> str:
    """The nginx binary, or skip (fail in CI) saying what is missing."""
    if Path(NGINX).is_file() and os.access(NGINX, os.X_OK):
        return NGINX
    message = f"nginx is not at {NGINX} (ops/scripts/install installs Debian's nginx-light)"
    if REQUIRED:
        pytest.fail(f"nginx is required here (CI): {message}")
    pytest.skip(f"NO NGINX PROOF IN THIS RUN: {message}")


def render_site(upstream_ports: list[int], listen: str, access_log: Path) -> str:
    """ops/deploy/nginx/gateway.conf for gateways on these loopback ports."""
    text = SITE.read_text()
    servers = list(_UPSTREAM_SERVER.finditer(text))
    assert len(servers) == 2, "the site's upstream should list gateway-1 and gateway-2"
    options = servers[0].group("options")
    ours = "".join(f"    server 127.0.0.1:{port} {options};\n" for port in upstream_ports)
    text = text[: servers[0].start()] + ours + text[servers[-1].end() :]
    assert text.count(_LISTEN) == 1
    assert text.count(_ACCESS_LOG) == 1
    text = text.replace(_LISTEN, f"    listen {listen};\n")
    return text.replace(_ACCESS_LOG, f"access_log {access_log} gateway;")


def main_config(directory: Path, site: Path) -> str:
    """An nginx.conf that includes ``site`` and keeps every file in ``directory``."""
    # As root the workers would otherwise run as nobody, who cannot write the test's
    # temporary directories.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "".join(
        f"    {kind}_temp_path {directory / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\ndaemon off;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} info;\n"
        "events { worker_connections 512; }\n"
        f"http {{\n{temp}    include {site};\n}}\n"
    )


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def access_log(self) -> list[str]:
        path = self.directory / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def write_config(directory: Path, upstream_ports: list[int], listen: str) -> Path:
    """The private configuration in ``directory``; returns the main file."""
    directory.mkdir(parents=True, exist_ok=True)
    site = directory / "gateway.conf"
    site.write_text(render_site(upstream_ports, listen, directory / "access.log"))
    main = directory / "nginx.conf"
    main.write_text(main_config(directory, site))
    return main


def check_config(binary: str, main: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on the private configuration."""
    return subprocess.run(
        [binary, "-t", "-p", str(main.parent), "-c", str(main), "-e", str(main.parent / "t.log")],
        capture_output=True,
        text=True,
        timeout=GUARD,
        check=False,
    )


@contextlib.contextmanager
def running_nginx(directory: Path, upstream_ports: list[int], port: int) -> Iterator[Nginx]:
    """nginx in front of the gateways on ``upstream_ports``, listening on 127.0.0.1:port."""
    binary = need_nginx()
    main = write_config(directory, upstream_ports, f"127.0.0.1:{port}")
    proc = subprocess.Popen(
        [binary, "-p", str(directory), "-c", str(main), "-e", str(directory / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    node = Nginx(proc, port, directory)
    try:
        deadline = time.monotonic() + GUARD
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            assert proc.poll() is None, node.error_log()
            assert time.monotonic() < deadline, f"nginx did not start:\n{node.error_log()}"
            time.sleep(0.02)
        yield node
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)  # fast shutdown: open streams are cut
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=GUARD)
        if proc.stderr is not None:
            proc.stderr.close()

# Run from the checkout: .venv/bin/python ops/bench/sentry_cost.py
"""What Sentry costs per successful request: off, the gateway's ``SanicErrors``, and
sentry_sdk's own ``SanicIntegration`` (each in a fresh process: integrations patch
Sanic once per process).

A one-route Sanic app on a socket; one keep-alive client in the same loop sends
3,000 GETs five times; the best run's mean is printed. Events go to a transport
that drops them (none is sent: nothing fails).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, text
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

REQUEST = b"GET /x HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer abc\r\n\r\n"
RUNS, PER_RUN = 5, 3000


class Drop(Transport):
    def capture_envelope(self, envelope: Envelope) -> None:
        pass


def enable(mode: str) -> None:
    if mode == "gateway":
        from gateway.observability import setup_sentry
        from gateway.settings import Settings

        setup_sentry(Settings(), transport=Drop())
    elif mode == "sdk":
        import sentry_sdk
        from sentry_sdk.integrations.sanic import SanicIntegration

        sentry_sdk.init(
            integrations=[SanicIntegration()],
            transport=Drop(),
            traces_sample_rate=0.0,
            send_default_pii=False,
        )


async def measure() -> float:
    app: Sanic[Any, Any] = Sanic("sentry_cost", configure_logging=False)
    app.config.ACCESS_LOG = False  # as the gateway (its own access log)

    @app.get("/x")
    async def x(request: Request) -> HTTPResponse:
        return text("ok")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def one() -> None:
        writer.write(REQUEST)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)

    for _ in range(500):
        await one()
    best = float("inf")
    for _ in range(RUNS):
        began = time.perf_counter()
        for _ in range(PER_RUN):
            await one()
        best = min(best, (time.perf_counter() - began) / PER_RUN)
    return best


def main() -> None:
    if len(sys.argv) > 1:
        enable(sys.argv[1])
        print(f"{asyncio.run(measure()) * 1e6:.1f}")
        return
    figures = {}
    for mode in ("off", "gateway", "sdk"):
        done = subprocess.run(
            [sys.executable, __file__, mode], capture_output=True, text=True, check=True
        )
        figures[mode] = float(done.stdout.split()[-1])
    for mode, micros in figures.items():
        extra = micros - figures["off"]
        print(f"{mode:8} {micros:7.1f} µs/request  ({extra:+.1f} µs over off)")


if __name__ == "__main__":
    main()

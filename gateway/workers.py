"""Worker processes: a dead one is logged loudly and replaced; readiness counts the living.

With ``--workers N`` (N > 1) Sanic's manager process starts the workers and
restarts them when asked, but does not notice one that dies: a worker killed by
SIGKILL (the kernel's OOM killer, an operator) left the host at N-1 workers,
nothing was logged and ``/readyz`` kept answering 200. ``WorkerWatch`` runs in the
manager's process, in a thread of its own; when a worker has died outside a
shutdown it logs one error line (which worker, its pid, the signal or status) and
asks the manager to start a replacement, at once the first time and then after 1,
2, 4 ... up to 30 s while the same worker keeps dying (a crash loop does not spin);
when the replacement serves it logs one line more. Each worker's ``/readyz`` reads
the manager's table of workers and answers 503 while fewer than N serve.

With ``--workers 1`` there is no manager: the server is that one process, and its
supervisor (systemd, Kubernetes, Docker's restart policy) restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sanic.worker.constants import ProcessState

if TYPE_CHECKING:
    from gateway.context import GatewayApp

log = logging.getLogger("gateway.workers")

SERVER_LABEL = "Server"  # in the names of Sanic's server processes ("Sanic-Server-0-0")
WATCH_SECONDS = 0.1  # Sanic's manager updates its table every 0.1 s
DEATHS_WINDOW_SECONDS = 300.0  # deaths of one worker counted for the backoff
MAX_RESTART_DELAY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Capacity:
    """How many of the host's workers serve, out of how many, and past restarts."""

    expected: int
    serving: int
    restarts: int

    @property
    def full(self) -> bool:
        return self.serving >= self.expected


def capacity(states: Mapping[str, Mapping[str, Any]], expected: int) -> Capacity:
    """Read Sanic's table of workers: a worker serves once it has acknowledged its start."""
    servers = [state for state in states.values() if state.get("server")]
    serving = sum(1 for state in servers if state.get("state") == ProcessState.ACKED.name)
    restarts = sum(max(0, int(state.get("starts", 1)) - 1) for state in servers)
    return Capacity(max(expected, len(servers)), serving, restarts)


async def read_capacity(app: GatewayApp) -> Capacity | None:
    """This host's capacity, or None when it runs one process (no manager to ask)."""
    multiplexer = getattr(app, "multiplexer", None)
    if multiplexer is None:
        return None
    # The table lives in Sanic's manager process: a blocking round trip, so off the loop.
    states: dict[str, Any] = await asyncio.to_thread(lambda: multiplexer.workers)
    return capacity(states, app.ctx.settings.workers)


def how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "ended"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def restart_delay(deaths: int) -> float:
    """0 for a first death, then 1, 2, 4 ... seconds, at most 30."""
    if deaths <= 1:
        return 0.0
    return min(MAX_RESTART_DELAY_SECONDS, 2.0 ** (deaths - 2))


class WorkerWatch:
    """Notices a dead server worker in Sanic's manager and has it replaced.

    ``check`` is one pass (the thread calls it every ``WATCH_SECONDS``); it reads
    the states the manager's own loop keeps and asks for a restart through the
    manager's message pipe, so the restart runs in the manager's loop as any
    other restart does.
    """

    def __init__(self, manager: Any, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._manager = manager
        self._clock = clock
        self._reported: set[int] = set()  # pids of dead workers already handled
        self._deaths: dict[str, list[float]] = {}
        self._due: dict[str, float] = {}  # worker name -> when to ask for its replacement
        self._replacing: dict[str, tuple[int, float]] = {}  # name -> (dead pid, died at)
        self._stopped = threading.Event()
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="worker-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(WATCH_SECONDS):
            try:
                self.check()
            except Exception:  # a bug here must not spin the log: say it once
                if not self._failed:
                    self._failed = True
                    log.exception("the worker watch failed; dead workers may not be replaced")

    def _servers(self) -> list[Any]:
        return [
            process
            for worker in list(self._manager.transient.values())
            for process in worker.processes
            if SERVER_LABEL in process.name
        ]

    def check(self) -> None:
        if getattr(self._manager, "_shutting_down", False):
            return
        now = self._clock()
        for process in self._servers():
            name, pid, state = process.name, process.pid, process.state
            if state in (ProcessState.FAILED, ProcessState.COMPLETED) and pid not in self._reported:
                self._reported.add(pid)
                self._died(name, pid, process.exitcode, now)
            elif name in self._replacing and state is ProcessState.ACKED:
                dead_pid, died_at = self._replacing[name]
                if pid != dead_pid:
                    del self._replacing[name]
                    log.warning(
                        "worker %s serves again (pid %d, %.1f s after pid %d died)",
                        name,
                        pid,
                        now - died_at,
                        dead_pid,
                    )
        for name, due in list(self._due.items()):
            if now >= due:
                del self._due[name]
                self._manager.monitor_publisher.send(name)

    def _died(self, name: str, pid: int, exitcode: int | None, now: float) -> None:
        deaths = [t for t in self._deaths.get(name, []) if now - t < DEATHS_WINDOW_SECONDS]
        deaths.append(now)
        self._deaths[name] = deaths
        delay = restart_delay(len(deaths))
        when = f"in {delay:.0f} s ({len(deaths)} deaths in 5 minutes)" if delay else "now"
        log.error(
            "worker %s (pid %d) died: %s; this host serves with one worker fewer until "
            "its replacement starts (%s)",
            name,
            pid,
            how_it_ended(exitcode),
            when,
        )
        self._due[name] = now + delay
        self._replacing[name] = (pid, now)


def setup_workers(app: GatewayApp) -> None:
    """Watch the workers from Sanic's manager process (only with more than one worker:
    one worker runs without a manager, and ``create_server`` warns about listeners
    of a main process it does not have)."""
    if app.ctx.settings.workers <= 1:
        return

    @app.main_process_ready
    async def watch_workers(app: GatewayApp) -> None:
        watch = app.ctx.worker_watch = WorkerWatch(app.manager)
        watch.start()

    @app.main_process_stop
    async def stop_watching(app: GatewayApp) -> None:
        watch, app.ctx.worker_watch = app.ctx.worker_watch, None
        if watch is not None:
            watch.stop()

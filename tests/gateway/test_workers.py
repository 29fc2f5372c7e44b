"""The worker watch and readiness arithmetic, on stand-ins for Sanic's manager.

The real thing, a worker killed with SIGKILL under ``gateway serve --workers 2``, is
tests/gateway/test_process_health.py; here a manual clock drives the backoff.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from sanic.worker.constants import ProcessState

from gateway.workers import WorkerWatch, capacity, how_it_ended, restart_delay


@dataclass
class FakeProcess:
    name: str
    pid: int
    state: ProcessState = ProcessState.ACKED
    exitcode: int | None = None


@dataclass
class FakeWorker:
    processes: list[FakeProcess]


@dataclass
class FakePipe:
    sent: list[str] = field(default_factory=list)

    def send(self, message: str) -> None:
        self.sent.append(message)


@dataclass
class FakeManager:
    transient: dict[str, FakeWorker]
    monitor_publisher: FakePipe = field(default_factory=FakePipe)
    _shutting_down: bool = False


def manager_with(*processes: FakeProcess) -> FakeManager:
    return FakeManager({p.name: FakeWorker([p]) for p in processes})


def errors_and_warnings(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "gateway.workers"]


def test_a_dead_worker_is_reported_once_replaced_at_once_and_its_return_noted(caplog):
    now = [10.0]
    first = FakeProcess("Sanic-Server-0-0", 101)
    second = FakeProcess("Sanic-Server-1-0", 102)
    manager = manager_with(first, second)
    watch = WorkerWatch(manager, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="gateway.workers"):
        watch.check()
        assert manager.monitor_publisher.sent == []

        second.state, second.exitcode = ProcessState.FAILED, -9
        watch.check()
        watch.check()  # still dead, not yet restarted: said once, asked once
        assert manager.monitor_publisher.sent == ["Sanic-Server-1-0"]

        second.state = ProcessState.STARTING  # the manager restarts it
        second.pid = 103
        watch.check()
        now[0] += 2.5
        second.state = ProcessState.ACKED
        watch.check()
        watch.check()
    assert errors_and_warnings(caplog) == [
        (
            "ERROR",
            "worker Sanic-Server-1-0 (pid 102) died: killed by SIGKILL; this host serves "
            "with one worker fewer until its replacement starts (now)",
        ),
        ("WARNING", "worker Sanic-Server-1-0 serves again (pid 103, 2.5 s after pid 102 died)"),
    ]


def test_a_worker_that_keeps_dying_is_replaced_later_and_later():
    now = [0.0]
    process = FakeProcess("Sanic-Server-0-0", 1)
    manager = manager_with(process)
    watch = WorkerWatch(manager, clock=lambda: now[0])
    waits = []
    for death in range(1, 6):
        process.pid, process.state, process.exitcode = death, ProcessState.FAILED, 1
        died = now[0]
        watch.check()
        while len(manager.monitor_publisher.sent) < death:
            now[0] += 0.25
            watch.check()
        waits.append(now[0] - died)
        process.pid, process.state = 1000 + death, ProcessState.ACKED  # its replacement
        watch.check()
        now[0] += 1.0
    assert waits == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert [restart_delay(n) for n in range(1, 9)] == [0, 1, 2, 4, 8, 16, 30, 30]


def test_nothing_is_restarted_while_the_server_shuts_down():
    process = FakeProcess("Sanic-Server-0-0", 7, ProcessState.FAILED, 0)
    manager = manager_with(process)
    manager._shutting_down = True
    WorkerWatch(manager).check()
    assert manager.monitor_publisher.sent == []


def test_other_processes_of_the_manager_are_not_watched():
    inspector = FakeProcess("Sanic-Inspector-0", 9, ProcessState.FAILED, 1)
    manager = manager_with(inspector)
    WorkerWatch(manager).check()
    assert manager.monitor_publisher.sent == []


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (-9, "killed by SIGKILL"),
        (-15, "killed by SIGTERM"),
        (3, "exited with status 3"),
        (None, "ended"),
    ],
)
def test_how_a_worker_ended_is_said_plainly(code, said):
    assert how_it_ended(code) == said


def _state(state: str, starts: int = 1) -> dict[str, Any]:
    return {"server": True, "state": state, "starts": starts, "pid": 1}


def test_capacity_counts_the_workers_that_acknowledged_their_start():
    table = {
        "Sanic-Main": {"pid": 1},
        "Sanic-Server-0-0": _state("ACKED"),
        "Sanic-Server-1-0": _state("FAILED"),
    }
    assert capacity(table, 2) == capacity(table, 1)
    lost = capacity(table, 2)
    assert (lost.expected, lost.serving, lost.restarts, lost.full) == (2, 1, 0, False)
    table["Sanic-Server-1-0"] = _state("STARTING", starts=2)
    assert capacity(table, 2).serving == 1
    table["Sanic-Server-1-0"] = _state("ACKED", starts=2)
    back = capacity(table, 2)
    assert (back.serving, back.restarts, back.full) == (2, 1, True)

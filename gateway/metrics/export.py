"""Putting the workers' numbers together, and writing them in Prometheus's formats.

``gateway serve --workers N`` runs N processes and a scrape reaches one of them.
Each worker keeps its own numbers (``gateway.metrics``); every
``FLUSH_SECONDS`` it writes all of them, whole, to one file of its own in a
directory the serving process made before the workers started
(``GATEWAY_METRICS_DIR``, removed when it stops). A scrape answers with its own
numbers as they are now plus every other worker's last file: the others' may
be up to ``FLUSH_SECONDS`` old.

The same rules as prometheus-client's multiprocess mode, without its cost per
increment (a lock and an mmap write): counters and histograms add up over
every worker that ever ran (a replaced worker's requests still count), gauges
over the workers alive only (a file whose process is gone, or that has not
been rewritten for ``STALE_SECONDS``, or whose worker stopped, holds no
gauge), summed or, for flags and positions, the largest. The files of workers
dead for ``RETIRE_SECONDS`` are folded into one (``retired.json``, counters and
histograms only) so that a host whose workers were replaced many times reads
few files per scrape; a lock keeps a scrape from reading a dead worker's
numbers twice while they move.

With one process (``--workers 1``, the tests' in-process servers) there is no
directory: a scrape reads this process's numbers, and adds prometheus-client's
process metrics (CPU, memory, file descriptors), which describe one process
only and so are left out when several serve.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from gateway.metrics import FAMILIES, Counter, Family, Gauge, Histogram, Labels

DIR_ENV = "GATEWAY_METRICS_DIR"
FLUSH_SECONDS = 1.0
STALE_SECONDS = 10.0
RETIRE_SECONDS = 60.0
RETIRED = "retired.json"

Values = dict[Labels, Any]
Snapshot = dict[str, Values]


def snapshot(pulled: Snapshot) -> Snapshot:
    """This process's values (copied: the caller may keep them), with ``pulled``
    (what one app's components say now) over them."""
    taken: Snapshot = {}
    for family in FAMILIES:
        if isinstance(family, Histogram):
            taken[family.name] = {k: list(v) for k, v in family.values.items()}
        else:
            taken[family.name] = {**family.values, **pulled.get(family.name, {})}
    return taken


def encode(values: Snapshot, *, pid: int, stopped: bool = False) -> bytes:
    families = {name: [[list(k), v] for k, v in series.items()] for name, series in values.items()}
    return orjson.dumps({"pid": pid, "at": time.time(), "stopped": stopped, "families": families})


def decode(raw: bytes) -> tuple[int, float, bool, Snapshot]:
    data = orjson.loads(raw)
    families = {
        name: {tuple(labels): value for labels, value in series}
        for name, series in data["families"].items()
    }
    return int(data["pid"]), float(data["at"]), bool(data["stopped"]), families


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Exchange:
    """The worker files in ``directory``: this worker's to write, the others' to read."""

    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self.directory = directory
        self.pid = pid if pid is not None else os.getpid()
        # The pid says whether the worker lives; the rest keeps a later process that
        # gets the same pid (containers reuse small ones) off a dead worker's file.
        self.path = directory / f"worker-{self.pid}-{secrets.token_hex(4)}.json"

    def write(self, values: Snapshot, *, stopped: bool = False) -> None:
        """Replace this worker's file at once (a reader never sees half of it)."""
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(encode(values, pid=self.pid, stopped=stopped))
        os.replace(temporary, self.path)

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[bool]:
        """The directory's lock: shared to read the files, exclusive to retire some
        (which gives up at once, False, when a reader holds it)."""
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, mode)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock

    def _files(self) -> Iterator[tuple[Path, int, float, bool, Snapshot]]:
        for path in sorted(self.directory.glob("worker-*.json")):
            if path == self.path:
                continue
            try:
                pid, at, stopped, values = decode(path.read_bytes())
            except (OSError, ValueError, KeyError, TypeError):
                continue  # gone meanwhile, or not ours
            yield path, pid, at, stopped, values

    def _retired(self) -> Snapshot:
        try:
            return decode((self.directory / RETIRED).read_bytes())[3]
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def others(self, now: float | None = None) -> list[tuple[Snapshot, bool]]:
        """Every other worker's values, and whether its gauges count (alive, fresh,
        serving); retired workers' values first."""
        now = time.time() if now is None else now
        with self._locked(fcntl.LOCK_SH):
            found = [(self._retired(), False)]
            for _, pid, at, stopped, values in self._files():
                live = not stopped and now - at < STALE_SECONDS and _alive(pid)
                found.append((values, live))
        return found

    def retire(self, now: float | None = None) -> int:
        """Fold the files of workers dead for ``RETIRE_SECONDS`` into ``retired.json``;
        how many were folded (0 when a scrape was reading)."""
        now = time.time() if now is None else now
        with self._locked(fcntl.LOCK_EX | fcntl.LOCK_NB) as locked:
            if not locked:
                return 0
            dead = [
                (path, values)
                for path, pid, at, _, values in self._files()
                if now - at > RETIRE_SECONDS and not _alive(pid)
            ]
            if not dead:
                return 0
            parts = [(self._retired(), False), *((values, False) for _, values in dead)]
            temporary = self.directory / (RETIRED + ".tmp")
            temporary.write_bytes(encode(merge(parts), pid=0, stopped=True))
            os.replace(temporary, self.directory / RETIRED)
            for path, _ in dead:
                path.unlink(missing_ok=True)
            return len(dead)


def merge(parts: Iterable[tuple[Snapshot, bool]]) -> Snapshot:
    """Workers' values added up: counters and histograms over all, gauges over the live."""
    total: Snapshot = {family.name: {} for family in FAMILIES}
    kinds = {family.name: family for family in FAMILIES}
    for values, live in parts:
        for name, series in values.items():
            family = kinds.get(name)
            if family is None:
                continue
            into = total[name]
            if isinstance(family, Gauge):
                if not live:
                    continue
                for key, value in series.items():
                    if key not in into:
                        into[key] = value
                    elif family.merge == "max":
                        into[key] = max(into[key], value)
                    else:
                        into[key] += value
            elif isinstance(family, Histogram):
                width = len(family.bounds) + 2
                for key, value in series.items():
                    if len(value) != width:
                        continue  # written by a worker with other buckets
                    mine = into.get(key)
                    into[key] = (
                        list(value)
                        if mine is None
                        else [a + b for a, b in zip(mine, value, strict=True)]
                    )
            else:
                for key, value in series.items():
                    into[key] = into.get(key, 0) + value
    return total


def _label_values(key: Labels) -> list[str]:
    return [str(value) for value in key]


def families(values: Snapshot) -> Iterator[Metric]:
    """``values`` as prometheus-client's metric families, for its exposition code."""
    for family in FAMILIES:
        series = values.get(family.name, {})
        yield _family(family, series)


def _family(family: Family, series: Values) -> Metric:
    labels = list(family.labels)
    if isinstance(family, Counter):
        counter = CounterMetricFamily(family.name, family.documentation, labels=labels)
        for key, value in sorted(series.items()):
            counter.add_metric(_label_values(key), value)
        return counter
    if isinstance(family, Gauge):
        gauge = GaugeMetricFamily(family.name, family.documentation, labels=labels)
        for key, value in sorted(series.items()):
            gauge.add_metric(_label_values(key), value)
        return gauge
    histogram = HistogramMetricFamily(family.name, family.documentation, labels=labels)
    edges = [_bound(bound) for bound in family.bounds] + ["+Inf"]
    for key, value in sorted(series.items()):
        cumulative, buckets = 0.0, []
        for edge, count in zip(edges, value[:-1], strict=True):
            cumulative += count
            buckets.append((edge, cumulative))
        histogram.add_metric(_label_values(key), buckets, value[-1])
    return histogram


def _bound(value: float) -> str:
    """A bucket's ``le`` as Prometheus writes it (``0.005``, ``1.0``, ``20000.0``)."""
    return repr(float(value))

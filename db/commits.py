"""Commits told in process: the in-process counterpart of the events table's NOTIFY.

A write that records a change event (``db.events.writing``) tells the database
client it ran on, once its outermost transaction has committed; the client's
``Commits`` wakes whoever watches it (the change-log relay of this process, which
then numbers the new event at once instead of at its next poll). The gateway's two
database clients (``db.pg`` and ``db.sqlite``) each hold one; it belongs to the
connection, like PostgreSQL's ``NOTIFY`` belongs to the database, so no module
keeps a list of callbacks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class Commits:
    """Wakes the events watching it when a write transaction has committed."""

    __slots__ = ("_watching",)

    def __init__(self) -> None:
        self._watching: set[asyncio.Event] = set()

    def notify(self) -> None:
        for event in self._watching:
            event.set()

    @contextmanager
    def watching(self, event: asyncio.Event) -> Iterator[None]:
        """Set ``event`` on every commit while inside."""
        self._watching.add(event)
        try:
            yield
        finally:
            self._watching.discard(event)

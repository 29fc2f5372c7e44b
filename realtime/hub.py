"""This worker's change stream and its subscribers.

The ``Hub`` reads the relay's channel on the bus and hands each event, in
position order and once, to the local subscribers allowed to see it. It keeps
``head``, the newest position it has delivered: a message further ahead means
something was missed (a dropped publish, a Redis restart), and the hub reads
the missing positions from the change log before going on; one at or below
``head`` is a repeat and is dropped. The relay's heartbeat and the bus's
reconnect signal trigger the same catch-up, so nothing committed is lost.

A subscriber (``Subscriber``) is one ordered stream: some topics, a filter per
topic, and a cursor (the last position it was served). Subscribing with
``after`` starts a catch-up (``_replay``) that reads the log from there, one
page at a time (only its organization's rows of its topics), and reads the next
page only once the connection has taken the previous one: however far behind a
client resumes, it holds at most a page or two in memory. Live events that
arrive meanwhile are held aside (at most ``limit``; past that they are dropped
and read from the log instead), and the subscriber switches to live delivery
after a short page, with no gap and no repeat (positions at or below the
cursor are skipped). Events go into the connection's ``Mailbox``; replayed
events do not count against its limit, live ones do: a connection that falls
``limit`` live events behind is closed (``SLOW_CONSUMER``) and resumes from its
last position, so one slow client never slows the others. A catch-up that
cannot go on (the log was pruned past the cursor meanwhile, or the database is
away) ends the subscription with ``RESYNC_REQUIRED`` or ``LOG_UNAVAILABLE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

import orjson

from db.errors import DomainError, ResyncRequired, Unavailable
from db.events import events_after, head_position, installation_key, oldest_position
from db.filtering import Expr, matches
from db.principal import Principal
from realtime.bus import EventBus, Message
from realtime.clock import Clock, SystemClock, Timer
from realtime.close_codes import (
    GOING_AWAY,
    LOG_UNAVAILABLE,
    RESYNC,
    SLOW_CONSUMER,
    TOKEN_EXPIRED,
    TOKEN_REVOKED,
)
from realtime.outage import Outage
from realtime.relay import channel_for, encode
from realtime.topics import selection
from realtime.tracing import client_bytes, deliver

log = logging.getLogger("gateway.realtime")

CATCH_UP_BATCH = 500
# While the bus is away (Redis stopped), this worker reads the change log this often.
LOG_POLL_SECONDS = 0.5
READY_WAIT_SECONDS = 10.0


class StreamEvent:
    """One change event, encoded once for every subscriber and channel."""

    __slots__ = (
        "_frame",
        "_frame_id",
        "_sse",
        "actor",
        "data",
        "occurred_at",
        "organization_id",
        "position",
        "raw",
        "resource",
        "type",
    )

    def __init__(self, envelope: dict[str, Any], raw: bytes | None = None) -> None:
        self.position: int = envelope["position"]
        self.organization_id: int = envelope["organization_id"]
        self.resource: str = envelope["resource"]
        self.type: str = envelope["type"]
        self.data: dict[str, Any] = envelope["data"]
        self.actor: str = envelope["actor"]
        # A datetime when read from the log, ISO 8601 text when it came over the bus.
        self.occurred_at: datetime | str = envelope["occurred_at"]
        self.raw: bytes = raw if raw is not None else encode(envelope)
        self._sse: bytes | None = None
        self._frame_id: str | None = None
        self._frame = b""

    def frame(self, ident: str) -> bytes:
        """The JSON channel's text frame (UTF-8) for stream ``ident``.

        Made once per event for the common case of every client naming its stream
        alike; a different name makes (and keeps) a new one.
        """
        if ident != self._frame_id:
            head = b'{"type":"event","id":' + orjson.dumps(ident) + b',"event":'
            self._frame = head + self.raw + b"}"
            self._frame_id = ident
        return self._frame

    @property
    def sse(self) -> bytes:
        """The Server-Sent Events frame: ``id`` is the position."""
        if self._sse is None:
            self._sse = b"id: %d\nevent: %s\ndata: %s\n\n" % (
                self.position,
                self.type.encode(),
                self.raw,
            )
        return self._sse


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _wake_drained(mailbox: Mailbox) -> None:
    drained = mailbox._drained
    if drained is not None and not drained.done():
        drained.set_result(None)


class MailboxClosed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class Mailbox:
    """A connection's bounded outbox, shared by its subscriptions."""

    __slots__ = (
        "_drained",
        "_expiry",
        "_waiter",
        "closed",
        "hub",
        "items",
        "limit",
        "principal",
        "replayed",
        "subscribers",
    )

    def __init__(self, hub: Hub, principal: Principal, limit: int) -> None:
        self.hub = hub
        self.principal = principal
        self.limit = limit
        self.items: deque[tuple[Subscriber | None, StreamEvent | bytes]] = deque()
        self.subscribers: set[Subscriber] = set()
        self.closed: tuple[int, str] | None = None
        # Items queued by a catch-up: they do not count against ``limit``.
        self.replayed = 0
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._expiry: Timer | None = None
        hub._track(self)

    def push(
        self, subscriber: Subscriber | None, event: StreamEvent | bytes, *, replay: bool = False
    ) -> None:
        """Queue an event for ``subscriber`` (or, with None, a channel's own frame).

        ``replay`` marks a catch-up's event: its pages are bounded by ``Hub``, so it
        is not held against the slow-consumer limit, which is for live events.
        """
        if self.closed is not None:
            return
        if replay:
            self.replayed += 1
        elif len(self.items) - self.replayed >= self.limit:
            self.close(*SLOW_CONSUMER)
            return
        self.items.append((subscriber, event))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drained(self) -> None:
        """Return once the connection has taken everything queued (or the mailbox closed)."""
        while self.items and self.closed is None:
            if self._drained is None or self._drained.done():
                self._drained = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drained)

    async def get(
        self, idle: float | None = None
    ) -> list[tuple[Subscriber | None, StreamEvent | bytes]]:
        """Everything waiting; ``[]`` after ``idle`` quiet seconds; raises once closed."""
        while True:
            if self.closed is not None:
                raise MailboxClosed(*self.closed)
            if self.items:
                items = list(self.items)
                self.items.clear()
                self.replayed = 0
                _wake_drained(self)
                return items
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = None if idle is None else loop.call_later(idle, _wake, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if idle is not None and not self.items and self.closed is None:
                return []

    def close(self, code: int, reason: str) -> None:
        if self.closed is not None:
            return
        self.closed = (code, reason)
        self.items.clear()
        self.replayed = 0
        _wake_drained(self)
        for subscriber in tuple(self.subscribers):
            self.hub.remove(subscriber)
        self.hub._untrack(self)
        if self._expiry is not None:
            self._expiry.cancel()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def reauthenticate(self, principal: Principal) -> None:
        """Carry on under a new credential of the same caller (in-band re-auth)."""
        for subscriber in self.subscribers:
            selection(principal, subscriber.topics)
        self.hub._untrack(self)
        self.principal = principal
        for subscriber in self.subscribers:
            subscriber.principal = principal
        self.hub._track(self)

    def _watch_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        expires_at = self.principal.expires_at
        if expires_at is not None:
            self._expiry = self.hub.clock.call_at(expires_at, partial(self.close, *TOKEN_EXPIRED))


class Subscriber:
    """One ordered stream of a connection: topics, filters and a cursor."""

    __slots__ = (
        "cursor",
        "filters",
        "id",
        "mailbox",
        "overflowed",
        "pending",
        "principal",
        "replay",
        "topics",
    )

    def __init__(
        self,
        mailbox: Mailbox,
        topics: Mapping[str, str | None],
        filters: dict[str, Expr | None],
        ident: str,
    ) -> None:
        self.mailbox = mailbox
        self.principal = mailbox.principal
        self.topics = dict(topics)
        self.filters = filters
        self.id = ident
        self.cursor = 0
        # While catching up: live events held aside (None once live), whether some
        # were dropped since the catch-up's last read, and the catch-up's task.
        self.pending: list[StreamEvent] | None = None
        self.overflowed = False
        self.replay: asyncio.Task[None] | None = None

    def offer(self, event: StreamEvent) -> None:
        if event.position <= self.cursor:
            return
        if self.pending is not None:
            if len(self.pending) >= self.mailbox.limit:
                # Too many to hold: drop them; the catch-up reads them from the log.
                self.pending.clear()
                self.overflowed = True
            self.pending.append(event)
            return
        self.cursor = event.position
        condition = self.filters.get(event.resource)
        if condition is None or matches(condition, event.data):
            self.mailbox.push(self, event)


class Hub:
    """This worker's change stream. ``clock`` schedules token expiry (tests pass a
    clock of their own, ``tests/clocks.py``, to expire tokens without waiting)."""

    def __init__(
        self, bus: EventBus, *, mailbox_limit: int = 1_000, clock: Clock | None = None
    ) -> None:
        self.bus = bus
        self.mailbox_limit = mailbox_limit
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.head = 0
        self._index: dict[tuple[int, str], set[Subscriber]] = {}
        self._credentials: dict[str, set[Mailbox]] = {}
        self._mailboxes: set[Mailbox] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._inbox: asyncio.Queue[Message | None] | None = None
        self.channel = ""
        # Reading the change log (the database): one line when it fails, one when back.
        self.log_outage = Outage(log, "change stream: reading the change log")

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Read where the stream stands and follow it; raises (and may be retried) on failure."""
        self.channel = channel_for(await installation_key())
        self.head = await head_position()
        task = asyncio.create_task(self._run(), name="change-stream")
        ready = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not self._ready.is_set():
            ready.cancel()
            task.result()  # the subscription to the bus failed: raise why
        self._task = task
        self.bus.on_reconnect(self._check_log)

    async def stop(self) -> None:
        self.close_all(*GOING_AWAY)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def close_all(self, code: int, reason: str) -> None:
        for mailbox in tuple(self._mailboxes):
            mailbox.close(code, reason)

    def revoked(self, credential_id: str) -> None:
        """Close every connection of ``credential_id`` (a denylist callback)."""
        for mailbox in tuple(self._credentials.get(credential_id, ())):
            mailbox.close(*TOKEN_REVOKED)

    @property
    def connections(self) -> int:
        return len(self._mailboxes)

    # -- subscribing ---------------------------------------------------------

    def mailbox(self, principal: Principal) -> Mailbox:
        return Mailbox(self, principal, self.mailbox_limit)

    async def subscribe(
        self,
        mailbox: Mailbox,
        topics: Mapping[str, str | None],
        *,
        after: int | None = None,
        ident: str = "",
        accepted: Callable[[Subscriber], None] | None = None,
        failed: Callable[[Subscriber, DomainError], None] | None = None,
    ) -> Subscriber:
        """Start a stream for ``mailbox``'s caller; with ``after``, resume from there.

        ``INVALID_ARGUMENT`` / ``PERMISSION_DENIED`` for bad topics or filters,
        ``RESYNC_REQUIRED`` when ``after`` is no longer (or not yet) in the log.
        ``accepted`` runs once the request is known good, before the first event.
        The catch-up runs in the background; if it cannot finish, ``failed`` gets
        the subscriber (already removed) and the error, or, without ``failed``, the
        mailbox closes with ``RESYNC`` or ``LOG_UNAVAILABLE``.
        """
        subscriber = Subscriber(mailbox, topics, selection(mailbox.principal, topics), ident)
        if not self._ready.is_set():
            try:
                async with asyncio.timeout(READY_WAIT_SECONDS):
                    await self._ready.wait()
            except TimeoutError:
                raise Unavailable("the change stream is starting; try again shortly") from None
        if after is None:
            subscriber.cursor = self.head
            if accepted is not None:
                accepted(subscriber)
            self._add(subscriber)
            return subscriber
        if after > self.head and after > await head_position():
            raise ResyncRequired(f"position {after} is not in this stream")
        oldest = await oldest_position()
        if oldest and after < oldest - 1:
            raise ResyncRequired(
                f"events after position {after} are no longer kept (oldest is {oldest}):"
                " reload, then subscribe without a position"
            )
        subscriber.cursor = after
        subscriber.pending = []
        if accepted is not None:
            accepted(subscriber)
        self._add(subscriber)
        subscriber.replay = asyncio.create_task(
            self._replay(subscriber, failed), name="realtime-catch-up"
        )
        return subscriber

    async def _replay(
        self, subscriber: Subscriber, failed: Callable[[Subscriber, DomainError], None] | None
    ) -> None:
        """Read ``subscriber``'s missed events from the log, a page at a time, then go live."""
        mailbox = subscriber.mailbox
        try:
            while True:
                await mailbox.drained()
                if mailbox.closed is not None:
                    return
                subscriber.overflowed = False
                before = subscriber.cursor
                rows = await events_after(
                    before,
                    organization_id=subscriber.principal.organization_id,
                    resources=tuple(subscriber.filters),
                    limit=CATCH_UP_BATCH,
                )
                # A prune that ran since the last page may have cut events after
                # ``before`` that this read then could not see.
                oldest = await oldest_position()
                if oldest and before < oldest - 1:
                    raise ResyncRequired(
                        f"events after position {before} are no longer kept (oldest is"
                        f" {oldest}): reload, then subscribe without a position"
                    )
                if mailbox.closed is not None:
                    return
                for row in rows:
                    event = StreamEvent(row)
                    subscriber.cursor = event.position
                    condition = subscriber.filters.get(event.resource)
                    if condition is None or matches(condition, event.data):
                        mailbox.push(subscriber, event, replay=True)
                # Live from here unless live events were dropped during this read
                # (the read may have started before they were numbered).
                if len(rows) < CATCH_UP_BATCH and not subscriber.overflowed:
                    break
            pending, subscriber.pending = subscriber.pending or [], None
            for event in pending:
                subscriber.offer(event)
        except asyncio.CancelledError:
            raise
        except DomainError as error:
            self._replay_failed(subscriber, failed, error)
        except Exception as error:
            self.log_outage.failed(error)
            unavailable = Unavailable("the change log is unavailable: resume from your position")
            self._replay_failed(subscriber, failed, unavailable)
        finally:
            subscriber.replay = None

    def _replay_failed(
        self,
        subscriber: Subscriber,
        failed: Callable[[Subscriber, DomainError], None] | None,
        error: DomainError,
    ) -> None:
        if failed is not None:
            self.remove(subscriber)
            failed(subscriber, error)
        elif isinstance(error, ResyncRequired):
            subscriber.mailbox.close(*RESYNC)
        else:
            subscriber.mailbox.close(*LOG_UNAVAILABLE)

    def remove(self, subscriber: Subscriber) -> None:
        replay = subscriber.replay
        if replay is not None and replay is not asyncio.current_task():
            replay.cancel()
            subscriber.replay = None
        subscriber.mailbox.subscribers.discard(subscriber)
        org = subscriber.principal.organization_id
        for resource in subscriber.filters:
            listeners = self._index.get((org, resource))
            if listeners is not None:
                listeners.discard(subscriber)
                if not listeners:
                    del self._index[(org, resource)]

    def _add(self, subscriber: Subscriber) -> None:
        subscriber.mailbox.subscribers.add(subscriber)
        org = subscriber.principal.organization_id
        for resource in subscriber.filters:
            self._index.setdefault((org, resource), set()).add(subscriber)

    def _track(self, mailbox: Mailbox) -> None:
        self._mailboxes.add(mailbox)
        credential = mailbox.principal.credential_id
        if credential is not None:
            self._credentials.setdefault(credential, set()).add(mailbox)
        mailbox._watch_expiry()

    def _untrack(self, mailbox: Mailbox) -> None:
        self._mailboxes.discard(mailbox)
        credential = mailbox.principal.credential_id
        if credential is not None:
            mailboxes = self._credentials.get(credential)
            if mailboxes is not None:
                mailboxes.discard(mailbox)
                if not mailboxes:
                    del self._credentials[credential]

    # -- the stream ----------------------------------------------------------

    def _check_log(self) -> None:
        if self._inbox is not None:
            with contextlib.suppress(asyncio.QueueFull):
                self._inbox.put_nowait(Message(self.channel, {"head": None}))

    async def _run(self) -> None:
        async with self.bus.subscribe(self.channel, maxsize=100_000) as subscription:
            self._inbox = subscription.queue
            # Anything numbered between reading the head and subscribing.
            self._check_log()
            self._ready.set()
            while True:
                message = await self._next(subscription.queue)
                if message is None:
                    return
                try:
                    await self._handle(message)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    self.log_outage.failed(error)
                else:
                    if self.log_outage.down:
                        self.log_outage.succeeded()

    async def _next(self, queue: asyncio.Queue[Message | None]) -> Message | None:
        """The bus's next message; while the bus is away (Redis stopped), a look at the
        change log every ``LOG_POLL_SECONDS`` instead, so this worker's subscribers keep
        getting events (from the log) until the bus is back. A busy stream never waits
        here, so it pays for no timer."""
        if not queue.empty():
            return queue.get_nowait()
        while True:
            try:
                async with asyncio.timeout(LOG_POLL_SECONDS):
                    return await queue.get()
            except TimeoutError:
                if self.bus.outage.down:
                    return Message(self.channel, {"head": None})

    async def _handle(self, message: Message) -> None:
        payload = message.payload
        position = payload.get("position")
        if position is None:  # a heartbeat, or the bus is back after an outage
            wanted = payload.get("head")
            if wanted is None or wanted > self.head:
                await self._catch_up(wanted)
            return
        if position <= self.head:
            return
        if position > self.head + 1:
            await self._catch_up(position - 1)
            if position <= self.head:
                return
        if "traceparent" in payload:  # a traced write's event (realtime/tracing.py)
            event = StreamEvent(payload, client_bytes(message.raw))
            deliver(self, event, payload["traceparent"])
            return
        self._dispatch(StreamEvent(payload, message.raw))

    async def _catch_up(self, until: int | None) -> None:
        while until is None or self.head < until:
            rows = await events_after(self.head, limit=CATCH_UP_BATCH)
            for row in rows:
                self._dispatch(StreamEvent(row))
            if len(rows) < CATCH_UP_BATCH:
                return

    def _dispatch(self, event: StreamEvent) -> None:
        self.head = event.position
        listeners = self._index.get((event.organization_id, event.resource))
        if listeners:
            for subscriber in tuple(listeners):
                subscriber.offer(event)

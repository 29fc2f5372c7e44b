"""One endpoint's delivery loop: its events, in position order, at least once.

The worker reads the change log after the endpoint's cursor (its organization's
events of its topics), skips what the endpoint's filter does not match, and sends
each event until the receiver answers 2xx; only then does the cursor move past it,
in the same transaction as the delivery log's row. A process killed mid-delivery
therefore sends the event again later, with the same ``webhook-id`` (its
position), which is what Standard Webhooks lets receivers de-duplicate on.

Retries follow tenacity's exponential backoff with full jitter, capped; after
``max_attempts`` the event becomes a dead letter and the worker moves on. Every
attempt goes through the endpoint's circuit breaker (``breaker.py``). An endpoint
that has failed continuously for ``disable_after`` seconds is disabled, with a
``webhook_endpoint.disabled`` event in the change log. Dead letters whose replay was
asked for are sent before the next new event.

Time comes from the dispatcher's ``clock`` and ``sleep``: tests pass their own and
never wait for a real backoff.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_random_exponential

from db import webhook_delivery as store
from db.events import events_after, head_position
from db.filtering import Expr, matches, parse_filter
from gateway import metrics
from realtime.relay import encode
from realtime.topics import TOPICS
from realtime.webhooks import guard, signing
from realtime.webhooks.breaker import Breaker

if TYPE_CHECKING:
    import httpx

    from realtime.webhooks.dispatcher import Dispatcher

log = logging.getLogger("gateway.webhooks")

BATCH = 200


class Stopping(Exception):
    """The dispatcher is stopping: leave before the next attempt."""


class Disabled(Exception):
    """The endpoint was disabled (or is gone): this worker ends."""


def selection(target: store.Target) -> dict[str, Expr | None]:
    """``{resource: filter}`` for the endpoint's topics (unknown topics are left out)."""
    chosen: dict[str, Expr | None] = {}
    for name in target.topics:
        topic = TOPICS.get(name)
        if topic is not None:
            chosen[topic.resource] = parse_filter(target.filter or None, topic.filterable)
    return chosen


class EndpointWorker:
    def __init__(self, dispatcher: Dispatcher, endpoint_id: int) -> None:
        self.dispatcher = dispatcher
        self.policy = dispatcher.policy
        self.endpoint_id = endpoint_id
        self.wake = asyncio.Event()
        self.breaker = Breaker(self.policy.breaker_failures, self.policy.breaker_cooldown)
        self.failing_since: float | None = None
        self._chosen: tuple[tuple[tuple[str, ...], str], dict[str, Expr | None]] | None = None

    def now(self) -> float:
        return self.dispatcher.clock.time()

    async def run(self) -> None:
        policy = self.policy
        async with guard.guarded_client(
            allow_private=policy.allow_private,
            connect_timeout=policy.connect_timeout,
            timeout=policy.timeout,
        ) as client:
            try:
                while True:
                    self.wake.clear()
                    target = await store.load_target(self.endpoint_id, store.utc(self.now()))
                    if target is None:
                        return
                    self._restore(target)
                    busy = await self._replays(client, target)
                    busy = await self._new_events(client, target) or busy
                    if not busy:
                        await self.dispatcher.idle(self.wake)
            except (Stopping, Disabled):
                return

    def _restore(self, target: store.Target) -> None:
        """Take the failure state from the row (the API may have reset it)."""
        self.breaker.consecutive_failures = target.consecutive_failures
        until = target.breaker_open_until
        self.breaker.open_until = until.timestamp() if until is not None else None
        since = target.failing_since
        self.failing_since = since.timestamp() if since is not None else None

    async def _new_events(self, client: httpx.AsyncClient, target: store.Target) -> bool:
        """Deliver a batch after the cursor; whether there may be more right away."""
        chosen = self._selection(target)
        head = await head_position()
        events = await events_after(
            target.cursor, organization_id=target.organization_id, resources=chosen, limit=BATCH
        )
        for event in events:
            condition = chosen.get(event["resource"])
            if condition is None or matches(condition, event["data"]):
                await self._deliver(client, target, event)
        if len(events) == BATCH:
            await store.advance_cursor(target.id, events[-1]["position"])
            return True
        # Everything up to ``head`` was numbered before the read: none of it is left.
        last = max(head, events[-1]["position"] if events else 0)
        if last > target.cursor:
            await store.advance_cursor(target.id, last)
        return False

    async def _deliver(
        self, client: httpx.AsyncClient, target: store.Target, event: dict[str, Any]
    ) -> None:
        target = await self._current()
        chosen = self._selection(target)
        if event["resource"] not in chosen:
            return  # the endpoint's topics changed since the batch was read
        condition = chosen[event["resource"]]
        if condition is not None and not matches(condition, event["data"]):
            return  # and so did its filter
        body = encode(event)
        counter = itertools.count(1)

        async def attempt() -> guard.Reply:
            number = next(counter)
            # The first attempt uses the endpoint just read (unless the breaker makes it
            # wait); each retry reads it again.
            return await self._attempt(client, target, event, body, number, replay=False)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=wait_random_exponential(
                multiplier=self.policy.retry_initial, max=self.policy.retry_max
            ),
            sleep=self.dispatcher.pause,
            retry=retry_if_result(lambda reply: not reply.delivered),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            reraise=True,
        )
        reply: guard.Reply | None = await retrying(attempt)
        if reply is None or not reply.delivered:
            why = (reply.error if reply is not None else None) or "failed"
            # Kept as sent (its JSON form), so that a replay sends the same bytes.
            sent = orjson.loads(body)
            await store.dead_letter(target, sent, self.policy.max_attempts, why)

    async def _replays(self, client: httpx.AsyncClient, target: store.Target) -> bool:
        requests = await store.replay_requests(target.id)
        for request in requests:
            body = encode(request.event)
            event = request.event
            reply = await self._attempt(
                client, target, event, body, request.attempts + 1, replay=True
            )
            now = store.utc(self.now())
            await store.replay_done(request, delivered=reply.delivered, error=reply.error, now=now)
        return bool(requests)

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        target: store.Target,
        event: dict[str, Any],
        body: bytes,
        number: int,
        *,
        replay: bool,
    ) -> guard.Reply:
        dispatcher = self.dispatcher
        cooldown = self.breaker.wait(self.now())
        await dispatcher.pause(cooldown)
        if dispatcher.stopping.is_set():
            raise Stopping
        if number > 1 or replay or cooldown > 0:  # else ``_deliver`` has just read it
            target = await self._current()
        position = int(event["position"])
        headers = signing.headers(target.secrets, str(position), int(time.time()), body)
        reply = await guard.post(
            client,
            target.url,
            body,
            headers,
            within=self.policy.timeout,
            max_bytes=self.policy.max_response_bytes,
        )
        now = self.now()
        record = store.Attempt(
            position=position,
            event_type=str(event["type"]),
            attempt=number,
            outcome=reply.outcome,
            http_status=reply.status,
            latency_ms=reply.latency_ms,
            response_excerpt=reply.excerpt,
            error=reply.error,
            replay=replay,
        )
        # Shielded: once the receiver has answered, its answer is recorded even if the
        # dispatcher is cancelled meanwhile (a stop past its grace period).
        await asyncio.shield(
            store.record_attempt(
                target,
                record,
                self._failure_state(reply, now),
                advance=reply.delivered and not replay,
            )
        )
        metrics.webhook_attempt(reply.outcome)
        if not reply.delivered:
            await self._maybe_disable(target, now)
        return reply

    def _selection(self, target: store.Target) -> dict[str, Expr | None]:
        """``selection(target)``, parsed again only when the topics or filter changed."""
        key = (target.topics, target.filter)
        if self._chosen is None or self._chosen[0] != key:
            self._chosen = (key, selection(target))
        return self._chosen[1]

    async def _current(self) -> store.Target:
        """The endpoint as it is now, read before every attempt (one primary-key read):
        a URL or secret changed mid-batch or during a backoff (an owner replacing a
        wrong or compromised receiver) takes effect at the next attempt, and an endpoint
        disabled or deleted meanwhile gets nothing more."""
        fresh = await store.load_target(self.endpoint_id, store.utc(self.now()))
        if fresh is None:
            raise Disabled
        return fresh

    def _failure_state(self, reply: guard.Reply, now: float) -> store.FailureState:
        """The breaker and the failure span after ``reply``, as the row keeps them."""
        if reply.delivered:
            self.breaker.succeeded()
            self.failing_since = None
        else:
            self.breaker.failed(now)
            if self.failing_since is None:
                self.failing_since = now
        since, until = self.failing_since, self.breaker.open_until
        return store.FailureState(
            failing_since=store.utc(since) if since is not None else None,
            consecutive_failures=self.breaker.consecutive_failures,
            breaker_open_until=store.utc(until) if until is not None else None,
        )

    async def _maybe_disable(self, target: store.Target, now: float) -> None:
        since = self.failing_since
        if since is None or now - since < self.policy.disable_after:
            return
        reason = f"failing for {int(now - since)} s (WEBHOOK_DISABLE_AFTER_SECONDS)"
        await store.disable(target, reason, store.utc(now))
        log.warning(
            "disabled a webhook endpoint that kept failing",
            extra={"endpoint_id": target.id, "organization_id": target.organization_id},
        )
        raise Disabled

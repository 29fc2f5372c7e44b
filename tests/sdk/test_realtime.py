"""The change stream iterator: live events, resume after a gateway restart, resync.

Each test follows its own customers (a filter on an e-mail tag), so the events other
tests cause in the shared organization do not count.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable

import pytest
from gateway_client import AsyncClient, ChangeEvent, Client, ResyncRequired, RetryPolicy
from gateway_client.models import CustomerFields as C

from tests.sdk.live import LiveGateway
from tests.sdk.test_paging import Restarter

GUARD = 60.0  # seconds: reached only when something is broken


def _sdk(gw: LiveGateway, **kw: object) -> Client:
    return Client(gw.url, client_id=gw.sdk.client_id, client_secret=gw.sdk.client_secret, **kw)  # type: ignore[arg-type]


def test_events_arrive_in_order_and_resume_from_a_position(gw: LiveGateway) -> None:
    tag = uuid.uuid4().hex[:8]
    with _sdk(gw) as sdk:
        first = sdk.customers.create({"name": "S0", "email": f"s0-{tag}@example.com"})
        stream = sdk.stream_events(["customers"], filter=C.email.has(tag), after=0)
        events: list[ChangeEvent] = []
        for event in stream:
            events.append(event)
            if len(events) == 1:  # live, while the stream is open
                sdk.customers.create({"name": "S1", "email": f"s1-{tag}@example.com"})
            if len(events) == 2:
                break
        stream.close()
        assert [e.type for e in events] == ["customer.created", "customer.created"]
        assert events[0].resource_id == str(first.id)
        assert events[0].data["email"] == first.email
        assert events[0].position < events[1].position
        assert stream.position == events[1].position
        # Resuming after the first gives the second again, and nothing before it.
        again = sdk.stream_events(["customers"], filter=C.email.has(tag), after=events[0].position)
        resumed = next(iter(again))
        again.close()
        assert resumed.position == events[1].position


def test_a_position_the_gateway_does_not_keep_raises_resync_required(gw: LiveGateway) -> None:
    with _sdk(gw) as sdk:
        stream = sdk.stream_events(["customers"], after=10**12)
        with pytest.raises(ResyncRequired) as gone:
            next(iter(stream))
        assert gone.value.code == "RESYNC_REQUIRED"
        assert gone.value.status == 410
        assert gone.value.request_id


async def test_the_async_iterator_raises_resync_required_too(gw: LiveGateway) -> None:
    async with AsyncClient(
        gw.url, client_id=gw.sdk.client_id, client_secret=gw.sdk.client_secret
    ) as sdk:
        stream = sdk.stream_events(["orders", "customers"], after=10**12)
        with pytest.raises(ResyncRequired):
            async for _ in stream:
                pass


async def _until(condition: object, what: str) -> None:
    deadline = time.monotonic() + GUARD
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_a_gateway_restart_mid_stream_loses_and_repeats_no_event(gw: LiveGateway) -> None:
    """Five changes, a SIGKILL of the gateway, a restart when the iterator first fails
    to reconnect, five more changes: the iterator yields the ten, once each, in order."""
    tag = uuid.uuid4().hex[:8]
    restarter = Restarter(gw)
    received: list[ChangeEvent] = []
    patient = RetryPolicy(max_retries=10, base_delay=0.1, max_delay=2.0)
    writer = AsyncClient(gw.url, client_id=gw.sdk.client_id, client_secret=gw.sdk.client_secret)
    reader = AsyncClient(
        gw.url,
        client_id=gw.sdk.client_id,
        client_secret=gw.sdk.client_secret,
        retry=patient,
        on_retry=restarter.on_retry,
    )
    async with writer, reader:
        stream = reader.stream_events(["customers"], filter=C.email.has(tag))

        async def consume() -> None:
            async for event in stream:
                received.append(event)

        async def create(i: int) -> int:
            body = {"name": f"E{i}", "email": f"e{i}-{tag}@example.com"}
            return (await writer.customers.create(body)).id

        consumer = asyncio.create_task(consume())
        try:
            await _until(lambda: stream.position is not None, "the stream did not open")
            made: list[int] = []
            for i in range(5):
                made.append(
                    (
                        await writer.customers.create(
                            {"name": f"E{i}", "email": f"e{i}-{tag}@x.io"}
                        )
                    ).id
                )
            await _until(lambda: len(received) == 5, f"5 events before the kill: {received}")
            starts = gw.starts
            restarter.kill()
            await _until(lambda: gw.starts == starts + 1, "the iterator never tried again")
            for i in range(5, 10):
                made.append(
                    (
                        await writer.customers.create(
                            {"name": f"E{i}", "email": f"e{i}-{tag}@x.io"}
                        )
                    ).id
                )
            await _until(lambda: len(received) >= 10, f"10 events after the restart: {received}")
        finally:
            consumer.cancel()
            with pytest.raises(asyncio.CancelledError):
                await consumer
            await stream.aclose()
    positions = [e.position for e in received]
    assert positions == sorted(set(positions)), "an event repeated or out of order"
    assert [int(e.resource_id) for e in received] == made
    assert restarter.retries


def test_the_blocking_iterator_resumes_after_a_restart_too(gw: LiveGateway) -> None:
    """The same with ``Client`` and ``for``, the iterator on a thread of its own."""
    tag = uuid.uuid4().hex[:8]
    restarter = Restarter(gw)
    received: list[ChangeEvent] = []
    patient = RetryPolicy(max_retries=10, base_delay=0.1, max_delay=2.0)
    with _sdk(gw) as writer, _sdk(gw, retry=patient, on_retry=restarter.on_retry) as reader:
        stream = reader.stream_events(["customers"], filter=C.email.has(tag))
        stop = threading.Event()

        def consume() -> None:
            for event in stream:
                received.append(event)
                if stop.is_set():
                    return

        def until(condition: Callable[[], bool], what: str) -> None:
            deadline = time.monotonic() + GUARD
            while not condition():
                assert time.monotonic() < deadline, what
                time.sleep(0.02)

        def create(i: int) -> int:
            return writer.customers.create({"name": f"B{i}", "email": f"b{i}-{tag}@example.com"}).id

        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        until(lambda: stream.position is not None, "the stream did not open")
        made = [create(i) for i in range(4)]
        until(lambda: len(received) == 4, f"4 events before the kill: {received}")
        starts = gw.starts
        restarter.kill()
        until(lambda: gw.starts == starts + 1, "the iterator never tried again")
        stop.set()
        made += [create(i) for i in range(4, 8)]
        until(lambda: len(received) >= 5, "no event after the restart")
        consumer.join(GUARD)
        assert not consumer.is_alive()
        stream.close()
    positions = [e.position for e in received]
    assert positions == sorted(set(positions))
    # The consumer stopped after the first event past the restart: what it saw is a
    # gap-free prefix of what was written; resuming from its position gives the rest.
    assert [int(e.resource_id) for e in received] == made[: len(received)]
    with _sdk(gw) as sdk:
        rest = sdk.stream_events(["customers"], filter=C.email.has(tag), after=stream.position)
        more = []
        for event in rest:
            more.append(int(event.resource_id))
            if len(received) + len(more) == len(made):
                break
        rest.close()
    assert [int(e.resource_id) for e in received] + more == made

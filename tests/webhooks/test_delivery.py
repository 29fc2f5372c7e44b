"""Webhook delivery end to end: the change log, a dispatcher, a real receiver.

Every request the receiver takes is verified with the Standard Webhooks reference
library (tests/webhooks/receiver.py). The test server's own dispatcher is stopped
for this module: each test runs one of its own (``dispatching``) with a clock that
jumps (``JumpingTime``), so backoffs, breaker cooldowns and the failure span pass
without waiting.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
import websockets

from db import events as change_log
from db.models import Event, WebhookDeadLetter, WebhookEndpoint
from gateway import metrics
from realtime.relay import asyncpg_dsn
from tests.conftest import BACKEND
from tests.factories import TOKENS, make_customer
from tests.realtime_clients import ws_url
from tests.webhooks.delivery_kit import (
    GUARD,
    JumpingTime,
    dead_letters,
    deliveries,
    dispatching,
    endpoint,
    make_endpoint,
    new_secret,
    settled,
    until,
    until_async,
)
from tests.webhooks.receiver import Receiver


@pytest.fixture(autouse=True, scope="module")
async def own_dispatchers(server):
    """Stop the test server's dispatcher: one per installation, and these tests run theirs."""
    running = server.app.ctx.webhooks
    if running is not None:
        await running.stop()
    yield
    if running is not None:
        await running.start()


@pytest.fixture
async def receiver():
    async with Receiver() as r:
        yield r
        assert r.rejected == [], r.rejected


@pytest.fixture(autouse=True)
async def no_endpoints_left(tenant):
    yield
    await WebhookEndpoint.filter(organization_id=tenant.id).delete()


async def hook(tenant, receiver: Receiver, **kwargs) -> WebhookEndpoint:
    row = await make_endpoint(tenant.id, receiver.url(), **kwargs)
    receiver.secrets = [row.secret]
    return row


async def customers(tenant, count: int) -> list[int]:
    for _ in range(count):
        await make_customer(tenant.owner)
    await settled()
    rows = await change_log.events_after(0, organization_id=tenant.id, resources=("customer",))
    return [row["position"] for row in rows][-count:]


async def test_events_arrive_signed_in_order_with_the_json_channel_s_bytes(
    server, tenant, receiver
):
    row = await hook(tenant, receiver)
    counted = metrics.WEBHOOK_ATTEMPTS.values.get(("delivered",), 0)
    token = TOKENS.mint(tenant.id, "owner")
    async with websockets.connect(ws_url(server.base_url)) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
        assert orjson.loads(await ws.recv())["type"] == "authenticated"
        subscribe = {"type": "subscribe", "id": "s", "topics": ["customers"], "after": row.cursor}
        await ws.send(orjson.dumps(subscribe).decode())
        assert orjson.loads(await ws.recv())["type"] == "subscribed"
        async with dispatching(server):
            positions = await customers(tenant, 5)
            await receiver.wait_for(lambda: len(receiver.delivered) == 5, "5 deliveries")
        frames = [(await ws.recv()).encode() for _ in range(5)]
    head = b'{"type":"event","id":"s","event":'
    channel = [frame.removeprefix(head)[:-1] for frame in frames]
    assert receiver.ids() == positions  # in position order, webhook-id = position
    assert [r.body for r in receiver.delivered] == channel
    for received in receiver.delivered:
        assert received.event["type"] == "customer.created"
        assert received.headers["content-type"] == "application/json"
        assert int(received.headers["webhook-timestamp"]) > 0
    log = await deliveries(row.id)
    assert [(d.position, d.outcome, d.http_status, d.attempt) for d in log] == [
        (p, "delivered", 200, 1) for p in positions
    ]
    assert all(d.response_excerpt == '{"ok":true}' and d.latency_ms >= 0 for d in log)
    assert (await endpoint(row.id)).cursor >= positions[-1]
    assert metrics.WEBHOOK_ATTEMPTS.values[("delivered",)] == counted + 5


async def test_the_filter_and_the_topics_choose_the_events(server, tenant, receiver):
    await make_customer(tenant.owner, name="Skip me")
    row = await hook(tenant, receiver, filter='name = "Wanted*"')
    async with dispatching(server):
        await make_customer(tenant.owner, name="Not this one")
        wanted = await make_customer(tenant.owner, name="Wanted One")
        await make_customer(tenant.owner, name="Nor this")
        last = await make_customer(tenant.owner, name="Wanted Two")
        head = await settled()
        await receiver.wait_for(lambda: len(receiver.delivered) == 2, "2 deliveries")
        await until_async(
            lambda: _cursor_at_least(row.id, head), "the cursor past the skipped events"
        )
    assert [r.event["data"]["id"] for r in receiver.delivered] == [wanted["id"], last["id"]]


async def _cursor_at_least(endpoint_id: int, position: int) -> bool:
    return (await endpoint(endpoint_id)).cursor >= position


async def test_during_a_rotation_both_secrets_sign_every_delivery(server, tenant, receiver):
    row = await hook(tenant, receiver)
    old, new = row.secret, new_secret()
    await WebhookEndpoint.filter(id=row.id).update(
        secret=new,
        previous_secret=old,
        previous_secret_expires_at=datetime.now(UTC) + timedelta(hours=24),
    )
    receiver.secrets = [old, new]  # the receiver verifies with each: both must pass
    async with dispatching(server):
        await customers(tenant, 2)
        await receiver.wait_for(lambda: len(receiver.delivered) == 2, "2 deliveries")
        assert all(len(r.headers["webhook-signature"].split(" ")) == 2 for r in receiver.delivered)
        # Once the overlap has passed, only the new secret signs.
        await WebhookEndpoint.filter(id=row.id).update(
            previous_secret_expires_at=datetime.now(UTC) - timedelta(seconds=1)
        )
        receiver.secrets = [new]
        await customers(tenant, 1)
        await receiver.wait_for(lambda: len(receiver.delivered) == 3, "the third delivery")
    assert len(receiver.delivered[-1].headers["webhook-signature"].split(" ")) == 1


async def test_a_failing_receiver_gets_everything_in_order_once_it_recovers(
    server, tenant, receiver
):
    row = await hook(tenant, receiver)
    receiver.mode = "fail"
    clock = JumpingTime()
    async with dispatching(server, clock):
        positions = await customers(tenant, 4)
        await receiver.wait_for(lambda: len(receiver.requests) >= 5, "retries")
        assert {int(r.webhook_id) for r in receiver.requests} == {positions[0]}
        receiver.mode = "ok"
        await receiver.wait_for(lambda: len(receiver.delivered) == 4, "all 4 after recovery")
    assert receiver.ids() == positions
    log = await deliveries(row.id)
    failed = [d for d in log if d.outcome == "failed"]
    assert failed
    assert all(d.http_status == 500 for d in failed)
    assert failed[0].response_excerpt == "receiver says no"
    assert [d.attempt for d in log if d.position == positions[0]] == list(range(1, len(failed) + 2))
    # The waits between attempts grew, with jitter, under the cap.
    assert clock.slept
    assert max(clock.slept) <= 10.0
    state = await endpoint(row.id)
    assert (state.failing_since, state.consecutive_failures) == (None, 0)


async def test_timeouts_redirects_and_huge_answers(server, tenant, receiver):
    row = await hook(tenant, receiver)
    receiver.mode = "hold"
    async with dispatching(server, timeout=0.5):
        positions = await customers(tenant, 1)
        await until_async(lambda: _outcomes(row.id, "timeout"), "a timed-out attempt")
        receiver.mode = "redirect"  # the held requests stay held: they timed out
        await until_async(
            lambda: _outcomes(row.id, "failed"),
            "a redirect refused",
            lambda: _log(row.id),
        )
        receiver.mode = "huge"
        await receiver.wait_for(lambda: len(receiver.delivered) >= 1, "the huge answer")
        await until_async(lambda: _outcomes(row.id, "delivered"), "delivered")
    assert {r.webhook_id for r in receiver.requests} == {str(positions[0])}
    log = await deliveries(row.id)
    redirect = next(d for d in log if d.outcome == "failed")
    assert redirect.http_status == 302
    delivered = next(d for d in log if d.outcome == "delivered")
    assert delivered.response_excerpt == "x" * 1024
    assert receiver.huge_bytes_sent < 32 * 1024 * 1024


async def test_an_answer_with_nul_and_bytes_not_utf8_is_logged_and_the_cursor_moves(
    server, tenant, receiver
):
    """PostgreSQL's text refuses NUL: stored as is, the log row (and with it the
    cursor's move) would fail on every attempt, and the event go out forever."""
    row = await hook(tenant, receiver)
    receiver.mode = "binary"
    async with dispatching(server):
        positions = await customers(tenant, 2)
        await until_async(
            lambda: _cursor_at(row.id, positions[-1]), "the cursor past both", lambda: _log(row.id)
        )
    assert receiver.ids() == positions  # each once
    log = await deliveries(row.id)
    assert [d.outcome for d in log] == ["delivered", "delivered"]
    assert {d.response_excerpt for d in log} == {"ok\ufffd\ufffd\ufffd then \ufffd more"}


async def _cursor_at(endpoint_id: int, position: int) -> bool:
    return (await WebhookEndpoint.get(id=endpoint_id)).cursor >= position


async def _log(endpoint_id: int) -> list[tuple[object, ...]]:
    return [(d.position, d.attempt, d.outcome, d.error) for d in await deliveries(endpoint_id)]


async def _outcomes(endpoint_id: int, outcome: str) -> bool:
    return any(d.outcome == outcome for d in await deliveries(endpoint_id))


async def test_a_slow_endpoint_never_delays_another(server, tenant):
    async with Receiver() as slow, Receiver() as quick:
        slow_row = await hook(tenant, slow)
        await hook(tenant, quick)
        slow.mode = "hold"
        async with dispatching(server):
            positions = await customers(tenant, 5)
            await quick.wait_for(lambda: len(quick.delivered) == 5, "the quick endpoint")
            assert slow.held == 1
            assert slow.delivered == []
            slow.release()
            await slow.wait_for(lambda: len(slow.delivered) == 5, "the slow endpoint")
        assert quick.ids() == positions
        assert slow.ids() == positions
        assert (await endpoint(slow_row.id)).cursor >= positions[-1]
        assert slow.rejected == quick.rejected == []


async def test_the_breaker_opens_after_failures_and_half_opens_after_its_cooldown(
    server, tenant, receiver
):
    row = await hook(tenant, receiver)
    receiver.mode = "fail"
    clock = JumpingTime(block_at=50)  # backoffs pass at once; the cooldown waits for us
    async with dispatching(server, clock, breaker_failures=3, breaker_cooldown=100):
        await customers(tenant, 1)
        await until(lambda: clock.blocked == 1, "the breaker to open")
        assert len(receiver.requests) == 3
        state = await endpoint(row.id)
        assert state.consecutive_failures == 3
        assert state.breaker_open_until is not None
        receiver.mode = "ok"
        clock.release()  # half-open: one trial, which succeeds and closes it
        await receiver.wait_for(lambda: len(receiver.delivered) == 1, "the trial")
        await until_async(lambda: _closed(row.id), "the breaker to close")
    assert len(receiver.requests) == 4


async def test_a_url_changed_during_the_breaker_s_cooldown_gets_the_next_event(server, tenant):
    """The next event's first attempt waits for the open breaker: the endpoint is read
    after that wait, so a receiver replaced meanwhile gets the trial."""
    clock = JumpingTime(block_at=50)  # backoffs pass at once; the cooldown waits for us
    policy = {"breaker_failures": 3, "breaker_cooldown": 100, "max_attempts": 3}
    async with Receiver() as old, Receiver() as new:
        row = await make_endpoint(tenant.id, old.url())
        old.secrets = new.secrets = [row.secret]
        old.mode = "fail"
        async with dispatching(server, clock, **policy):
            positions = await customers(tenant, 2)
            await until(lambda: clock.blocked == 1, "the second event, waiting on the breaker")
            assert len(old.requests) == 3  # the first event's attempts: a dead letter
            await WebhookEndpoint.filter(id=row.id).update(url=new.url())
            clock.release()
            await new.wait_for(lambda: new.ids() == positions[1:], "the trial at the new URL")
        assert len(old.requests) == 3
        assert old.rejected == new.rejected == []


async def _closed(endpoint_id: int) -> bool:
    state = await endpoint(endpoint_id)
    return state.breaker_open_until is None and state.consecutive_failures == 0


async def test_a_half_open_trial_that_fails_opens_the_breaker_again(server, tenant, receiver):
    row = await hook(tenant, receiver)
    receiver.mode = "fail"
    clock = JumpingTime(block_at=50)
    async with dispatching(server, clock, breaker_failures=2, breaker_cooldown=100):
        await customers(tenant, 1)
        await until(lambda: clock.blocked == 1, "the breaker to open")
        clock.release()
        await receiver.wait_for(lambda: len(receiver.requests) == 3, "the trial")
        await until(lambda: clock.blocked == 1, "the breaker to open again")
        assert len(receiver.requests) == 3
        assert (await endpoint(row.id)).consecutive_failures == 3


async def test_an_endpoint_failing_past_the_span_is_disabled_with_a_notice(
    server, tenant, receiver
):
    row = await hook(tenant, receiver)
    receiver.mode = "fail"
    clock = JumpingTime()
    policy = {"max_attempts": 3, "retry_initial": 400, "retry_max": 1000, "disable_after": 3600}
    async with dispatching(server, clock, **policy) as dispatcher:
        started = clock.time()
        await customers(tenant, 30)
        await until_async(lambda: _disabled(row.id), "the endpoint to be disabled")
        await until(
            lambda: row.id not in dispatcher.workers or dispatcher.workers[row.id][1].done(),
            "its worker to end",
        )
    state = await endpoint(row.id)
    assert state.disabled_at is not None
    assert "WEBHOOK_DISABLE_AFTER_SECONDS" in state.disabled_reason
    assert clock.time() - started >= 3600
    await settled()
    notice = await Event.filter(organization_id=tenant.id, type="webhook_endpoint.disabled").first()
    assert notice is not None
    assert notice.actor == "system:webhooks"
    assert notice.resource_id == str(row.id)
    assert notice.snapshot["enabled"] is False
    assert notice.snapshot.get("secret") is None
    assert row.secret not in orjson.dumps(notice.snapshot).decode()
    requests = len(receiver.requests)
    await customers(tenant, 1)  # nothing more is sent to a disabled endpoint
    assert len(receiver.requests) == requests


async def _disabled(endpoint_id: int) -> bool:
    return not (await endpoint(endpoint_id)).enabled


async def test_dead_letters_after_the_last_attempt_then_replays(server, tenant, receiver):
    row = await hook(tenant, receiver)
    receiver.mode = "fail"
    async with dispatching(server, max_attempts=2):
        positions = await customers(tenant, 3)
        await until_async(lambda: _dead(row.id, 3), "3 dead letters")
        failed_bodies = {r.webhook_id: r.body for r in receiver.requests}
        letters = await dead_letters(row.id)
        assert [(d.position, d.status, d.attempts) for d in letters] == [
            (p, "dead", 2) for p in positions
        ]
        assert "HTTP 500" in letters[0].last_error
        assert (await endpoint(row.id)).cursor >= positions[-1]  # it moved on
        receiver.mode = "ok"
        await WebhookDeadLetter.filter(endpoint_id=row.id, position__in=positions[:2]).update(
            status="replay_requested"
        )
        await receiver.wait_for(lambda: len(receiver.delivered) == 2, "2 replays")
        await until_async(lambda: _replayed(row.id, 2), "replayed")
    assert receiver.ids() == positions[:2]
    for received in receiver.delivered:  # the same message: same id, same bytes
        assert received.body == failed_bodies[received.webhook_id]
    letters = await dead_letters(row.id)
    assert [d.status for d in letters] == ["replayed", "replayed", "dead"]
    assert letters[0].replayed_at is not None
    assert letters[0].attempts == 3
    replays = [d for d in await deliveries(row.id) if d.replay]
    assert [(d.position, d.outcome) for d in replays] == [(p, "delivered") for p in positions[:2]]


async def _dead(endpoint_id: int, count: int) -> bool:
    return len(await dead_letters(endpoint_id)) >= count


async def _replayed(endpoint_id: int, count: int) -> bool:
    return sum(d.status == "replayed" for d in await dead_letters(endpoint_id)) >= count


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_private_targets_are_refused_when_not_allowed(server, tenant, receiver, host):
    row = await make_endpoint(tenant.id, f"http://{host}:{receiver.port}/hook")
    receiver.secrets = [row.secret]
    async with dispatching(server, allow_private=False, max_attempts=2):
        positions = await customers(tenant, 1)
        await until_async(lambda: _dead(row.id, 1), "a dead letter")
    assert receiver.requests == []
    log = await deliveries(row.id)
    assert [(d.outcome, d.position) for d in log] == [("refused", positions[0])] * 2
    assert "WEBHOOK_ALLOW_PRIVATE_TARGETS" in log[0].error


@pytest.mark.parametrize("how", ["orm", "relay statement"])
async def test_the_change_log_is_kept_after_an_enabled_endpoint_s_cursor(
    server, tenant, receiver, how
):
    if how != "orm" and BACKEND != "services":
        pytest.skip("the relay's own statement runs on PostgreSQL")

    async def prune() -> None:
        before = datetime.now(UTC) + timedelta(days=1)
        if how == "orm":
            await change_log.prune(before)
            return
        dsn = asyncpg_dsn(server.app.ctx.settings.database_url)
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(change_log.PRUNE, before)
        finally:
            await connection.close()

    await customers(tenant, 1)
    row = await hook(tenant, receiver)  # no dispatcher runs: its cursor stays
    positions = await customers(tenant, 3)
    await prune()
    assert await change_log.oldest_position() == positions[0]  # the first it needs, kept
    # The edge: handled up to the first, the first may go, the second stays.
    await WebhookEndpoint.filter(id=row.id).update(cursor=positions[0])
    await prune()
    assert await change_log.oldest_position() == positions[1]
    # A disabled endpoint holds nothing.
    await WebhookEndpoint.filter(id=row.id).update(enabled=False)
    await prune()
    assert await change_log.oldest_position() == await change_log.head_position()


async def test_a_stop_lets_the_delivery_in_flight_finish_and_sends_it_once(
    server, tenant, receiver
):
    row = await hook(tenant, receiver)
    receiver.mode = "hold"
    async with dispatching(server, grace=GUARD) as dispatcher:
        positions = await customers(tenant, 2)
        await receiver.wait_for(lambda: receiver.held == 1, "a delivery in flight")
        stopping = asyncio.create_task(dispatcher.stop())
        await until(dispatcher.stopping.is_set, "the stop to begin")
        assert not stopping.done()  # it waits for the request in flight
        receiver.release()
        await stopping
        assert (await endpoint(row.id)).cursor == positions[0]  # the second waits
    async with dispatching(server):
        await receiver.wait_for(lambda: len(receiver.delivered) == 2, "the second event")
    assert receiver.ids() == positions  # the first was not sent again


async def test_a_delivery_leaves_the_endpoint_s_url_out_of_the_log(server, tenant, caplog):
    """A receiver's URL may carry a token in its query: no log line repeats it (httpx
    logs each request's URL at INFO unless told otherwise)."""
    caplog.set_level(logging.INFO)  # the default LOG_LEVEL
    async with Receiver() as receiver:
        row = await make_endpoint(tenant.id, receiver.url("/hook?token=TOPSECRET123"))
        receiver.secrets = [row.secret]
        async with dispatching(server):
            positions = await customers(tenant, 1)
            await receiver.wait_for(lambda: receiver.ids() == positions, "the delivery")
        assert receiver.requests[0].path == "/hook?token=TOPSECRET123"
    assert "TOPSECRET123" not in caplog.text


@pytest.mark.parametrize("change", ["url", "deleted", "topics"])
async def test_a_change_while_a_batch_is_in_flight_takes_effect_at_the_next_event(
    server, tenant, change
):
    """The worker reads up to 200 events at once; the endpoint is read again before each
    one is sent. A receiver replaced, an endpoint deleted or a topic dropped while the
    first event is in flight gets none of the rest at the old address."""
    async with Receiver() as old, Receiver() as new:
        row = await make_endpoint(tenant.id, old.url())
        old.secrets = new.secrets = [row.secret]
        positions = await customers(tenant, 3)  # all three in the worker's first batch
        old.mode = "hold"
        async with dispatching(server) as dispatcher:
            await until(lambda: old.held == 1, "the first event, held by the old receiver")
            if change == "url":
                await WebhookEndpoint.filter(id=row.id).update(url=new.url())
            elif change == "deleted":
                await WebhookEndpoint.filter(id=row.id).delete()
            else:
                await WebhookEndpoint.filter(id=row.id).update(topics=["orders"])
            old.release()
            if change == "url":
                await new.wait_for(lambda: new.ids() == positions[1:], "the rest at the new URL")
            elif change == "deleted":
                await until(lambda: row.id not in dispatcher.workers, "its worker to end")
            else:

                async def passed() -> bool:
                    cursor = await WebhookEndpoint.filter(id=row.id).values_list(
                        "cursor", flat=True
                    )
                    return bool(cursor) and int(cursor[0]) >= positions[-1]

                await until_async(passed, "the cursor past the batch")
        assert old.ids() == positions[:1]
        assert [r.webhook_id for r in old.requests] == [str(positions[0])]
        if change != "url":
            assert new.requests == []
        assert old.rejected == new.rejected == []


async def test_an_endpoint_added_while_the_dispatcher_runs_gets_a_worker(server, tenant, receiver):
    async with dispatching(server) as dispatcher:
        row = await hook(tenant, receiver)
        await until(lambda: row.id in dispatcher.workers, "a worker for the new endpoint")
        positions = await customers(tenant, 2)
        await receiver.wait_for(lambda: len(receiver.delivered) == 2, "2 deliveries")
        await WebhookEndpoint.filter(id=row.id).update(enabled=False)
        await until(lambda: row.id not in dispatcher.workers, "its worker to end")
    assert receiver.ids() == positions


async def test_a_url_changed_during_the_backoff_takes_effect_at_the_next_attempt(server, tenant):
    """An owner replacing a wrong or compromised receiver: the retries of the event in
    flight go to the new URL, not on to the old one for the rest of the backoff."""
    clock = JumpingTime(block_at=1e-9)  # every backoff waits for release()
    async with Receiver() as old, Receiver() as new:
        row = await make_endpoint(tenant.id, old.url())
        old.secrets = new.secrets = [row.secret]
        old.mode = "fail"
        async with dispatching(server, clock):
            positions = await customers(tenant, 1)
            await until(lambda: clock.blocked == 1, "the backoff after the first failure")
            await WebhookEndpoint.filter(id=row.id).update(url=new.url())
            clock.release()
            await new.wait_for(lambda: new.ids() == positions, "the delivery at the new URL")
        assert len(old.requests) == 1
        assert old.rejected == new.rejected == []
    assert await dead_letters(row.id) == []

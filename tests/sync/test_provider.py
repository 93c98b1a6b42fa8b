"""SyncProvider against the in-process MemoryRelay, on a FakeClock (no real sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from crdtsync import MISSING, Replica
from crdtsync.clock import FakeClock
from crdtsync.errors import PermissionDeniedError, ProtocolError, RemoteError, TransportError
from crdtsync.origins import OriginKind
from crdtsync.protocol import native
from crdtsync.sync import Backoff, ConnectionState, MemoryRelay, SyncProvider, SyncStatus
from crdtsync.testing.waiting import settle_until

MakeProvider = Callable[..., SyncProvider]




@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def relay(clock: FakeClock) -> AsyncIterator[MemoryRelay]:
    r = MemoryRelay(clock=clock)
    yield r
    await r.close()


@pytest.fixture
async def make_provider(clock: FakeClock, relay: MemoryRelay) -> AsyncIterator[MakeProvider]:
    made: list[SyncProvider] = []

    def make(*, replica: Replica | None = None, start: bool = True, **kw: Any) -> SyncProvider:
        kw.setdefault("backoff", Backoff(initial=1.0, maximum=8.0, jitter=0.0))
        p = SyncProvider(replica or Replica(), kw.pop("connect", relay.connect), clock=clock, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        await p.close()


async def started(p: SyncProvider, *docs: str) -> SyncProvider:
    for d in docs:
        p.subscribe(d)
    await p.start()
    await p.wait_connected()
    for d in docs:
        await p.wait_synced(d)
    return p


# -- basics ------------------------------------------------------------------------------------


async def test_local_edit_reaches_the_relay_and_is_acked(make_provider: MakeProvider, relay: MemoryRelay) -> None:
    p = await started(make_provider(), "todos")
    p.replica.write(("todos", 1), {"title": "milk"})
    await p.wait_acked()
    assert relay.content("todos") == {"1": {"title": "milk"}}
    assert p.status.state is ConnectionState.CONNECTED and p.status.last_sync_at is not None


async def test_two_peers_see_each_others_edits_with_a_remote_origin(
    make_provider: MakeProvider, clock: FakeClock
) -> None:
    a = await started(make_provider(name="a"), "todos")
    b = await started(make_provider(name="b"), "todos")
    origins: list[Any] = []
    b.replica.watch("todos", (), origins.append)
    a.replica.write(("todos", 1), {"title": "Zoë ✓"})
    await settle_until(clock, lambda: b.replica.read(("todos", 1)) == {"title": "Zoë ✓"})
    assert origins and origins[-1] == b.origin and origins[-1].kind is OriginKind.REMOTE


async def test_existing_content_syncs_both_ways_on_subscribe(make_provider: MakeProvider, clock: FakeClock) -> None:
    a = await started(make_provider(), "doc")
    a.replica.write(("doc", "from_a"), 1)
    await a.wait_acked()
    late = Replica()
    late.write(("doc", "from_late"), 2)
    b = await started(make_provider(replica=late), "doc")
    await b.wait_acked()
    await settle_until(clock, lambda: a.replica.read(("doc", "from_late")) == 2)
    assert b.replica.read(("doc", "from_a")) == 1


async def test_no_echo_a_remote_update_is_never_sent_back(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock
) -> None:
    a = await started(make_provider(name="a"), "d")
    b = await started(make_provider(name="b"), "d")
    for i in range(5):
        a.replica.write(("d", str(i)), i)
    await settle_until(clock, lambda: b.replica.read(("d", "4")) == 4)
    await a.wait_acked()
    b_session = b.status.session_id
    assert [m for sid, m in relay.messages(native.Update) if sid == b_session] == []
    a_updates = [m for sid, m in relay.messages(native.Update) if sid == a.status.session_id]
    assert len(a_updates) == 5 and [m.seq for m in a_updates] == sorted(m.seq for m in a_updates)


async def test_unsubscribed_documents_are_not_synced(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock
) -> None:
    a = await started(make_provider(), "shared")
    a.replica.write(("private", "x"), 1)
    await a.wait_acked()
    assert "private" not in relay.docs or relay.content("private") == {}
    a.subscribe("private")
    await a.wait_synced("private")
    await a.wait_acked("private")
    assert relay.content("private") == {"x": 1}


async def test_unsubscribe_stops_updates_from_the_relay(make_provider: MakeProvider, clock: FakeClock) -> None:
    a = await started(make_provider(), "d")
    b = await started(make_provider(), "d")
    b.unsubscribe("d")
    assert not b.is_synced("d") and b.subscriptions == frozenset()
    await clock.settle()
    a.replica.write(("d", "k"), "v")
    await a.wait_acked()
    await clock.settle()
    assert b.replica.read(("d", "k")) is MISSING


async def test_retain_release_unsubscribes_after_gc_time(make_provider: MakeProvider, clock: FakeClock) -> None:
    p = make_provider(gc_time=30.0)
    await started(p)
    release = p.retain("d")
    await p.wait_synced("d")
    release()
    release()  # idempotent
    await clock.advance(29)
    assert p.subscriptions == {"d"}
    again = p.retain("d")  # back within gc_time: the pending unsubscribe is cancelled
    await clock.advance(5)
    assert p.subscriptions == {"d"}
    again()
    await clock.advance(30)
    assert p.subscriptions == frozenset()


# -- reconnects --------------------------------------------------------------------------------


async def test_offline_edits_flow_both_ways_after_a_reconnect(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock
) -> None:
    a = await started(make_provider(name="a"), "d")
    b = await started(make_provider(name="b"), "d")
    relay.refuse = True
    await relay.drop_all()
    await settle_until(clock, lambda: a.status.state is ConnectionState.OFFLINE)
    assert not a.status.connected
    a.replica.write(("d", "a_offline"), "A")  # offline edit on a
    assert not a.is_acked()
    b_replica = b.replica
    await b.close()
    # meanwhile the relay got an edit from elsewhere
    other = Replica()
    other.write(("d", "elsewhere"), "E")
    relay.doc("d").apply_update(other.get_update("d"))
    relay.refuse = False
    await clock.advance(1.0)  # first retry after backoff(0) = 1 s
    await a.wait_synced("d")
    await a.wait_acked()
    assert a.replica.read(("d", "elsewhere")) == "E"
    assert relay.content("d")["a_offline"] == "A"
    assert b_replica.read(("d", "a_offline")) is not None


async def test_unacked_updates_are_resent_by_state_vector_after_a_drop(clock: FakeClock) -> None:
    relay = MemoryRelay(clock=clock, hold_acks=True)
    p = SyncProvider(Replica(), relay.connect, clock=clock, backoff=Backoff(initial=1, jitter=0))
    try:
        await started(p)
        p.subscribe("d")
        await settle_until(clock, lambda: p.is_synced("d") or p.status.state is not ConnectionState.CONNECTED)
        p.replica.write(("d", "k"), "v")
        await clock.settle()
        assert not p.is_acked()
        relay.docs.clear()  # the relay "lost" it (restarted before persisting)
        await relay.drop_all()
        await settle_until(clock, lambda: p.status.state is ConnectionState.OFFLINE)
        assert not p.is_acked()
        relay.hold_acks = False
        await clock.advance(1)
        await p.wait_acked()
        assert relay.content("d") == {"k": "v"}
    finally:
        await p.close()
        await relay.close()


async def test_backoff_grows_exponentially_and_resets_after_success(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock
) -> None:
    relay.refuse = True
    p = make_provider(backoff=Backoff(initial=1.0, maximum=8.0, jitter=0.0))
    await p.start()
    delays = []

    def offline_after(n: int) -> Callable[[], bool]:
        return lambda: p.status.attempt == n and p.status.next_retry_at is not None

    for attempt in range(1, 6):
        await settle_until(clock, offline_after(attempt))
        assert p.status.state is ConnectionState.OFFLINE
        retry_at = p.status.next_retry_at
        assert retry_at is not None and isinstance(p.status.last_error, TransportError)
        delays.append(retry_at - clock.now())
        await clock.advance(retry_at - clock.now())
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    await settle_until(clock, lambda: p.status.attempt == 6)  # the last advance made attempt 6
    relay.refuse = False
    await clock.advance(8)
    await settle_until(clock, lambda: p.status.connected)
    assert p.status.attempt == 0 and relay.connects == 7


def test_backoff_jitter_stays_within_bounds() -> None:
    import random

    b = Backoff(initial=1.0, maximum=30.0, jitter=0.5, rng=random.Random(7))
    for n in range(12):
        ceiling = min(30.0, 2.0**n)
        for _ in range(20):
            assert ceiling / 2 <= b.delay(n) <= ceiling
    with pytest.raises(ValueError):
        Backoff(jitter=2)
    with pytest.raises(ValueError):
        Backoff(initial=10, maximum=1)


async def test_reconnect_skips_the_backoff_delay(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock
) -> None:
    p = await started(make_provider(backoff=Backoff(initial=100, maximum=100, jitter=0)))
    first = p.status.session_id
    await p.reconnect()
    await settle_until(clock, lambda: p.status.connected and p.status.session_id != first)


async def test_heartbeat_drops_a_silent_connection(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock
) -> None:
    p = await started(make_provider(heartbeat_interval=15, heartbeat_timeout=10), "d")
    await clock.advance(15)  # ping answered: still connected
    await clock.advance(10)
    assert p.status.connected
    relay.stalled = True  # the relay stops answering but keeps the socket open
    await clock.advance(25)
    await settle_until(clock, lambda: p.status.state is not ConnectionState.CONNECTED)
    assert "heartbeat" in str(p.status.last_error)
    relay.stalled = False
    await clock.advance(1)
    await p.wait_synced("d")


async def test_handshake_timeout(make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock) -> None:
    relay.stalled = True
    p = make_provider(handshake_timeout=5)
    await p.start()
    await clock.advance(5)
    await settle_until(clock, lambda: p.status.state is ConnectionState.OFFLINE)
    assert "handshake" in str(p.status.last_error)


async def test_garbage_from_the_relay_ends_the_session_and_it_reconnects(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock
) -> None:
    p = await started(make_provider(), "d")
    first = p.status.session_id
    await relay.inject(b"\xc1 not msgpack")
    await settle_until(clock, lambda: p.status.state is ConnectionState.OFFLINE)
    await clock.advance(1)
    await p.wait_synced("d")
    assert p.status.session_id != first


async def test_room_unavailable_is_retried_after_a_delay(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock
) -> None:
    relay.unavailable.add("d")
    p = await started(make_provider(backoff=Backoff(initial=2, jitter=0)))
    p.subscribe("d")
    await settle_until(clock, lambda: p.status.last_error is not None)
    assert isinstance(p.status.last_error, RemoteError) and p.status.last_error.code == "room_unavailable"
    assert p.status.connected and not p.is_synced("d")
    relay.unavailable.clear()
    await clock.advance(2)
    await p.wait_synced("d")
    assert len(relay.messages(native.Subscribe)) == 2


@pytest.mark.parametrize(
    "msg",
    [native.Update("d", b"\xff\xff\xff"), native.SyncStep1("d", b"\xff\xff")],
    ids=["update-that-does-not-apply", "state-vector-that-does-not-decode"],
)
async def test_undecodable_crdt_bytes_end_the_session_with_a_protocol_error(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock, msg: native.NativeMessage
) -> None:
    p = await started(make_provider(), "d")
    p.replica.write(("d", "k"), "v")
    await p.wait_acked()
    await relay.inject(native.encode(msg))
    await settle_until(clock, lambda: p.status.state is ConnectionState.OFFLINE)
    assert isinstance(p.status.last_error, ProtocolError)
    assert p.replica.read(("d", "k")) == "v"  # the document is untouched
    await clock.advance(1)
    await p.wait_synced("d")


# -- auth --------------------------------------------------------------------------------------


async def test_token_factory_is_called_on_every_reconnect(clock: FakeClock) -> None:
    relay = MemoryRelay(clock=clock, tokens={"t1": "write", "t2": "write"})
    tokens = iter(["t1", "t2"])

    async def token_factory() -> str:
        return next(tokens)

    p = SyncProvider(Replica(), relay.connect, clock=clock, token_factory=token_factory)
    try:
        await started(p)
        await p.reconnect()
        await settle_until(clock, lambda: p.status.connected and len(relay.messages(native.Hello)) == 2)
        assert [m.token for _, m in relay.messages(native.Hello)] == ["t1", "t2"]
    finally:
        await p.close()
        await relay.close()


async def test_bad_token_is_a_permission_error_and_retried(clock: FakeClock) -> None:
    relay = MemoryRelay(clock=clock, tokens={"good": "write"})
    p = SyncProvider(Replica(), relay.connect, clock=clock, token="bad", backoff=Backoff(initial=1, jitter=0))
    try:
        await p.start()
        await settle_until(clock, lambda: p.status.state is ConnectionState.OFFLINE)
        assert isinstance(p.status.last_error, PermissionDeniedError)
        assert p.status.last_error.code == "unauthorized"
        await clock.advance(1)
        await settle_until(clock, lambda: relay.connects == 2)
    finally:
        await p.close()
        await relay.close()


async def test_read_only_document_syncs_down_but_local_edits_are_refused(clock: FakeClock) -> None:
    relay = MemoryRelay(clock=clock, tokens={"ro": "read"})
    src = Replica()
    src.write(("d", "k"), "server")
    relay.doc("d").apply_update(src.get_update("d"))
    p = SyncProvider(Replica(), relay.connect, clock=clock, token="ro")
    try:
        await started(p, "d")
        assert p.replica.read(("d", "k")) == "server"
        p.replica.write(("d", "mine"), 1)
        with pytest.raises(PermissionDeniedError):
            await p.wait_acked("d")
        assert "mine" not in relay.content("d")
        assert isinstance(p.status.last_error, RemoteError) and p.status.connected
    finally:
        await p.close()
        await relay.close()


# -- status ------------------------------------------------------------------------------------


async def test_status_callbacks_and_async_iteration(make_provider: MakeProvider, clock: FakeClock) -> None:
    p = make_provider()
    seen: list[ConnectionState] = []
    p.on_status(lambda s: seen.append(s.state))
    streamed: list[SyncStatus] = []

    async def consume() -> None:
        async for s in p.statuses():
            streamed.append(s)

    consumer = asyncio.ensure_future(consume())
    await clock.settle()
    await p.start()
    await p.wait_connected()
    await p.close()
    await consumer  # ends after CLOSED
    assert seen == [ConnectionState.CONNECTING, ConnectionState.CONNECTED, ConnectionState.CLOSED]
    assert [s.state for s in streamed] == [
        ConnectionState.IDLE,  # the initial status
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.CLOSED,
    ]


async def test_close_stops_everything(make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock) -> None:
    p = await started(make_provider(), "d")
    await p.close()
    await p.close()
    assert p.status.state is ConnectionState.CLOSED
    await clock.advance(100)
    assert relay.connects == 1 and clock.pending_timers() == 0
    with pytest.raises(TransportError):
        await p.wait_synced("d")
    with pytest.raises(RuntimeError):
        await p.start()


async def test_constructor_validation(relay: MemoryRelay) -> None:
    with pytest.raises(ValueError):
        SyncProvider(Replica(), relay.connect, token="a", token_factory=lambda: "b")
    with pytest.raises(ValueError):
        SyncProvider(Replica(), relay.connect, heartbeat_interval=0)


# -- presence ----------------------------------------------------------------------------------


async def test_awareness_between_two_peers_round_trips_non_ascii(make_provider: MakeProvider, clock: FakeClock) -> None:
    a = await started(make_provider(name="a"), "d")
    b = await started(make_provider(name="b"), "d")
    changes: list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = []
    b.awareness("d").on_change(lambda *c: changes.append(c))
    aw = a.awareness("d")
    aw.set_local_state({"user": "Zoë 😀", "cursor": 3})
    await settle_until(clock, lambda: aw.client_id in b.awareness("d").states)
    assert b.awareness("d").states[aw.client_id] == {"user": "Zoë 😀", "cursor": 3}
    assert changes[-1][0] == (aw.client_id,)
    aw.set_local_state({"user": "Zoë 😀", "cursor": 4})
    await settle_until(clock, lambda: b.awareness("d").states[aw.client_id]["cursor"] == 4)
    assert changes[-1][1] == (aw.client_id,)
    # a closes: the relay broadcasts the removal
    await a.close()
    await settle_until(clock, lambda: aw.client_id not in b.awareness("d").states)
    assert changes[-1][2] == (aw.client_id,)


async def test_local_presence_is_sent_on_subscribe_and_renewed(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock
) -> None:
    a = make_provider(awareness_interval=15)
    a.awareness("d").set_local_state({"n": 1})  # before connecting: sent once subscribed
    await started(a, "d")
    cid = a.awareness("d").client_id
    await settle_until(clock, lambda: cid in relay.awareness["d"].states())
    clock_before = relay.awareness["d"].clock_of(cid)
    await clock.advance(15)
    await settle_until(clock, lambda: relay.awareness["d"].clock_of(cid) != clock_before)
    assert (relay.awareness["d"].clock_of(cid) or 0) > (clock_before or 0)


async def test_remote_presence_expires_and_is_cleared_on_disconnect(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock
) -> None:
    a = await started(make_provider(awareness_interval=15), "d")
    b = await started(make_provider(awareness_interval=1000, heartbeat_interval=1000), "d")
    b.awareness("d").set_local_state({"n": "b"})
    bid = b.awareness("d").client_id
    await settle_until(clock, lambda: bid in a.awareness("d").states)
    await clock.advance(31)  # b never renews (interval 1000): a expires it
    assert bid not in a.awareness("d").states
    b.awareness("d").set_local_state({"n": "b2"})
    await settle_until(clock, lambda: bid in a.awareness("d").states)
    await relay.drop_all()
    await settle_until(clock, lambda: not a.status.connected)
    assert a.awareness("d").states == {}


async def test_unsubscribe_withdraws_presence_but_keeps_it_locally(
    make_provider: MakeProvider, clock: FakeClock
) -> None:
    a = await started(make_provider(), "d")
    b = await started(make_provider(), "d")
    a.awareness("d").set_local_state({"n": "a"})
    aid = a.awareness("d").client_id
    await settle_until(clock, lambda: aid in b.awareness("d").states)
    a.unsubscribe("d")
    await settle_until(clock, lambda: aid not in b.awareness("d").states)
    assert a.awareness("d").local_state == {"n": "a"}
    a.subscribe("d")
    await settle_until(clock, lambda: aid in b.awareness("d").states)


async def test_release_of_a_retain_does_not_undo_an_explicit_subscribe(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock
) -> None:
    p = make_provider(gc_time=30)
    await started(p, "todos")
    release = p.retain("todos")  # an observer comes (bind_client) ...
    release()  # ... and goes
    await clock.advance(31)
    assert p.subscriptions == {"todos"}
    p.replica.write(("todos", "1"), "milk")
    await settle_until(clock, lambda: relay.content("todos") == {"1": "milk"})
    p.unsubscribe("todos")
    assert p.subscriptions == frozenset()


async def test_a_failing_watcher_does_not_drop_the_connection(
    make_provider: MakeProvider, relay: MemoryRelay, clock: FakeClock
) -> None:
    a, b = make_provider(), make_provider()
    await started(a, "d")
    await started(b, "d")
    b.replica.watch("d", ("k",), lambda origin: 1 / 0)  # an application bug
    statuses: list[str] = []
    b.on_status(lambda s: statuses.append(s.state.value))
    a.replica.write(("d", "k"), 1)
    await settle_until(clock, lambda: b.replica.read(("d", "k")) == 1)
    a.replica.write(("d", "k"), 2)
    await settle_until(clock, lambda: b.replica.read(("d", "k")) == 2)
    assert "offline" not in statuses and b.status.state is ConnectionState.CONNECTED


async def test_statuses_started_after_close_ends(make_provider: MakeProvider) -> None:
    p = make_provider()
    await p.start()
    await p.close()
    seen = [s.state async for s in p.statuses()]
    assert seen == [ConnectionState.CLOSED]

"""Chunked array writes (commit points every 48 items, merged per-flush updates) as the sync
layer sees them: one Update message per logical write, acks complete, peers converge exactly.
Runs on MemoryRelay with a FakeClock, plus one loopback round through the real relay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdtsync import Replica
from crdtsync.clock import FakeClock
from crdtsync.protocol import native
from crdtsync.relay import NATIVE_PATH, Relay, RelayConfig, mint_token
from crdtsync.sync import Backoff, MemoryRelay, SyncProvider
from crdtsync.testing.waiting import settle_until

DOC = "todos"
IDS = [f"id-{i:05d}" for i in range(10_000)]




def updates_from(relay: MemoryRelay, session: str | None = None, doc_id: str = DOC) -> list[native.Update]:
    return [m for sid, m in relay.messages(native.Update)
            if m.doc_id == doc_id and (session is None or sid == session)]


class Pair:
    def __init__(self, clock: FakeClock, relay: MemoryRelay) -> None:
        self.clock, self.relay = clock, relay
        self.made: list[SyncProvider] = []

    async def provider(self, *docs: str, replica: Replica | None = None) -> SyncProvider:
        p = SyncProvider(replica or Replica(), self.relay.connect, clock=self.clock,
                         backoff=Backoff(initial=1.0, maximum=8.0, jitter=0.0))
        self.made.append(p)
        for d in docs:
            p.subscribe(d)
        await p.start()
        await p.wait_connected()
        for d in docs:
            await p.wait_synced(d)
        return p


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    clock = FakeClock()
    relay = MemoryRelay(clock=clock)
    pr = Pair(clock, relay)
    yield pr
    for p in pr.made:
        await p.close()
    await relay.close()


async def test_a_10000_id_list_goes_as_one_update_and_is_acked(pair: Pair) -> None:
    a = await pair.provider(DOC)
    b = await pair.provider(DOC)
    before = len(updates_from(pair.relay))
    a.replica.write((DOC, "ids"), IDS)
    async with asyncio.timeout(5):
        await a.wait_acked()
    sent = updates_from(pair.relay)[before:]
    assert len(sent) == 1, f"one logical write should be one Update, got {len(sent)}"
    assert sent[0].seq  # numbered, so acked
    await settle_until(pair.clock, lambda: b.replica.read((DOC, "ids")) == IDS)
    assert pair.relay.content(DOC)["ids"] == IDS
    assert a.is_acked() and b.is_acked()
    # the peer applied it with the provider's REMOTE origin and sent nothing back
    assert len(updates_from(pair.relay)) == before + 1


async def test_replacing_a_long_list_with_another_long_list_converges(pair: Pair) -> None:
    a = await pair.provider(DOC)
    b = await pair.provider(DOC)
    a.replica.write((DOC, "ids"), IDS[:3000])
    await a.wait_acked()
    before = len(updates_from(pair.relay))
    new = IDS[::-1][:5000]
    a.replica.write((DOC, "ids"), new)
    await a.wait_acked()
    assert len(updates_from(pair.relay)) == before + 1
    await settle_until(pair.clock, lambda: b.replica.read((DOC, "ids")) == new)
    assert pair.relay.content(DOC)["ids"] == new


async def test_a_batch_over_two_documents_sends_one_update_per_document(pair: Pair) -> None:
    a = await pair.provider("d1", "d2")
    b = await pair.provider("d1", "d2")
    before1, before2 = len(updates_from(pair.relay, doc_id="d1")), len(updates_from(pair.relay, doc_id="d2"))
    with a.replica.batch():
        a.replica.write(("d1", "x"), IDS[:500])
        a.replica.write(("d2", "x"), IDS[500:1000])
        a.replica.write(("d1", "y"), IDS[1000:1200])
    await a.wait_acked()
    assert len(updates_from(pair.relay, doc_id="d1")) == before1 + 1
    assert len(updates_from(pair.relay, doc_id="d2")) == before2 + 1
    await settle_until(pair.clock, lambda: b.replica.read(("d1", "y")) == IDS[1000:1200]
                and b.replica.read(("d2", "x")) == IDS[500:1000])
    assert b.replica.read(("d1", "x")) == IDS[:500]


async def test_concurrent_long_writes_while_offline_converge(pair: Pair) -> None:
    a = await pair.provider(DOC)
    b = await pair.provider(DOC)
    a.unsubscribe(DOC)
    b.unsubscribe(DOC)
    a.replica.write((DOC, "ids"), IDS[:2000])
    b.replica.write((DOC, "ids"), IDS[2000:4100])
    a.replica.write((DOC, "other"), IDS[:97])
    a.subscribe(DOC)
    b.subscribe(DOC)
    await a.wait_synced(DOC)
    await b.wait_synced(DOC)
    await a.wait_acked()
    await b.wait_acked()
    await settle_until(pair.clock, lambda: a.replica.read((DOC, "ids")) == b.replica.read((DOC, "ids"))
                and a.replica.read((DOC, "other")) == b.replica.read((DOC, "other")))
    assert a.replica.read((DOC, "ids")) in (IDS[:2000], IDS[2000:4100])
    assert b.replica.read((DOC, "other")) == IDS[:97]
    assert pair.relay.content(DOC)["ids"] == a.replica.read((DOC, "ids"))


async def test_an_update_arriving_mid_flush_from_a_listener_write_converges(pair: Pair) -> None:
    """A watcher that writes another long list in reaction to the first: both reach the peer."""
    a = await pair.provider(DOC)
    b = await pair.provider(DOC)
    done: list[bool] = []

    def react(_origin: Any) -> None:
        if not done:
            done.append(True)
            a.replica.write((DOC, "mirror"), list(reversed(a.replica.read((DOC, "ids")))))

    stop = a.replica.watch(DOC, ("ids",), react)
    a.replica.write((DOC, "ids"), IDS[:1000])
    stop()
    await a.wait_acked()
    await settle_until(pair.clock, lambda: b.replica.read((DOC, "mirror")) == IDS[:1000][::-1])
    assert b.replica.read((DOC, "ids")) == IDS[:1000]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=st.lists(st.integers(min_value=-(2**53), max_value=2**53), max_size=150),
    second=st.lists(st.text(max_size=3), max_size=150),
    insert_at=st.integers(min_value=0, max_value=150),
)
def test_property_chunked_writes_round_trip_through_updates(first: list[int], second: list[str],
                                                             insert_at: int) -> None:
    """Lengths around the 48-item chunk: every update a listener sees, applied in order on a
    fresh replica, gives exactly the writer's content (what any provider forwards)."""
    a, b = Replica(), Replica()
    a.on_update(lambda d, u, o: b.apply_update(d, u))
    a.write((DOC, "l"), first)
    assert b.read((DOC, "l")) == first
    spliced = first[:insert_at] + [len(s) for s in second] + first[insert_at:]
    a.write((DOC, "l"), spliced)
    assert b.read((DOC, "l")) == spliced == a.read((DOC, "l"))
    assert b.get_update(DOC, b"\x00") and a.state_vector(DOC) == b.state_vector(DOC)


# -- the real relay on loopback ----------------------------------------------------------------

SECRET = b"chunked-secret-0123456789"


async def test_real_relay_carries_a_10000_id_write(unused: None = None) -> None:
    async with Relay(RelayConfig(port=0, secret=SECRET)) as relay:
        tok = mint_token(SECRET, "t", [("*", "write")], expires=time.time() + 3600)
        ps = [SyncProvider(Replica(), relay.url + NATIVE_PATH, token=tok,
                           backoff=Backoff(initial=0.05, maximum=0.5)) for _ in range(2)]
        try:
            for p in ps:
                p.subscribe(DOC)
                await p.start()
            async with asyncio.timeout(5):
                for p in ps:
                    await p.wait_synced(DOC)
                a, b = ps
                changed = asyncio.Event()
                stop = b.replica.watch(DOC, (), lambda _o: changed.set())
                a.replica.write((DOC, "ids"), IDS)
                await a.wait_acked()
                while b.replica.read((DOC, "ids")) != IDS:
                    await changed.wait()
                    changed.clear()
                stop()
        finally:
            for p in ps:
                await p.close()


# -- optimistic mutations writing long lists, rolled back, with a peer ---------------------------


class Gate:
    """A server call finished by hand."""

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future[Any]] = []
        self.arrived = asyncio.Event()

    async def fn(self, variables: Any, ctx: Any) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append(fut)
        self.arrived.set()
        return await fut

    async def fail_next(self) -> None:
        async with asyncio.timeout(2):
            while not any(not f.done() for f in self.waiting):
                self.arrived.clear()
                await self.arrived.wait()
        next(f for f in self.waiting if not f.done()).set_exception(RuntimeError("server said no"))


async def mutation_client(pair: Pair) -> tuple[Any, SyncProvider]:
    from crdtsync import QueryClient

    client = QueryClient(clock=pair.clock)
    p = await pair.provider(DOC, replica=client.replica)
    return client, p


BEFORE = [f"b{i}" for i in range(200)]
OPTIMISTIC = [f"o{i}" for i in range(200)]


@pytest.mark.parametrize("before", [BEFORE, BEFORE[:10], []], ids=["200-items", "10-items", "empty"])
async def test_optimistic_long_list_rolls_back_exactly_and_peers_converge(pair: Pair, before: list[str]) -> None:
    client, pa = await mutation_client(pair)
    b = await pair.provider(DOC)
    gate = Gate()
    try:
        client.set_query_data((DOC, "ids"), before)
        await pa.wait_acked()
        await settle_until(pair.clock, lambda: b.replica.read((DOC, "ids")) == before)
        m = client.mutate(OPTIMISTIC, mutation_fn=gate.fn,
                          optimistic=lambda tx, v: tx.set((DOC, "ids"), v))
        assert client.get_query_data((DOC, "ids")) == OPTIMISTIC
        await pa.wait_acked()
        await settle_until(pair.clock, lambda: b.replica.read((DOC, "ids")) == OPTIMISTIC)
        await gate.fail_next()
        with pytest.raises(RuntimeError):
            await m.result()
        assert client.get_query_data((DOC, "ids")) == before
        await pa.wait_acked()
        await settle_until(pair.clock, lambda: b.replica.read((DOC, "ids")) == before)
        assert pair.relay.content(DOC)["ids"] == before
    finally:
        await client.close_mutations()
        await client.close()


async def test_rollback_of_a_long_list_keeps_a_peers_newer_list(pair: Pair) -> None:
    client, pa = await mutation_client(pair)
    b = await pair.provider(DOC)
    gate = Gate()
    try:
        client.set_query_data((DOC, "ids"), BEFORE)
        await pa.wait_acked()
        m = client.mutate(OPTIMISTIC, mutation_fn=gate.fn,
                          optimistic=lambda tx, v: tx.set((DOC, "ids"), v))
        await pa.wait_acked()
        await settle_until(pair.clock, lambda: b.replica.read((DOC, "ids")) == OPTIMISTIC)
        newer = [f"peer{i}" for i in range(300)]
        b.replica.write((DOC, "ids"), newer)
        await b.wait_acked()
        await settle_until(pair.clock, lambda: client.replica.read((DOC, "ids")) == newer)
        await gate.fail_next()
        with pytest.raises(RuntimeError):
            await m.result()
        await pa.wait_acked()
        await settle_until(pair.clock, lambda: client.replica.read((DOC, "ids")) == b.replica.read((DOC, "ids")))
        assert client.get_query_data((DOC, "ids")) == newer  # the rollback did not overwrite it
    finally:
        await client.close_mutations()
        await client.close()


async def test_real_relay_with_sqlite_stores_a_long_write_across_a_relay_restart(tmp_path: Any) -> None:
    from crdtsync.storage import CompactionPolicy, SQLiteStore

    tok = mint_token(SECRET, "t", [("*", "write")], expires=time.time() + 3600)
    policy = CompactionPolicy(max_log_updates=2)
    store = SQLiteStore(tmp_path / "relay.db", policy=policy)
    try:
        async with Relay(RelayConfig(port=0, secret=SECRET, flush_delay=0.0), store) as relay:
            a = SyncProvider(Replica(), relay.url + NATIVE_PATH, token=tok, backoff=Backoff(initial=0.05))
            try:
                a.subscribe(DOC)
                await a.start()
                async with asyncio.timeout(5):
                    await a.wait_synced(DOC)
                    for part in (IDS, IDS[::-1][:6000], IDS[:49]):
                        a.replica.write((DOC, "ids"), part)
                        await a.wait_acked()  # acked = durable in the relay's store
                stat = await store.stat(DOC)
                assert stat is not None and stat.log_updates < 2  # compacted by count
            finally:
                await a.close()
    finally:
        await store.close()
    store2 = SQLiteStore(tmp_path / "relay.db", policy=policy)
    try:
        async with Relay(RelayConfig(port=0, secret=SECRET), store2) as relay:
            b = SyncProvider(Replica(), relay.url + NATIVE_PATH, token=tok, backoff=Backoff(initial=0.05))
            try:
                b.subscribe(DOC)
                await b.start()
                async with asyncio.timeout(5):
                    await b.wait_synced(DOC)
                assert b.replica.read((DOC, "ids")) == IDS[:49]
            finally:
                await b.close()
    finally:
        await store2.close()


async def test_a_write_larger_than_the_relays_message_limit_is_delivered_without_a_reconnect_storm() -> None:
    tok = mint_token(SECRET, "t", [("*", "write")], expires=time.time() + 3600)
    limit = 64 << 10  # 10,000 ids are about 100 KB as one update, 48-item chunks about 500 B
    async with Relay(RelayConfig(port=0, secret=SECRET, max_message_size=limit)) as relay:
        p = SyncProvider(Replica(), relay.url + NATIVE_PATH, token=tok, backoff=Backoff(initial=0.01, maximum=0.05))
        drops = 0
        changed = asyncio.Event()

        def on_status(s: Any) -> None:
            nonlocal drops
            drops += s.state.value == "offline"
            changed.set()

        p.on_status(on_status)
        try:
            p.subscribe(DOC)
            await p.start()
            async with asyncio.timeout(5):
                await p.wait_synced(DOC)
                p.replica.write((DOC, "ids"), IDS)
                acked = asyncio.ensure_future(p.wait_acked())
                while not acked.done() and drops < 3:
                    waiter = asyncio.ensure_future(changed.wait())
                    await asyncio.wait({acked, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    changed.clear()
                acked.cancel()
            assert drops < 3, f"the connection dropped {drops} times over one write"
            assert p.is_acked()
        finally:
            await p.close()

"""Room lifecycle: queued joins during a slow load, failed loads, isolation, idle unload."""

from __future__ import annotations

import asyncio

from pycrdt import Doc, Map

from crdtsync.clock import FakeClock
from crdtsync.protocol import native as n
from crdtsync.relay import Relay, RelayConfig
from crdtsync.testing.waiting import until

from .clients import NClient, YClient
from .stores import BrokenStore, GatedStore


async def test_joins_during_slow_load_are_queued_and_served() -> None:
    store = GatedStore()
    seed: Doc = Doc()
    seed.get("m", type=Map)["seed"] = "stored"
    await store.append("fresh", bytes(seed.get_update()))
    async with Relay(RelayConfig(port=0), store) as relay:
        opening = [asyncio.create_task(YClient.open(f"{relay.url}/fresh")) for _ in range(10)]
        opening += [asyncio.create_task(NClient.open(f"{relay.url}/v1", doc_id="fresh")) for _ in range(10)]
        await asyncio.wait_for(store.loading.wait(), 5)
        done, _ = await asyncio.wait(opening, timeout=0.05)
        assert not done  # all waiting on the load
        store.gate.set()
        clients = await asyncio.wait_for(asyncio.gather(*opening), 10)
        for c in clients:
            await c.wait_for(lambda c=c: c.m.get("seed") == "stored")
        assert store.loads == 1
        for c in clients:
            await c.close()


async def test_failed_load_is_reported_and_never_stored_over() -> None:
    store = BrokenStore({"bad"})
    async with Relay(RelayConfig(port=0, flush_delay=0.0), store) as relay:
        y = await YClient.open(f"{relay.url}/bad", handshake=False)
        code, _ = await asyncio.wait_for(y.closed, 5)
        assert code == 4004
        c = await NClient.open(f"{relay.url}/v1", doc_id=None)
        c.send(n.Subscribe("bad", b"\x00"))
        await c.wait_for(lambda: "room_unavailable" in c.error_codes())
        # writes aimed at the failed room are refused, nothing is persisted
        c.send(n.Update("bad", b"\x00\x00", 1))
        await c.wait_for(lambda: "not_subscribed" in c.error_codes())
        # other rooms are unaffected
        good = await NClient.open(f"{relay.url}/v1", doc_id="good")
        good.m["k"] = "v"
        await good.wait_for(lambda: good.acked.get("good", 0) >= 1)
        for cl in (y, c, good):
            await cl.close()
    assert all(doc != "bad" for _, doc in store.writes)
    assert ("append", "good") in store.writes


async def test_failed_load_is_retried_by_a_later_join() -> None:
    store = BrokenStore({"flaky"})
    async with Relay(RelayConfig(port=0), store) as relay:
        c = await NClient.open(f"{relay.url}/v1", doc_id=None)
        c.send(n.Subscribe("flaky", b"\x00"))
        await c.wait_for(lambda: "room_unavailable" in c.error_codes())
        store.broken.clear()
        c.errors.clear()
        await c.subscribe("flaky")
        assert "flaky" in c.subscribed
        await c.close()


async def test_idle_room_unloads_after_configured_time_and_reloads_with_data() -> None:
    clock = FakeClock()
    store = GatedStore()
    store.gate.set()
    async with Relay(RelayConfig(port=0, idle_unload=10.0), store, clock=clock) as relay:
        a = await YClient.open(f"{relay.url}/r")
        a.m["x"] = "kept"
        b = await YClient.open(f"{relay.url}/r")
        await b.wait_for(lambda: b.m.get("x") == "kept")
        await a.close()
        await b.close()
        await asyncio.wait_for(until(lambda: not relay.rooms.get("r") or not relay.rooms.get("r").members), 5)  # type: ignore[union-attr]
        assert relay.rooms.get("r") is not None
        await clock.advance(9.0)
        assert relay.rooms.get("r") is not None
        await clock.advance(1.5)
        await asyncio.wait_for(until(lambda: relay.rooms.get("r") is None and not relay.rooms._unloading), 5)
        assert store.loads == 1
        c = await YClient.open(f"{relay.url}/r")
        await c.wait_for(lambda: c.m.get("x") == "kept")
        assert store.loads == 2
        await c.close()

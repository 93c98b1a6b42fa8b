"""The rate limit slows a client down and never drops what it sent (crdtsync.relay.ratelimit,
and the paced receive loop in crdtsync.relay.peer), on both endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from pycrdt import Doc, Map

from crdtsync.clock import FakeClock
from crdtsync.protocol import native as n
from crdtsync.relay import Relay, RelayConfig
from crdtsync.relay.ratelimit import Throttle
from crdtsync.storage import SQLiteStore
from crdtsync.testing.waiting import until

from .clients import NClient, YClient
from .stores import DurableView

# -- Throttle, pure --------------------------------------------------------------------------


def test_burst_passes_then_frames_wait_one_interval_each() -> None:
    t = Throttle(10.0, 3, now=0.0)
    assert [t.pace(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert t.pace(0.0) == pytest.approx(0.1)
    assert t.pace(0.1) == pytest.approx(0.1)  # waited its turn: the next waits one more interval
    assert t.throttled_for(0.1) == pytest.approx(0.1)


def test_refill_ends_the_throttled_run() -> None:
    t = Throttle(10.0, 2, now=0.0, max_throttle=1.0)
    for _ in range(3):
        t.pace(0.0)
    assert t.throttled_for(0.5) == 0.5
    assert t.pace(10.0) == 0.0  # the bucket refilled: a break in the run
    assert t.throttled_for(10.0) == 0.0
    assert not t.abusive(10.0)


def test_abusive_only_after_max_throttle_without_a_break() -> None:
    t = Throttle(1.0, 1, now=0.0, max_throttle=5.0)
    now = 0.0
    t.pace(now)
    for _ in range(5):
        now += t.pace(now)  # a client that always has the next frame ready
        assert not t.abusive(now)
    now += t.pace(now)
    assert t.abusive(now)
    assert not Throttle(1.0, 1, now=0.0).abusive(1e9)  # max_throttle None: never


def test_bad_parameters() -> None:
    for args, kw in (((0.0, 1), {}), ((1.0, 0), {}), ((1.0, 1), {"max_throttle": 0.0})):
        with pytest.raises(ValueError):
            Throttle(*args, now=0.0, **kw)  # type: ignore[arg-type]


# -- end to end: a 5,000-update burst with the default limits ---------------------------------

BURST = 5000


def _keys(state: bytes | None) -> set[str]:
    doc: Doc = Doc()
    if state is not None:
        doc.apply_update(state)
    return set(doc.get("m", type=Map).keys())


async def _stored_keys(path: Path, doc_id: str) -> set[str]:
    store = SQLiteStore(path)
    try:
        return _keys(await store.load(doc_id))
    finally:
        await store.close()


async def _drive(clock: FakeClock, done: Callable[[], bool], step: float = 0.05, limit: int = 20_000) -> None:
    """Advance the relay's clock in small steps, letting socket I/O run between them, until
    ``done()`` (bounded by ``limit`` steps, not by time)."""
    for _ in range(limit):
        if done():
            return
        await clock.advance(step)
        await asyncio.sleep(0)
    raise AssertionError("never done")


async def test_yjs_burst_with_default_limits_loses_nothing(tmp_path: Path) -> None:
    """One y-websocket client sends 5,000 updates at once (past --burst 4000 at --rate 2000;
    the relay's clock only moves when the test says, so the burst arrives in no time at all):
    every one reaches a reader, the room, and the store after a restart."""
    path = tmp_path / "relay.db"
    expected = {f"k{i}" for i in range(BURST)}
    clock = FakeClock()
    async with Relay(RelayConfig(port=0), SQLiteStore(path), clock=clock) as relay:
        writer = await YClient.open(f"{relay.url}/r")
        for i in range(BURST):  # one update (one frame) per edit
            writer.m[f"k{i}"] = i
        reader = await YClient.open(f"{relay.url}/r")
        await _drive(clock, lambda: len(reader.m) == BURST)
        assert not writer.closed.done(), "the writer was disconnected"
        assert relay.metrics.throttled._value.get() > 0, "the burst never hit the rate limit"
        await reader.close()
        await writer.close()
    assert await _stored_keys(path, "r") == expected
    async with Relay(RelayConfig(port=0), SQLiteStore(path)) as relay:
        fresh = await YClient.open(f"{relay.url}/r")
        assert set(fresh.m.keys()) == expected
        await fresh.close()


def _updates(doc_ids: list[str], count: int) -> list[tuple[str, str, bytes]]:
    """``count`` single-key updates spread over ``doc_ids``: (doc, key, update)."""
    docs = {d: Doc() for d in doc_ids}
    out = []
    for i in range(count):
        doc_id = doc_ids[i % len(doc_ids)]
        doc = docs[doc_id]
        before = doc.get_state()
        doc.get("m", type=Map)[f"k{i}"] = i
        out.append((doc_id, f"k{i}", bytes(doc.get_update(before))))
    return out


async def test_native_burst_with_default_limits_every_ack_durable(tmp_path: Path) -> None:
    """A native client writes 5,000 updates on three documents over one connection at once:
    nothing refused, every Ack covers only writes already committed, all of them survive."""
    path = tmp_path / "relay.db"
    docs = ["a", "b", "c"]
    writes = _updates(docs, BURST)
    clock = FakeClock()
    async with Relay(RelayConfig(port=0), SQLiteStore(path), clock=clock) as relay:
        c = await NClient.open(f"{relay.url}/v1", doc_id=None)
        for d in docs:
            await c.subscribe(d)
        last: dict[str, int] = {}
        for doc_id, _key, update in writes:
            last[doc_id] = c.conn.next_seq()
            c.send(n.Update(doc_id, update, last[doc_id]))
        await _drive(clock, lambda: all(c.acked.get(d) == last[d] for d in docs))
        assert c.errors == []
        assert relay.metrics.throttled._value.get() > 0, "the burst never hit the rate limit"
        # a kill -9 now keeps what the store committed: every acked write must be there
        for d in docs:
            assert await _stored_keys(path, d) == {k for doc_id, k, _ in writes if doc_id == d}
        await c.close()
    async with Relay(RelayConfig(port=0), SQLiteStore(path)) as relay:
        fresh = await NClient.open(f"{relay.url}/v1", doc_id="a")
        assert set(fresh.m.keys()) == {k for doc_id, k, _ in writes if doc_id == "a"}
        await fresh.close()


# -- the hard limit ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["yjs", "native"])
async def test_client_held_back_too_long_is_closed_after_everything_it_sent_is_applied(protocol: str) -> None:
    clock = FakeClock()
    config = RelayConfig(port=0, rate=1.0, burst=5, max_throttle=3.0)
    store = DurableView()
    async with Relay(config, store, clock=clock) as relay:
        if protocol == "yjs":
            client: YClient | NClient = await YClient.open(f"{relay.url}/r")
        else:
            client = await NClient.open(f"{relay.url}/v1", doc_id="r")
        for i in range(30):
            client.m[f"k{i}"] = i
        await _drive(clock, client.closed.done, step=1.0, limit=200)
        code, _ = client.closed.result()
        assert code == 4029
        if isinstance(client, NClient):
            assert "rate_limited" in client.error_codes()
        room = relay.rooms.get("r")
        assert room is not None
        await asyncio.wait_for(until(lambda: len(room.doc.get("m", type=Map)) == 30), 5)
        assert relay.metrics.dropped.labels("rate_limited")._value.get() == 1
        await client.close()
    assert store.keys("r") == {f"k{i}" for i in range(30)}

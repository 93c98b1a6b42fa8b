"""Regression tests for the second review's relay findings."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest
from pycrdt import Doc, Text

from crdtsync.clock import FakeClock
from crdtsync.errors import StorageError
from crdtsync.protocol.awareness import AwarenessEntry, encode_awareness
from crdtsync.relay.config import RelayConfig
from crdtsync.relay.metrics import RelayMetrics
from crdtsync.relay.room import FrameCache, Room, RoomState
from crdtsync.relay.rooms import RoomManager
from crdtsync.storage import MemoryStore
from crdtsync.testing.waiting import until

from .stores import GatedStore


def _history_and_deletes() -> tuple[bytes, list[bytes]]:
    d: Doc = Doc(client_id=1)
    t = d.get("t", type=Text)
    ups: list[bytes] = []
    d.observe(lambda ev: ups.append(bytes(ev.update)))
    t += "hello"
    del t[4:5]
    del t[3:4]
    return ups[0], ups[1:]


async def test_deletions_flushed_in_one_batch_are_stored() -> None:
    store = MemoryStore()
    history, deletes = _history_and_deletes()
    await store.append("doc", history)  # flushed earlier: the batch below only deletes
    clock = FakeClock()
    room = Room("doc", store=store, config=RelayConfig(port=0), clock=clock, metrics=RelayMetrics())
    await room.load()
    for u in deletes:
        room.apply_update(u, None)
    assert room.unflushed == 2
    await room.close()  # one flush of both updates
    state = await store.load("doc")
    assert state is not None
    d: Doc = Doc()
    d.apply_update(state)
    assert str(d.get("t", type=Text)) == "hel"



class _Member:
    def __init__(self, key: str) -> None:
        self._key = key

    @property
    def key(self) -> Hashable:
        return self._key

    def deliver_update(self, doc_id: str, update: bytes, frames: FrameCache) -> None:
        pass

    def deliver_awareness(self, doc_id: str, payload: bytes, frames: FrameCache) -> None:
        pass


async def test_room_whose_only_join_was_cancelled_during_load_is_unloaded() -> None:
    clock = FakeClock()
    store = GatedStore()
    rooms = RoomManager(store=store, config=RelayConfig(port=0, idle_unload=5.0), clock=clock,
                        metrics=RelayMetrics())
    joining = asyncio.create_task(rooms.join("d", _Member("a")))
    await asyncio.wait_for(store.loading.wait(), 5)
    joining.cancel()
    with pytest.raises(asyncio.CancelledError):
        await joining
    store.gate.set()
    room = rooms.get("d")
    assert room is not None
    await asyncio.wait_for(until(lambda: room.state is not RoomState.LOADING), 5)
    await clock.settle()
    assert room.idle_timer is not None
    await clock.advance(5.5)
    await asyncio.wait_for(until(lambda: rooms.get("d") is None and not rooms._unloading), 5)
    # a join while the timer runs keeps the room
    joined = await rooms.join("e", _Member("b"))
    assert joined.idle_timer is None
    await rooms.close()


async def test_join_cancelled_after_the_load_finished_arms_the_idle_timer() -> None:
    clock = FakeClock()
    store = GatedStore()
    rooms = RoomManager(store=store, config=RelayConfig(port=0, idle_unload=5.0), clock=clock,
                        metrics=RelayMetrics())
    joining = asyncio.create_task(rooms.join("d", _Member("a")))
    await asyncio.wait_for(store.loading.wait(), 5)
    room = rooms.get("d")
    assert room is not None
    store.gate.set()
    while room.state is RoomState.LOADING:  # the load resolves the future; the joiner has not run yet
        await asyncio.sleep(0)
    joining.cancel()
    with pytest.raises(asyncio.CancelledError):
        await joining
    assert not room.members
    assert room.idle_timer is not None
    await rooms.close()



async def test_awareness_removal_markers_of_a_room_expire() -> None:
    clock = FakeClock()
    store = MemoryStore()
    room = Room("doc", store=store, config=RelayConfig(port=0, awareness_timeout=2.0), clock=clock,
                metrics=RelayMetrics())
    await room.load()
    a = _Member("a")
    room.join(a)
    room.apply_awareness(encode_awareness([AwarenessEntry(7, 1, b'{"n":1}')]), a)
    room.apply_awareness(encode_awareness([AwarenessEntry(i, 1, b"null") for i in range(100, 1100)]), a)
    assert len(room.awareness._clients) == 1  # removals of unknown ids are not kept
    room.leave(a)  # client 7 leaves a removal marker
    assert len(room.awareness._clients) == 1 and len(room.awareness) == 0
    await clock.advance(2.5)
    assert len(room.awareness._clients) == 0
    await room.close()
    assert clock.pending_timers() == 0


class _FlakyStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True
        self.attempts = 0
        self.attempted = asyncio.Event()

    async def append(self, doc_id: str, update: bytes) -> None:
        self.attempts += 1
        self.attempted.set()
        if self.fail:
            raise StorageError("disk full (transient)")
        await super().append(doc_id, update)


async def test_close_keeps_retrying_a_failed_write_until_it_succeeds() -> None:
    clock = FakeClock()
    store = _FlakyStore()
    room = Room("doc", store=store, config=RelayConfig(port=0, shutdown_timeout=30.0), clock=clock,
                metrics=RelayMetrics())
    await room.load()
    history, _ = _history_and_deletes()
    room.apply_update(history, None)
    closing = asyncio.create_task(room.close())
    await asyncio.wait_for(store.attempted.wait(), 5)
    await clock.advance(3.0)
    assert not closing.done()
    assert store.attempts > 1
    store.fail = False
    await clock.advance(6.0)
    await asyncio.wait_for(closing, 5)
    assert room.state is RoomState.CLOSED
    state = await store.load("doc")
    assert state is not None
    d: Doc = Doc()
    d.apply_update(state)
    assert str(d.get("t", type=Text)) == "hello"


async def test_close_gives_up_after_the_shutdown_timeout(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    store = _FlakyStore()
    room = Room("doc", store=store, config=RelayConfig(port=0, shutdown_timeout=5.0), clock=clock,
                metrics=RelayMetrics())
    await room.load()
    room.apply_update(_history_and_deletes()[0], None)
    closing = asyncio.create_task(room.close())
    await asyncio.wait_for(store.attempted.wait(), 5)
    await clock.advance(6.0)
    await asyncio.wait_for(closing, 5)
    assert room.state is RoomState.CLOSED
    assert "pending updates are lost" in caplog.text
    assert clock.pending_timers() == 0


async def test_reload_waits_for_an_unload_that_is_still_retrying() -> None:
    clock = FakeClock()
    store = _FlakyStore()
    rooms = RoomManager(store=store, config=RelayConfig(port=0, idle_unload=1.0), clock=clock,
                        metrics=RelayMetrics())
    a = _Member("a")
    room = await rooms.join("doc", a)
    room.apply_update(_history_and_deletes()[0], None)
    rooms.leave(room, a)
    await clock.advance(1.5)  # unloaded; its final flush keeps failing
    assert rooms.get("doc") is None and "doc" in rooms._unloading
    joining = asyncio.create_task(rooms.join("doc", _Member("b")))
    await clock.advance(2.0)
    assert not joining.done()
    store.fail = False
    await clock.advance(6.0)
    again = await asyncio.wait_for(joining, 5)
    assert str(again.doc.get("t", type=Text)) == "hello"
    await rooms.close()

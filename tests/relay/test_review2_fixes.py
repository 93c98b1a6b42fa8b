"""Regression tests for the second review's relay findings."""

from __future__ import annotations

from pycrdt import Doc, Text

from crdtsync.clock import FakeClock
from crdtsync.relay.config import RelayConfig
from crdtsync.relay.metrics import RelayMetrics
from crdtsync.relay.room import Room
from crdtsync.storage import MemoryStore


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


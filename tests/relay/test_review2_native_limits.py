"""Native endpoint: limits that must hold while documents are still loading."""

from __future__ import annotations

import asyncio

import pytest
from pycrdt import Doc, Text

from crdtsync.clock import FakeClock
from crdtsync.protocol import native as n
from crdtsync.relay import Relay, RelayConfig, mint_token

from .clients import NClient
from .stores import GatedStore

SECRET = b"0123456789abcdef-secret"


def _update(text: str) -> bytes:
    d: Doc = Doc()
    d.get("t", type=Text).insert(0, text)
    return bytes(d.get_update())


async def test_max_subscriptions_counts_documents_still_joining() -> None:
    store = GatedStore()  # loads wait: every join is still pending when the next arrives
    async with Relay(RelayConfig(port=0, max_subscriptions=2), store) as relay:
        c = await NClient.open(f"{relay.url}/v1", doc_id=None)
        for i in range(6):
            c.send(n.Subscribe(f"s{i}", b"\x00"))
        await c.wait_for(lambda: c.error_codes().count("limit_exceeded") >= 4)
        store.gate.set()
        await c.wait_for(lambda: {"s0", "s1"} <= c.subscribed)
        assert c.subscribed == {"s0", "s1"}
        assert sum(len(r.members) for r in relay.rooms.rooms.values()) == 2
        assert c.error_codes().count("limit_exceeded") == 4
        await c.close()


async def test_past_the_held_bytes_limit_the_relay_stops_reading_and_drops_nothing() -> None:
    store = GatedStore()
    big = _update("x" * 3000)
    async with Relay(RelayConfig(port=0, max_held_bytes=8000), store) as relay:
        c = await NClient.open(f"{relay.url}/v1", doc_id=None)
        c.send(n.Subscribe("d", b"\x00"))
        for seq in range(1, 5):
            c.send(n.Update("d", big, seq))
        c.send(n.SyncStep1("never-subscribed", b"\x00"))  # answered only once the relay reads on
        await asyncio.wait_for(store.loading.wait(), 5)
        with pytest.raises(TimeoutError):  # two updates are held; the third waits in the socket
            await c.wait_for(lambda: "not_subscribed" in c.error_codes(), timeout=0.3)
        store.gate.set()
        await c.wait_for(lambda: c.acked.get("d", 0) == 4)
        await c.wait_for(lambda: "not_subscribed" in c.error_codes())
        assert c.error_codes() == ["not_subscribed"]
        await c.close()


async def test_replay_of_held_frames_stops_once_the_connection_is_closed() -> None:
    clock = FakeClock()
    store = GatedStore()
    token = mint_token(SECRET, "u", [("*", "write")], expires=clock.now() + 10)
    async with Relay(RelayConfig(port=0, secret=SECRET), store, clock=clock) as relay:
        c = await NClient.open(f"{relay.url}/v1", token=token, doc_id=None)
        c.send(n.Subscribe("d", b"\x00"))
        for seq in range(1, 4):
            c.send(n.Update("d", _update(str(seq)), seq))
        await _processed(c)
        await clock.advance(20)  # the token expires while the frames are held
        store.gate.set()
        await asyncio.wait_for(c.closed, 5)
        # the token's expiry closed the connection before the load ended: nothing is replayed
        assert relay.metrics.errors.labels("unauthorized")._value.get() == 1
        room = relay.rooms.get("d")
        assert room is not None and room.unflushed == 0
        assert str(room.doc.get("t", type=Text)) == ""


async def _processed(c: NClient) -> None:
    """Wait until the relay handled every frame sent so far (frames are handled in order)."""
    before = c.error_codes().count("not_subscribed")
    c.send(n.SyncStep1("never-subscribed", b"\x00"))
    await c.wait_for(lambda: c.error_codes().count("not_subscribed") > before)

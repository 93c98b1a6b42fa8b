"""The native endpoint's write contract: a refusal names the document and seq it concerns, no
cumulative Ack ever covers a refused write, and a token's expiry ends every connection."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map

from crdtsync import Replica
from crdtsync.clock import FakeClock
from crdtsync.errors import FrameError
from crdtsync.protocol import native as n
from crdtsync.relay import NATIVE_PATH, Relay, RelayConfig, mint_token
from crdtsync.relay.room import Room
from crdtsync.storage import MemoryStore
from crdtsync.sync import Backoff, SyncProvider

from .clients import NClient, YClient
from .stores import DurableView

SECRET = b"0123456789abcdef-native"


def _write(doc: Doc, key: str, value: Any = 1) -> bytes:
    before = doc.get_state()
    doc.get("m", type=Map)[key] = value
    return bytes(doc.get_update(before))


def _acks(c: NClient, doc_id: str) -> list[int]:
    return [m.seq for m in c.received if isinstance(m, n.Ack) and m.doc_id == doc_id]


async def _processed(c: NClient) -> None:
    """Every frame sent so far has been handled (frames are handled in order)."""
    nonce = len(c.received) + 10_000
    c.send(n.Ping(nonce))
    await c.wait_for(lambda: any(isinstance(m, n.Pong) and m.nonce == nonce for m in c.received))


async def test_a_refused_write_is_named_and_no_ack_covers_it_until_resubscribed() -> None:
    async with Relay(RelayConfig(port=0), MemoryStore()) as relay:
        c = await NClient.open(f"{relay.url}/v1", doc_id=None)
        await c.subscribe("d")
        src: Doc = Doc()
        c.send(n.Update("d", _write(src, "a"), 1))
        c.send(n.Update("d", b"\xff\xff garbage", 2))
        c.send(n.Update("d", _write(src, "b"), 3))  # valid, but after a refused write
        await c.wait_for(lambda: len(c.errors) == 2)
        await _processed(c)
        assert [(e.code, e.doc_id, e.seq, e.fatal) for e in c.errors] == [
            ("bad_update", "d", 2, False), ("resync_required", "d", 3, False)]
        assert max(_acks(c, "d")) == 1
        room = relay.rooms.get("d")
        assert room is not None and set(room.doc.get("m", type=Map).keys()) == {"a"}
        # a new Subscribe is a new sync exchange: writes are taken again
        c.send(n.Subscribe("d", bytes(src.get_state())))
        c.send(n.Update("d", _write(src, "c"), 4))
        await c.wait_for(lambda: 4 in _acks(c, "d"))
        assert set(room.doc.get("m", type=Map).keys()) == {"a", "c"}


async def test_write_refusals_carry_doc_and_seq() -> None:
    token = mint_token(SECRET, "u", [("ro", "read"), ("rw", "write")], expires=time.time() + 3600)
    async with Relay(RelayConfig(port=0, secret=SECRET), MemoryStore()) as relay:
        c = await NClient.open(f"{relay.url}/v1", token=token, doc_id=None)
        await c.subscribe("ro")
        src: Doc = Doc()
        c.send(n.Update("ro", _write(src, "x"), 7))
        c.send(n.SyncStep2("nope", _write(src, "y"), 8))
        await c.wait_for(lambda: len(c.errors) == 2)
        assert [(e.code, e.doc_id, e.seq) for e in c.errors] == [("forbidden", "ro", 7), ("not_subscribed", "nope", 8)]
        exc = c.errors[0].exception()
        assert (exc.doc_id, exc.seq) == ("ro", 7)


@pytest.mark.parametrize("protocol", ["native", "yjs"])
async def test_token_expiry_closes_a_reader(protocol: str) -> None:
    clock = FakeClock()
    token = mint_token(SECRET, "u", [("*", "read")], expires=clock.now() + 10)
    async with Relay(RelayConfig(port=0, secret=SECRET), MemoryStore(), clock=clock) as relay:
        if protocol == "native":
            reader: NClient | YClient = await NClient.open(f"{relay.url}/v1", token=token, doc_id="d")
        else:
            reader = await YClient.open(f"{relay.url}/d?token={token}")
        await clock.advance(9)
        assert not reader.closed.done()
        await clock.advance(2)
        code, _ = await asyncio.wait_for(reader.closed, 5)
        assert code == 4001
        if isinstance(reader, NClient):
            assert (reader.errors[-1].code, reader.errors[-1].fatal) == ("unauthorized", True)


async def test_provider_resyncs_a_document_after_a_refused_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay refuses one write (a fault injected into the room): the provider subscribes
    again and its resync answer carries the refused edit and the ones after it."""
    refuse = {"left": 1}
    apply = Room.apply_update

    def flaky(self: Room, update: bytes, *args: Any, **kw: Any) -> None:
        if kw.get("on_durable") is not None and refuse["left"] and update != b"\x00\x00":
            refuse["left"] -= 1
            raise FrameError("injected: refused once")
        apply(self, update, *args, **kw)

    monkeypatch.setattr(Room, "apply_update", flaky)
    async with Relay(RelayConfig(port=0), MemoryStore()) as relay:
        p = SyncProvider(Replica(), relay.url + NATIVE_PATH, backoff=Backoff(initial=0.01, maximum=0.05, jitter=0.0))
        try:
            p.subscribe("d")
            await p.start()
            await asyncio.wait_for(p.wait_synced("d"), 10)
            p.replica.write(("d", "a"), 1)
            p.replica.write(("d", "b"), 2)
            await asyncio.wait_for(p.wait_acked(), 10)
            assert refuse["left"] == 0
            fresh = SyncProvider(Replica(), relay.url + NATIVE_PATH)
            try:
                fresh.subscribe("d")
                await fresh.start()
                await asyncio.wait_for(fresh.wait_synced("d"), 10)
                assert (fresh.replica.read(("d", "a")), fresh.replica.read(("d", "b"))) == (1, 2)
            finally:
                await fresh.close()
        finally:
            await p.close()


# -- property: whatever the rates, sizes, limits and crash point, acked means durable ---------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    writes=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 3000)), min_size=1, max_size=80),
    rate=st.floats(400, 20_000),
    burst=st.integers(1, 60),
    max_held_bytes=st.integers(2_000, 50_000),
    max_throttle=st.sampled_from([None, 0.05, 5.0]),
    kill_at=st.integers(0, 80),
)
async def test_every_acked_write_is_durable_at_the_moment_of_its_ack(
    writes: list[tuple[str, int]], rate: float, burst: int, max_held_bytes: int,
    max_throttle: float | None, kill_at: int,
) -> None:
    store = DurableView()
    config = RelayConfig(port=0, rate=rate, burst=burst, max_held_bytes=max_held_bytes, max_throttle=max_throttle)
    violations: list[str] = []
    sent: dict[int, tuple[str, str]] = {}
    refused: set[int] = set()
    docs = {d: Doc() for d in "abc"}
    relay = Relay(config, store)
    await relay.start()
    try:
        c = await NClient.open(f"{relay.url}/v1", doc_id=None)
        on_frame = c.on_frame

        def checking(frame: bytes) -> None:  # runs when the frame arrives: "now" is the ack's instant
            before = len(c.received)
            on_frame(frame)
            for m in c.received[before:]:
                if isinstance(m, n.Ack):
                    covered = [s for s, (d, _) in sent.items() if d == m.doc_id and s <= m.seq]
                    missing = [s for s in covered if sent[s][1] not in store.keys(m.doc_id)]
                    if missing or refused & set(covered):
                        violations.append(f"Ack({m.doc_id}, {m.seq}) covers {missing} / refused {refused}")
                elif isinstance(m, n.Error) and m.seq:
                    refused.add(m.seq)

        c.on_frame = checking  # type: ignore[method-assign]
        for d in "abc":
            c.send(n.Subscribe(d, b"\x00"))  # no waiting: writes race the joins
        acked_at_kill: dict[str, int] = {}
        snapshot: dict[str, set[str]] = {}
        for i, (doc_id, size) in enumerate(writes):
            if i == kill_at:
                await _processed_or_closed(c)
                acked_at_kill, snapshot = dict(c.acked), {d: store.keys(d) for d in "abc"}
            seq = c.conn.next_seq()
            sent[seq] = (doc_id, f"k{seq}")
            # size 0: bytes that do not decode (refused: bad_update, and the later ones on the doc)
            update = b"\xff\x01garbage" if size == 0 else _write(docs[doc_id], f"k{seq}", "x" * size)
            c.send(n.Update(doc_id, update, seq))
        await _processed_or_closed(c)
        if not c.closed.done():
            last = {d: max((s for s, (doc, _) in sent.items() if doc == d), default=0) for d in "abc"}
            await c.wait_for(lambda: all(c.acked.get(d, 0) >= last[d] or any(
                s in refused for s, (doc, _) in sent.items() if doc == d) for d in "abc"), timeout=20)
        await c.close()
    finally:
        await relay.stop()
    assert violations == []
    for doc_id, upto in acked_at_kill.items():  # a crash at the kill point kept these
        assert {k for s, (d, k) in sent.items() if d == doc_id and s <= upto} <= snapshot[doc_id]
    for s, (d, k) in sent.items():  # every write not refused (on a connection still open) is stored
        assert s in refused or (k in store.keys(d)) or c.closed.done(), f"write {s} on {d} lost"
        assert not (s in refused and k in store.keys(d)), f"write {s} on {d} refused but stored"


async def _processed_or_closed(c: NClient) -> None:
    if c.closed.done():
        return
    nonce = len(c.received) + 10_000
    c.send(n.Ping(nonce))
    await c.wait_for(lambda: c.closed.done() or any(isinstance(m, n.Pong) and m.nonce == nonce for m in c.received),
                     timeout=20)

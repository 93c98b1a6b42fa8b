"""Random and mutated frames on both endpoints: the offender gets a typed error or a close
code, the relay keeps serving, and the room's document is intact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map

from crdtsync.protocol import native as n
from crdtsync.protocol import yjs as y
from crdtsync.protocol.awareness import AwarenessEntry, encode_awareness, state_json
from crdtsync.relay import Relay, RelayConfig
from crdtsync.storage import MemoryStore

from .clients import NClient, YClient

TYPED_CLOSE_CODES = {1002, 1003, 1007, 1008, 1009, 1011, 4029}


def _valid_update() -> bytes:
    d: Doc = Doc()
    d.get("m", type=Map)["fuzz"] = "value"
    return bytes(d.get_update())


YJS_SEEDS = [
    y.encode_yjs(y.Update(_valid_update())),
    y.encode_yjs(y.SyncStep1(b"\x00")),
    y.encode_yjs(y.SyncStep2(_valid_update())),
    y.encode_yjs(y.Awareness(encode_awareness([AwarenessEntry(9, 1, state_json({"a": "é"}))]))),
    y.encode_yjs(y.QueryAwareness()),
]
NATIVE_SEEDS = [
    n.encode(n.Update("fz", _valid_update(), 3)),
    n.encode(n.SyncStep1("fz", b"\x00")),
    n.encode(n.Subscribe("fz", b"\x00")),
    n.encode(n.Awareness("fz", encode_awareness([AwarenessEntry(9, 1, b"{}")]))),
    n.encode(n.Ping(1)),
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=64))
    frame = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if op == "flip" and frame:
            i = draw(st.integers(0, len(frame) - 1))
            frame[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut" and frame:
            del frame[draw(st.integers(0, len(frame) - 1)) :]
        elif op == "insert":
            i = draw(st.integers(0, len(frame)))
            frame[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "dup":
            frame += bytes(frame)
    return bytes(frame)


@pytest.fixture
async def fuzz_relay() -> AsyncIterator[Relay]:
    store = MemoryStore()
    seed: Doc = Doc()
    seed.get("m", type=Map)["keep"] = "intact"
    await store.append("fz", bytes(seed.get_update()))
    r = Relay(RelayConfig(port=0), store)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


async def _check_alive(relay: Relay) -> None:
    probe = await YClient.open(f"{relay.url}/fz")
    assert probe.m.get("keep") == "intact"
    await probe.close()
    room = relay.rooms.get("fz")
    assert room is not None and room.doc.get("m", type=Map).get("keep") == "intact"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(mutated(YJS_SEEDS), min_size=1, max_size=6))
async def test_fuzz_yjs_endpoint(fuzz_relay: Relay, frames: list[bytes]) -> None:
    c = await YClient.open(f"{fuzz_relay.url}/fz")
    c.on_frame = lambda frame: c.received.append(frame)  # type: ignore[method-assign]
    for f in frames:
        c.send_raw(f)
    c.send_raw(y.encode_yjs(y.SyncStep1(b"\x00")))  # a probe: answered if still open
    n_before = len(c.received)
    await c.wait_for(lambda: c.closed.done() or len(c.received) > n_before)
    if c.closed.done():
        code, _ = c.closed.result()
        assert code in TYPED_CLOSE_CODES
    await c.close()
    await _check_alive(fuzz_relay)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(mutated(NATIVE_SEEDS), min_size=1, max_size=6))
async def test_fuzz_native_endpoint(fuzz_relay: Relay, frames: list[bytes]) -> None:
    c = await NClient.open(f"{fuzz_relay.url}/v1", doc_id="fz")
    raw: list[bytes] = []

    def on_frame(frame: bytes) -> None:
        raw.append(frame)
        try:
            msg = n.decode(frame)
        except Exception:
            return
        c.received.append(msg)
        if isinstance(msg, n.Error):
            c.errors.append(msg)

    c.on_frame = on_frame  # type: ignore[method-assign]
    for f in frames:
        c.send_raw(f)
    c.send_raw(n.encode(n.Ping(4242)))
    await c.wait_for(
        lambda: c.closed.done() or any(isinstance(m, n.Pong) and m.nonce == 4242 for m in c.received)
    )
    if c.closed.done():
        code, _ = c.closed.result()
        assert code in TYPED_CLOSE_CODES
        assert c.errors and (c.errors[-1].fatal or code == 4029), "closed without a typed error"
    await c.close()
    await _check_alive(fuzz_relay)
    assert fuzz_relay.rooms.get("fz") is not None


async def test_text_frames_rejected(fuzz_relay: Relay) -> None:
    c = await YClient.open(f"{fuzz_relay.url}/fz")
    c.send_raw("hello")
    code, _ = await asyncio.wait_for(c.closed, 5)
    assert code == 1003
    await _check_alive(fuzz_relay)


async def test_a_text_frame_on_the_native_endpoint_is_a_fatal_bad_frame(fuzz_relay: Relay) -> None:
    c = await NClient.open(f"{fuzz_relay.url}/v1", doc_id="fz")
    c.send_raw("hello")
    code, _ = await asyncio.wait_for(c.closed, 5)
    assert code == 1008
    assert (c.errors[-1].code, c.errors[-1].fatal) == ("bad_frame", True)
    await _check_alive(fuzz_relay)

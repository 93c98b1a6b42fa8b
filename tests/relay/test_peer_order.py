"""Peer.send keeps frame order across the direct-write fast path and the queued slow path."""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.protocol import State

from crdtsync.relay.auth import Claims
from crdtsync.relay.metrics import RelayMetrics
from crdtsync.relay.peer import Peer
from crdtsync.relay.ratelimit import Throttle


class FakeTransport:
    def __init__(self) -> None:
        self.buffered = 0

    def get_write_buffer_size(self) -> int:
        return self.buffered


class FakeProtocol:
    state = State.OPEN

    def __init__(self, wire: list[bytes]) -> None:
        self.wire = wire

    def send_binary(self, frame: bytes) -> None:
        self.wire.append(frame)  # a direct write is on the wire at once


class FakeWS:
    """Just what Peer touches. ``send`` puts the frame on the wire only when ``drained`` is set."""

    def __init__(self) -> None:
        self.wire: list[bytes] = []
        self.transport = FakeTransport()
        self.protocol = FakeProtocol(self.wire)
        self.send_in_progress: Any = None
        self.drained = asyncio.Event()
        self.started = asyncio.Event()

    def send_data(self) -> None:
        pass

    async def send(self, frame: bytes) -> None:
        self.started.set()
        await self.drained.wait()
        self.wire.append(frame)


async def test_a_frame_never_overtakes_one_in_flight() -> None:
    ws = FakeWS()
    peer = Peer(ws, protocol="native", claims=Claims("t", ()), max_queue=10,  # type: ignore[arg-type]
                throttle=Throttle(100, 10, 0.0), metrics=RelayMetrics(), write_buffer=100)
    peer.start()
    ws.transport.buffered = 1000  # the socket is backed up: the first frame is queued
    peer.send(b"first")
    await asyncio.wait_for(ws.started.wait(), 5)  # the sender task has it in flight
    ws.transport.buffered = 0  # the buffer drains, but "first" is still in flight
    peer.send(b"second")
    assert ws.wire == []  # "second" did not take the direct path past "first"
    ws.drained.set()
    for _ in range(50):
        if len(ws.wire) == 2:
            break
        await asyncio.sleep(0)
    assert ws.wire == [b"first", b"second"]
    peer.send(b"third")  # idle again: the direct path
    assert ws.wire[-1] == b"third"
    await peer.stop()


async def test_slow_consumer_is_closed_when_its_queue_is_full() -> None:
    ws = FakeWS()
    closed: list[tuple[int, str]] = []

    async def close(code: int, reason: str) -> None:
        closed.append((code, reason))

    ws.close = close  # type: ignore[attr-defined]
    peer = Peer(ws, protocol="yjs", claims=Claims("t", ()), max_queue=3,  # type: ignore[arg-type]
                throttle=Throttle(100, 10, 0.0), metrics=RelayMetrics(), write_buffer=100)
    peer.start()
    ws.transport.buffered = 1000
    for i in range(5):
        peer.send(bytes([i]))
    assert peer.closing
    await peer.stop()
    assert closed and closed[0][0] == 1013


async def test_a_pycrdt_panic_on_an_update_is_a_frame_error_for_the_room(monkeypatch: Any) -> None:
    import pytest
    from pycrdt import Doc

    from crdtsync.clock import FakeClock
    from crdtsync.errors import FrameError
    from crdtsync.relay import RelayConfig
    from crdtsync.relay.room import Room
    from crdtsync.storage import MemoryStore

    class PanicException(BaseException):  # what pyo3 raises when yrs panics
        pass

    room = Room("p", store=MemoryStore(), config=RelayConfig(), clock=FakeClock(), metrics=RelayMetrics())
    await room.load()
    assert room.ready

    def panic(self: object, update: bytes) -> None:
        raise PanicException("called Option::unwrap() on a None value")

    monkeypatch.setattr(Doc, "apply_update", panic)
    with pytest.raises(FrameError):
        room.apply_update(b"\x01", None)

"""Peer.send keeps frame order across the write batch (one write per event-loop iteration),
the queued slow path and the close; encodes frames exactly as websockets would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from crdtsync.protocol.close_codes import CloseCode
from crdtsync.relay.auth import Claims
from crdtsync.relay.metrics import RelayMetrics
from crdtsync.relay.peer import Peer, frame_header
from crdtsync.relay.ratelimit import Throttle


def payloads(data: bytes) -> list[bytes]:
    """The payloads of the unmasked, unfragmented binary frames in ``data`` (checks headers)."""
    out, i = [], 0
    while i < len(data):
        assert data[i] == 0x82, data[i : i + 2]
        size, i = data[i + 1], i + 2
        if size == 126:
            size, i = int.from_bytes(data[i : i + 2], "big"), i + 2
        elif size == 127:
            size, i = int.from_bytes(data[i : i + 8], "big"), i + 8
        out.append(data[i : i + size])
        i += size
    assert i == len(data)
    return out


class FakeTransport:
    def __init__(self) -> None:
        self.buffered = 0
        self.writes: list[bytes] = []  # one entry per transport.write (one syscall)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    @property
    def wire(self) -> list[bytes]:
        return payloads(b"".join(self.writes))


class FakeProtocol:
    state = State.OPEN
    extensions: tuple[Any, ...] = ()


class FakeWS:
    """Just what Peer touches. ``drain`` returns only once ``drained`` is set."""

    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.protocol = FakeProtocol()
        self.send_in_progress: Any = None
        self.drained = asyncio.Event()
        self.draining = asyncio.Event()
        self.closed: list[tuple[int, str]] = []

    async def drain(self) -> None:
        self.draining.set()
        await self.drained.wait()

    async def send(self, frame: bytes) -> None:  # what Peer._close uses for pending frames
        self.transport.write(frame_header(len(frame)) + frame)

    async def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))
        self.protocol.state = State.CLOSED


def make_peer(ws: FakeWS, *, max_queue: int = 10, write_buffer: int = 100) -> Peer:
    peer = Peer(ws, protocol="yjs", claims=Claims("t", ()), max_queue=max_queue,  # type: ignore[arg-type]
                throttle=Throttle(100, 10, 0.0), metrics=RelayMetrics(), write_buffer=write_buffer)
    peer.start()
    return peer


async def settle(predicate: Any = lambda: False) -> None:
    for _ in range(50):
        if predicate():
            return
        await asyncio.sleep(0)


async def test_a_frame_never_overtakes_one_in_flight() -> None:
    ws = FakeWS()
    peer = make_peer(ws)
    ws.transport.buffered = 1000  # the socket is backed up: the first frame is queued
    peer.send(b"first")
    await asyncio.wait_for(ws.draining.wait(), 5)  # the sender task waits for the socket
    ws.transport.buffered = 0  # the buffer drains, but "first" is still waiting
    peer.send(b"second")
    await settle()
    assert ws.transport.writes == []  # "second" did not take the fast path past "first"
    ws.drained.set()
    await settle(lambda: len(ws.transport.wire) == 2)
    assert ws.transport.wire == [b"first", b"second"]
    assert len(ws.transport.writes) == 1  # both queued frames in one write
    peer.send(b"third")  # idle again: the write batch
    assert len(ws.transport.writes) == 1  # written at the end of the iteration, not now
    await asyncio.sleep(0)
    assert ws.transport.wire == [b"first", b"second", b"third"]
    await peer.stop()


async def test_the_frames_of_one_iteration_go_out_in_one_write_in_order() -> None:
    ws = FakeWS()
    peer = make_peer(ws, write_buffer=1 << 16)
    frames = [b"f%03d" % i + b"x" * i for i in range(200)]  # sizes across the 126 boundary
    for f in frames:
        peer.send(f)
    assert ws.transport.writes == []
    await asyncio.sleep(0)
    assert len(ws.transport.writes) == 1
    assert ws.transport.wire == frames
    peer.send(b"next")  # a new iteration, a new batch
    await asyncio.sleep(0)
    assert len(ws.transport.writes) == 2 and ws.transport.wire[-1] == b"next"
    await peer.stop()


async def test_a_batch_that_reaches_write_buffer_spills_into_the_queue_in_order() -> None:
    ws = FakeWS()
    ws.drained.set()
    peer = make_peer(ws, max_queue=100, write_buffer=100)
    frames = [b"%02d" % i + b"x" * 28 for i in range(20)]  # 30 bytes, 32 on the wire
    for f in frames:
        peer.send(f)
    assert peer.queued == 16  # the batch took 4 frames (0, 32, 64, 96 bytes < 100 before each)
    await settle(lambda: len(ws.transport.wire) == 20)
    assert ws.transport.wire == frames  # all of them, in order, none twice
    assert len(ws.transport.writes) < len(frames)  # the queue is written several at a time
    assert peer.queued == 0
    await peer.stop()


async def test_slow_consumer_is_closed_when_its_queue_is_full() -> None:
    ws = FakeWS()
    peer = make_peer(ws, max_queue=3, write_buffer=100)
    ws.transport.buffered = 1000
    for i in range(5):
        peer.send(bytes([i]))
    assert peer.closing
    await peer.stop()
    assert ws.closed and ws.closed[0][0] == CloseCode.SLOW_CONSUMER
    assert ws.transport.wire == []  # a slow consumer's queue is discarded


async def test_a_slow_consumer_still_gets_the_batch_it_was_promised_before_the_close() -> None:
    ws = FakeWS()
    peer = make_peer(ws, max_queue=3, write_buffer=100)
    frames = [b"%02d" % i + b"x" * 28 for i in range(8)]
    for f in frames:  # 4 in the batch, 3 queued, the 8th overflows the queue
        peer.send(f)
    assert peer.closing and peer.close_code == CloseCode.SLOW_CONSUMER
    assert ws.transport.wire == frames[:4]  # the batch went out before the close, in order
    await peer.stop()
    assert ws.closed[0][0] == CloseCode.SLOW_CONSUMER
    assert ws.transport.wire == frames[:4]


async def test_a_drained_close_sends_the_batch_then_the_queue_then_closes() -> None:
    ws = FakeWS()
    peer = make_peer(ws, max_queue=10, write_buffer=100)
    frames = [b"%02d" % i + b"x" * 28 for i in range(7)]
    for f in frames:
        peer.send(f)
    peer.close(4001, "token expired")
    peer.send(b"after the close")  # ignored
    await peer.stop()
    assert ws.transport.wire == frames
    assert ws.closed == [(4001, "token expired")]


async def test_nothing_is_written_once_the_connection_is_no_longer_open() -> None:
    ws = FakeWS()
    peer = make_peer(ws)
    peer.send(b"one")
    ws.protocol.state = State.CLOSING  # e.g. the client's close frame was answered meanwhile
    await asyncio.sleep(0)
    assert ws.transport.writes == []  # never a data frame after a close frame
    await peer.stop()


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_frame_header_is_what_websockets_writes(size: int) -> None:
    payload = b"\xab" * size
    expected = Frame(Opcode.BINARY, payload).serialize(mask=False, extensions=[])
    assert frame_header(size) + payload == expected


async def test_with_an_extension_the_protocol_encodes_the_frames() -> None:
    class ExtProtocol(FakeProtocol):
        extensions = ("an extension",)

        def __init__(self) -> None:
            self.out: list[bytes] = []

        def send_binary(self, frame: bytes) -> None:
            if self.state is not State.OPEN:
                raise RuntimeError("InvalidState")  # what websockets raises, roughly
            self.out.append(b"\x82" + bytes([len(frame)]) + frame)

        def data_to_send(self) -> list[bytes]:
            out, self.out = self.out, []
            return out

    ws = FakeWS()
    ws.protocol = ExtProtocol()
    peer = make_peer(ws, write_buffer=1 << 16)
    for f in (b"a", b"bb", b"ccc"):
        peer.send(f)
    await asyncio.sleep(0)
    assert ws.transport.wire == [b"a", b"bb", b"ccc"] and len(ws.transport.writes) == 1
    peer.send(b"d")
    ws.protocol.state = State.CLOSING  # closing in the middle of a batch: no exception
    peer.send(b"e")  # into the room's fan-out loop
    await asyncio.sleep(0)
    assert len(ws.transport.writes) == 1
    await peer.stop()


async def test_a_pycrdt_panic_on_an_update_is_a_frame_error_for_the_room(monkeypatch: Any) -> None:
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

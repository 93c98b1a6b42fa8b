"""The fan-out hot path: direct socket writes while a peer keeps up, the bounded queue when it
does not, order preserved across both; awareness messages counted; the event-loop choice."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

import pytest
from pycrdt import Doc, Map
from websockets.asyncio.client import connect

from crdtsync.protocol import yjs as y
from crdtsync.relay import Relay, RelayConfig
from crdtsync.relay.loop import loop_factory, run_relay_loop
from crdtsync.storage import MemoryStore
from crdtsync.testing.waiting import until

from .clients import YClient

SIZE, N = 3_000, 4_000
KEY = re.compile(rb"key(\d{5})")


def received_keys(messages: Iterable[object]) -> list[int]:
    """Sequence numbers of the map keys in the y-websocket Updates among ``messages``, in order."""
    out = []
    for msg in messages:
        if isinstance(msg, y.Update):
            m = KEY.search(msg.update)
            if m is not None:
                out.append(int(m.group(1)))
    return out


async def test_paused_reader_gets_every_update_in_order_through_the_queue() -> None:
    # The fast reader is served by the write batches. The paused one stops reading, so its socket
    # buffers fill, the transport buffer passes write_buffer and later frames wait in its
    # bounded queue; once it reads again it gets every update, in order, none twice.
    config = RelayConfig(port=0, write_buffer=8 << 10, rate=1e6, burst=1_000_000)
    async with Relay(config, MemoryStore()) as relay:
        writer = await YClient.open(f"{relay.url}/r")
        fast = await YClient.open(f"{relay.url}/r")
        paused = await connect(f"{relay.url}/r", max_queue=1, compression=None, max_size=None)
        room = relay.rooms.get("r")
        assert room is not None
        await until(lambda: len(room.members) == 3)
        n, half = N, N // 2
        for i in range(half):
            writer.m[f"key{i:05d}"] = "v" * SIZE
        await fast.wait_for(lambda: len(fast.m) == half, timeout=20)
        paused_peer = max(relay.peers.values(), key=lambda p: p.queued)
        assert paused_peer.queued > 0  # the slow path was taken

        async def read_all() -> list[int]:
            got: list[int] = []
            while len(got) < n:
                frame = await asyncio.wait_for(paused.recv(), 10)
                assert isinstance(frame, bytes)
                got.extend(received_keys([y.decode_yjs(frame)]))
            return got

        reading = asyncio.create_task(read_all())  # it drains while the second half goes out
        for i in range(half, n):
            writer.m[f"key{i:05d}"] = "v" * SIZE
            if i % 20 == 0:
                await asyncio.sleep(0)  # let the relay and the reader run between edits
        await fast.wait_for(lambda: len(fast.m) == n, timeout=20)
        assert received_keys(fast.received) == list(range(n))
        assert await reading == list(range(n))  # everything, in order, none twice
        assert relay.metrics.dropped.labels("slow_consumer")._value.get() == 0
        await paused.close()
        for c in (writer, fast):
            await c.close()


async def test_a_burst_handled_in_one_iteration_reaches_each_reader_in_one_write_in_order() -> None:
    # Updates applied in one event-loop iteration (as when one read brings many frames) are
    # coalesced: each reader's socket gets one write holding all of them, in order.
    async with Relay(RelayConfig(port=0), MemoryStore()) as relay:
        readers = [await YClient.open(f"{relay.url}/r") for _ in range(3)]
        room = relay.rooms.get("r")
        assert room is not None
        await until(lambda: len(room.members) == 3)
        doc: Doc = Doc()
        updates: list[bytes] = []
        sub = doc.observe(lambda ev: updates.append(bytes(ev.update)))
        for i in range(50):
            doc.get("m", type=Map)[f"key{i:05d}"] = i
        doc.unobserve(sub)
        writes: dict[int, int] = {}
        for peer in relay.peers.values():
            peer.ws.transport = CountingTransport(peer.ws.transport, writes, peer.id)  # type: ignore[assignment]
        for update in updates:
            room.apply_update(update, None)
        for r in readers:
            await r.wait_for(lambda r=r: len(r.m) == 50)  # type: ignore[misc]
            assert received_keys(r.received) == list(range(50))
        assert sorted(writes.values()) == [1, 1, 1]
        for r in readers:
            await r.close()


class CountingTransport:
    """A transport that counts the writes (syscalls) made through it, per peer."""

    def __init__(self, inner: Any, counts: dict[int, int], key: int):
        self._inner, self._counts, self._key = inner, counts, key

    def write(self, data: bytes) -> None:
        self._counts[self._key] = self._counts.get(self._key, 0) + 1
        self._inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)



async def test_awareness_sent_metric_counts_broadcasts_and_snapshots() -> None:
    async with Relay(RelayConfig(port=0), MemoryStore()) as relay:
        a = await YClient.open(f"{relay.url}/r")
        b = await YClient.open(f"{relay.url}/r")
        payload = y.Awareness(b"\x01\x07\x01" + y_string('{"u":"é"}'))
        a.send(payload)
        await b.wait_for(lambda: 7 in b.awareness)
        sent = relay.metrics.awareness_out._value.get()
        assert sent == 1  # one broadcast to b, none back to a
        c = await YClient.open(f"{relay.url}/r")  # gets a snapshot on join
        await c.wait_for(lambda: 7 in c.awareness)
        assert relay.metrics.awareness_out._value.get() == sent + 1
        for cl in (a, b, c):
            await cl.close()


def y_string(s: str) -> bytes:
    data = s.encode()
    assert len(data) < 128
    return bytes([len(data)]) + data


def test_loop_choice() -> None:
    assert loop_factory("asyncio") == (None, "asyncio")
    _factory, name = loop_factory("auto")
    assert name in ("uvloop", "asyncio")
    with pytest.raises(ValueError, match="unknown event loop"):
        loop_factory("trio")

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_relay_loop(which, "asyncio").startswith("asyncio")
    try:
        import uvloop  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="not installed"):
            loop_factory("uvloop")
    else:
        assert name == "uvloop"
        assert run_relay_loop(which, "uvloop").startswith("uvloop")

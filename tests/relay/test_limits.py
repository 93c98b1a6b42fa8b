"""Every RelayConfig limit, end to end, plus /healthz, /metrics and no-echo on native."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from pycrdt import Doc, Map
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from crdtsync.protocol import native as n
from crdtsync.protocol import yjs as y
from crdtsync.relay import Relay, RelayConfig
from crdtsync.storage import MemoryStore
from crdtsync.testing.waiting import until

from .clients import NClient, YClient


def big_update(size: int, key: str = "k") -> bytes:
    d: Doc = Doc()
    d.get("m", type=Map)[key] = "x" * size
    return bytes(d.get_update())


async def test_config_validation() -> None:
    for bad in (
        {"max_queue": 0}, {"write_buffer": 0}, {"rate": 0}, {"max_rooms": 0}, {"max_connections": 0},
        {"flush_delay": 2.0},
        {"native_path": "/metrics"}, {"secret": b"short"}, {"port": 70000},
    ):
        with pytest.raises(ValueError):
            RelayConfig(**bad)  # type: ignore[arg-type]


async def test_message_size_limit_closes_with_1009() -> None:
    async with Relay(RelayConfig(port=0, max_message_size=10_000), MemoryStore()) as relay:
        a = await YClient.open(f"{relay.url}/r")
        a.send(y.Update(big_update(20_000)))
        code, _ = await asyncio.wait_for(a.closed, 5)
        assert code == 1009
        b = await YClient.open(f"{relay.url}/r")  # the room is fine
        b.m["ok"] = 1.0
        await b.close()


async def test_max_rooms() -> None:
    async with Relay(RelayConfig(port=0, max_rooms=2), MemoryStore()) as relay:
        a = await YClient.open(f"{relay.url}/r1")
        b = await YClient.open(f"{relay.url}/r2")
        c = await YClient.open(f"{relay.url}/r3", handshake=False)
        code, _ = await asyncio.wait_for(c.closed, 5)
        assert code == 1008
        d = await NClient.open(f"{relay.url}/v1", doc_id=None)
        d.send(n.Subscribe("r4", b"\x00"))
        await d.wait_for(lambda: "limit_exceeded" in d.error_codes())
        await d.subscribe("r1")  # existing rooms still work
        for cl in (a, b, d):
            await cl.close()


async def test_max_connections() -> None:
    async with Relay(RelayConfig(port=0, max_connections=2), MemoryStore()) as relay:
        a = await YClient.open(f"{relay.url}/r")
        b = await YClient.open(f"{relay.url}/r")
        with pytest.raises(InvalidStatus) as info:
            await connect(f"{relay.url}/r")
        assert info.value.response.status_code == 503
        await a.close()
        await asyncio.wait_for(until(lambda: len(relay.peers) < 2), 5)
        c = await YClient.open(f"{relay.url}/r")
        await b.close()
        await c.close()


async def test_max_subscriptions() -> None:
    async with Relay(RelayConfig(port=0, max_subscriptions=2), MemoryStore()) as relay:
        c = await NClient.open(f"{relay.url}/v1", doc_id=None)
        await c.subscribe("a")
        await c.subscribe("b")
        c.send(n.Subscribe("c", b"\x00"))
        await c.wait_for(lambda: "limit_exceeded" in c.error_codes())
        await c.close()


async def test_slow_consumer_disconnected_others_unaffected() -> None:
    async with Relay(RelayConfig(port=0, max_queue=16), MemoryStore()) as relay:
        writer = await YClient.open(f"{relay.url}/r")
        fast = await YClient.open(f"{relay.url}/r")
        # a client that never reads: its socket buffers fill, then the relay's queue
        slow = await connect(f"{relay.url}/r", max_queue=1, compression=None, max_size=None)
        await asyncio.wait_for(until(lambda: len(relay.rooms.get("r").members) == 3), 5)  # type: ignore[union-attr]
        for i in range(400):
            writer.m[f"k{i}"] = "x" * 60_000
        await fast.wait_for(lambda: len(fast.m) == 400, timeout=20)
        code = None
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(slow.recv(), 10)
        code = slow.protocol.close_rcvd.code if slow.protocol.close_rcvd else None
        assert code == 1013
        assert relay.metrics.dropped.labels("slow_consumer")._value.get() >= 1
        await writer.close()
        await fast.close()


async def test_native_update_never_echoed_and_forwarded_as_received(relay: Relay) -> None:
    a = await NClient.open(f"{relay.url}/v1", doc_id="r")
    b = await NClient.open(f"{relay.url}/v1", doc_id="r")
    yb = await YClient.open(f"{relay.url}/r")
    a.m["x"] = "1"
    await b.wait_for(lambda: b.m.get("x") == "1")
    await yb.wait_for(lambda: yb.m.get("x") == "1")
    await a.wait_for(lambda: a.acked.get("r", 0) >= 1)
    assert not [m for m in a.received if isinstance(m, n.Update)]
    sent = [m for m in b.received if isinstance(m, n.Update)]
    assert len(sent) == 1 and sent[0].seq >= 1  # the sender's own frame, byte for byte
    for cl in (a, b, yb):
        await cl.close()


async def test_healthz_and_metrics(relay: Relay) -> None:
    a = await YClient.open(f"{relay.url}/r")
    a.m["x"] = "1"
    b = await YClient.open(f"{relay.url}/r")
    await b.wait_for(lambda: b.m.get("x") == "1")
    base = f"http://127.0.0.1:{relay.port}"

    def get(path: str) -> tuple[int, str]:
        with urllib.request.urlopen(base + path, timeout=5) as resp:
            return resp.status, resp.read().decode()

    status, body = await asyncio.to_thread(get, "/healthz")
    assert status == 200 and body.strip() == "ok"
    status, body = await asyncio.to_thread(get, "/metrics")
    assert status == 200
    for name in (
        "crdtsync_connections", "crdtsync_rooms", "crdtsync_updates_received_total",
        "crdtsync_bytes_sent_total", "crdtsync_queue_depth_max", "crdtsync_store_bytes",
        "crdtsync_store_compactions",
    ):
        assert name in body, name
    assert 'crdtsync_connections{protocol="yjs"} 2.0' in body
    await a.close()
    await b.close()

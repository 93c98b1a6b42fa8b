"""Awareness through the relay: newcomers, cleanup on disconnect, no echo, coalescing, limits."""

from __future__ import annotations

import asyncio
import time

import pytest

from crdtsync.clock import FakeClock
from crdtsync.protocol import native as n
from crdtsync.protocol import yjs as y
from crdtsync.protocol.awareness import AwarenessEntry, encode_awareness, state_json
from crdtsync.relay import Relay, RelayConfig, mint_token
from crdtsync.storage import MemoryStore
from crdtsync.testing.waiting import until

from .clients import NClient, YClient


def aw(client_id: int, clock: int, state: object) -> bytes:
    return encode_awareness([AwarenessEntry(client_id, clock, state_json(state))])


def aw_frames(c: YClient) -> list[y.Awareness]:
    return [m for m in c.received if isinstance(m, y.Awareness)]


async def test_newcomer_gets_states_and_removal_is_broadcast_on_disconnect(relay: Relay) -> None:
    a = await YClient.open(f"{relay.url}/r")
    a.send(y.Awareness(aw(1, 1, {"name": "Zoë ✓", "cursor": [1, 2]})))
    b = await YClient.open(f"{relay.url}/r")
    await b.wait_for(lambda: b.awareness.get(1) == {"name": "Zoë ✓", "cursor": [1, 2]})
    c = await NClient.open(f"{relay.url}/v1", doc_id="r")
    await c.wait_for(lambda: 1 in c.awareness)
    await a.close()
    await b.wait_for(lambda: 1 not in b.awareness)
    await c.wait_for(lambda: 1 not in c.awareness)
    room = relay.rooms.get("r")
    assert room is not None and len(room.awareness) == 0
    await b.close()
    await c.close()


async def test_no_echo_to_sender_and_echoes_are_not_rebroadcast(relay: Relay) -> None:
    a = await YClient.open(f"{relay.url}/r")
    b = await YClient.open(f"{relay.url}/r")
    a.send(y.Awareness(aw(1, 1, {"n": "a"})))
    await b.wait_for(lambda: 1 in b.awareness)
    # b behaves like a stock client and re-sends what it received: nothing must go out
    b.send(y.Awareness(aw(1, 1, {"n": "a"})))
    a.send(y.Awareness(aw(1, 2, {"n": "a2"})))
    await b.wait_for(lambda: b.awareness.get(1) == {"n": "a2"})
    assert len(aw_frames(b)) == 2  # the two real changes, not the echo
    assert aw_frames(a) == []  # the sender never gets its own state back
    await a.close()
    await b.close()


async def test_query_awareness_answered(relay: Relay) -> None:
    a = await YClient.open(f"{relay.url}/r")
    a.send(y.Awareness(aw(5, 3, {"x": 1})))
    b = await YClient.open(f"{relay.url}/r")
    await b.wait_for(lambda: 5 in b.awareness)
    before = len(aw_frames(b))
    b.send(y.QueryAwareness())
    await b.wait_for(lambda: len(aw_frames(b)) > before)
    await a.close()
    await b.close()


async def test_renewals_are_coalesced_and_traffic_is_linear() -> None:
    clock = FakeClock()
    async with Relay(RelayConfig(port=0, awareness_coalesce=5.0), MemoryStore(), clock=clock) as relay:
        clients = [await YClient.open(f"{relay.url}/r") for _ in range(6)]
        for i, c in enumerate(clients):
            c.send(y.Awareness(aw(100 + i, 1, {"i": i})))
        for c in clients:
            await c.wait_for(lambda c=c: len(c.awareness) >= 5)
        counts = [len(aw_frames(c)) for c in clients]
        # three rounds of pure renewals (same state, newer clock) from everyone
        for round_ in range(2, 5):
            for i, c in enumerate(clients):
                c.send(y.Awareness(aw(100 + i, round_, {"i": i})))
        room = relay.rooms.get("r")
        assert room is not None
        await asyncio.wait_for(until(lambda: room.awareness.clock_of(105) == 4), 5)
        assert [len(aw_frames(c)) for c in clients] == counts  # nothing sent yet
        await clock.advance(5.1)
        for c, before in zip(clients, counts, strict=True):
            await c.wait_for(lambda c=c, before=before: len(aw_frames(c)) == before + 1)
        # 6 clients x 3 renewals = 18 renewals became one message per client
        for c in clients:
            await c.close()


async def test_states_expire_without_renewal() -> None:
    clock = FakeClock()
    async with Relay(RelayConfig(port=0, awareness_timeout=30.0), MemoryStore(), clock=clock) as relay:
        a = await YClient.open(f"{relay.url}/r")
        b = await YClient.open(f"{relay.url}/r")
        a.send(y.Awareness(aw(1, 1, {"n": 1})))
        await b.wait_for(lambda: 1 in b.awareness)
        await clock.advance(31)
        await b.wait_for(lambda: 1 not in b.awareness)
        await a.close()
        await b.close()


async def test_bad_awareness_rejected_room_intact() -> None:
    config = RelayConfig(port=0)
    async with Relay(config, MemoryStore()) as relay:
        a = await YClient.open(f"{relay.url}/r")
        b = await YClient.open(f"{relay.url}/r")
        a.send(y.Awareness(aw(1, 1, {"ok": True})))
        await b.wait_for(lambda: 1 in b.awareness)
        deep: object = "x"
        for _ in range(config.awareness.max_depth + 5):
            deep = [deep]
        a.send(y.Awareness(aw(2, 1, deep)))
        a.send(y.Awareness(aw(3, 1, {"big": "x" * (config.awareness.max_payload_bytes + 10)})))
        a.send(y.Awareness(b"\x01\x02\x03garbage"))
        await a.wait_for(lambda: len(a.denied) == 3)
        assert all(r.startswith("awareness rejected") for r in a.denied)
        c = await NClient.open(f"{relay.url}/v1", doc_id="r")
        c.send(n.Awareness("r", b"\xff"))
        await c.wait_for(lambda: "bad_frame" in c.error_codes())
        assert not c.closed.done()
        a.m["still"] = "works"
        await b.wait_for(lambda: b.m.get("still") == "works")
        assert set(b.awareness) == {1}
        for cl in (a, b, c):
            await cl.close()



OWNER_SECRET = b"0123456789abcdef-presence"


def _token(subject: str, access: str) -> str:
    return mint_token(OWNER_SECRET, subject, [("*", access)], expires=time.time() + 3600)


async def _open(protocol: str, relay: Relay, token: str) -> YClient | NClient:
    if protocol == "yjs":
        return await YClient.open(f"{relay.url}/r?token={token}")
    return await NClient.open(f"{relay.url}/v1", token=token, doc_id="r")


def _send_aw(c: YClient | NClient, payload: bytes) -> None:
    if isinstance(c, YClient):
        c.send(y.Awareness(payload))
    else:
        c.send(n.Awareness("r", payload))


def _refusals(c: YClient | NClient) -> list[str]:
    """The presence refusals ``c`` received (permission denied frames / typed Errors)."""
    if isinstance(c, YClient):
        return [r for r in c.denied if "awareness rejected" in r or "presence" in r]
    return [e.message for e in c.errors if e.code == "not_owner" or "presence" in e.message]


@pytest.mark.parametrize("protocol", ["yjs", "native"])
async def test_presence_is_owned_by_the_connection_that_introduced_it(protocol: str) -> None:
    async with Relay(RelayConfig(port=0, secret=OWNER_SECRET), MemoryStore()) as relay:
        ana = await YClient.open(f"{relay.url}/r?token={_token('ana', 'write')}")
        ana.send(y.Awareness(aw(1, 1, {"n": "ana"})))
        watcher = await YClient.open(f"{relay.url}/r?token={_token('w', 'read')}")
        await watcher.wait_for(lambda: watcher.awareness.get(1) == {"n": "ana"})
        mallory = await _open(protocol, relay, _token("mallory", "read"))
        for spoof in (aw(1, 2, {"n": "evil"}), encode_awareness([AwarenessEntry(1, 2, b"null")])):
            before = len(_refusals(mallory))
            _send_aw(mallory, spoof)
            await mallory.wait_for(lambda b=before: len(_refusals(mallory)) > b)  # type: ignore[misc]
        if isinstance(mallory, NClient):
            assert [(e.code, e.doc_id) for e in mallory.errors if e.code == "not_owner"] == [("not_owner", "r")] * 2
        _send_aw(mallory, aw(7, 1, {"n": "mallory"}))  # its own client id: allowed for a reader
        await watcher.wait_for(lambda: watcher.awareness.get(7) == {"n": "mallory"})
        assert watcher.awareness.get(1) == {"n": "ana"}
        for c in (ana, watcher, mallory):
            await c.close()


@pytest.mark.parametrize("protocol", ["yjs", "native"])
async def test_reader_presence_can_be_switched_off(protocol: str) -> None:
    config = RelayConfig(port=0, secret=OWNER_SECRET, reader_presence=False)
    async with Relay(config, MemoryStore()) as relay:
        reader = await _open(protocol, relay, _token("r", "read"))
        _send_aw(reader, aw(3, 1, {"n": "r"}))
        await reader.wait_for(lambda: bool(_refusals(reader)))
        room = relay.rooms.get("r")
        assert room is not None and len(room.awareness) == 0
        await reader.close()

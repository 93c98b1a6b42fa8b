"""End to end on loopback: SyncProviders over real websockets through the real relay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from crdtsync import Replica
from crdtsync.errors import PermissionDeniedError
from crdtsync.relay import NATIVE_PATH, Relay, RelayConfig, mint_token
from crdtsync.sync import Backoff, SyncProvider
from crdtsync.testing.waiting import until_replica

SECRET = b"e2e-secret-0123456789"
TIMEOUT = 10.0




async def start_synced(doc_id: str, *providers: SyncProvider) -> None:
    for p in providers:
        p.subscribe(doc_id)
        await p.start()
    async with asyncio.timeout(TIMEOUT):
        for p in providers:
            await p.wait_synced(doc_id)


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    async with Relay(RelayConfig(port=0, secret=SECRET)) as r:
        yield r


def token(*grants: tuple[str, str]) -> str:
    return mint_token(SECRET, "tester", grants, expires=time.time() + 3600)


@pytest.fixture
async def providers(relay: Relay) -> AsyncIterator[Callable[..., SyncProvider]]:
    made: list[SyncProvider] = []

    def make(tok: str, replica: Replica | None = None) -> SyncProvider:
        p = SyncProvider(
            replica or Replica(),
            relay.url + NATIVE_PATH,
            token=tok,
            backoff=Backoff(initial=0.05, maximum=0.5),
        )
        made.append(p)
        return p

    yield make
    for p in made:
        await p.close()


async def test_three_peers_converge_through_the_relay(providers: Callable[..., SyncProvider]) -> None:
    rw = token(("notes/*", "write"))
    a, b = providers(rw), providers(rw)
    await start_synced("notes/1", a, b)
    a.replica.write(("notes/1", "title"), "héllo ✓")
    b.replica.write(("notes/1", "body"), "from b")
    await until_replica(lambda: b.replica.read(("notes/1", "title")) == "héllo ✓", b.replica, "notes/1")
    await until_replica(lambda: a.replica.read(("notes/1", "body")) == "from b", a.replica, "notes/1")
    async with asyncio.timeout(TIMEOUT):
        await a.wait_acked()
        await b.wait_acked()

    # a newcomer with offline edits of its own: both directions flow on subscribe
    offline = Replica()
    offline.write(("notes/1", "late"), "from c")
    c = providers(rw, offline)
    await start_synced("notes/1", c)
    async with asyncio.timeout(TIMEOUT):
        await c.wait_acked()
    assert c.replica.read(("notes/1", "title")) == "héllo ✓"
    await until_replica(lambda: a.replica.read(("notes/1", "late")) == "from c", a.replica, "notes/1")


async def test_offline_edits_sync_after_a_reconnect(providers: Callable[..., SyncProvider]) -> None:
    rw = token(("*", "write"))
    a, b = providers(rw), providers(rw)
    await start_synced("doc", a, b)
    a.unsubscribe("doc")  # a goes "offline" for this document
    a.replica.write(("doc", "a"), 1)
    b.replica.write(("doc", "b"), 2)
    async with asyncio.timeout(TIMEOUT):
        await b.wait_acked()
    a.subscribe("doc")
    async with asyncio.timeout(TIMEOUT):
        await a.wait_synced("doc")
        await a.wait_acked()
    assert a.replica.read(("doc", "b")) == 2
    await until_replica(lambda: b.replica.read(("doc", "a")) == 1, b.replica, "doc")


async def test_read_only_peer_receives_but_cannot_write(providers: Callable[..., SyncProvider]) -> None:
    writer = providers(token(("doc", "write")))
    reader = providers(token(("doc", "read")))
    await start_synced("doc", writer, reader)
    writer.replica.write(("doc", "k"), "v")
    await until_replica(lambda: reader.replica.read(("doc", "k")) == "v", reader.replica, "doc")
    reader.replica.write(("doc", "k"), "hacked")
    with pytest.raises(PermissionDeniedError):
        async with asyncio.timeout(TIMEOUT):
            await reader.wait_acked("doc")
    assert writer.replica.read(("doc", "k")) == "v"


async def test_presence_through_the_relay(providers: Callable[..., SyncProvider]) -> None:
    rw = token(("*", "write"))
    a, b = providers(rw), providers(rw)
    await start_synced("room", a, b)
    seen = asyncio.Event()
    b.awareness("room").on_change(lambda *_: seen.set())
    a.awareness("room").set_local_state({"user": "Zoë 😀"})
    aid = a.awareness("room").client_id
    async with asyncio.timeout(TIMEOUT):
        while aid not in b.awareness("room").states:
            await seen.wait()
            seen.clear()
    assert b.awareness("room").states[aid] == {"user": "Zoë 😀"}
    await a.close()
    async with asyncio.timeout(TIMEOUT):
        while aid in b.awareness("room").states:
            await seen.wait()
            seen.clear()

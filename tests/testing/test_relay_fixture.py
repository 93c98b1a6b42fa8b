"""The plugin's ``relay`` fixture gives a working relay: two real SyncProviders converge through
it over loopback websockets, their writes are acknowledged, and the relay's SQLite store in
``tmp_path`` holds them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pycrdt import Doc, Map

from crdtsync import Replica
from crdtsync.relay import NATIVE_PATH, Relay
from crdtsync.storage import SQLiteStore
from crdtsync.sync import Backoff, SyncProvider
from crdtsync.testing.waiting import until_replica

TIMEOUT = 10.0
DOC = "fixture-doc"




async def test_two_sync_providers_converge_through_the_relay_fixture(relay: Relay, tmp_path: Path) -> None:
    assert relay.url.startswith("ws://127.0.0.1:")
    assert isinstance(relay.store, SQLiteStore)
    assert (tmp_path / "relay.db").exists()
    a = SyncProvider(Replica(), relay.url + NATIVE_PATH, backoff=Backoff(initial=0.05, maximum=0.5))
    b = SyncProvider(Replica(), relay.url + NATIVE_PATH, backoff=Backoff(initial=0.05, maximum=0.5))
    try:
        for p in (a, b):
            p.subscribe(DOC)
            await p.start()
        async with asyncio.timeout(TIMEOUT):
            await a.wait_synced(DOC)
            await b.wait_synced(DOC)
        a.replica.write((DOC, "from_a"), "héllo ✓")
        b.replica.write((DOC, "from_b"), [1, 2, 3])
        await until_replica(lambda: b.replica.read((DOC, "from_a")) == "héllo ✓", b.replica, DOC, timeout=TIMEOUT)
        await until_replica(lambda: a.replica.read((DOC, "from_b")) == [1, 2, 3], a.replica, DOC, timeout=TIMEOUT)
        async with asyncio.timeout(TIMEOUT):
            await a.wait_acked(DOC)
            await b.wait_acked(DOC)
    finally:
        await a.close()
        await b.close()
        a.replica.close()
        b.replica.close()
    # acknowledged means durable: the fixture's store holds both writes
    state = await relay.store.load(DOC)
    assert state is not None
    doc: Doc[Map[object]] = Doc()
    doc.apply_update(state)
    root = doc.get("root", type=Map).to_py()
    assert root["from_a"] == "héllo ✓"
    assert "from_b" in root

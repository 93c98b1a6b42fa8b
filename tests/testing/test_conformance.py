"""Every storage and transport in the project passes the public conformance suites, run through
the public entry points ``check_storage`` and ``check_transport`` (all checks, roles swapped).

An inventory test fails when a new store or transport class is exported without being added
here. The offline package has no store or transport of these shapes: ``LocalChannel`` joins a
whole replica to other processes (it is not a frame ``Transport``) and ``ReplicaPersister``
persists a replica (it is not a ``DocumentStore``); tests/offline covers them.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

import crdtsync.storage as storage
import crdtsync.transport as transport
from crdtsync.storage import DocumentStore, MemoryStore, SQLiteStore, open_store
from crdtsync.testing import check_storage, check_transport
from crdtsync.testing.transport_suite import MakePair
from crdtsync.transport import MemoryTransport, Transport, WebSocketTransport, connect_websocket, memory_pair

MAX = 64 * 1024
COVERED_STORES = {MemoryStore, SQLiteStore}
COVERED_TRANSPORTS = {MemoryTransport, WebSocketTransport}


def _implementations(module: object, protocol: type, methods: tuple[str, ...]) -> set[type]:
    return {
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and obj is not protocol
        and not getattr(obj, "_is_protocol", False)
        and all(callable(getattr(obj, m, None)) for m in methods)
    }


def test_every_exported_store_and_transport_is_covered() -> None:
    stores = _implementations(storage, DocumentStore, ("load", "append", "replace", "delete", "list_docs", "close"))
    transports = _implementations(transport, Transport, ("send", "recv", "close", "wait_closed"))
    assert stores == COVERED_STORES
    assert transports == COVERED_TRANSPORTS


async def test_memory_store() -> None:
    await check_storage(MemoryStore)


async def test_memory_store_compacting_often() -> None:
    await check_storage(lambda: MemoryStore(compact_every=3))


async def test_sqlite_store(tmp_path: Path) -> None:
    counter = iter(range(1000))
    await check_storage(lambda: SQLiteStore(tmp_path / f"s{next(counter)}.db"))


async def test_open_store_memory_spec() -> None:
    await check_storage(lambda: open_store("memory:"))


# SQLiteStore with aggressive compaction (CompactionPolicy) is run per check in
# tests/storage/test_conformance.py; it takes seconds, so it is not repeated here.


async def test_memory_pair() -> None:
    async def make() -> tuple[Transport, Transport]:
        return memory_pair(max_size=MAX)

    await check_transport(make, max_size=MAX)


async def test_memory_pair_with_backpressure() -> None:
    async def make() -> tuple[Transport, Transport]:
        return memory_pair(max_size=MAX, max_queue=2)

    await check_transport(make, max_size=MAX)


@pytest.fixture
async def websocket_pairs() -> AsyncIterator[MakePair]:
    accepted: asyncio.Queue[WebSocketTransport] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        await accepted.put(WebSocketTransport(ws))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, max_size=MAX, ping_interval=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]

        async def make() -> tuple[Transport, Transport]:
            client = await connect_websocket(f"ws://127.0.0.1:{port}/", max_size=MAX)
            return client, await asyncio.wait_for(accepted.get(), 5)

        yield make


async def test_websocket_transport_on_loopback(websocket_pairs: MakePair) -> None:
    await check_transport(websocket_pairs, max_size=MAX)

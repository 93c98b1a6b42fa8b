"""Large updates through a relay with small message limits.

A relay refuses frames over its ``max_message_size``, and a client over its own. Here both are
small on purpose (64 KiB for the relay, 16 KiB for Bo), and Ada writes a list of 20,000 ids
(about 200 KB as one update):

1. Ada's provider cuts the update into parts that fit the relay's limit (announced in its
   Welcome) and every part is acknowledged: ``wait_acked`` returns;
2. the relay cuts what it sends Bo to the limit Bo announced in its Hello: Bo receives the
   whole list, with no dropped connection;
3. the cutting itself is ``crdtsync.protocol.split.split_update``, shown on the raw bytes.

Run: python examples/large_update.py   (see docs/sync.md, "Large updates")
"""

from __future__ import annotations

import asyncio

from crdtsync import Replica
from crdtsync.protocol.split import split_update
from crdtsync.relay import NATIVE_PATH, Relay, RelayConfig
from crdtsync.sync import SyncProvider
from crdtsync.sync.status import ConnectionState

IDS = [f"todo-{i:05d}" for i in range(20_000)]


async def main() -> None:
    async with Relay(RelayConfig(port=0, max_message_size=64 * 1024)) as relay:
        ada = SyncProvider(Replica(), relay.url + NATIVE_PATH)
        bo = SyncProvider(Replica(), relay.url + NATIVE_PATH, max_message_size=16 * 1024)
        drops = {"ada": 0, "bo": 0}  # status reports of a dropped connection

        def count_drops(name: str, state: ConnectionState) -> None:
            drops[name] += state is ConnectionState.OFFLINE

        for name, p in (("ada", ada), ("bo", bo)):
            p.on_status(lambda s, name=name: count_drops(name, s.state))
            p.subscribe("todos")
            await p.start()
            await p.wait_synced("todos")

        update_size = 0

        def measure(doc_id: str, update: bytes, origin: object) -> None:
            nonlocal update_size
            update_size = max(update_size, len(update))

        stop = ada.replica.on_update(measure)
        ada.replica.write(("todos", "ids"), IDS)
        stop()
        async with asyncio.timeout(10):
            await ada.wait_acked("todos")  # every part is durable on the relay
        print(f"Ada's write: one update of {update_size:,} bytes, acknowledged in parts")

        arrived = asyncio.Event()
        stop = bo.replica.watch("todos", ("ids",), lambda _o: arrived.set())
        async with asyncio.timeout(10):
            while bo.replica.read(("todos", "ids")) != IDS:
                await arrived.wait()
                arrived.clear()
        stop()
        print("Bo (16 KiB limit) has all", len(IDS), "ids; dropped connections:", drops)
        assert drops == {"ada": 0, "bo": 0}

        parts = split_update(ada.replica.get_update("todos"), 16 * 1024)
        fresh = Replica()
        for part in parts:
            fresh.apply_update("todos", part)
        assert fresh.read(("todos", "ids")) == IDS and all(len(p) <= 16 * 1024 for p in parts)
        print(f"split_update: {len(parts)} parts of at most 16 KiB give the same document")

        await ada.close()
        await bo.close()
    print("ok")


if __name__ == "__main__":
    asyncio.run(main())

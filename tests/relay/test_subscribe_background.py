"""A native Subscribe whose room is still loading does not hold up the connection's other
documents, and frames for the loading document wait for it, in order."""

from __future__ import annotations

import asyncio

from pycrdt import Doc, Map

from crdtsync.protocol import native as n
from crdtsync.relay import Relay, RelayConfig
from crdtsync.storage import MemoryStore

from .clients import NClient


class OneSlowDocStore(MemoryStore):
    """Loading ``slow`` waits for ``gate``; every other document loads at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.loading = asyncio.Event()

    async def load(self, doc_id: str) -> bytes | None:
        if doc_id == "slow":
            self.loading.set()
            await self.gate.wait()
        return await super().load(doc_id)


async def test_other_documents_are_served_while_one_room_loads() -> None:
    store = OneSlowDocStore()
    async with Relay(RelayConfig(port=0), store) as relay:
        c = await NClient.open(f"{relay.url}/v1", doc_id=None)
        c.send(n.Subscribe("slow", b"\x00"))
        await asyncio.wait_for(store.loading.wait(), 5)
        edit = Doc()
        edit.get("m", type=Map)["k"] = "v"
        seq = c.conn.next_seq()
        c.send(n.Update("slow", bytes(edit.get_update()), seq))  # sent while "slow" still loads
        await c.subscribe("fast")  # answered although "slow" is not loaded yet
        assert "slow" not in c.subscribed and not c.errors
        store.gate.set()
        await c.wait_for(lambda: "slow" in c.subscribed and c.acked.get("slow", 0) >= seq)
        assert not c.errors
        stored = await store.load("slow")
        check = Doc()
        assert stored is not None
        check.apply_update(stored)
        assert check.get("m", type=Map)["k"] == "v"  # the queued update was applied after the load
        await c.close()

"""Fault-injecting stores for relay tests."""

from __future__ import annotations

import asyncio

from crdtsync.errors import CorruptStoreError
from crdtsync.storage import MemoryStore


class GatedStore(MemoryStore):
    """``load`` waits until ``gate`` is set (a slow disk); counts loads."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.loads = 0
        self.loading = asyncio.Event()

    async def load(self, doc_id: str) -> bytes | None:
        self.loads += 1
        self.loading.set()
        await self.gate.wait()
        return await super().load(doc_id)


class BrokenStore(MemoryStore):
    """``load`` fails for ids in ``broken``; every write is recorded."""

    def __init__(self, broken: set[str]) -> None:
        super().__init__()
        self.broken = broken
        self.writes: list[tuple[str, str]] = []

    async def load(self, doc_id: str) -> bytes | None:
        if doc_id in self.broken:
            raise CorruptStoreError(f"{doc_id} is corrupt")
        return await super().load(doc_id)

    async def append(self, doc_id: str, update: bytes) -> None:
        self.writes.append(("append", doc_id))
        await super().append(doc_id, update)

    async def replace(self, doc_id: str, state: bytes) -> None:
        self.writes.append(("replace", doc_id))
        await super().replace(doc_id, state)

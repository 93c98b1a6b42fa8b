"""Fault-injecting stores for relay tests."""

from __future__ import annotations

import asyncio

from pycrdt import Doc, Map

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


class DurableView(MemoryStore):
    """A MemoryStore that also keeps, per document, a Doc of everything committed so far, so a
    test can check synchronously (at the moment an Ack arrives) what a crash would keep."""

    def __init__(self) -> None:
        super().__init__()
        self.durable: dict[str, Doc] = {}

    async def append(self, doc_id: str, update: bytes) -> None:
        await super().append(doc_id, update)
        self.durable.setdefault(doc_id, Doc()).apply_update(update)

    def keys(self, doc_id: str) -> set[str]:
        """The keys of map ``m`` committed for ``doc_id``."""
        doc = self.durable.get(doc_id)
        return set() if doc is None else set(doc.get("m", type=Map).keys())
